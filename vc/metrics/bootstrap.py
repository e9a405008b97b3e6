"""Percentile bootstrap confidence interval of a mean (per-utterance metric values -> error bars)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["CI", "bootstrap_ci"]


@dataclass(frozen=True)
class CI:
    """A mean with its bootstrap confidence interval.

    Attributes:
        mean: mean of the (non-NaN) values.
        low: lower bound of the interval.
        high: upper bound of the interval.
        n: number of values used (NaN values excluded).
    """

    mean: float
    low: float
    high: float
    n: int


def bootstrap_ci(
    values: Sequence[float] | np.ndarray,
    *,
    confidence: float = 0.95,
    n_resamples: int = 1000,
    seed: int = 0,
) -> CI:
    """Percentile bootstrap confidence interval of the mean.

    NaN values (e.g. utterances without voiced frames) are dropped first. Resamples of size n are drawn with
    replacement by ``numpy.random.default_rng(seed)``, so the result is deterministic for a seed; the bounds
    are the ``(1 - confidence) / 2`` and ``(1 + confidence) / 2`` quantiles of the resampled means.

    Args:
        values: per-item metric values, shape ``(N,)``.
        confidence: coverage of the interval, in (0, 1).
        n_resamples: number of bootstrap resamples, at least 1.
        seed: seed of the numpy Generator.

    Returns:
        :class:`CI`. With one value ``low == high == mean``; with none, all fields NaN and ``n == 0``.

    Raises:
        ValueError: when ``values`` is not 1-D, ``confidence`` is outside (0, 1) or ``n_resamples < 1``.
    """
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    if n_resamples < 1:
        raise ValueError(f"n_resamples must be at least 1, got {n_resamples}")
    x = np.asarray(values, dtype=np.float64)
    if x.ndim != 1:
        raise ValueError(f"values must be 1-D, got shape {x.shape}")
    x = x[~np.isnan(x)]
    n = int(x.shape[0])
    if n == 0:
        return CI(mean=math.nan, low=math.nan, high=math.nan, n=0)
    mean = float(x.mean())
    if n == 1:
        return CI(mean=mean, low=mean, high=mean, n=1)
    rng = np.random.default_rng(seed)
    means = x[rng.integers(0, n, size=(n_resamples, n))].mean(axis=1)
    alpha = (1.0 - confidence) / 2.0
    low, high = np.quantile(means, [alpha, 1.0 - alpha])
    return CI(mean=mean, low=float(low), high=float(high), n=n)
