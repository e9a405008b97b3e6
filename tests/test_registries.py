"""A metric or a baseline is added in one module plus one registration: the toy ones below, registered inside
these tests alone, reach the scores, ``summary.json``, ``metrics.json``, MLflow and the report with nothing
else touched. The config's allowed names stay equal to the registries."""

from __future__ import annotations

import json
import typing
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from conftest import write_wav

from vc.baselines import BASELINES, Baseline, BaselineInputs
from vc.baselines import register as register_baseline
from vc.config import Baseline as BaselineName
from vc.config import ConvertConfig, EvaluateConfig, ExperimentConfig, PerceptualMetric
from vc.configlib import build
from vc.evaluation.perceptual.base import SimpleMetric
from vc.evaluation.perceptual.groups import GROUPS
from vc.evaluation.perceptual.groups import register as register_group
from vc.evaluation.perceptual.material import build_reference_material
from vc.evaluation.registry import METRICS, MetricSpec
from vc.evaluation.score import score_perceptual
from vc.evaluation.summary import system_summary, write_system_results
from vc.io import read_audio
from vc.statistics import distinct_items

FS = 16000
SPEAKERS = {"a": 0.5, "b": 0.25}  # each speaker's recording amplitude
SENTENCES = [f"u{i}" for i in range(6)]


class LoudnessMetric(SimpleMetric):
    """A toy perceptual group: the RMS level of the wav in dB."""

    name = "loudness"
    params_key = "evaluate"

    def recipe(self, cfg: EvaluateConfig) -> str:
        return "Loudness: the RMS level of the wav in dB."

    def provenance(self, cfg: EvaluateConfig) -> dict[str, str]:
        return {"package": "toy", "version": "1"}

    def score_wav(
        self, wav: np.ndarray, sample_rate: int, reference_text: str, cfg: EvaluateConfig
    ) -> tuple[dict[str, Any], str]:
        rms = float(np.sqrt(np.mean(np.square(wav)))) if len(wav) else 0.0
        if rms <= 0:
            return {"loudness_db": np.nan}, "silent"
        return {"loudness_db": 20 * np.log10(rms)}, ""


LOUDNESS = MetricSpec(
    "loudness_db", "loudness", True, label="loudness dB", natural_column="loudness_db", compared=True
)


def _tone(amplitude: float, seconds: float = 0.5) -> np.ndarray:
    t = np.arange(int(FS * seconds)) / FS
    return amplitude * np.sin(2 * np.pi * 220 * t)


def _plan() -> pd.DataFrame:
    return pd.DataFrame(
        [{"source": s, "target": t, "utt_id": u} for s, t in (("a", "b"), ("b", "a")) for u in SENTENCES]
    )


def _recipe_columns(rows: pd.DataFrame, mcd: float, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return rows.assign(
        mcd_db=mcd + rng.normal(0, 0.1, len(rows)),
        log_f0_rmse=0.2,
        f0_corr=0.5,
        msd_db=2.0 + rng.normal(0, 0.1, len(rows)),
        note="",
    )


def _report_inputs(names: list[str]) -> dict[str, Any]:
    from vc.config import FeaturesConfig
    from vc.evaluation.recipe import recipe_markdown

    cfg = EvaluateConfig(bootstrap=200)
    return {
        "title": "Toy",
        "recipe": recipe_markdown(FeaturesConfig(), cfg, 22050),
        "corpus_summary": {
            "speakers": {s: {"train": 1, "test": 6, "seconds": 3.0} for s in SPEAKERS},
            "utterances": 14,
            "seconds": 6.0,
        },
        "features_summary": {"speakers": {}},
        "experiments": {n: build(ExperimentConfig, {"name": n, "model": {}, "train": {}}) for n in names},
        "convert": ConvertConfig(),
        "reference": None,
    }


def _experiment(scores: pd.DataFrame, name: str = "stargan-vc2"):  # -> SystemResult
    from vc.report.results import SystemResult

    losses = pd.DataFrame({"step": [1], "d/adv": [1.0], "g/adv": [1.0], "g/cyc": [1.0], "g/id": [1.0]})
    train = {"seed": 0, "mlflow_run_id": "run", "iterations": 1, "final": {}}
    return SystemResult(name, "experiment", "conversion", scores, [train], {0: losses})


def test_the_config_allows_exactly_the_registered_groups_and_baselines() -> None:
    assert set(typing.get_args(PerceptualMetric)) == set(GROUPS)
    assert set(typing.get_args(BaselineName)) == set(BASELINES)
    groups = {m.group for m in METRICS.values()} - {"recipe"}
    assert groups == set(GROUPS), "every metric's group is a registered perceptual group (or the recipe)"


def test_a_toy_metric_reaches_summary_metrics_json_mlflow_and_the_report(tmp_path: Path) -> None:
    from vc.report.build import build_report
    from vc.report.results import SystemResult
    from vc.tracking import RunTracker, log_evaluation

    naturals, made = [], {}
    for spk, amplitude in SPEAKERS.items():
        for utt in SENTENCES:
            path = write_wav(tmp_path / "naturals" / spk / f"{utt}.wav", _tone(amplitude), FS)
            naturals.append({"speaker": spk, "utt_id": utt, "path": str(path), "text": "a sentence"})
    plan = _plan()
    for system, amplitude in (("stargan-vc2", 0.1), ("mean-var", 0.05)):
        made[system] = plan.assign(
            path=[
                str(write_wav(tmp_path / system / f"{s}__{t}" / f"{u}.wav", _tone(amplitude), FS))
                for s, t, u in zip(plan["source"], plan["target"], plan["utt_id"], strict=True)
            ]
        )
    cfg = EvaluateConfig(bootstrap=200).model_copy(update={"perceptual": ("loudness",)})
    train = pd.DataFrame(columns=["speaker", "utt_id", "path"])

    with register_group(LoudnessMetric(), LOUDNESS):
        material = build_reference_material(train, pd.DataFrame(naturals), cfg, workers=1)
        assert material.metrics == ("loudness",)
        assert material.naturals["loudness_db"].round(1).tolist() == [-9.0] * 6 + [-15.1] * 6
        scores = {
            system: pd.concat(
                [_recipe_columns(plan, mcd, i), score_perceptual(items, material, cfg, workers=1)], axis=1
            )
            for i, (system, items, mcd) in enumerate(
                (("stargan-vc2", made["stargan-vc2"], 6.0), ("mean-var", made["mean-var"], 7.0))
            )
        }
        scores["stargan-vc2"] = scores["stargan-vc2"].assign(seed=0)
        summary = system_summary("stargan-vc2", "experiment", scores["stargan-vc2"], cfg)
        write_system_results(
            tmp_path / "eval", {**summary, "perceptual": material.info()}, scores["stargan-vc2"]
        )
        saved = json.loads((tmp_path / "eval" / "summary.json").read_text())
        assert saved["overall"]["loudness_db"] == pytest.approx(-23.0, abs=0.1)
        assert "loudness_db_ci_low" in saved["overall"]

        tracker = RunTracker.start("toy", "run", root=tmp_path, system_metrics=False)
        log_evaluation(tracker, saved, [])
        tracker.end("FINISHED")
        run = tracker.client.get_run(tracker.run_id)
        assert run.data.metrics["eval/loudness_db"] == pytest.approx(-23.0, abs=0.1)
        assert run.data.tags["vc.perceptual.loudness.package"] == "toy"

        results = [
            _experiment(scores["stargan-vc2"]),
            SystemResult("mean-var", "baseline", "conversion", scores["mean-var"]),
        ]
        metrics = build_report(
            tmp_path / "report",
            results,
            evaluate=cfg,
            perceptual=material,
            **_report_inputs(["stargan-vc2"]),
        )
    report = (tmp_path / "report" / "report.md").read_text()
    assert "loudness dB (higher better)" in report and "Loudness: the RMS level" in report
    assert metrics["stargan-vc2"]["loudness_db"] == pytest.approx(-23.0, abs=0.1)
    diff = metrics["stargan-vc2"]["loudness_db_minus_mean-var"]
    assert diff["diff"] == pytest.approx(6.0, abs=0.1) and diff["ci_low"] > 0
    assert "loudness_db" not in METRICS and "loudness" not in GROUPS  # registered inside the test alone


def _quiet_copy(x: BaselineInputs, src: str, tgt: str, utt: str) -> tuple[np.ndarray, int]:
    """A toy baseline: the target's recording at half the level."""
    wav, sr = read_audio(x.features / tgt / f"{utt}.wav")
    return 0.5 * wav, sr


def test_a_toy_baseline_is_made_scored_and_reported(tmp_path: Path) -> None:
    from pipeline.baselines import synthesize_baseline
    from vc.report.build import build_report
    from vc.report.results import load_results

    for spk, amplitude in SPEAKERS.items():
        for utt in SENTENCES:
            write_wav(tmp_path / "recordings" / spk / f"{utt}.wav", _tone(amplitude), FS)
    entry = Baseline("quiet-copy", "target", "world", "target", "recording", _quiet_copy)
    inputs = BaselineInputs(tmp_path / "recordings", None, None, None)  # type: ignore[arg-type]
    cfg = EvaluateConfig(bootstrap=200)
    plan = _plan()
    with register_baseline(entry):
        items = synthesize_baseline(entry, distinct_items(plan, entry.unit), inputs, FS, tmp_path / "wavs")
        assert len(items) == len(SPEAKERS) * len(SENTENCES)  # once per target and sentence
        level = np.abs(read_audio(items["path"].iloc[0])[0]).max()
        assert level == pytest.approx(0.5 * SPEAKERS[items["target"].iloc[0]], abs=0.01)
        scores = _recipe_columns(items.drop(columns="path"), 3.0, 1)
        write_system_results(
            tmp_path / "eval" / "baselines" / "quiet-copy",
            system_summary("quiet-copy", "baseline", scores, cfg, entry.unit),
            scores,
        )
        experiment = _recipe_columns(plan, 6.0, 2).assign(seed=0)
        results = [
            _experiment(experiment),
            *load_results(
                tmp_path / "eval" / "experiments", tmp_path / "eval" / "baselines", [], [0], ["quiet-copy"]
            ),
        ]
        assert results[1].unit == "target"
        metrics = build_report(tmp_path / "report", results, evaluate=cfg, **_report_inputs(["stargan-vc2"]))
    report = (tmp_path / "report" / "report.md").read_text()
    assert "| quiet-copy | baseline | WORLD |" in report
    assert metrics["quiet-copy"]["n"] == 12 and "mcd_db_minus_quiet-copy" in metrics["stargan-vc2"]
    assert "quiet-copy" not in BASELINES
