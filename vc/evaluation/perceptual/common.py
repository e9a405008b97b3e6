"""What the perceptual metrics share: input checks that turn bad audio into a note, resampling, provenance.

A converted file can be empty, silent, NaN or too short; a metric then returns NaN and a note saying why,
never an exception, so one bad conversion cannot stop an evaluation. Problems of setup (a missing optional
package, a model path that does not exist) are errors that name what is missing.
"""

from __future__ import annotations

import functools
import hashlib
import importlib
import importlib.metadata
import os
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import soxr

__all__ = [
    "MODEL_SAMPLE_RATE",
    "MissingExtraError",
    "file_sha256",
    "nan_scores",
    "package_version",
    "prepare_audio",
    "require",
]

#: All three models take 16 kHz mono (resemblyzer's encoder, Whisper, DNSMOS).
MODEL_SAMPLE_RATE: int = 16000
#: A waveform whose peak is below this level (dBFS) counts as silent (as ``data.silence_dbfs``).
DEFAULT_SILENCE_DBFS: float = -60.0


class MissingExtraError(ImportError):
    """An optional package of the ``metrics`` extra is not installed. The message names it."""


def require(module: str, package: str | None = None) -> ModuleType:
    """Import ``module`` or raise :class:`MissingExtraError` naming the PyPI ``package`` that provides it."""
    try:
        return importlib.import_module(module)
    except ImportError as err:
        raise MissingExtraError(
            f"{module} is not installed (PyPI package {package or module}); "
            f"install the optional extra: pip install 'vc[metrics]' ({err})"
        ) from None


def package_version(package: str) -> str:
    """Installed version of a distribution, or ``"unknown"``."""
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


@functools.lru_cache(maxsize=16)
def file_sha256(path: str | os.PathLike[str]) -> str:
    """SHA-256 of a model file, for the provenance logged beside the numbers (cached per process)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def check_model_path(path: str | os.PathLike[str], what: str) -> Path:
    """``path`` as a :class:`Path`, or :class:`FileNotFoundError` naming it and the model it should hold."""
    path = Path(path).expanduser()
    if not path.exists():
        raise FileNotFoundError(f"{what}: {path} does not exist")
    return path


def nan_scores(keys: tuple[str, ...], note: str, **extra: Any) -> dict[str, Any]:
    """``{key: nan for key in keys}`` plus ``note`` (and any ``extra`` fields)."""
    return {**dict.fromkeys(keys, float("nan")), **extra, "note": note}


def prepare_audio(
    wav: np.ndarray,
    sample_rate: int,
    *,
    min_seconds: float = 0.0,
    silence_dbfs: float = DEFAULT_SILENCE_DBFS,
    target_rate: int = MODEL_SAMPLE_RATE,
) -> tuple[np.ndarray | None, str]:
    """Check a waveform and resample it to ``target_rate``; bad input gives ``(None, note)``.

    Args:
        wav: samples in [-1, 1], shape ``(N,)``, or ``(N, C)`` (channels are averaged).
        sample_rate: rate of ``wav`` in Hz.
        min_seconds: shorter input is rejected as too short.
        silence_dbfs: input whose peak is below this level is rejected as silent.
        target_rate: output rate (soxr, high quality).

    Returns:
        ``(wav16, "")`` with ``wav16`` float32 ``(M,)`` clipped to [-1, 1], or ``(None, note)`` when the input
        is empty, not finite, silent or too short.

    Raises:
        ValueError: for a non-positive sample rate or an array of more than two dimensions (caller errors,
            not bad audio).
    """
    if sample_rate <= 0:
        raise ValueError(f"sample_rate must be positive, got {sample_rate}")
    wav = np.asarray(wav, dtype=np.float64)
    if wav.ndim == 2:
        wav = wav.mean(axis=1)
    elif wav.ndim != 1:
        raise ValueError(f"expected a (N,) or (N, C) waveform, got shape {wav.shape}")
    if wav.size == 0:
        return None, "empty audio (0 samples)"
    if not np.all(np.isfinite(wav)):
        return None, "audio contains NaN or infinite samples"
    seconds = wav.size / sample_rate
    if seconds < min_seconds:
        return None, f"too short: {seconds:.3f} s < {min_seconds:g} s"
    peak = float(np.max(np.abs(wav)))
    if peak == 0.0 or 20.0 * np.log10(peak) < silence_dbfs:
        return None, f"silent: peak below {silence_dbfs:g} dBFS"
    if sample_rate != target_rate:
        wav = soxr.resample(wav, sample_rate, target_rate)
    return np.clip(wav, -1.0, 1.0).astype(np.float32), ""
