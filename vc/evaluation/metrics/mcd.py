"""Mel-cepstral distortion (MCD) in dB between converted and target speech, aligned by DTW."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from vc.evaluation.metrics.dtw import dtw_path

__all__ = ["MCD_CONST", "MCDResult", "mcd", "mcd_frames"]

#: 10 / ln(10) * sqrt(2): converts the Euclidean mel-cepstral distance to dB (Kubichek 1993).
MCD_CONST: float = 10.0 / math.log(10.0) * math.sqrt(2.0)


@dataclass(frozen=True)
class MCDResult:
    """Outcome of :func:`mcd`.

    Attributes:
        mcd_db: MCD in dB averaged over the aligned frame pairs.
        path: ``(ix, iy)`` int64 arrays of length ``frames``: indices into the ORIGINAL (unmasked) converted
            and target frame arrays, so the same alignment can be reused for F0 metrics.
        frames: number of aligned frame pairs (path length).
    """

    mcd_db: float
    path: tuple[np.ndarray, np.ndarray]
    frames: int


def mcd_frames(c_a: np.ndarray, c_b: np.ndarray) -> np.ndarray:
    """Per-frame MCD in dB between two aligned mel-cepstrum sequences.

    ``10 / ln(10) * sqrt(2 * sum_d (a_d - b_d) ** 2)`` for every frame.

    Args:
        c_a: mel-cepstra, shape ``(T, D)``, already WITHOUT c0 (unless the caller wants c0 counted).
        c_b: mel-cepstra aligned frame by frame with ``c_a``, shape ``(T, D)``.

    Returns:
        Per-frame distortion in dB, shape ``(T,)``.

    Raises:
        ValueError: when the shapes differ or the inputs are not 2-D.
    """
    c_a = np.asarray(c_a, dtype=np.float64)
    c_b = np.asarray(c_b, dtype=np.float64)
    if c_a.ndim != 2 or c_a.shape != c_b.shape:
        raise ValueError(f"expected two (T, D) arrays of equal shape, got {c_a.shape} and {c_b.shape}")
    return MCD_CONST * np.sqrt(np.sum((c_a - c_b) ** 2, axis=1))


def _select_frames(name: str, mcep: np.ndarray, mask: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """Return the kept frames of ``mcep`` (T, D+1) and their original indices (T',)."""
    if mask is None:
        return mcep, np.arange(mcep.shape[0])
    mask = np.asarray(mask)
    if mask.dtype != np.bool_ or mask.shape != (mcep.shape[0],):
        raise ValueError(
            f"{name}_mask must be a boolean array of shape ({mcep.shape[0]},), "
            f"got dtype {mask.dtype} and shape {mask.shape}"
        )
    index = np.flatnonzero(mask)
    return mcep[index], index


def mcd(
    converted: np.ndarray,
    target: np.ndarray,
    *,
    include_c0: bool = False,
    converted_mask: np.ndarray | None = None,
    target_mask: np.ndarray | None = None,
) -> MCDResult:
    """MCD in dB between converted and target speech, after DTW alignment.

    Frames outside the masks (the silent frames, chosen by the caller) are dropped first. The alignment is
    always computed on c1..cD, so a loudness difference never moves the path; the distance counts c0 only when
    ``include_c0`` is true.

    Args:
        converted: mel-cepstra of the converted utterance, shape ``(Tc, D + 1)``, c0 in column 0.
        target: mel-cepstra of the target utterance, shape ``(Tt, D + 1)``, c0 in column 0.
        include_c0: also count the c0 (energy) difference in the distance.
        converted_mask: optional boolean ``(Tc,)``; True marks frames to keep.
        target_mask: optional boolean ``(Tt,)``; True marks frames to keep.

    Returns:
        :class:`MCDResult` with the mean distortion, the path in original frame indices, and its length.

    Raises:
        ValueError: when an input is not 2-D, the dims differ, there is no coefficient besides c0, a mask has
            the wrong shape or dtype, or a side has no frames left after masking.
    """
    converted = np.asarray(converted, dtype=np.float64)
    target = np.asarray(target, dtype=np.float64)
    for name, a in (("converted", converted), ("target", target)):
        if a.ndim != 2:
            raise ValueError(f"{name} must be a 2-D (T, D+1) mel-cepstrum array, got shape {a.shape}")
    if converted.shape[1] != target.shape[1]:
        raise ValueError(
            f"mel-cepstrum dims differ: converted has {converted.shape[1]} coefficients, "
            f"target has {target.shape[1]}"
        )
    if converted.shape[1] < 2:
        raise ValueError(f"need c0 plus at least one coefficient, got {converted.shape[1]} column(s)")

    conv_kept, conv_index = _select_frames("converted", converted, converted_mask)
    tgt_kept, tgt_index = _select_frames("target", target, target_mask)
    for name, kept in (("converted", conv_kept), ("target", tgt_kept)):
        if kept.shape[0] == 0:
            raise ValueError(f"{name} has no frames left after masking (all silent, or empty input)")

    ix, iy = dtw_path(conv_kept[:, 1:], tgt_kept[:, 1:])
    first = 0 if include_c0 else 1
    distortion = mcd_frames(conv_kept[ix, first:], tgt_kept[iy, first:])
    return MCDResult(
        mcd_db=float(distortion.mean()),
        path=(conv_index[ix], tgt_index[iy]),
        frames=int(ix.shape[0]),
    )
