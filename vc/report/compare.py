"""Paired comparisons and ``metrics.json``: every experiment against every baseline and the reference
experiment, by each compared metric of the registry, on the same items; verdicts respect each direction."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pandas as pd

from vc.config import EvaluateConfig, ExperimentConfig
from vc.configlib import flatten, to_dict
from vc.evaluation.registry import compared, spec
from vc.evaluation.summary import metric_unit
from vc.report.results import SystemResult
from vc.statistics import Estimate, estimate_metric, paired_difference, verdict

__all__ = ["Comparison", "compare", "differing_params", "metrics_json"]


@dataclass
class Comparison:
    """A paired difference ``system - other`` of one metric on the same items, and its verdict."""

    system: str
    other: str
    metric: str
    estimate: Estimate
    verdict: str


def _has_values(scores: pd.DataFrame, metric: str) -> bool:
    return metric in scores.columns and bool(scores[metric].notna().any())


def _compare_one(system: SystemResult, other: SystemResult, metric: str, cfg: EvaluateConfig) -> Comparison:
    diff = paired_difference(system.scores, other.scores, metric, metric_unit(other.unit, metric))
    est = estimate_metric(
        diff,
        "diff",
        confidence=cfg.confidence,
        n_resamples=cfg.bootstrap,
        seed=cfg.seed,
        min_clusters=cfg.min_sentences,
    )
    m = spec(metric)
    words = verdict(est, lower_is_better=not m.higher_is_better, unit=m.verdict_unit, digits=m.decimals)
    return Comparison(system.name, other.name, metric, est, words)


def compare(results: list[SystemResult], reference: str | None, cfg: EvaluateConfig) -> list[Comparison]:
    """Each experiment against each baseline and against the ``reference`` experiment, by every compared
    metric (:func:`vc.evaluation.registry.compared`) both systems have, each item paired by its unit in the
    other system (:func:`vc.evaluation.summary.metric_unit`)."""
    by_name = {r.name: r for r in results}
    out = []
    for r in results:
        if r.kind != "experiment":
            continue
        others = [b for b in results if b.kind == "baseline"]
        if reference is not None and r.name != reference and reference in by_name:
            others.insert(0, by_name[reference])
        for other in others:
            for metric in compared():
                if _has_values(r.scores, metric) and _has_values(other.scores, metric):
                    out.append(_compare_one(r, other, metric, cfg))
    return out


def differing_params(experiments: Mapping[str, ExperimentConfig]) -> pd.DataFrame:
    """The resolved ``model.*``/``train.*`` params whose values differ between experiments (seed aside)."""
    flat = {
        name: flatten({"model": to_dict(e.model), "train": to_dict(e.train)})
        for name, e in experiments.items()
    }
    keys = sorted({k for f in flat.values() for k in f} - {"train.seed"})
    rows = [
        {"param": k, **{n: f.get(k) for n, f in flat.items()}}
        for k in keys
        if len({json.dumps(f.get(k)) for f in flat.values()}) > 1
    ]
    return pd.DataFrame(rows)


def metrics_json(
    results: list[SystemResult], summaries: Mapping[str, dict], comparisons: list[Comparison]
) -> dict[str, Any]:
    """``metrics.json``: per system its overall numbers, seed spread and the paired differences of every
    metric whose registry row says so (``diff_in_metrics``)."""
    out: dict[str, Any] = {}
    for r in results:
        o = summaries[r.name]["overall"]
        entry: dict[str, Any] = {k: round(float(v), 4) for k, v in o.items() if isinstance(v, int | float)}
        if r.kind == "experiment":
            entry["mcd_db_seed_sd"] = round(summaries[r.name]["seed_spread"]["sd"], 4)
        for c in comparisons:
            if c.system == r.name and spec(c.metric).diff_in_metrics:
                e = c.estimate
                entry[f"{c.metric}_minus_{c.other}"] = {
                    "diff": round(e.mean, 4),
                    "ci_low": round(e.low, 4),
                    "ci_high": round(e.high, 4),
                }
        out[r.name] = entry
    return out
