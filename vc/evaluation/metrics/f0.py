"""F0 accuracy metrics over a DTW alignment: log-F0 RMSE, F0 correlation and voicing error."""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np

__all__ = ["CENTS_PER_NEPER", "F0Result", "f0_metrics"]

#: 1200 / ln(2): converts a difference of natural-log F0 to cents.
CENTS_PER_NEPER: float = 1200.0 / math.log(2.0)


@dataclass(frozen=True)
class F0Result:
    """Outcome of :func:`f0_metrics`.

    Attributes:
        log_f0_rmse: RMSE of natural-log F0 over frame pairs voiced in both; NaN if fewer than 2 such pairs.
        log_f0_rmse_cents: the same in cents (``1200 / ln 2 * log_f0_rmse``).
        f0_corr: Pearson correlation of F0 in linear Hz over frame pairs voiced in both; NaN if fewer than 2
            such pairs or if either side is constant over them.
        voiced_frames: number of aligned pairs voiced in both (the sample the two numbers above rest on).
        vuv_error: fraction of all aligned pairs whose voiced/unvoiced decisions differ.
        frames: number of aligned pairs (path length).
    """

    log_f0_rmse: float
    log_f0_rmse_cents: float
    f0_corr: float
    voiced_frames: int
    vuv_error: float
    frames: int


def _pearson(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson correlation; NaN when either side is constant (scipy warns there, and that is expected)."""
    from scipy import stats  # here: 0.35 s of import that the stages using only the MCD never need

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", stats.ConstantInputWarning)
        return float(stats.pearsonr(a, b).statistic)


def f0_metrics(
    f0_converted: np.ndarray, f0_target: np.ndarray, path: tuple[np.ndarray, np.ndarray]
) -> F0Result:
    """F0 metrics of a converted utterance against its target, over a given frame alignment.

    A frame is voiced when its F0 is > 0 (WORLD writes 0 for unvoiced frames; NaN also counts as unvoiced).
    The correlation is taken on linear Hz, not log F0, so that it matches the usual "F0 correlation" of VC
    papers; the log domain is covered by the RMSE.

    Args:
        f0_converted: F0 in Hz of the converted utterance, shape ``(Tc,)``.
        f0_target: F0 in Hz of the target utterance, shape ``(Tt,)``.
        path: ``(ix, iy)`` integer arrays of equal length ``L``, indices into ``f0_converted`` and
            ``f0_target`` (e.g. ``MCDResult.path``).

    Returns:
        :class:`F0Result`. Fewer than 2 pairs voiced in both give NaN RMSE and correlation (not an error);
        ``voiced_frames`` shows why.

    Raises:
        ValueError: when an F0 array is not 1-D, the path arrays differ in length or are empty, or an index is
            out of range.
    """
    f0_c = np.asarray(f0_converted, dtype=np.float64)
    f0_t = np.asarray(f0_target, dtype=np.float64)
    for name, a in (("f0_converted", f0_c), ("f0_target", f0_t)):
        if a.ndim != 1:
            raise ValueError(f"{name} must be 1-D (T,), got shape {a.shape}")
    ix = np.asarray(path[0])
    iy = np.asarray(path[1])
    if ix.ndim != 1 or ix.shape != iy.shape or ix.shape[0] == 0:
        raise ValueError(f"path must be two non-empty 1-D arrays of equal length, got {ix.shape}, {iy.shape}")
    if ix.min() < 0 or ix.max() >= f0_c.shape[0] or iy.min() < 0 or iy.max() >= f0_t.shape[0]:
        raise ValueError(
            f"path indexes outside the F0 arrays (lengths {f0_c.shape[0]} and {f0_t.shape[0]}); "
            "was it computed on the same frames?"
        )

    a = f0_c[ix]
    b = f0_t[iy]
    voiced_a = a > 0
    voiced_b = b > 0
    both = voiced_a & voiced_b
    n_voiced = int(both.sum())
    vuv_error = float(np.mean(voiced_a != voiced_b))

    if n_voiced < 2:
        rmse = corr = math.nan
    else:
        a_v = a[both]
        b_v = b[both]
        rmse = float(np.sqrt(np.mean((np.log(a_v) - np.log(b_v)) ** 2)))
        corr = _pearson(a_v, b_v)
    return F0Result(
        log_f0_rmse=rmse,
        log_f0_rmse_cents=CENTS_PER_NEPER * rmse,
        f0_corr=corr,
        voiced_frames=n_voiced,
        vuv_error=vuv_error,
        frames=int(ix.shape[0]),
    )
