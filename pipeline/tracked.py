"""A resumable training loop run inside its MLflow run: what the `train` and `vocoder` stages share.

:func:`run_resumable` is the whole flow of such a stage: relaunch under torchrun when
``VC_NPROC_PER_NODE`` asks for it, build the loop in every process, start the MLflow run on rank 0, resume
and fit (:func:`fit_tracked`), export the outputs, end the run FINISHED. The stage supplies a
:class:`TrackedJob`: its loop, its run and its export. :func:`fingerprint` is the one shape of the hash a
checkpoint must match to be resumed.

:func:`fit_tracked` resumes the loop from its checkpoints (copying the curve recorded before the interruption
into the new run), fits it, and ends the run KILLED (on SIGINT/SIGTERM: the process then exits with
128 + the signal number, as a killed process would) or FAILED.
"""

from __future__ import annotations

import hashlib
import json
import logging
import sys
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from pipeline.codedeps import ROOT, hash_code
from pipeline.common import relaunch_with_torchrun_if_asked, without_timings
from vc import cost
from vc.config import FinetuneConfig, TrainConfig
from vc.configlib import to_dict
from vc.tracking import RunTracker
from vc.training.distributed import DistContext
from vc.training.loop import LoopState, ResumableLoop, TrainingInterrupted

__all__ = [
    "Finished",
    "TrackedJob",
    "computed",
    "final_losses",
    "fingerprint",
    "fit_tracked",
    "run_resumable",
]

log = logging.getLogger("pipeline")


def computed(section: TrainConfig | FinetuneConfig) -> dict[str, Any]:
    """``section`` as data without its operational keys (``OPERATIONAL``): what a checkpoint depends on."""
    data = to_dict(section)
    for key in section.OPERATIONAL:
        data.pop(key)
    return data


def fingerprint(
    module: str, header: Mapping[str, Any], data: Iterable[bytes] = (), code_root: Path = ROOT
) -> str:
    """SHA-256 of what a resumable run computes from: ``header`` (its params, without the operational keys:
    :func:`computed`, and other facts, as JSON), the ``data`` bytes in order, and the code stage ``module``
    runs (every project module it imports: :func:`pipeline.codedeps.import_closure`, under ``code_root``).

    A checkpoint resumes only when its fingerprint equals the current one, so `dvc repro` after an
    interruption continues, and `dvc repro` after a change of params, data or code starts from step 0.
    """
    digest = hashlib.sha256(json.dumps(header, sort_keys=True).encode())
    for blob in data:
        digest.update(blob)
    hash_code(digest, module, code_root)
    return digest.hexdigest()


def final_losses(history: list[dict[str, float]]) -> dict[str, float]:
    """The last logged row without its step and timings, rounded for the stage's summary file."""
    final = history[-1] if history else {}
    return {k: v for k, v in without_timings(final, digits=5).items() if k != "step"}


@dataclass(frozen=True)
class Finished:
    """What a fitted loop hands its export: wall seconds of fitting and the number of processes."""

    wall_seconds: float
    processes: int


class TrackedJob(Protocol):
    """One stage's resumable run, as :func:`run_resumable` drives it; ``name`` names it in the log."""

    name: str

    def make_loop(self, dist: DistContext) -> ResumableLoop:
        """The loop, in every process (after the torchrun relaunch: data loading and hashing happen here)."""
        ...

    def start_run(self) -> RunTracker:
        """The stage's MLflow run (rank 0 only): :meth:`vc.tracking.RunTracker.for_stage`."""
        ...

    def export(self, state: Any, tracker: RunTracker, finished: Finished) -> None:
        """Write the outputs and log them to the run (rank 0, after a complete fit)."""
        ...


def run_resumable(module: str, job: TrackedJob) -> Any:
    """Run ``job`` as stage ``module`` (``pipeline.train``): the loop's final state, on every rank.

    Relaunches ``python -m module`` under torchrun when ``VC_NPROC_PER_NODE`` asks for it (then this process
    exits with torchrun's status); the run is started before the loop is built, ended FINISHED after the
    export, and ended KILLED or FAILED by :func:`fit_tracked` when fitting stops early.
    """
    relaunch_with_torchrun_if_asked(module)
    dist = DistContext.from_env()
    tracker = None
    try:
        # the run starts first, so its system metrics cover data loading and hashing too
        tracker = job.start_run() if dist.is_main else None
        loop = job.make_loop(dist)
    except BaseException:
        if tracker is not None:
            tracker.end("FAILED")
        dist.close()
        raise
    if tracker is not None:
        loop.on_log = lambda step, row: tracker.log_metrics(row, step)
    start = time.perf_counter()
    state = fit_tracked(loop, tracker)
    finished = Finished(time.perf_counter() - start, dist.world_size)
    if tracker is not None:
        try:
            with cost.phase("export"):
                job.export(state, tracker, finished)
        except BaseException:
            tracker.end("FAILED")
            dist.close()
            raise
        tracker.end("FINISHED")
        log.info(
            "%s: %d iterations in %.0f s; MLflow run %s",
            job.name,
            state.step,
            finished.wall_seconds,
            tracker.run_id,
        )
    dist.close()
    return state


def fit_tracked(loop: ResumableLoop, tracker: RunTracker | None) -> LoopState:
    """Resume and fit ``loop``; ``tracker`` is the run on rank 0 (None on other ranks). The run is ended
    here unless fitting succeeds: the caller logs the outputs and ends it FINISHED."""
    try:
        if loop.maybe_resume() and tracker is not None:
            tracker.set_tags({"vc.resumed_from_iteration": loop.state.step})
            if not tracker.reattached:  # a new run holds the whole curve: the rows before, then the rest
                rows = [
                    (int(r["step"]), {k: v for k, v in r.items() if k != "step"}) for r in loop.state.history
                ]
                tracker.log_metric_rows(rows)
        first = loop.state.step
        with cost.phase("fit", unit="iteration") as fit:
            state = loop.fit(resume=False)
            fit.count = state.step - first  # iterations run here (after a resume: the rest)
        return state
    except TrainingInterrupted as stop:
        log.warning("%s", stop)
        if tracker is not None:
            tracker.end("KILLED")
        loop.dist.close()
        sys.exit(128 + stop.signum)
    except BaseException:
        if tracker is not None:
            tracker.end("FAILED")
        loop.dist.close()
        raise
