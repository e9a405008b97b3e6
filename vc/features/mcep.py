"""Mel-cepstrum from a power envelope and back, one matrix product per utterance.

pysptk's :func:`pysptk.sp2mc` and :func:`pysptk.mc2sp` transform one frame at a time through Python (and
``mc2sp`` loops over the cepstrum of each frame in Python too): for a 2.7 s utterance at 22.05 kHz (521
frames, 513 bins, order 34) they took 0.066 s and 0.109 s on one core, more than CheapTrick's 0.034 s. Both
are linear maps in the log domain:

- ``sp2mc``: ``log sp`` -> real cepstrum (inverse FFT, ``c0`` halved) -> frequency warping (``freqt``,
  all-pass constant ``alpha``) -> ``c0..cM``;
- ``mc2sp``: ``c0..cM`` -> warping back (``freqt``, ``-alpha``, to ``fftlen / 2`` coefficients, ``c0``
  doubled) -> FFT of the even cepstrum -> ``log sp``.

So each is a fixed matrix for a given size, order and ``alpha``. The matrices are built once per process by
running pysptk's own functions on unit vectors (``exp(I)`` for ``sp2mc``, ``I`` for ``mc2sp``): the
transform is pysptk's by construction, and the results agree with it to floating-point rounding (about 1e-14;
``tests/test_features.py`` checks both directions). 0.003 s and 0.0025 s for that utterance.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import pysptk

__all__ = ["mc2sp", "mcep_alpha", "sp2mc"]


def mcep_alpha(alpha: float | None, sample_rate: int) -> float:
    """The all-pass constant of the frequency warping: ``alpha`` where set (``features.mcep_alpha``), else
    :func:`pysptk.util.mcepalpha` of the sample rate (0.455 at 22,050 Hz, 0.41 at 16 kHz: the mel scale)."""
    return alpha if alpha is not None else pysptk.util.mcepalpha(sample_rate)


@lru_cache(maxsize=8)
def _sp2mc_matrix(bins: int, order: int, alpha: float) -> np.ndarray:
    """``(bins, order + 1)``: row ``k`` is pysptk's mel-cepstrum of the envelope ``exp(e_k)``."""
    matrix = pysptk.sp2mc(np.exp(np.eye(bins)), order=order, alpha=alpha)
    matrix.setflags(write=False)
    return matrix


@lru_cache(maxsize=8)
def _mc2sp_matrix(order: int, alpha: float, fftlen: int) -> np.ndarray:
    """``(order + 1, fftlen // 2 + 1)``: row ``k`` is the log of pysptk's envelope of unit vector ``c_k``."""
    matrix = np.log(pysptk.mc2sp(np.eye(order + 1), alpha=alpha, fftlen=fftlen))
    matrix.setflags(write=False)
    return matrix


def sp2mc(powerspec: np.ndarray, order: int, alpha: float) -> np.ndarray:
    """Power envelope ``(T, fftlen // 2 + 1)`` (or one frame) -> mel-cepstrum ``(T, order + 1)`` (float64),
    as :func:`pysptk.sp2mc`."""
    powerspec = np.asarray(powerspec, dtype=np.float64)
    return np.log(powerspec) @ _sp2mc_matrix(powerspec.shape[-1], int(order), float(alpha))


def mc2sp(mc: np.ndarray, alpha: float, fftlen: int) -> np.ndarray:
    """Mel-cepstrum ``(T, order + 1)`` (or one frame) -> power envelope ``(T, fftlen // 2 + 1)`` (float64),
    as :func:`pysptk.mc2sp`."""
    mc = np.asarray(mc, dtype=np.float64)
    return np.exp(mc @ _mc2sp_matrix(mc.shape[-1] - 1, float(alpha), int(fftlen)))
