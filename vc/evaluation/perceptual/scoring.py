"""The perceptual groups run on many wavs: each wav read once, scored by every group that runs.

Every model runs on CPU with one thread per process, loaded once per process; ``workers`` processes share the
wavs. Nothing touches the network (:func:`vc.evaluation.perceptual.offline.enable_offline`). Bad audio
(empty, unreadable, silent, too short) gives NaN raw values and the reason in ``perceptual_note``.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from vc.config import EvaluateConfig
from vc.evaluation.perceptual.base import join_notes
from vc.evaluation.perceptual.groups import GROUPS
from vc.evaluation.perceptual.offline import enable_offline
from vc.io import AudioReadError, read_audio
from vc.parallel import parallel_map

__all__ = ["WavJob", "score_wavs"]


@dataclass(frozen=True)
class WavJob:
    """One wav to score: its path, what CER/WER compare against (``""`` gives NaN), the groups to run."""

    path: str
    reference_text: str
    groups: tuple[str, ...]
    cfg: EvaluateConfig


@functools.cache
def _one_thread() -> None:
    """One intra-op thread for torch in this process: the evaluation's processes share the cores."""
    import torch

    torch.set_num_threads(1)


def score_wav(job: WavJob) -> dict[str, dict[str, Any] | str]:
    """``{group: raw values, ..., "perceptual_note": str}`` of one wav."""
    try:
        wav, sr = read_audio(job.path)
    except AudioReadError as err:
        return {"perceptual_note": str(err)}
    enable_offline()
    _one_thread()
    out: dict[str, dict[str, Any] | str] = {}
    notes = []
    for name in job.groups:
        out[name], note = GROUPS[name].score_wav(wav, sr, job.reference_text, job.cfg)
        notes.append((name, note))
    out["perceptual_note"] = join_notes(notes)
    return out


def score_wavs(jobs: Sequence[WavJob], workers: int, desc: str) -> dict[str, dict[str, Any]]:
    """:func:`score_wav` of every job (each path once) in ``workers`` processes, by path."""
    return dict(
        zip(
            [j.path for j in jobs],
            parallel_map(score_wav, list(jobs), workers=workers, desc=desc),
            strict=True,
        )
    )
