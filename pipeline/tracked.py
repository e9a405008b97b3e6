"""Running a resumable training loop inside its MLflow run: what the `train` and `vocoder` stages share.

:func:`fit_tracked` resumes the loop from its checkpoints (copying the curve recorded before the interruption
into the new run), fits it, and ends the run FINISHED, KILLED (on SIGINT/SIGTERM: the process then exits
with 128 + the signal number, as a killed process would) or FAILED.
"""

from __future__ import annotations

import logging
import sys

from vc.tracking import RunTracker
from vc.training.loop import LoopState, ResumableLoop, TrainingInterrupted

__all__ = ["fit_tracked"]

log = logging.getLogger("pipeline")


def fit_tracked(loop: ResumableLoop, tracker: RunTracker | None) -> LoopState:
    """Resume and fit ``loop``; ``tracker`` is the run on rank 0 (None on other ranks). The run is ended
    here unless fitting succeeds: the caller logs the outputs and ends it FINISHED."""
    try:
        if loop.maybe_resume() and tracker is not None:
            # the new run holds the whole curve: the rows before the interruption, then the rest
            tracker.set_tags({"vc.resumed_from_iteration": loop.state.step})
            tracker.log_metric_rows(
                [(int(r["step"]), {k: v for k, v in r.items() if k != "step"}) for r in loop.state.history]
            )
        return loop.fit(resume=False)
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
