"""The evaluation recipe on wavs, the evaluation plan, summaries with CIs, and the generated report."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import speaker_utterance, write_wav

from vc.config import EvaluateConfig, ExperimentConfig, FeaturesConfig
from vc.configlib import build
from vc.evaluation import analyze_for_eval, evaluation_plan, score_pair, score_system, summarize
from vc.report import SystemResult, build_report, recipe_markdown, verdict

FS = 16000
FEATURES = FeaturesConfig()
CFG = EvaluateConfig(bootstrap=200)


def test_a_wav_against_itself_scores_perfectly() -> None:
    a = analyze_for_eval(speaker_utterance("spkA", 1, 0.8), FS, FEATURES)
    scores = score_pair(a, a, CFG)
    assert scores["mcd_db"] == pytest.approx(0.0, abs=1e-9)
    assert scores["log_f0_rmse"] == pytest.approx(0.0, abs=1e-9) and scores["f0_corr"] == pytest.approx(1.0)
    assert scores["msd_db"] == pytest.approx(0.0, abs=1e-9) and scores["vuv_error"] == 0.0


def test_silence_is_dropped_and_speakers_are_told_apart() -> None:
    wav = speaker_utterance("spkA", 1, 0.8)
    padded = np.concatenate([np.zeros(FS // 2), wav, np.zeros(FS // 2)]) + 1e-5 * np.random.default_rng(
        0
    ).standard_normal(2 * FS // 2 + len(wav))
    a, b = analyze_for_eval(wav, FS, FEATURES), analyze_for_eval(padded, FS, FEATURES)
    assert (b.power_db < CFG.power_threshold_db).sum() >= 150  # the half seconds of silence fall below
    same = score_pair(b, a, CFG)["mcd_db"]
    other = score_pair(analyze_for_eval(speaker_utterance("spkB", 1, 0.8), FS, FEATURES), a, CFG)["mcd_db"]
    assert same < 1.0 < 3.0 < other


def test_evaluation_plan_pairs_shared_eval_sentences() -> None:
    manifest = pd.DataFrame(
        [
            {"speaker": s, "utt_id": u, "split": "eval", "status": "ok"}
            for s in ("a", "b", "c")
            for u in ("u1", "u2", "u3")
        ]
    )
    manifest.loc[(manifest["speaker"] == "c") & (manifest["utt_id"] == "u3"), "status"] = "skipped"
    plan = evaluation_plan(manifest, ["a", "b", "c"])
    assert len(plan) == 2 * 3 + 4 * 2  # a<->b share 3 sentences; pairs with c share 2
    assert not ((plan["source"] == plan["target"]).any())
    assert len(evaluation_plan(manifest, ["a", "b", "c"], max_utterances=1)) == 6
    assert evaluation_plan(manifest, ["a", "b", "c"], (("a", "b"),)).shape == (3, 3)
    with pytest.raises(ValueError, match="unknown speaker 'z'"):
        evaluation_plan(manifest, ["a", "b", "c"], (("a", "z"),))


def test_score_system_scores_wavs_and_unconverted_sources(tmp_path: Path) -> None:
    refs = tmp_path / "refs"
    for spk in ("spkA", "spkB"):
        analyze_for_eval(speaker_utterance(spk, 2, 0.6), FS, FEATURES).save(refs / spk / "u2.npz")
    wav = write_wav(tmp_path / "conv.wav", speaker_utterance("spkB", 2, 0.6))
    items = pd.DataFrame(
        [
            {"source": "spkA", "target": "spkB", "utt_id": "u2", "path": str(wav)},
            {"source": "spkA", "target": "spkB", "utt_id": "u2", "path": ""},
        ]
    )
    scores = score_system(items, refs, FEATURES, CFG, workers=1)
    assert scores.loc[0, "mcd_db"] < 0.5 < 3.0 < scores.loc[1, "mcd_db"]  # a perfect conversion vs none


def test_summaries_have_confidence_intervals() -> None:
    rng = np.random.default_rng(0)
    scores = pd.DataFrame(
        {
            "source": ["a", "b"] * 20,
            "target": ["b", "a"] * 20,
            "mcd_db": rng.normal(6, 1, 40),
            "log_f0_rmse": rng.normal(0.2, 0.05, 40),
            "f0_corr": rng.normal(0.6, 0.1, 40),
            "msd_db": rng.normal(3, 0.5, 40),
        }
    )
    overall = summarize(scores, CFG).iloc[0]
    assert overall["n"] == 40 and overall["mcd_db_ci_low"] < overall["mcd_db"] < overall["mcd_db_ci_high"]
    per_pair = summarize(scores, CFG, by=["source", "target"])
    assert len(per_pair) == 2 and (per_pair["n"] == 20).all()


def _result(name: str, kind: str, mcd: float, with_training: bool) -> SystemResult:
    o = {
        "mcd_db": mcd,
        "mcd_db_ci_low": mcd - 0.2,
        "mcd_db_ci_high": mcd + 0.2,
        "log_f0_rmse": 0.2,
        "log_f0_rmse_ci_low": 0.1,
        "log_f0_rmse_ci_high": 0.3,
        "f0_corr": 0.5,
        "f0_corr_ci_low": 0.4,
        "f0_corr_ci_high": 0.6,
        "msd_db": 2.0,
        "msd_db_ci_low": 1.0,
        "msd_db_ci_high": 3.0,
        "n": 4,
    }
    pairs = [{"source": "a", "target": "b", **o}, {"source": "b", "target": "a", **o}]
    losses = pd.DataFrame(
        {"step": [1, 2], "d/adv": [1.0, 0.9], "g/adv": [1.0, 1.1], "g/cyc": [1.0, 0.5], "g/id": [1.0, 0.4]}
    )
    train = {"mlflow_run_id": f"run-{name}", "iterations": 2, "wall_seconds": 1.0, "final": {"g/cyc": 0.5}}
    return SystemResult(
        name,
        kind,
        {"overall": o, "pairs": pairs},
        pd.DataFrame(),
        train if with_training else None,
        losses if with_training else None,
    )


def test_report_holds_every_system_and_finite_metrics(tmp_path: Path) -> None:
    results = [
        _result("stargan-vc2", "experiment", 6.0, True),
        _result("no-id", "experiment", 6.3, True),
        _result("source", "baseline", 8.0, False),
        _result("copy-synthesis", "baseline", 3.0, False),
    ]
    exps = {
        n: build(ExperimentConfig, {"name": n, "model": {}, "train": {"lambdas": {"id": i}}})
        for n, i in (("stargan-vc2", 5.0), ("no-id", 0.0))
    }
    corpus = {
        "speakers": {
            "a": {"train": 4, "eval": 2, "seconds": 9.0},
            "b": {"train": 4, "eval": 2, "seconds": 8.0},
        },
        "utterances": 12,
        "seconds": 17.0,
        "skipped": 0,
    }
    features = {"speakers": {"a": {"mean_f0_hz": 100.0}, "b": {"mean_f0_hz": 200.0}}, "real_time_factor": 0.2}
    recipe = recipe_markdown(FEATURES, CFG, 22050)
    metrics = build_report(
        tmp_path / "reports",
        results,
        title="T",
        recipe=recipe,
        corpus_summary=corpus,
        features_summary=features,
        experiments=exps,
        confidence=0.95,
    )
    report = (tmp_path / "reports" / "report.md").read_text()
    for name in ("stargan-vc2", "no-id", "source", "copy-synthesis", "run-stargan-vc2", "train.lambdas.id"):
        assert name in report
    assert recipe in report and "lower (CIs do not overlap)" in report
    saved = json.loads((tmp_path / "reports" / "metrics.json").read_text())
    assert saved == metrics and all(np.isfinite(v) for m in saved.values() for v in m.values())
    assert {p.name for p in (tmp_path / "reports" / "figures").iterdir()} == {"mcd.png", "losses.png"}
    assert (tmp_path / "reports" / "per_pair" / "source.csv").is_file()
    assert (tmp_path / "reports" / "losses" / "no-id.tsv").is_file()


def test_verdicts_follow_the_intervals() -> None:
    def ci(m: float) -> dict:
        return {"mcd_db_ci_low": m - 0.5, "mcd_db_ci_high": m + 0.5}

    assert verdict(ci(5.0), ci(7.0)) == "lower (CIs do not overlap)"
    assert verdict(ci(7.0), ci(5.0)) == "higher (CIs do not overlap)"
    assert verdict(ci(5.0), ci(5.6)) == "not distinguishable (CIs overlap)"


def test_readme_states_exactly_the_recipe_the_code_runs() -> None:
    import yaml

    from vc.config import load_params

    root = Path(__file__).resolve().parents[1]
    params = load_params(yaml.safe_load((root / "params.yaml").read_text()))
    recipe = recipe_markdown(params.features, params.evaluate, params.data.sample_rate)
    assert recipe in (root / "README.md").read_text()


def test_committed_report_covers_every_default_system_and_states_the_current_recipe() -> None:
    import yaml

    from vc.config import load_params
    from vc.report import check_report

    root = Path(__file__).resolve().parents[1]
    params = load_params(yaml.safe_load((root / "params.yaml").read_text()))
    check_report(root / "reports", [*params.experiments, *params.baselines])
    recipe = recipe_markdown(params.features, params.evaluate, params.data.sample_rate)
    assert recipe in (root / "reports" / "report.md").read_text()
