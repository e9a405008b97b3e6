"""What every stage shares: the repo root, params.yaml as typed config, logging, clean error exits."""

from __future__ import annotations

import argparse
import atexit
import contextlib
import logging
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import NoReturn

from vc import cost
from vc.config import Params, load_params_file
from vc.errors import InputError
from vc.io import write_text

__all__ = [
    "add_common_args",
    "exit_process",
    "read_params",
    "relaunch_with_torchrun_if_asked",
    "repo_root",
    "run",
    "stop_with_parent",
    "write_losses_tsv",
]

log = logging.getLogger("pipeline")


def repo_root() -> Path:
    """The repository the stage belongs to: ``DVC_ROOT`` (set by DVC for stages) or the working directory."""
    return Path(os.environ.get("DVC_ROOT") or Path.cwd()).resolve()


def read_params(path: str | Path = "params.yaml") -> Params:
    """Parse and validate params.yaml (every section: a typo anywhere stops every stage before work)."""
    return load_params_file(path)


def add_common_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--params", default="params.yaml", help="params file (default: params.yaml)")
    parser.add_argument(
        "--log-level",
        default=os.environ.get("VC_LOG_LEVEL", "INFO"),
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
    )
    parser.add_argument(
        "--cost",
        default=None,
        help="write the stage's cost (wall, CPU, peak memory, phases) here; default under DVC: "
        f"<repo>/{cost.COST_DIR}/<stage>.json, never a DVC output (`vc cost` reads them)",
    )


def run(
    main: Callable[[argparse.Namespace], object],
    parser: argparse.ArgumentParser,
    argv: list[str] | None = None,
) -> None:
    """Parse arguments, set up logging, run ``main``; bad input exits 2 with one clear line, no traceback."""
    add_common_args(parser)
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=args.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S"
    )
    for noisy in ("matplotlib", "PIL", "numba", "urllib3", "alembic", "git", "faster_whisper"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    stage = os.environ.get("DVC_STAGE") or getattr(main, "__module__", "stage").rsplit(".", 1)[-1]
    # A stage started as `python -m pipeline.<stage>` defines `main` in `__main__`; a test that calls run()
    # in its own process does not, and keeps its interpreter.
    as_script = getattr(main, "__module__", None) == "__main__"
    try:
        with cost.record(stage, cost.cost_path(args.cost)):
            main(args)
    except InputError as err:
        log.error("%s", err)
        if as_script:
            exit_process(2)
        sys.exit(2)
    if as_script:
        exit_process(0)


def exit_process(code: int) -> NoReturn:
    """End a finished stage's process without Python's interpreter teardown.

    What a normal exit does, in its order: join the threads that are not daemons (and whatever
    ``threading`` was asked to run before that), run the ``atexit`` handlers (MLflow, multiprocessing,
    logging), flush stdout and stderr; then ``os._exit``. What it skips is the teardown of every imported
    module, which frees nothing the operating system would not: 0.1-0.5 s after a stage module's imports
    alone (``python -m benchmarks.stage_overhead``), 1.1 s after a training that also used MLflow, once per
    stage and ~57 times per ``make repro``. The outputs are closed files by then (:mod:`vc.io` writes them
    atomically), and the cost file is written. On an interpreter without the two hooks, a normal exit.
    """
    shutdown_threads = getattr(threading, "_shutdown", None)
    run_exitfuncs = getattr(atexit, "_run_exitfuncs", None)
    if shutdown_threads is None or run_exitfuncs is None:
        sys.exit(code)
    shutdown_threads()
    run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(code)


def stop_with_parent() -> None:
    """Ask Linux to send this process SIGTERM when its parent dies.

    ``dvc repro`` dies on SIGTERM without passing it on, which would leave training running as an orphan;
    with this, a SIGTERM to DVC reaches training, which checkpoints and stops (Ctrl-C reaches both anyway).
    DVC starts stages through ``$SHELL -c``, and dash (``/bin/sh`` on Debian) stays in between as the
    parent, so the stage command in dvc.yaml begins with ``exec``.
    """
    if not sys.platform.startswith("linux"):
        return
    import ctypes

    pr_set_pdeathsig = 1
    ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)
    if os.getppid() == 1:  # the parent died before the request was in place
        os.kill(os.getpid(), signal.SIGTERM)


def relaunch_with_torchrun_if_asked(module: str) -> None:
    """With ``VC_NPROC_PER_NODE=N`` (N > 1) and outside torchrun, run ``python -m module`` with this
    process's arguments under torchrun with N processes and exit with its status (no shell; the arguments
    pass as a list). SIGINT and SIGTERM are passed on to torchrun, which passes them to every rank.
    """
    nproc = int(os.environ.get("VC_NPROC_PER_NODE", "1"))
    if nproc <= 1 or "LOCAL_RANK" in os.environ:
        return
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        f"--nproc_per_node={nproc}",
        "-m",
        module,
        *sys.argv[1:],
    ]
    log.info("starting %d training processes with torchrun", nproc)
    child = subprocess.Popen(cmd)
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda signum, _frame: child.send_signal(signum))
    sys.exit(child.wait())


def without_timings(row: Mapping[str, float], digits: int | None = None) -> dict[str, float]:
    """A logged row without its wall-clock keys (``time/...``), values rounded to ``digits`` if given.

    What a DVC output may hold of a training log: timings go to MLflow and the stage's cost file, never into
    a DVC output, so a run that reproduces its numbers writes the same bytes (DVC sees nothing changed)."""
    kept = {k: v for k, v in row.items() if not k.startswith("time/")}
    return kept if digits is None else {k: round(v, digits) for k, v in kept.items()}


def write_losses_tsv(path: Path, history: list[dict[str, float]]) -> None:
    """A training history (one row per log interval) as a TSV file for DVC plots; missing values empty;
    timings left out (:func:`without_timings`)."""
    rows = [without_timings(row) for row in history]
    keys = list(dict.fromkeys(k for row in rows for k in row))
    lines = ["\t".join(keys)] + ["\t".join(f"{row.get(k, '')}" for k in keys) for row in rows]
    write_text(path, "\n".join(lines) + "\n")
