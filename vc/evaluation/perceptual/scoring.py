"""The perceptual groups run on many wavs: each wav read once, scored by every group that runs.

Every model runs on CPU with one thread per process, loaded once per process; ``workers`` processes share the
wavs. Nothing touches the network (:func:`vc.evaluation.perceptual.offline.enable_offline`). Bad audio
(empty, unreadable, silent, too short) gives NaN raw values and the reason in ``perceptual_note``.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from vc import cost
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


_LOADED: set[str] = set()  # the groups whose models this process has loaded (their first call)


def score_wav(job: WavJob) -> dict[str, Any]:
    """``{group: raw values, ..., "perceptual_note": str, "seconds": {what: s}}`` of one wav.

    ``seconds`` is the cost of reading the file and of each group; a group's first call in a process is
    counted apart (``<group> (load)``): it loads the model.
    """
    start = time.perf_counter()
    try:
        wav, sr = read_audio(job.path)
    except AudioReadError as err:
        return {"perceptual_note": str(err), "seconds": {}}
    enable_offline()
    _one_thread()
    seconds = {"read": time.perf_counter() - start}
    out: dict[str, Any] = {}
    notes = []
    for name in job.groups:
        start = time.perf_counter()
        out[name], note = GROUPS[name].score_wav(wav, sr, job.reference_text, job.cfg)
        seconds[name if name in _LOADED else f"{name} (load)"] = time.perf_counter() - start
        _LOADED.add(name)
        notes.append((name, note))
    out["perceptual_note"] = join_notes(notes)
    out["seconds"] = seconds
    return out


def score_wavs(jobs: Sequence[WavJob], workers: int, desc: str) -> dict[str, dict[str, Any]]:
    """:func:`score_wav` of every job (each path once) in ``workers`` processes, by path."""
    with cost.phase("perceptual", count=len(jobs), unit="utterance"):
        results = parallel_map(score_wav, list(jobs), workers=workers, desc=desc)
    for result in results:
        for what, seconds in result.pop("seconds").items():
            cost.work(f"perceptual/{what}", seconds, 0 if what.endswith("(load)") else 1, "utterance")
    return dict(zip([j.path for j in jobs], results, strict=True))
