"""Array-level evaluation metrics: DTW alignment, MCD, F0 metrics, modulation spectrum distance.

These functions take arrays only; WORLD analysis of wav files happens elsewhere, and the statistics over
scored items (intervals, paired differences) are in :mod:`vc.statistics`.
"""

from vc.evaluation.metrics.dtw import dtw_path
from vc.evaluation.metrics.f0 import CENTS_PER_NEPER, F0Result, f0_metrics
from vc.evaluation.metrics.mcd import MCD_CONST, MCDResult, mcd, mcd_frames
from vc.evaluation.metrics.msd import modulation_spectrum, msd

__all__ = [
    "CENTS_PER_NEPER",
    "MCD_CONST",
    "F0Result",
    "MCDResult",
    "dtw_path",
    "f0_metrics",
    "mcd",
    "mcd_frames",
    "modulation_spectrum",
    "msd",
]
