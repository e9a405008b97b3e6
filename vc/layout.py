"""The artefact tree below the folders that ``dvc.yaml`` passes to the stages, known here only.

``dvc.yaml`` names the top folders (``models``, ``converted/experiments``, ``eval/experiments``,
``eval/references``, ...); inside each, one training run's files live in ``<experiment>/seed-<seed>/``, and
the references stage's perceptual material in ``perceptual/``.

Above them is the workspace itself, which DVC copies into ``.dvc/tmp/exps/`` to run an experiment there
(``dvc exp run --temp``, the queue): :func:`workspace_of` finds the workspace that outlives such a copy.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["EXPERIMENT_COPIES", "perceptual_dir", "run_dir", "workspace_of"]

#: The folder, inside a workspace, of the copies that DVC runs experiments in.
EXPERIMENT_COPIES = (".dvc", "tmp", "exps")


def run_dir(base: str | Path, experiment: str, seed: int) -> Path:
    """Where one training run's files live under ``base``: ``<base>/<experiment>/seed-<seed>``."""
    return Path(base) / experiment / f"seed-{seed}"


def perceptual_dir(references: str | Path) -> Path:
    """The perceptual reference material inside the references stage's output."""
    return Path(references) / "perceptual"


def workspace_of(path: str | Path) -> tuple[Path, bool]:
    """The workspace that ``path`` (resolved) lies in, and whether it lies in one of DVC's experiment
    copies of it (``<workspace>/.dvc/tmp/exps/...``): ``(workspace, True)``; else ``(path, False)``."""
    path = Path(path).resolve()
    parts, n = path.parts, len(EXPERIMENT_COPIES)
    for i in range(len(parts) - n + 1):
        if parts[i : i + n] == EXPERIMENT_COPIES:
            return Path(*parts[:i]), True
    return path, False
