"""The artefact tree below the folders that ``dvc.yaml`` passes to the stages, known here only.

``dvc.yaml`` names the top folders (``models``, ``converted/experiments``, ``eval/experiments``,
``eval/references``, ...); inside each, one training run's files live in ``<experiment>/seed-<seed>/``, and
the references stage's perceptual material in ``perceptual/``.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["perceptual_dir", "run_dir"]


def run_dir(base: str | Path, experiment: str, seed: int) -> Path:
    """Where one training run's files live under ``base``: ``<base>/<experiment>/seed-<seed>``."""
    return Path(base) / experiment / f"seed-{seed}"


def perceptual_dir(references: str | Path) -> Path:
    """The perceptual reference material inside the references stage's output."""
    return Path(references) / "perceptual"
