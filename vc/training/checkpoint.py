"""Training checkpoints: complete, self-describing, written atomically, loaded with ``weights_only=True``.

A checkpoint holds the models, optimizers and schedulers, the step, the RNG states, the resolved experiment
config with a fingerprint of what training depends on, the loss history and the package version. Files are
``step-00001000.pt``; the newest ``keep`` are kept.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

import torch

from vc.io import atomic_path

__all__ = ["latest_checkpoint", "load_checkpoint", "save_checkpoint"]

log = logging.getLogger(__name__)
_NAME = re.compile(r"^step-(\d{8})\.pt$")


def _checkpoints(folder: Path) -> list[tuple[int, Path]]:
    if not folder.is_dir():
        return []
    found = [(int(m[1]), p) for p in folder.iterdir() if (m := _NAME.match(p.name))]
    return sorted(found)


def latest_checkpoint(folder: str | Path) -> Path | None:
    """The checkpoint with the highest step in ``folder``, or None."""
    found = _checkpoints(Path(folder))
    return found[-1][1] if found else None


def save_checkpoint(folder: str | Path, step: int, payload: dict[str, Any], keep: int = 2) -> Path:
    """Write ``payload`` as ``folder/step-XXXXXXXX.pt`` atomically; delete all but the newest ``keep``."""
    folder = Path(folder)
    path = folder / f"step-{step:08d}.pt"
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)
    for _, old in _checkpoints(folder)[:-keep]:
        old.unlink(missing_ok=True)
    log.debug("checkpoint %s", path)
    return path


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a checkpoint with ``weights_only=True`` (no arbitrary code runs from the file)."""
    return torch.load(path, map_location=map_location, weights_only=True)
