"""Waveform preparation: mono, resampling, silence trimming, peak normalisation, and the checks that refuse
a file with no speech to prepare: too short, all silent, or a steady tone.

Every function takes and returns float64 arrays of shape ``(N,)`` (``(N, C)`` before :func:`to_mono`).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field

import numpy as np
import soxr

from vc.config import AudioConfig
from vc.errors import InputError

__all__ = [
    "MIN_SECONDS",
    "MIN_SPECTRAL_CHANGE_DB",
    "PEAK_CEILING_DBFS",
    "Leveled",
    "NoSpeechError",
    "PreparedAudio",
    "ShortAudioError",
    "SilentAudioError",
    "UnusableAudioError",
    "active_level_dbfs",
    "match_level",
    "peak_dbfs",
    "prepare",
    "resample",
    "spectral_change_db",
    "to_mono",
    "trim_silence",
]

log = logging.getLogger(__name__)


#: The shortest audio preparation accepts, before and after trimming silence: about a syllable, and enough
#: analysis frames for :func:`spectral_change_db`.
MIN_SECONDS = 0.1
#: Speech changes its spectrum from sound to sound: every recording and eSpeak voice measured changes by
#: more than 9 dB (:func:`spectral_change_db`), noise by about 5.6 dB, a steady tone (square, sine or
#: sawtooth wave, hum) by less than 2 dB. Below this, a file holds no speech.
MIN_SPECTRAL_CHANGE_DB = 3.0


class UnusableAudioError(InputError):
    """Readable audio that holds no usable speech; the message names the file and the reason."""


class SilentAudioError(UnusableAudioError):
    """The audio holds no signal above the silence threshold."""


class ShortAudioError(UnusableAudioError):
    """The audio is shorter than :data:`MIN_SECONDS`."""


class NoSpeechError(UnusableAudioError):
    """The audio's spectrum never changes (a steady tone): a voice-activity check finds no speech in it."""


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


def spectral_change_db(wav: np.ndarray, sample_rate: int, range_db: float = 30.0) -> float:
    """How much the spectrum changes over time: the median over frames of the RMS difference (dB) between a
    frame's level-normalised power spectrum and the file's median spectrum.

    Frames of about 40 ms (a power of two) with half overlap; only frames within ``range_db`` of the loudest
    and frequency bins within ``range_db`` of the strongest take part, so pauses and empty bands do not
    count. Medians make a few odd frames (onsets, clicks) irrelevant. Speech measures 9 dB and more, white
    noise about 5.6 dB (the spread of a random spectrum), a steady periodic tone close to 0. Returns
    ``inf`` when ``wav`` is shorter than two frames (nothing to compare).
    """
    n = 1 << int(np.ceil(np.log2(0.04 * sample_rate)))
    hop = n // 2
    if len(wav) < n + hop:
        return float("inf")
    frames = np.lib.stride_tricks.sliding_window_view(wav, n)[::hop]
    power = np.abs(np.fft.rfft(frames * np.hanning(n), axis=1)) ** 2 + 1e-20
    level = 10 * np.log10(power.sum(axis=1))
    loud = level > level.max() - range_db
    shape = 10 * np.log10(power[loud]) - level[loud, None]  # each frame's spectrum, level removed
    typical = np.median(shape, axis=0)
    strong = typical > typical.max() - range_db
    change = np.sqrt(np.mean((shape[:, strong] - typical[strong]) ** 2, axis=1))
    return float(np.median(change))


def _check_length(wav: np.ndarray, sample_rate: int, name: str, when: str = "") -> None:
    if len(wav) < MIN_SECONDS * sample_rate:
        samples = f"{len(wav)} sample{'s' if len(wav) != 1 else ''}"
        ms = 1000 * len(wav) / sample_rate
        raise ShortAudioError(
            f"{name}: too short{when}: {samples} ({ms:.3g} ms at {sample_rate} Hz); "
            f"the minimum is {MIN_SECONDS} s"
        )


def _check_speech(wav: np.ndarray, sample_rate: int, name: str) -> None:
    change = spectral_change_db(wav, sample_rate)
    if change < MIN_SPECTRAL_CHANGE_DB:
        raise NoSpeechError(
            f"{name}: no speech found: the spectrum stays the same throughout, as in a steady tone "
            f"(it changes by {change:.1f} dB; speech by more than {MIN_SPECTRAL_CHANGE_DB} dB)"
        )


def prepare(wav: np.ndarray, sample_rate: int, cfg: AudioConfig, *, name: str = "audio") -> PreparedAudio:
    """Mono (downmixed with a note), resampled to ``cfg.sample_rate``, trimmed, optionally peak-normalised.

    Raises an :class:`UnusableAudioError` whose message names ``name`` when the file is shorter than
    :data:`MIN_SECONDS` (before or after trimming; :class:`ShortAudioError`), all silence
    (:class:`SilentAudioError`) or a steady tone with no speech (:class:`NoSpeechError`).
    """
    notes: list[str] = []
    wav, downmixed = to_mono(np.asarray(wav, dtype=np.float64))
    if downmixed:
        notes.append("multichannel audio downmixed to mono")
        log.warning("%s: multichannel audio downmixed to mono", name)
    _check_length(wav, sample_rate, name)
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
        _check_length(wav, cfg.sample_rate, name, " after trimming silence")
    _check_speech(wav, cfg.sample_rate, name)
    if cfg.peak_normalize is not None:
        wav = wav * (cfg.peak_normalize / np.max(np.abs(wav)))
    return PreparedAudio(wav=wav, sample_rate=cfg.sample_rate, notes=notes)


# Loudness matching for listening (the listening page and the listening test play copies; scored files are
# never touched). The active level is a simple stand-in for ITU-T P.56's active speech level: pauses do
# not make a clip louder.
FRAME_SECONDS = 0.02
ACTIVE_RANGE_DB = 40.0
PEAK_CEILING_DBFS = -1.0


@dataclass(frozen=True)
class Leveled:
    """A loudness-matched copy: the waveform, the gain applied, its active level and whether the peak
    ceiling lowered the gain below the one that reaches the target level."""

    wav: np.ndarray
    gain_db: float
    level_dbfs: float
    limited: bool


def active_level_dbfs(wav: np.ndarray, sample_rate: int) -> float:
    """The active level of ``(N,)`` audio in dB re full scale (1.0): the mean power of the 20 ms frames
    within 40 dB of the loudest frame. ``-inf`` for digital silence."""
    wav = np.asarray(wav, dtype=np.float64)
    n = max(1, round(FRAME_SECONDS * sample_rate))
    frames = len(wav) // n
    if frames == 0:
        power = np.array([np.mean(wav**2)]) if wav.size else np.zeros(1)
    else:
        power = np.mean(wav[: frames * n].reshape(frames, n) ** 2, axis=1)
    loudest = float(power.max())
    if loudest <= 0.0:
        return -math.inf
    active = power[power >= loudest * 10 ** (-ACTIVE_RANGE_DB / 10)]
    return 10 * math.log10(float(active.mean()))


def match_level(
    wav: np.ndarray, sample_rate: int, target_dbfs: float, ceiling_dbfs: float = PEAK_CEILING_DBFS
) -> Leveled:
    """Scale ``wav`` by one gain so that its :func:`active_level_dbfs` is ``target_dbfs``; where that would
    peak above ``ceiling_dbfs``, the gain that peaks exactly there instead (``limited``). Silence is kept."""
    level = active_level_dbfs(wav, sample_rate)
    if not math.isfinite(level):
        return Leveled(np.asarray(wav, dtype=np.float64), 0.0, level, False)
    gain_db = target_dbfs - level
    peak = float(np.max(np.abs(wav)))
    limited = 20 * math.log10(peak) + gain_db > ceiling_dbfs
    if limited:
        gain_db = ceiling_dbfs - 20 * math.log10(peak)
    return Leveled(
        np.asarray(wav, dtype=np.float64) * 10 ** (gain_db / 20), gain_db, level + gain_db, limited
    )
