"""What each system's evaluation left behind, loaded for the report: scores, training records, a figure.

Experiments come from the evaluate stages' folders (``<experiments>/<name>/seed-<seed>/``: ``scores.csv``,
``train.json``, ``losses.tsv``, ``mcep.png``), baselines from the baselines stage's (``<baselines>/<name>/``);
a baseline's unit, vocoder and F0 source are read from :data:`vc.baselines.BASELINES`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from vc.baselines import F0Source, baseline
from vc.config import ExperimentConfig
from vc.conversion import VOCODERS, vocoder_for
from vc.layout import run_dir
from vc.statistics import Unit

__all__ = ["SystemResult", "f0_source", "load_results", "system_vocoder", "vocoder_name"]


@dataclass
class SystemResult:
    """One system's scores (one row per distinct item; experiments: every seed) and training records.

    Attributes:
        name: experiment or baseline name.
        kind: ``"experiment"`` or ``"baseline"``.
        unit: the item unit of its rows (:data:`vc.statistics.Unit`).
        scores: per-item scores with ``source, target, utt_id`` (``seed`` for experiments, ``pair`` for
            ``source``) and the metric columns of :data:`vc.evaluation.registry.METRICS`.
        trains: ``train.json`` of each seed's run (experiments only).
        losses: each seed's loss curves by seed (experiments only).
        figure: a mel-cepstrogram figure (experiments only).
    """

    name: str
    kind: str
    unit: Unit
    scores: pd.DataFrame
    trains: list[dict[str, Any]] = field(default_factory=list)
    losses: dict[int, pd.DataFrame] = field(default_factory=dict)
    figure: Path | None = None


def _read_scores(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, dtype={"source": str, "target": str, "utt_id": str, "pair": str})


def _experiment(folder: Path, name: str, seeds: list[int]) -> SystemResult:
    folders = [run_dir(folder, name, seed) for seed in seeds]
    return SystemResult(
        name,
        "experiment",
        "conversion",
        pd.concat([_read_scores(d / "scores.csv") for d in folders], ignore_index=True),
        [json.loads((d / "train.json").read_text()) for d in folders],
        {seed: pd.read_csv(d / "losses.tsv", sep="\t") for seed, d in zip(seeds, folders, strict=True)},
        folders[0] / "mcep.png",
    )


def load_results(
    experiments_dir: str | Path,
    baselines_dir: str | Path,
    experiments: list[str],
    seeds: list[int],
    baselines: list[str],
) -> list[SystemResult]:
    """Read every system's evaluation folders (experiments first, in params order, every seed)."""
    out = [_experiment(Path(experiments_dir), name, seeds) for name in experiments]
    for name in baselines:
        scores = _read_scores(Path(baselines_dir) / name / "scores.csv")
        out.append(SystemResult(name, "baseline", baseline(name).unit, scores))
    return out


def vocoder_name(result: SystemResult, experiments: Mapping[str, ExperimentConfig]) -> str:
    """The :data:`vc.conversion.VOCODERS` entry that made a system's wavs (``""``: recordings)."""
    if result.kind == "experiment":
        return vocoder_for(experiments[result.name].model.features)
    return baseline(result.name).vocoder


def system_vocoder(result: SystemResult, experiments: Mapping[str, ExperimentConfig]) -> str:
    """The vocoder that made a system's wavs, as the report names it (``WORLD``, ``HiFi-GAN``), or ``-``
    for a system that scores the recordings themselves."""
    name = vocoder_name(result, experiments)
    return VOCODERS[name].label if name else "-"


def f0_source(result: SystemResult, experiments: Mapping[str, ExperimentConfig]) -> F0Source:
    """Where a system's F0 comes from: a trained system's from its vocoder's features (WORLD: the shared
    log-Gaussian transform; log-mel: whatever the converted mel carries), a baseline's as declared."""
    if result.kind == "experiment":
        return "transform" if experiments[result.name].model.features == "world" else "mel"
    return baseline(result.name).f0
