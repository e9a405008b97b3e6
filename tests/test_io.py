"""Atomic writers: files and folders get the umask's mode (0644 under umask 022), never a half file."""

from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

from vc.io import atomic_dir, atomic_path, save_npz, write_json, write_text, write_wav

UMASKS = [0o022, 0o077]


@contextlib.contextmanager
def process_umask(mask: int) -> Iterator[None]:
    """Set the process umask for the block and restore it after."""
    previous = os.umask(mask)
    try:
        yield
    finally:
        os.umask(previous)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def file_mode(mask: int) -> int:
    return 0o666 & ~mask


def dir_mode(mask: int) -> int:
    return 0o777 & ~mask


def _write_bytes_atomically(path: Path) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(b"\x00\x01")


WRITERS: dict[str, Callable[[Path], None]] = {
    "write_text": lambda p: write_text(p, "text\n"),
    "write_json": lambda p: write_json(p, {"a": 1}),
    "write_wav": lambda p: write_wav(p, np.zeros(160), 16000),
    "save_npz": lambda p: save_npz(p, x=np.arange(3)),
    "atomic_path": _write_bytes_atomically,
}


def leftovers(folder: Path) -> list[str]:
    """Temporary entries the writers may have left in ``folder`` (hidden names)."""
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


@pytest.mark.parametrize("mask", UMASKS)
@pytest.mark.parametrize("writer", list(WRITERS))
def test_written_file_has_the_umask_mode(tmp_path: Path, writer: str, mask: int) -> None:
    path = tmp_path / "new" / f"out.{'wav' if writer == 'write_wav' else 'dat'}"
    with process_umask(mask):
        WRITERS[writer](path)
    assert mode(path) == file_mode(mask)
    assert mode(path.parent) == dir_mode(mask)  # a missing parent is made too
    assert leftovers(path.parent) == []


@pytest.mark.parametrize("mask", UMASKS)
def test_replacing_a_private_file_gives_the_umask_mode(tmp_path: Path, mask: int) -> None:
    path = tmp_path / "report.md"
    path.write_text("old")
    path.chmod(0o600)  # as the tempfile-based writers used to leave it
    with process_umask(mask):
        write_text(path, "new")
    assert path.read_text() == "new"
    assert mode(path) == file_mode(mask)


@pytest.mark.parametrize("mask", UMASKS)
def test_temporary_file_never_has_a_wider_mode(tmp_path: Path, mask: int) -> None:
    """The temporary file is created with its final mode (no chmod afterwards that could widen it first)."""
    path = tmp_path / "out.bin"
    with process_umask(mask), atomic_path(path) as tmp:
        assert mode(tmp) == file_mode(mask)
        with open(tmp, "wb") as f:
            f.write(b"x")
        assert mode(tmp) == file_mode(mask)
    assert mode(path) == file_mode(mask)


@pytest.mark.parametrize("mask", UMASKS)
def test_atomic_dir_and_its_contents_have_the_umask_mode(tmp_path: Path, mask: int) -> None:
    out = tmp_path / "converted"
    out.mkdir(mode=0o700)
    (out / "stale.wav").write_text("old")  # replaced as a whole
    with process_umask(mask), atomic_dir(out) as tmp:
        assert mode(tmp) == dir_mode(mask)
        write_wav(tmp / "a.wav", np.zeros(160), 16000)
        write_json(tmp / "summary.json", {"n": 1})
        (tmp / "figures").mkdir()
        (tmp / "figures" / "plot.txt").write_text("x")
        save_npz(tmp / "figures" / "arrays.npz", x=np.zeros(2))
    assert sorted(p.name for p in out.iterdir()) == ["a.wav", "figures", "summary.json"]
    assert mode(out) == dir_mode(mask)
    assert mode(out / "figures") == dir_mode(mask)
    for name in ("a.wav", "summary.json", "figures/plot.txt", "figures/arrays.npz"):
        assert mode(out / name) == file_mode(mask), name
    assert leftovers(tmp_path) == []


def test_writers_leave_the_process_umask_alone(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``os.umask`` is process-global: changing it, even briefly, races with other threads' writes."""
    with process_umask(0o022):
        with monkeypatch.context() as patch:
            patch.setattr(os, "umask", lambda _mask: pytest.fail("a writer called os.umask"))
            for name, writer in WRITERS.items():
                writer(tmp_path / f"{name}.out")
            with atomic_dir(tmp_path / "folder") as tmp:
                write_text(tmp / "inside.txt", "x")
        assert os.umask(0o022) == 0o022


class Boom(Exception):
    pass


def test_failure_inside_atomic_path_leaves_the_old_file_and_no_temporary(tmp_path: Path) -> None:
    path = tmp_path / "metrics.json"
    write_json(path, {"old": True})
    with pytest.raises(Boom), atomic_path(path) as tmp:
        tmp.write_text('{"half": ')
        raise Boom
    assert path.read_text() == '{\n  "old": true\n}\n'
    assert sorted(p.name for p in tmp_path.iterdir()) == ["metrics.json"]

    new = tmp_path / "new.wav"
    with pytest.raises(Boom), atomic_path(new) as tmp:
        raise Boom
    assert not new.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["metrics.json"]


def test_failure_inside_atomic_dir_leaves_the_old_folder_and_no_temporary(tmp_path: Path) -> None:
    out = tmp_path / "eval"
    with atomic_dir(out) as tmp:
        write_text(tmp / "summary.json", "old")
    with pytest.raises(Boom), atomic_dir(out) as tmp:
        (tmp / "sub").mkdir()
        write_text(tmp / "sub" / "half.json", "{")
        with atomic_path(tmp / "inner.wav") as inner:
            inner.write_bytes(b"RIFF")
            raise Boom
    assert sorted(p.name for p in tmp_path.iterdir()) == ["eval"]
    assert sorted(p.name for p in out.iterdir()) == ["summary.json"]
    assert (out / "summary.json").read_text() == "old"

    with pytest.raises(Boom), atomic_dir(tmp_path / "never") as tmp:
        write_text(tmp / "a.txt", "x")
        raise Boom
    assert sorted(p.name for p in tmp_path.iterdir()) == ["eval"]


def test_temporary_names_do_not_collide(tmp_path: Path) -> None:
    path = tmp_path / "out.txt"
    with atomic_path(path) as first, atomic_path(path) as second:
        assert first != second and first.parent == second.parent == tmp_path
        first.write_text("first")
        second.write_text("second")
    assert path.read_text() == "first"  # the outer block renames last
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize("mask", UMASKS)
def test_checkpoints_and_model_files_have_the_umask_mode(tmp_path: Path, mask: int) -> None:
    """torch.save into the atomic helpers: training checkpoints, the fine-tuned vocoder's weights and a model
    folder's weights (as :func:`vc.stargan.store.save_model` writes them)."""
    import torch

    from vc.training.checkpoint import load_checkpoint, save_checkpoint
    from vc.vocoders.store import FINETUNED_FILE, MANIFEST_FILE, save_finetuned

    with process_umask(mask):
        ckpt = save_checkpoint(tmp_path / "ckpt", 3, {"step": 3, "w": torch.ones(2)})
        save_finetuned(tmp_path / "vocoder", torch.nn.Linear(2, 2), {"generator": "v1"})
        with atomic_dir(tmp_path / "model") as tmp:
            torch.save(torch.nn.Linear(2, 2).state_dict(), tmp / "generator.pt")
    assert load_checkpoint(ckpt)["step"] == 3
    written = [ckpt, tmp_path / "vocoder" / FINETUNED_FILE, tmp_path / "vocoder" / MANIFEST_FILE]
    for path in [*written, tmp_path / "model" / "generator.pt"]:
        assert mode(path) == file_mode(mask), path
    assert mode(tmp_path / "ckpt") == mode(tmp_path / "model") == dir_mode(mask)
    assert leftovers(tmp_path / "ckpt") == [] and leftovers(tmp_path / "vocoder") == []
