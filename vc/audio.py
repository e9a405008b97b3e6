"""Waveform preparation: mono, resampling, silence trimming, peak normalisation.

Every function takes and returns float64 arrays of shape ``(N,)`` (``(N, C)`` before :func:`to_mono`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np
import soxr

from vc.config import AudioConfig
from vc.errors import InputError

__all__ = ["PreparedAudio", "SilentAudioError", "peak_dbfs", "prepare", "resample", "to_mono", "trim_silence"]

log = logging.getLogger(__name__)


class SilentAudioError(InputError):
    """The audio holds no signal above the silence threshold."""


@dataclass
class PreparedAudio:
    wav: np.ndarray  # (N,) float64 at the target rate
    sample_rate: int
    notes: list[str] = field(default_factory=list)  # what preparation did that a user should know

    @property
    def duration(self) -> float:
        return len(self.wav) / self.sample_rate


def to_mono(wav: np.ndarray) -> tuple[np.ndarray, bool]:
    """Average the channels of ``(N, C)`` audio; returns ``(wav (N,), was_multichannel)``."""
    if wav.ndim == 1:
        return wav, False
    if wav.shape[1] == 1:
        return wav[:, 0], False
    return wav.mean(axis=1), True


def resample(wav: np.ndarray, orig_sr: int, target_sr: int) -> np.ndarray:
    """Band-limited resampling with libsoxr at its very-high-quality setting. ``(N,) -> (M,)``."""
    if orig_sr == target_sr:
        return wav
    return soxr.resample(wav, orig_sr, target_sr, quality="VHQ")


def peak_dbfs(wav: np.ndarray) -> float:
    peak = float(np.max(np.abs(wav))) if wav.size else 0.0
    return 20 * np.log10(peak) if peak > 0 else -np.inf


def trim_silence(wav: np.ndarray, sample_rate: int, top_db: float) -> np.ndarray:
    """Cut leading and trailing audio whose 25 ms-frame RMS is more than ``top_db`` below the loudest frame.

    A 10 ms hop; the kept region is extended by one frame on each side so that onsets are not clipped.
    """
    frame = max(1, int(0.025 * sample_rate))
    hop = max(1, int(0.010 * sample_rate))
    if len(wav) <= frame:
        return wav
    n_frames = 1 + (len(wav) - frame) // hop
    idx = np.arange(frame)[None, :] + hop * np.arange(n_frames)[:, None]
    rms = np.sqrt(np.mean(wav[idx] ** 2, axis=1))
    db = 20 * np.log10(np.maximum(rms, 1e-10))
    loud = np.flatnonzero(db > db.max() - top_db)
    start = max(0, (loud[0] - 1) * hop)
    end = min(len(wav), (loud[-1] + 1) * hop + frame)
    return wav[start:end]


def prepare(wav: np.ndarray, sample_rate: int, cfg: AudioConfig, *, name: str = "audio") -> PreparedAudio:
    """Mono (downmixed with a note), resampled to ``cfg.sample_rate``, trimmed, optionally peak-normalised.

    Raises :class:`SilentAudioError` (message names ``name``) when the file is all silence.
    """
    notes: list[str] = []
    wav, downmixed = to_mono(np.asarray(wav, dtype=np.float64))
    if downmixed:
        notes.append("multichannel audio downmixed to mono")
        log.warning("%s: multichannel audio downmixed to mono", name)
    level = peak_dbfs(wav)
    if level < cfg.silence_dbfs:
        raise SilentAudioError(
            f"{name}: all silent (peak {level:.1f} dBFS is below data.silence_dbfs = {cfg.silence_dbfs} dBFS)"
        )
    if sample_rate != cfg.sample_rate:
        wav = resample(wav, sample_rate, cfg.sample_rate)
        notes.append(f"resampled {sample_rate} -> {cfg.sample_rate} Hz")
    if cfg.trim_top_db is not None:
        wav = trim_silence(wav, cfg.sample_rate, cfg.trim_top_db)
    if cfg.peak_normalize is not None:
        wav = wav * (cfg.peak_normalize / np.max(np.abs(wav)))
    return PreparedAudio(wav=wav, sample_rate=cfg.sample_rate, notes=notes)
