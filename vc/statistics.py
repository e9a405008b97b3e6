"""Statistics of scored items: one value per distinct item, cluster-bootstrap intervals, paired differences.

Every system is scored on the same items, so comparisons are paired and the statistical unit is the
sentence, not the row:

- **Distinct items.** A system's rows are keyed by its *unit* (:data:`Unit`; a baseline's is declared in
  :data:`vc.baselines.BASELINES`): a conversion by
  ``(source, target, utt_id)`` (and ``seed`` for trained systems); ``copy-synthesis`` by
  ``(target, utt_id)``, since it never sees the source; ``source`` (no conversion) by the unordered pair and
  the sentence, since A->B and B->A score the same two wavs. A value is counted once. A metric of one
  recording alone (a CER, a predicted MOS) of ``source`` belongs to ``(source, utt_id)``
  (``source_utterance``), its similarity to the target speaker to the ordered pair: see
  :func:`vc.evaluation.summary.metric_unit`.
- **Intervals.** All rows of a sentence (every pair) move together in a resample, and with several training
  seeds the seeds are resampled too (a two-way cluster bootstrap of the mean, by
  :func:`scipy.stats.bootstrap` over sentence and seed indices), so correlated rows never narrow an interval
  and the interval includes seed variance.
- **Paired differences.** An experiment's rows are joined to another system's values by that system's unit
  key; the per-row difference is bootstrapped like a score; the verdict is worded from its interval.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

__all__ = [
    "Estimate",
    "Unit",
    "cluster_bootstrap_mean",
    "distinct_items",
    "estimate_metric",
    "item_key",
    "paired_difference",
    "seed_spread",
    "verdict",
    "with_pair",
]

Unit = Literal["conversion", "target", "unordered_pair", "source_utterance"]


@dataclass(frozen=True)
class Estimate:
    """A mean with its cluster-bootstrap interval.

    Attributes:
        mean: mean of the non-NaN values.
        low, high: interval bounds; NaN when there are fewer than ``min_clusters`` sentences.
        n: values used (non-NaN rows).
        sentences: distinct sentences among them (the resampled clusters).
        seeds: distinct training seeds among them (resampled too when more than one).
    """

    mean: float
    low: float
    high: float
    n: int
    sentences: int
    seeds: int

    @property
    def has_interval(self) -> bool:
        return not (math.isnan(self.low) or math.isnan(self.high))

    def as_dict(self, prefix: str) -> dict[str, float | int]:
        """``{prefix: mean, prefix_ci_low, prefix_ci_high}``: the column names of summaries and metrics."""
        return {prefix: self.mean, f"{prefix}_ci_low": self.low, f"{prefix}_ci_high": self.high}


def item_key(unit: Unit, columns: Sequence[str] = ()) -> list[str]:
    """The columns that identify one item of ``unit`` (``seed`` included when the table has one)."""
    base = {
        "conversion": ["source", "target", "utt_id"],
        "target": ["target", "utt_id"],
        "source_utterance": ["source", "utt_id"],
    }
    key = base.get(unit, ["pair", "utt_id"])
    return [*key, "seed"] if "seed" in columns and unit == "conversion" else key


def with_pair(rows: pd.DataFrame) -> pd.DataFrame:
    """``rows`` with a ``pair`` column: the unordered speaker pair as ``"A|B"`` (sorted names)."""
    pairs = ["|".join(sorted((str(s), str(t)))) for s, t in zip(rows["source"], rows["target"], strict=True)]
    return rows.assign(pair=pairs)


def distinct_items(rows: pd.DataFrame, unit: Unit) -> pd.DataFrame:
    """One row per distinct item of ``unit`` (the first of duplicates), in a stable order.

    ``rows`` has ``source``, ``target``, ``utt_id`` (and optionally ``seed``); for ``unordered_pair`` a
    ``pair`` column (``"A|B"``, sorted names) is added and the row kept is the one with ``source < target``
    where both directions are present.
    """
    if unit == "unordered_pair":
        rows = with_pair(rows)
        rows = rows.sort_values(["pair", "utt_id", "source"], kind="stable")
    return rows.drop_duplicates(subset=item_key(unit, rows.columns)).reset_index(drop=True)


def cluster_bootstrap_mean(
    values: Sequence[float] | np.ndarray,
    sentences: Sequence[object] | np.ndarray,
    seeds: Sequence[object] | np.ndarray | None = None,
    *,
    confidence: float = 0.95,
    n_resamples: int = 1000,
    seed: int = 0,
    min_clusters: int = 2,
) -> Estimate:
    """Mean of ``values`` with a percentile interval from a cluster bootstrap over sentences (and seeds).

    A resample draws sentence indices with replacement (every row of a drawn sentence comes along) and,
    with more than one distinct seed, seed indices independently; its statistic is the mean of the rows in
    the drawn (sentence, seed) cells, counted with multiplicity. :func:`scipy.stats.bootstrap` draws the
    resamples (``paired=False``: the two index samples are resampled independently).

    Args:
        values: per-row values ``(N,)``; NaN rows are dropped first.
        sentences: the sentence id of each row ``(N,)``.
        seeds: the training seed of each row ``(N,)``, or None (one seed).
        confidence: interval coverage, in (0, 1).
        n_resamples: bootstrap resamples.
        seed: seed of the resampling generator (results are deterministic for a seed).
        min_clusters: with fewer distinct sentences, no interval is given (low = high = NaN).

    Returns:
        :class:`Estimate`; all-NaN with ``n == 0`` when no value is finite.
    """
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    v = np.asarray(values, dtype=np.float64)
    sent = np.asarray(sentences, dtype=object)
    seed_ids = np.zeros(len(v), dtype=np.int64) if seeds is None else np.asarray(seeds, dtype=object)
    if not (v.ndim == 1 and len(sent) == len(v) == len(seed_ids)):
        raise ValueError(f"values, sentences and seeds must be 1-D of one length: {len(v)}, {len(sent)}")
    ok = ~np.isnan(v)
    v, sent, seed_ids = v[ok], sent[ok], seed_ids[ok]
    if len(v) == 0:
        return Estimate(math.nan, math.nan, math.nan, 0, 0, 0)
    _, s_idx = np.unique(sent.astype(str), return_inverse=True)
    _, k_idx = np.unique(seed_ids.astype(str), return_inverse=True)
    n_sent, n_seed = int(s_idx.max()) + 1, int(k_idx.max()) + 1
    sums = np.zeros((n_sent, n_seed))
    counts = np.zeros((n_sent, n_seed))
    np.add.at(sums, (s_idx, k_idx), v)
    np.add.at(counts, (s_idx, k_idx), 1.0)
    mean = float(v.mean())
    low = high = math.nan
    if n_sent >= max(min_clusters, 2):

        def statistic(s: np.ndarray, k: np.ndarray | None = None, axis: int = -1) -> np.ndarray:
            # s: (..., n_sent) drawn sentence indices; k: (..., n_seed) drawn seed indices
            k = np.zeros((*s.shape[:-1], 1), dtype=np.int64) if k is None else k
            cell = (s[..., :, None], k[..., None, :])
            with np.errstate(invalid="ignore", divide="ignore"):
                return sums[cell].sum(axis=(-2, -1)) / counts[cell].sum(axis=(-2, -1))

        from scipy import stats  # here, not at the top: 0.35 s that most importers never need

        data = (np.arange(n_sent),) if n_seed == 1 else (np.arange(n_sent), np.arange(n_seed))
        result = stats.bootstrap(
            data,
            statistic,
            n_resamples=n_resamples,
            vectorized=True,
            paired=False,
            confidence_level=confidence,
            method="percentile",
            rng=np.random.default_rng(seed),
        )
        low, high = float(result.confidence_interval.low), float(result.confidence_interval.high)
    return Estimate(mean, low, high, len(v), n_sent, n_seed)


def estimate_metric(
    rows: pd.DataFrame,
    column: str,
    *,
    confidence: float,
    n_resamples: int,
    seed: int,
    min_clusters: int,
) -> Estimate:
    """:func:`cluster_bootstrap_mean` of ``rows[column]``, clusters ``utt_id`` (and ``seed`` if present)."""
    return cluster_bootstrap_mean(
        rows[column].to_numpy(dtype=float),
        rows["utt_id"].to_numpy(),
        rows["seed"].to_numpy() if "seed" in rows.columns else None,
        confidence=confidence,
        n_resamples=n_resamples,
        seed=seed,
        min_clusters=min_clusters,
    )


def paired_difference(
    rows: pd.DataFrame, other: pd.DataFrame, column: str, other_unit: Unit = "conversion"
) -> pd.DataFrame:
    """Per-row ``rows[column] - other[column]`` for the same item; rows without a partner are dropped.

    ``rows`` are conversions (``source, target, utt_id`` and optionally ``seed``); ``other`` is keyed by
    ``other_unit`` (a baseline's unit, or ``conversion`` for another experiment, when ``seed`` is matched
    too if both tables have it). Returns ``rows``' key columns plus ``diff``.
    """
    left = with_pair(rows) if other_unit == "unordered_pair" else rows
    right = distinct_items(other, other_unit)
    key = item_key(other_unit, right.columns if "seed" in left.columns else ())
    seed = ["seed"] if "seed" in left.columns else []
    keep = list(dict.fromkeys([*key, "source", "target", "utt_id", *seed, column]))
    merged = left[keep].merge(right[[*key, column]], on=key, how="inner", suffixes=("", "_other"))
    merged["diff"] = merged[column] - merged[f"{column}_other"]
    return merged[["source", "target", "utt_id", *seed, "diff"]].reset_index(drop=True)


def seed_spread(rows: pd.DataFrame, column: str) -> dict[str, float | int]:
    """Between-seed spread of the mean of ``column``: per-seed means, their SD (ddof 1), min and max."""
    if "seed" not in rows.columns:
        means = pd.Series([rows[column].mean()])
    else:
        means = rows.groupby("seed", sort=True)[column].mean()
    return {
        "seeds": len(means),
        "sd": float(means.std(ddof=1)) if len(means) > 1 else math.nan,
        "min": float(means.min()),
        "max": float(means.max()),
        "per_seed": {str(k): float(v) for k, v in means.items()},
    }


def verdict(diff: Estimate, *, lower_is_better: bool = True, unit: str = "dB", digits: int = 2) -> str:
    """Words for a paired difference ``a - b``: "better by 0.80 dB [0.50, 1.10]", "worse by ...",
    "no detectable difference (+0.10 dB [-0.20, 0.40])" or "+0.10 dB; too few sentences for an interval"."""
    f = f"{{:.{digits}f}}"
    unit = f" {unit}" if unit else ""
    if diff.n == 0:
        return "no paired items"
    if not diff.has_interval:
        return f"{diff.mean:+.{digits}f}{unit}; too few sentences ({diff.sentences}) for an interval"
    if diff.high < 0 or diff.low > 0:
        better = (diff.high < 0) == lower_is_better
        mag, lo, hi = abs(diff.mean), min(abs(diff.low), abs(diff.high)), max(abs(diff.low), abs(diff.high))
        word = "better" if better else "worse"
        return f"{word} by {f.format(mag)}{unit} [{f.format(lo)}, {f.format(hi)}]"
    interval = f"[{f.format(diff.low)}, {f.format(diff.high)}]"
    return f"no detectable difference ({diff.mean:+.{digits}f}{unit} {interval})"
