"""``vc sweep``: run a grid of DVC experiments locally (the DVC queue) or on SLURM, follow it, stop it.

vc sweep run lr -S train.optimizer.lr_g=1e-3,5e-4 -S seeds=[0],[1] --executor slurm --partition gpu --gpus 1
vc sweep run lr --points points.yaml --dry-run
vc sweep status lr
vc sweep cancel lr
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Any

from vc.sweep.config import SweepConfig, load_sweep_config
from vc.sweep.spec import build_points, check_name, validate_points
from vc.sweep.state import SweepDir, status_table

__all__ = ["add_commands", "main"]

log = logging.getLogger("vc.sweep")

#: command-line option -> key of ``sweep.slurm`` it overrides
SLURM_OPTIONS = {
    "partition": "partition",
    "time_min": "time_min",
    "cpus": "cpus_per_task",
    "gpus": "gpus_per_node",
    "mem_gb": "mem_gb",
    "max_jobs": "array_parallelism",
    "python": "python",
}


def config_from_args(args: argparse.Namespace) -> SweepConfig:
    """The ``sweep:`` section of the params file with the command line's options over it (re-validated)."""
    from vc.configlib import build

    base = load_sweep_config(Path(args.repo) / args.params).model_dump()
    for opt, key in SLURM_OPTIONS.items():
        if getattr(args, opt, None) is not None:
            base["slurm"][key] = getattr(args, opt)
    for key in ("executor", "jobs", "tracking_uri"):
        if getattr(args, key, None) is not None:
            base[key] = getattr(args, key)
    return build(SweepConfig, base, prefix="sweep")


def _sweep_dir(args: argparse.Namespace) -> SweepDir:
    config = load_sweep_config(Path(args.repo) / args.params)
    state = Path(config.state_dir)
    return SweepDir((state if state.is_absolute() else Path(args.repo) / state) / check_name(args.name))


def _run(args: argparse.Namespace) -> None:
    from vc.sweep.executors import dry_run_lines, plan_sweep, submit

    points = build_points(args.set or (), args.points)
    validate_points(points, Path(args.repo) / args.params)  # before anything is submitted
    plan = plan_sweep(args.repo, args.name, points, config_from_args(args))
    if args.dry_run:
        sys.stdout.write("\n".join(dry_run_lines(plan)) + "\n")
        return
    for job in submit(plan):
        sys.stdout.write(job + "\n")


def _status(args: argparse.Namespace) -> None:
    from vc.sweep.executors import live_states, sync_local

    sweep = _sweep_dir(args)
    sync_local(sweep)
    points = sweep.points()
    ids = [str(p.get("job_id", "")) for p in points]
    sys.stdout.write(status_table(points, live_states(ids)))


def _cancel(args: argparse.Namespace) -> None:
    from vc.sweep.executors import cancel

    stopped = cancel(_sweep_dir(args))
    log.info("cancelled %d points: %s", len(stopped), ", ".join(stopped) or "none")


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("name", help="the sweep's name (lowercase letters, digits, - and _)")
    p.add_argument("--repo", default=".", help="the checkout that submits (default: .)")
    p.add_argument("--params", default="params.yaml", help="params file, relative to --repo")


def add_commands(sub: Any) -> None:
    """Add ``sweep run|status|cancel`` to the ``vc`` command's subparsers."""
    sweep = sub.add_parser("sweep", help="run a grid of experiments locally or on SLURM", description=__doc__)
    ssub = sweep.add_subparsers(dest="sweep_command", required=True)
    run = ssub.add_parser("run", help="submit a sweep (points already done are skipped)")
    _common(run)
    run.add_argument("-S", "--set", action="append", help="key=v1,v2 (several: the cartesian grid)")
    run.add_argument("--points", default=None, help="a YAML file: a list of {dotted.key: value} points")
    run.add_argument("--executor", choices=["local", "slurm"], default=None)
    run.add_argument("--jobs", type=int, default=None, help="local: DVC queue workers")
    run.add_argument("--partition", default=None)
    run.add_argument("--time-min", type=int, default=None, help="SLURM time limit of one point, minutes")
    run.add_argument("--cpus", type=int, default=None, help="CPUs per point")
    run.add_argument("--gpus", type=int, default=None, help="GPUs per point")
    run.add_argument("--mem-gb", type=float, default=None, help="memory per point, GB")
    run.add_argument("--max-jobs", type=int, default=None, help="the most points running at once")
    run.add_argument("--python", default=None, help="python command of the jobs (a venv's bin/python)")
    run.add_argument("--tracking-uri", default=None, help="MLflow store all jobs reach")
    run.add_argument("--dry-run", action="store_true", help="print the jobs, submit nothing")
    run.set_defaults(func=_run)
    status = ssub.add_parser("status", help="each point's state, SLURM job id and log")
    _common(status)
    status.set_defaults(func=_status)
    stop = ssub.add_parser("cancel", help="scancel the sweep's unfinished points")
    _common(stop)
    stop.set_defaults(func=_cancel)


def main(argv: list[str] | None = None) -> None:
    """``python -m vc.sweep.cli ...`` (the same as ``vc sweep ...``)."""
    from vc.errors import InputError

    parser = argparse.ArgumentParser(prog="vc")
    parser.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    add_commands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level, format="%(levelname)s %(name)s: %(message)s")
    try:
        args.func(args)
    except InputError as err:
        log.error("%s", err)
        sys.exit(2)


if __name__ == "__main__":
    main()
