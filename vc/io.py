"""File output that never leaves a half-written file behind, and audio I/O with clear errors.

Every writer here writes to a temporary name in the destination folder and renames it into place
(``os.replace`` is atomic on POSIX within one file system), so an interrupted stage leaves either the old
file or the new one, never a truncated one.

Files and folders get the mode an ordinary ``open`` or ``mkdir`` gives (0644 and 0755 under umask 022, 0600
and 0700 under 077): the temporary name is created with ``os.open(..., 0o666)`` or ``os.mkdir(..., 0o777)``,
which the kernel narrows by the umask as it creates it. :mod:`tempfile` would create them 0600 and 0700,
unreadable to other users. The mode is right from the first instant (no later ``chmod`` that could briefly
widen it) and the umask is never read or changed (``os.umask`` is process-global, racy with threads).
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
from collections.abc import Callable, Iterator
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

_ATTEMPTS = 100  # random temporary names tried before giving up (O_EXCL: never an existing entry)
_FILE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)


class AudioReadError(InputError):
    """An audio file is missing, unreadable, corrupt or empty. The message names the file."""


def _create_beside(path: Path, suffix: str, create: Callable[[Path], None]) -> Path:
    """Create a new, uniquely named entry ``.<name>.<random><suffix>`` beside ``path`` with ``create``
    (which must fail with :class:`FileExistsError` when the name is taken) and return its path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    for _ in range(_ATTEMPTS):
        candidate = path.with_name(f".{path.name}.{secrets.token_hex(4)}{suffix}")
        try:
            create(candidate)
        except FileExistsError:
            continue
        return candidate
    raise FileExistsError(f"{path.parent}: no free temporary name for {path.name}")


def _new_file(path: Path) -> None:
    """An empty file at ``path``, mode ``0o666`` narrowed by the umask at creation."""
    os.close(os.open(path, _FILE_FLAGS, 0o666))


def _new_dir(path: Path) -> None:
    """An empty folder at ``path``, mode ``0o777`` narrowed by the umask at creation."""
    os.mkdir(path, 0o777)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success rename it to ``path``, on error delete it.

    The temporary file already exists, empty, with the umask's mode; a writer that opens it for writing
    keeps that mode.
    """
    path = Path(path)
    tmp_path = _create_beside(path, ".tmp" + path.suffix, _new_file)
    try:
        yield tmp_path
        os.replace(tmp_path, path)
    finally:
        tmp_path.unlink(missing_ok=True)


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary folder beside ``path`` (with the umask's mode); on success it replaces ``path``
    as a whole, on error it is deleted with everything in it."""
    path = Path(path)
    tmp = _create_beside(path, ".tmp", _new_dir)
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
