"""File output that never leaves a half-written file behind, and audio I/O with clear errors.

Every writer here writes to a temporary name in the destination folder and renames it into place
(``os.replace`` is atomic on POSIX within one file system), so an interrupted stage leaves either the old
file or the new one, never a truncated one.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

from vc.errors import InputError

__all__ = [
    "AudioReadError",
    "atomic_dir",
    "atomic_path",
    "read_audio",
    "save_npz",
    "write_json",
    "write_text",
    "write_wav",
]


class AudioReadError(InputError):
    """An audio file is missing, unreadable, corrupt or empty. The message names the file."""


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success rename it to ``path``, on error delete it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp" + path.suffix, dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.replace(tmp_path, path)
    finally:
        tmp_path.unlink(missing_ok=True)


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary folder beside ``path``; on success it replaces ``path`` as a whole."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    try:
        yield tmp
        if path.exists():
            old = path.with_name(f".{path.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            os.replace(path, old)
            os.replace(tmp, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def write_text(path: str | os.PathLike[str], text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_json(path: str | os.PathLike[str], data: Any) -> None:
    write_text(path, json.dumps(data, indent=2, sort_keys=False, default=_json_default) + "\n")


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def save_npz(path: str | os.PathLike[str], **arrays: Any) -> None:
    """``np.savez`` written atomically (``path`` should end in .npz)."""
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.savez(f, **arrays)


def write_wav(path: str | os.PathLike[str], wav: np.ndarray, sample_rate: int) -> None:
    """Write a float waveform in [-1, 1] as 16-bit PCM WAV, atomically. Shape ``(N,)``."""
    wav = np.asarray(wav, dtype=np.float64)
    peak = float(np.max(np.abs(wav))) if wav.size else 0.0
    if peak > 1.0:  # WORLD synthesis can overshoot slightly; clipping would distort, so rescale
        wav = wav / peak * 0.99
    with atomic_path(path) as tmp:
        sf.write(tmp, wav, sample_rate, subtype="PCM_16", format="WAV")


def read_audio(path: str | os.PathLike[str]) -> tuple[np.ndarray, int]:
    """Read an audio file as float64 ``(N,)`` (mono) or ``(N, C)`` and its sample rate.

    Raises :class:`AudioReadError` naming the file when it is missing, unreadable, corrupt or empty.
    """
    path = Path(path)
    if not path.is_file():
        raise AudioReadError(f"{path}: no such audio file")
    try:
        wav, sr = sf.read(path, dtype="float64", always_2d=False)
    except (sf.LibsndfileError, RuntimeError, ValueError) as err:
        raise AudioReadError(f"{path}: unreadable or corrupt audio ({err})") from None
    if wav.size == 0:
        raise AudioReadError(f"{path}: empty audio (0 samples)")
    if not np.all(np.isfinite(wav)):
        raise AudioReadError(f"{path}: audio contains NaN or infinite samples")
    return wav, int(sr)
