"""Exact dynamic time warping between two frame sequences.

The accumulated cost follows the plain symmetric step pattern with steps (1, 1), (1, 0) and (0, 1), all of
weight 1 (Sakoe & Chiba's symmetric pattern without the doubled diagonal weight)::

    D[i, j] = C[i, j] + min(D[i-1, j-1], D[i-1, j], D[i, j-1]),   D[0, 0] = C[0, 0]

where ``C[i, j]`` is the Euclidean distance between frames ``x[i]`` and ``y[j]``. The full cost matrix is
computed (no band, no fastdtw-style approximation), so the path is a true optimum. The dynamic programme is
``librosa.sequence.dtw`` (a numba kernel); on ties it prefers the diagonal step.
"""

from __future__ import annotations

import librosa
import numpy as np
from scipy.spatial.distance import cdist

__all__ = ["dtw_path"]


def _check_frames(name: str, a: np.ndarray) -> np.ndarray:
    a = np.asarray(a, dtype=np.float64)
    if a.ndim != 2:
        raise ValueError(f"{name} must be a 2-D (T, D) frame array, got shape {a.shape}")
    if a.shape[0] == 0:
        raise ValueError(f"{name} has no frames (shape {a.shape})")
    if not np.all(np.isfinite(a)):
        raise ValueError(f"{name} contains NaN or infinite values")
    return a


def dtw_path(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Align two frame sequences with exact DTW.

    Args:
        x: frames of the first sequence, shape ``(Tx, D)``.
        y: frames of the second sequence, shape ``(Ty, D)``.

    Returns:
        ``(ix, iy)``: two int64 index arrays of equal length ``L`` (``max(Tx, Ty) <= L <= Tx + Ty - 1``),
        both non-decreasing, each step advancing one or both by exactly 1, starting at ``(0, 0)`` and ending
        at ``(Tx - 1, Ty - 1)``. Frame ``x[ix[k]]`` is aligned with ``y[iy[k]]``.

    Raises:
        ValueError: when an input is not 2-D, is empty, holds non-finite values, or the feature dims differ.
    """
    x = _check_frames("x", x)
    y = _check_frames("y", y)
    if x.shape[1] != y.shape[1]:
        raise ValueError(f"feature dims differ: x has D={x.shape[1]}, y has D={y.shape[1]}")
    cost = cdist(x, y, metric="euclidean")
    _, wp = librosa.sequence.dtw(C=cost, backtrack=True)
    # librosa returns the path from the end back to (0, 0).
    ix = np.ascontiguousarray(wp[::-1, 0], dtype=np.int64)
    iy = np.ascontiguousarray(wp[::-1, 1], dtype=np.int64)
    return ix, iy
