"""Submitting a sweep: ``local`` (the DVC queue on this machine) or ``slurm`` (one submitit job per point: a
job array limited to ``array_parallelism`` at once), and its control: live states, cancel.

A sweep is planned first (:func:`plan_sweep`: the commit, the shared cache, the tracking store, each point's
workspace and checkpoint folder), so ``--dry-run`` prints exactly what would be submitted. Points already
``done`` (and, for SLURM, points whose job is still queued or running) are skipped on re-submission.
"""

from __future__ import annotations

import logging
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vc.errors import InputError
from vc.sweep.config import SweepConfig
from vc.sweep.job import PointJob, PointTask, expand_command
from vc.sweep.spec import Point, check_name
from vc.sweep.state import SweepDir

__all__ = ["SweepPlan", "cancel", "live_states", "plan_sweep", "submit"]

log = logging.getLogger("vc.sweep")

ACTIVE = ("queued", "running", "interrupted")


@dataclass(frozen=True)
class SweepPlan:
    """What a submission does: the sweep's points as tasks, with where everything lives."""

    name: str
    repo: Path
    commit: str
    config: SweepConfig
    sweep_dir: SweepDir
    tasks: tuple[tuple[Point, PointTask], ...]


def _run(cmd: list[str], cwd: Path | None = None, env: dict[str, str] | None = None) -> str:
    res = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    if res.returncode != 0:
        raise InputError(f"{' '.join(cmd[:4])} failed: {(res.stderr or res.stdout).strip()[-500:]}")
    return res.stdout


def _under(repo: Path, path: str) -> Path:
    p = Path(path)
    return p if p.is_absolute() else repo / p


def plan_sweep(
    repo: str | Path,
    name: str,
    points: list[Point],
    config: SweepConfig,
    command: tuple[str, ...] | None = None,
) -> SweepPlan:
    """Plan sweep ``name`` of ``points`` from the checkout ``repo`` (its committed HEAD)."""
    from vc.tracking import tracking_uri

    repo = Path(repo).resolve()
    check_name(name)
    commit = _run(["git", "rev-parse", "HEAD"], repo).strip()
    dirty = _run(["git", "status", "--porcelain", "--untracked-files=no"], repo).strip()
    if dirty:
        log.warning(
            "uncommitted changes are not part of the sweep (points run commit %s):\n%s", commit[:8], dirty
        )
    cache = _run([sys.executable, "-m", "dvc", "cache", "dir"], repo).strip()
    uri = config.tracking_uri or tracking_uri(repo)
    if config.executor == "slurm" and uri.startswith("sqlite:"):
        log.warning("MLflow store %s is a SQLite file: only jobs on machines that share it reach it", uri)
    sweep_dir = SweepDir(_under(repo, config.state_dir) / name)
    work = (
        _under(repo, config.workspaces) / name
        if config.workspaces
        else repo / ".dvc" / "tmp" / "sweeps" / name
    )
    ckpt_root = _under(repo, config.checkpoints)
    gpus = config.slurm.gpus_per_node if config.executor == "slurm" else 0
    # several GPUs for one point: the train stage starts torchrun itself (pipeline.common)
    env = (("VC_NPROC_PER_NODE", str(gpus)),) if gpus > 1 else ()
    tasks = []
    for p in points:
        task = PointTask(
            sweep=name,
            state_dir=str(sweep_dir.path),
            point_id=p.point_id,
            exp_name=p.exp_name(name),
            set_args=tuple(p.set_args()),
            repo=str(repo),
            commit=commit,
            cache_dir=str(Path(cache).resolve()),
            tracking_uri=uri,
            workspace=str(work / p.point_id),
            checkpoints=str(ckpt_root / p.fingerprint),
            command=command,
            env=env,
        )
        tasks.append((p, task))
    return SweepPlan(name, repo, commit, config, sweep_dir, tuple(tasks))


def dry_run_lines(plan: SweepPlan) -> list[str]:
    """What a submission would do, one line per point after a header."""
    cfg = plan.config
    head = f"sweep {plan.name}: {len(plan.tasks)} points at commit {plan.commit[:8]}, executor {cfg.executor}"
    if cfg.executor == "slurm":
        s = cfg.slurm
        head += (
            f" (partition {s.partition or 'default'}, {s.time_min} min, {s.cpus_per_task} CPUs, "
            f"{s.gpus_per_node} GPUs, {s.mem_gb:g} GB, at most {s.array_parallelism} at once)"
        )
    else:
        head += f" (dvc queue start -j {cfg.jobs})"
    lines = [head]
    done = {p["point_id"] for p in _recorded(plan.sweep_dir) if p.get("state") == "done"}
    for point, task in plan.tasks:
        skip = "  [done: skipped]" if point.point_id in done else ""
        if cfg.executor == "slurm":
            what = " ".join(expand_command(task)) + f"  (checkpoints {task.checkpoints})"
        else:
            what = " ".join(["dvc", "exp", "run", "--queue", *task.set_args, "--name", task.exp_name])
        lines.append(f"{point.point_id}  {task.exp_name}  {what}{skip}")
    return lines


def _recorded(sweep_dir: SweepDir) -> list[dict[str, Any]]:
    return sweep_dir.points() if sweep_dir.exists() else []


def _record_spec(plan: SweepPlan) -> None:
    known = {
        p["point_id"]: p for p in (plan.sweep_dir.read_spec()["points"] if plan.sweep_dir.exists() else [])
    }
    for point, task in plan.tasks:
        known[point.point_id] = {
            "point_id": point.point_id,
            "index": point.index,
            "exp_name": task.exp_name,
            "fingerprint": point.fingerprint,
            "overrides": [[k, v] for k, v in point.overrides],
        }
    spec = {
        "name": plan.name,
        "repo": str(plan.repo),
        "commit": plan.commit,
        "executor": plan.config.executor,
        "config": plan.config.model_dump(mode="json"),
        "points": sorted(known.values(), key=lambda p: p["index"]),
    }
    plan.sweep_dir.write_spec(spec)


def pending_tasks(plan: SweepPlan) -> list[tuple[Point, PointTask]]:
    """The plan's tasks that still need a job: not done, and not queued or running in a live job."""
    live = live_states([str(p.get("job_id")) for p in _recorded(plan.sweep_dir) if p.get("job_id")])
    out = []
    for point, task in plan.tasks:
        record = plan.sweep_dir.read_point(point.point_id)
        state = record.get("state")
        if state == "done":
            log.info("%s: done, skipped", task.exp_name)
        elif state in ("queued", "running") and record.get("job_id") == "dvc-queue":
            log.info("%s: in the DVC queue (%s), skipped", task.exp_name, state)
        elif state in ACTIVE and live.get(str(record.get("job_id"))) in ("PENDING", "RUNNING"):
            log.info("%s: job %s still %s, skipped", task.exp_name, record["job_id"], state)
        else:
            out.append((point, task))
    return out


def submit(plan: SweepPlan) -> list[str]:
    """Submit the points that need it; return their job ids (SLURM) or experiment names (local)."""
    _record_spec(plan)
    sync_local(plan.sweep_dir)
    todo = pending_tasks(plan)
    if not todo:
        log.info("sweep %s: every point is done or still running; nothing to submit", plan.name)
        return []
    if plan.config.executor == "slurm":
        _init_store(plan)
        return _submit_slurm(plan, todo)
    return _submit_local(plan, todo)


def _init_store(plan: SweepPlan) -> None:
    """Create the MLflow experiment here, before any job: one created by a job would keep its artifacts in
    that job's temporary workspace (the SQLite store's artifact root is the repository that creates it)."""
    import os

    import yaml

    from vc.tracking import ENV_URI, init_tracking

    params = yaml.safe_load((plan.repo / "params.yaml").read_text(encoding="utf-8")) or {}
    experiment = (params.get("tracking") or {}).get("experiment") or "stargan-vc2"
    old = os.environ.get(ENV_URI)
    os.environ[ENV_URI] = plan.tasks[0][1].tracking_uri
    try:
        init_tracking(experiment, plan.repo)
    finally:
        if old is None:
            os.environ.pop(ENV_URI)
        else:
            os.environ[ENV_URI] = old


def _submit_slurm(plan: SweepPlan, todo: list[tuple[Point, PointTask]]) -> list[str]:
    import submitit

    s = plan.config.slurm
    folder = plan.sweep_dir.path / "slurm" / "%j"
    executor = submitit.SlurmExecutor(folder=folder, max_num_timeout=s.max_requeues, python=s.python)
    params: dict[str, Any] = {
        "job_name": f"vc-sweep-{plan.name}",
        "time": s.time_min,
        "cpus_per_task": s.cpus_per_task,
        "mem": f"{int(s.mem_gb * 1024)}M",
        "array_parallelism": s.array_parallelism,
        "signal_delay_s": s.signal_delay_s,
        "setup": list(s.setup),
        "additional_parameters": {"requeue": True},
    }
    if s.partition:
        params["partition"] = s.partition
    if s.gpus_per_node:
        params["gpus_per_node"] = s.gpus_per_node
    executor.update_parameters(**params)
    job = PointJob()
    with executor.batch():
        jobs = [executor.submit(job, task) for _, task in todo]
    ids = []
    for (point, task), j in zip(todo, jobs, strict=True):
        plan.sweep_dir.update_point(point.point_id, state="queued", job_id=j.job_id, log=str(j.paths.stdout))
        log.info("%s: SLURM job %s, log %s", task.exp_name, j.job_id, j.paths.stdout)
        ids.append(str(j.job_id))
    return ids


def _dvc_env() -> dict[str, str]:
    """DVC's queue spawns its workers as ``dvc ...``: this interpreter's scripts folder first on PATH."""
    import os

    return {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}


#: `dvc queue status` -> point state
QUEUE_STATES = {"Queued": "queued", "Running": "running", "Success": "done", "Failed": "failed"}


def sync_local(sweep_dir: SweepDir) -> None:
    """Record the DVC queue's view (Queued, Running, Success, Failed) of a local sweep's points."""
    spec = sweep_dir.read_spec()
    if spec.get("executor") != "local":
        return
    res = subprocess.run(
        [sys.executable, "-m", "dvc", "queue", "status"],
        cwd=spec["repo"],
        env=_dvc_env(),
        capture_output=True,
        text=True,
        check=False,
    )
    seen = {}
    for line in res.stdout.splitlines():
        parts = line.split()
        if len(parts) >= 4 and parts[-1] in QUEUE_STATES:
            seen[parts[1]] = QUEUE_STATES[parts[-1]]
    for p in sweep_dir.points():
        state = seen.get(p["exp_name"])
        if state and state != p["state"] and p["state"] not in ("done", "cancelled"):
            sweep_dir.update_point(p["point_id"], state=state)


def _submit_local(plan: SweepPlan, todo: list[tuple[Point, PointTask]]) -> list[str]:
    names = []
    for point, task in todo:
        _run(
            [sys.executable, "-m", "dvc", "exp", "run", "--queue", *task.set_args, "--name", task.exp_name],
            plan.repo,
        )
        plan.sweep_dir.update_point(
            point.point_id, state="queued", job_id="dvc-queue", log="dvc queue logs " + task.exp_name
        )
        names.append(task.exp_name)
    _run(
        [sys.executable, "-m", "dvc", "queue", "start", "-j", str(plan.config.jobs)],
        plan.repo,
        env=_dvc_env(),
    )
    log.info("sweep %s: %d experiments queued; `dvc queue status` follows them", plan.name, len(names))
    return names


# --------------------------------------------------------------------------------------------- control
def live_states(job_ids: list[str]) -> dict[str, str]:
    """SLURM's state (PENDING, RUNNING, ...) of the jobs it still knows; {} without SLURM."""
    ids = [j for j in job_ids if j and j[0].isdigit()]
    if not ids:
        return {}
    try:
        res = subprocess.run(
            ["squeue", "-h", "-o", "%i %T", "-j", ",".join(ids)],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return {}
    out = {}
    for line in res.stdout.splitlines():
        parts = line.split()
        if len(parts) == 2:
            out[parts[0]] = parts[1]
    return out


def cancel(sweep_dir: SweepDir) -> list[str]:
    """Stop every point that is not finished: scancel its SLURM job (or remove it from the DVC queue)."""
    stopped = []
    repo = sweep_dir.read_spec()["repo"]
    for p in sweep_dir.points():
        if p["state"] in ("done", "failed", "cancelled", "new"):
            continue
        job_id = str(p.get("job_id", ""))
        if job_id and job_id[0].isdigit():
            subprocess.run(["scancel", job_id], capture_output=True, check=False)
        elif job_id == "dvc-queue":
            subprocess.run(
                [sys.executable, "-m", "dvc", "queue", "kill", p["exp_name"]],
                cwd=repo,
                capture_output=True,
                check=False,
            )
            subprocess.run(
                [sys.executable, "-m", "dvc", "queue", "remove", p["exp_name"]],
                cwd=repo,
                capture_output=True,
                check=False,
            )
        sweep_dir.update_point(p["point_id"], state="cancelled")
        stopped.append(p["point_id"])
    return stopped
