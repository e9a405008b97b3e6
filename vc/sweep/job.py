"""One sweep point as a job on a node: a workspace cloned from the submitting repository, the point's
``dvc exp run`` in it, and its experiment pushed back.

The workspace shares what must outlive it: the DVC cache (``cache.dir`` of the submitting repository, so
unchanged stages are never recomputed), the MLflow store (the submitting repository's tracking URI) and the
training checkpoints (``checkpoints/`` in the workspace is a link to a persistent folder keyed by the point's
fingerprint, so a requeued job resumes where it stopped). Only a complete run is published: the experiment
ref is pushed (``dvc exp push``) after ``dvc exp run`` succeeds, and the cost files its stages wrote
(:mod:`vc.cost`) are kept in the submitting repository's ``costs/exps/<experiment>/`` (``vc cost --exp``).

Preemption: :class:`PointJob` is a :class:`submitit.helpers.Checkpointable`, so submitit requeues it on the
time-limit signal; ``scontrol requeue`` (and preemption) send SIGTERM to every process of the job. Either way
the job records the point as ``interrupted`` and SLURM starts it again: a new workspace, the same
checkpoints, the same MLflow run (the training code reattaches to the run id it keeps with its checkpoints).
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vc.cost import COST_DIR, EXPERIMENTS_DIR
from vc.io import write_text
from vc.sweep.state import SweepDir

__all__ = ["PointJob", "PointTask", "default_command", "run_point"]

log = logging.getLogger("vc.sweep")

#: Seconds an interrupted job waits for SLURM to kill it (KillWait) before giving up on its own.
KILL_GRACE_S = 300


@dataclass(frozen=True)
class PointTask:
    """Everything a job needs to run one point (pickled by submitit; plain data only)."""

    sweep: str
    state_dir: str
    point_id: str
    exp_name: str
    set_args: tuple[str, ...]
    repo: str
    commit: str
    cache_dir: str
    tracking_uri: str
    workspace: str
    checkpoints: str
    #: the command run in the workspace; None: ``python -m dvc exp run -S ... --name <exp>``. Items may use
    #: ``{python}``, ``{exp}`` and ``{sets}`` (the latter expands to the ``-S`` arguments).
    command: tuple[str, ...] | None = None
    env: tuple[tuple[str, str], ...] = field(default=())


def default_command() -> tuple[str, ...]:
    return ("{python}", "-m", "dvc", "exp", "run", "{sets}", "--name", "{exp}")


def expand_command(task: PointTask) -> list[str]:
    """The point's command line with its placeholders filled."""
    out: list[str] = []
    for item in task.command or default_command():
        if item == "{sets}":
            out += list(task.set_args)
        else:
            out.append(item.format(python=sys.executable, exp=task.exp_name))
    return out


def _git(args: Sequence[str], cwd: str | Path) -> str:
    res = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=False)
    if res.returncode != 0:
        raise RuntimeError(f"git {' '.join(args)} failed in {cwd}: {res.stderr.strip()}")
    return res.stdout


def _dvc(args: Sequence[str], cwd: str | Path) -> str:
    res = subprocess.run(
        [sys.executable, "-m", "dvc", *args], cwd=cwd, capture_output=True, text=True, check=False
    )
    if res.returncode != 0:
        raise RuntimeError(f"dvc {' '.join(args)} failed in {cwd}: {(res.stderr or res.stdout).strip()}")
    return res.stdout


def prepare_workspace(task: PointTask) -> Path:
    """A fresh clone of the submitting repository at the sweep's commit, sharing its DVC cache, with
    ``checkpoints/`` linked to the point's persistent checkpoint folder."""
    ws = Path(task.workspace)
    if ws.exists():
        shutil.rmtree(ws)  # a previous attempt's: its checkpoints live elsewhere
    ws.parent.mkdir(parents=True, exist_ok=True)
    _git(["clone", "--quiet", "--shared", "--no-checkout", task.repo, str(ws)], ws.parent)
    _git(["checkout", "--quiet", "--detach", task.commit], ws)
    _git(["config", "user.name", "vc sweep"], ws)
    _git(["config", "user.email", "vc-sweep@localhost"], ws)
    _dvc(["cache", "dir", "--local", task.cache_dir], ws)
    _dvc(["config", "--local", "cache.type", "reflink,hardlink,symlink,copy"], ws)
    ckpt = Path(task.checkpoints)
    ckpt.mkdir(parents=True, exist_ok=True)
    link = ws / "checkpoints"
    if link.exists() or link.is_symlink():
        shutil.rmtree(link) if link.is_dir() and not link.is_symlink() else link.unlink()
    link.symlink_to(ckpt, target_is_directory=True)
    with open(ws / ".git" / "info" / "exclude", "a", encoding="utf-8") as fh:
        fh.write("/checkpoints\n")
    return ws


def keep_costs(task: PointTask, ws: Path) -> Path | None:
    """Copy the cost files of the point's stages (``<ws>/costs/*.json``) to the submitting repository's
    ``costs/exps/<experiment>/``, where ``vc cost --exp`` finds them after the workspace is deleted; returns
    that folder (None when there was nothing to keep). Stages that DVC skipped or restored from the shared
    cache wrote none. A cost file that cannot be copied is logged, never fails the point."""
    files = sorted((ws / COST_DIR).glob("*.json"))
    if not files:
        return None
    dest = Path(task.repo) / COST_DIR / EXPERIMENTS_DIR / task.exp_name
    try:
        dest.mkdir(parents=True, exist_ok=True)
        for path in files:
            write_text(dest / path.name, path.read_text())
    except OSError as err:
        log.warning("%s: cost files not kept in %s: %s", task.exp_name, dest, err)
        return None
    log.info("%s: cost of %d stages kept in %s", task.exp_name, len(files), dest)
    return dest


def slurm_job_id() -> str:
    """This job's id as squeue shows it (``<array>_<task>`` inside an array), or "" outside SLURM."""
    array, task = os.environ.get("SLURM_ARRAY_JOB_ID"), os.environ.get("SLURM_ARRAY_TASK_ID")
    if array and task:
        return f"{array}_{task}"
    return os.environ.get("SLURM_JOB_ID", "")


class _Terminated:
    """Notes SIGTERM (``scontrol requeue``, preemption, scancel): the point is interrupted, not failed."""

    def __init__(self) -> None:
        self.signum = 0
        self._old: Any = None

    def __enter__(self) -> _Terminated:
        self._old = signal.signal(signal.SIGTERM, self._handle)
        return self

    def _handle(self, signum: int, frame: Any) -> None:
        log.warning(
            "caught %s: the point stops here and resumes when the job restarts", signal.Signals(signum).name
        )
        self.signum = signum

    def __exit__(self, *exc: Any) -> None:
        signal.signal(signal.SIGTERM, self._old)


def run_point(task: PointTask) -> str:
    """Run one point to the end and publish it; returns the experiment name. Raises when the point fails."""
    sweep = SweepDir(Path(task.state_dir))
    record = sweep.read_point(task.point_id)
    if record.get("state") == "done":
        log.info("%s: already done", task.exp_name)
        return task.exp_name
    os.environ["MLFLOW_TRACKING_URI"] = task.tracking_uri  # this process's MLflow calls too
    attempts = int(record.get("attempts", 0)) + 1
    job_id = slurm_job_id() or str(record.get("job_id", ""))
    sweep.update_point(
        task.point_id, state="running", attempts=attempts, job_id=job_id, host=os.uname().nodename
    )
    with _Terminated() as term:
        try:
            start = time.perf_counter()
            ws = prepare_workspace(task)
            log.info("%s: workspace ready in %.1f s", task.exp_name, time.perf_counter() - start)
            rc = _run_command(task, ws)
            log.info("%s: command exited %d after %.1f s", task.exp_name, rc, time.perf_counter() - start)
            if rc == 0 and not term.signum:
                _dvc(["exp", "push", "--no-cache", "origin", task.exp_name], ws)
                log.info("%s: pushed after %.1f s", task.exp_name, time.perf_counter() - start)
                keep_costs(task, ws)
        except Exception as err:
            if not term.signum:
                _finish_failed(task, sweep, str(err))
                raise
            rc = -1
        if term.signum:
            if sweep.read_point(task.point_id).get("state") != "cancelled":  # `vc sweep cancel` said so
                sweep.update_point(task.point_id, state="interrupted")
            _await_kill()
        if rc != 0:
            message = f"the point's command exited with {rc}"
            _finish_failed(task, sweep, message)
            raise RuntimeError(f"{task.exp_name}: {message}")
    runs = _tag_runs(task, failed=False)
    sweep.update_point(task.point_id, state="done", mlflow_runs=runs, error=None)
    shutil.rmtree(task.workspace, ignore_errors=True)
    log.info("%s: done (MLflow runs %s)", task.exp_name, ", ".join(runs) or "none")
    return task.exp_name


def _run_command(task: PointTask, ws: Path) -> int:
    env = {
        **os.environ,
        **dict(task.env),
        "MLFLOW_TRACKING_URI": task.tracking_uri,
        "VC_SWEEP": task.sweep,
        "VC_SWEEP_POINT": task.point_id,
        "DVC_EXP_NAME": task.exp_name,
    }
    cmd = expand_command(task)
    log.info("%s: %s (in %s)", task.exp_name, " ".join(cmd), ws)
    sys.stdout.flush()
    return subprocess.run(cmd, cwd=ws, env=env, check=False).returncode


def _await_kill() -> None:
    """SLURM kills the whole job after KillWait; stay alive until then so the job is requeued, not ended."""
    deadline = time.monotonic() + KILL_GRACE_S
    while time.monotonic() < deadline:
        time.sleep(1)
    raise RuntimeError("interrupted and not killed by SLURM within the grace period")


def _finish_failed(task: PointTask, sweep: SweepDir, message: str) -> None:
    log.error("%s failed: %s", task.exp_name, message)
    runs: list[str] = []
    try:
        runs = _tag_runs(task, failed=True)
    except Exception as err:  # the state file still says failed
        log.warning("could not mark the MLflow runs of %s failed: %s", task.exp_name, err)
    sweep.update_point(task.point_id, state="failed", error=message, mlflow_runs=runs)


def _tag_runs(task: PointTask, *, failed: bool) -> list[str]:
    """Tag the point's MLflow runs (``dvc.exp_name`` = the experiment) with the sweep; on failure, also
    end any still-running one FAILED, or record a FAILED run when training never started one."""
    from mlflow.tracking import MlflowClient

    from vc.tracking import TAG_DVC_EXP, with_retry

    client = MlflowClient(task.tracking_uri)
    exp_ids = [e.experiment_id for e in with_retry(client.search_experiments)]
    runs = []
    if exp_ids:
        runs = with_retry(
            client.search_runs, exp_ids, filter_string=f"tags.`{TAG_DVC_EXP}` = '{task.exp_name}'"
        )
    tags = {"vc.sweep": task.sweep, "vc.sweep.point": task.point_id}
    if failed:
        tags["vc.sweep.state"] = "failed"
    if failed and not runs:
        from vc.tracking import init_tracking

        exp_id = init_tracking("sweeps")
        run = with_retry(client.create_run, exp_id, run_name=task.exp_name, tags={TAG_DVC_EXP: task.exp_name})
        runs = [run]
    for run in runs:
        for key, value in tags.items():
            with_retry(client.set_tag, run.info.run_id, key, value)
        if failed and run.info.status in ("RUNNING", "SCHEDULED"):
            with_retry(client.set_terminated, run.info.run_id, status="FAILED")
    return [r.info.run_id for r in runs]


try:  # submitit is an optional dependency of the package (installed with the project)
    from submitit.helpers import Checkpointable
except ImportError:  # pragma: no cover
    Checkpointable = object  # type: ignore[assignment,misc]


class PointJob(Checkpointable):  # type: ignore[misc,valid-type]
    """The callable submitit runs on the node. Checkpointable: on the time-limit signal submitit pickles it
    again with the same task and requeues the job; the task's state is all on disk (checkpoints, state)."""

    def __call__(self, task: PointTask) -> str:
        logging.basicConfig(level="INFO", format="%(asctime)s %(levelname)s %(name)s: %(message)s")
        return run_point(task)
