"""A system's summary: every summarised metric of the registry, overall and per speaker pair, with intervals.

Each metric is averaged over the distinct items it belongs to (:func:`metric_unit`, :mod:`vc.statistics`),
with a cluster-bootstrap interval over sentences (and training seeds); the MCD's spread between seeds is
kept beside it. ``summary.json`` and ``scores.csv`` are what the report and MLflow read.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from vc.config import EvaluateConfig
from vc.evaluation.registry import METRICS, is_recipe, spec
from vc.io import atomic_path, write_json
from vc.statistics import Unit, distinct_items, estimate_metric, seed_spread

__all__ = [
    "PAIR_GROUPS",
    "metric_unit",
    "summarize",
    "summarized_metrics",
    "system_summary",
    "write_system_results",
]

#: How a system's rows are grouped per speaker pair, by its unit.
PAIR_GROUPS: dict[Unit, list[str]] = {
    "conversion": ["source", "target"],
    "target": ["target"],
    "unordered_pair": ["pair"],
}
_NON_CONVERTING: dict[str, Unit] = {
    "pair": "unordered_pair",
    "recording": "source_utterance",
    "conversion": "conversion",
}


def metric_unit(unit: Unit, metric: str) -> Unit:
    """The item one value of ``metric`` belongs to, in a system whose rows are of ``unit``.

    Only a system that does not convert (``unordered_pair``: ``source``) differs, by the metric's
    :attr:`~vc.evaluation.registry.MetricSpec.item_unit`: the MCD recipe compares two recordings (the
    unordered pair), a perceptual metric of the source's recording alone (CER, MOS, similarity to its own
    speaker) belongs to ``(source, utt_id)``, and its similarity to the target speaker to the ordered pair.
    """
    if unit != "unordered_pair":
        return unit
    return _NON_CONVERTING[spec(metric).item_unit]


def summarized_metrics(scores: pd.DataFrame) -> list[str]:
    """The summarised recipe metrics ``scores`` has a column of (``mcd_db`` always), then every other
    summarised metric it has a finite value of."""
    out = []
    for m in METRICS.values():
        if not m.summarized or (m.name not in scores.columns and m.name != "mcd_db"):
            continue
        if is_recipe(m.name) or np.isfinite(scores[m.name].astype(float)).any():
            out.append(m.name)
    return out


def summarize(
    scores: pd.DataFrame, cfg: EvaluateConfig, by: list[str] | None = None, unit: Unit = "conversion"
) -> pd.DataFrame:
    """Mean and cluster-bootstrap interval of every metric of :func:`summarized_metrics`, overall or
    grouped ``by``.

    ``scores`` holds the rows of one system, keyed by ``unit``, with ``utt_id`` and optionally ``seed``;
    each metric is averaged over the distinct items of :func:`metric_unit` (see
    :func:`vc.statistics.distinct_items`). Columns: ``<metric>``, ``<metric>_ci_low``, ``<metric>_ci_high``
    (NaN with fewer than ``evaluate.min_sentences`` sentences), ``n`` (items with a finite MCD),
    ``sentences``, ``seeds``.
    """
    metrics = summarized_metrics(scores)
    groups = [((), scores)] if not by else list(scores.groupby(by, sort=True))
    rows = []
    for key, group in groups:
        row: dict[str, object] = dict(zip(by or [], key if isinstance(key, tuple) else (key,), strict=False))
        for metric in metrics:
            est = estimate_metric(
                distinct_items(group, metric_unit(unit, metric)),
                metric,
                confidence=cfg.confidence,
                n_resamples=cfg.bootstrap,
                seed=cfg.seed,
                min_clusters=cfg.min_sentences,
            )
            row.update(est.as_dict(metric))
            if metric == "mcd_db":
                row["n"], row["sentences"], row["seeds"] = est.n, est.sentences, est.seeds
        rows.append(row)
    return pd.DataFrame(rows)


def system_summary(
    name: str, kind: str, scores: pd.DataFrame, cfg: EvaluateConfig, unit: Unit = "conversion"
) -> dict:
    """The summary written to ``summary.json``: overall and per-pair means with intervals, and the spread
    of the MCD between training seeds. ``scores`` holds the rows of ``unit`` (``source``: both directions of
    each pair, for the perceptual metrics); per pair they are grouped by :data:`PAIR_GROUPS`
    (``copy-synthesis``: per target; ``source``: per unordered pair).
    """
    overall = summarize(scores, cfg, unit=unit).iloc[0].to_dict()
    pairs = summarize(scores, cfg, by=PAIR_GROUPS[unit], unit=unit).to_dict(orient="records")
    return {
        "system": name,
        "kind": kind,
        "confidence": cfg.confidence,
        "overall": overall,
        "pairs": pairs,
        "unit": unit,
        "seed_spread": seed_spread(distinct_items(scores, unit), "mcd_db"),
    }


def write_system_results(folder: str | Path, summary: dict, scores: pd.DataFrame) -> None:
    """``folder/scores.csv`` (per utterance) and ``folder/summary.json``, written atomically."""
    folder = Path(folder)
    with atomic_path(folder / "scores.csv") as tmp:
        scores.to_csv(tmp, index=False)
    write_json(folder / "summary.json", summary)
