"""Process-parallel map with a progress bar, for per-utterance work (synthesis, analysis, evaluation)."""

from __future__ import annotations

import atexit
import functools
import logging
import multiprocessing
import multiprocessing.connection
import os
import signal
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import TypeVar

from tqdm import tqdm

__all__ = [
    "concurrent_jobs",
    "cpu_count",
    "cpus_per_job",
    "parallel_map",
    "resolve_workers",
    "shutdown_pools",
]

T = TypeVar("T")
R = TypeVar("R")

log = logging.getLogger(__name__)


def cpu_count() -> int:
    """CPUs this process may run on (affinity-aware, unlike ``os.cpu_count``)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


PARALLEL_JOBS_ENV = "VC_PARALLEL_JOBS"


def concurrent_jobs() -> int:
    """How many pipeline jobs share this machine's CPUs now: ``VC_PARALLEL_JOBS`` (``make queue JOBS=N``
    sets it for DVC's queue workers), else 1."""
    value = os.environ.get(PARALLEL_JOBS_ENV, "").strip()
    try:
        return max(1, int(value)) if value else 1
    except ValueError:
        raise ValueError(f"{PARALLEL_JOBS_ENV}={value!r}: expected a whole number of jobs") from None


def cpus_per_job() -> int:
    """This job's share of the CPUs: ``cpu_count() // concurrent_jobs()``, at least 1.

    Two trainings that each start one thread per core on the same cores slow each other down many times
    over (OpenMP threads spin while they wait for each other); dividing the cores avoids it.
    """
    return max(1, cpu_count() // concurrent_jobs())


def resolve_workers(workers: int, n_items: int) -> int:
    """``workers == 0`` means this job's share of the CPUs (:func:`cpus_per_job`); never more than items."""
    return max(1, min(workers or cpus_per_job(), n_items))


@dataclass(frozen=True)
class _Logging:
    """The pool owner's logging setup, repeated in each worker (a fork server's child starts without it)."""

    level: int
    formatter: logging.Formatter | None
    levels: dict[str, int]  # loggers the owner set a level on (e.g. quietened third-party ones)

    @classmethod
    def of_this_process(cls) -> _Logging:
        root = logging.getLogger()
        handler = next((h for h in root.handlers if isinstance(h, logging.StreamHandler)), None)
        levels = {
            name: logger.level
            for name, logger in logging.Logger.manager.loggerDict.items()
            if isinstance(logger, logging.Logger) and logger.level != logging.NOTSET
        }
        return cls(root.level, handler.formatter if handler else None, levels)

    def apply(self) -> None:
        root = logging.getLogger()
        if self.formatter is not None and not root.handlers:
            handler = logging.StreamHandler()
            handler.setFormatter(self.formatter)
            root.addHandler(handler)
        root.setLevel(self.level)
        for name, level in self.levels.items():
            logging.getLogger(name).setLevel(level)


def _init_worker(logs: _Logging) -> None:
    """A pool worker's setup: single-threaded BLAS/OpenMP (one process per core, no oversubscription), the
    owner's logging (``logs``), SIGTERM as :class:`SystemExit`, and the watch on its owner."""
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = "1"
    logs.apply()
    signal.signal(signal.SIGTERM, _exit_on_signal)
    _stop_with_pool_owner()


def _exit_on_signal(signum: int, _frame: object) -> None:
    """SIGTERM in a worker unwinds the item it is working on (``with`` blocks and ``finally`` clauses run: an
    MLflow run ends KILLED) instead of ending the process where it stands."""
    raise SystemExit(128 + signum)


#: Seconds a worker whose owner died gives the item it is working on to stop by itself (a training saves a
#: checkpoint at the end of its iteration and ends its MLflow run KILLED) before it exits anyway.
ORPHAN_GRACE_SECONDS = 30.0

_orphaned = threading.Event()  # set in a worker once the process that started its pool is gone


def _stop_with_pool_owner() -> None:
    """In a pool's worker: when the process that started the pool dies, stop, and take no further item.

    A killed stage (``kill -9``, out of memory) cannot shut its pool down, and the workers would not notice
    by themselves: they are children of multiprocessing's fork server, which never sees the stage go while
    a worker lives (it hands every child the write end of its "alive" pipe), and a worker takes the items
    already queued to it. A thread waits on the pipe that only the stage holds open (multiprocessing's
    parent sentinel), then sends this worker SIGTERM: the item unwinds (:func:`_exit_on_signal`), or, if it
    handles the signal itself as a training does (:class:`vc.training.loop.ResumableLoop`), stops at the
    end of its iteration. The worker exits when that item has stopped, or after
    :data:`ORPHAN_GRACE_SECONDS` if it does not, and starts no queued item (:func:`_call`).
    """
    owner = multiprocessing.parent_process()
    if owner is None:  # pragma: no cover - a pool's worker always has one
        return

    def watch() -> None:
        multiprocessing.connection.wait([owner.sentinel])
        _orphaned.set()
        log.warning("worker %d: the process that started it (%d) is gone; stopping", os.getpid(), owner.pid)
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(ORPHAN_GRACE_SECONDS)
        os._exit(128 + signal.SIGTERM)

    threading.Thread(target=watch, name="vc-pool-owner", daemon=True).start()


def _call(fn: Callable[[T], R], item: T) -> R:
    """``fn(item)`` in a worker; once the pool's owner is gone, the worker exits instead of starting an item
    and as soon as the item it was working on has stopped."""
    if _orphaned.is_set():
        os._exit(128 + signal.SIGTERM)
    try:
        return fn(item)
    finally:
        if _orphaned.is_set():
            os._exit(128 + signal.SIGTERM)


def parallel_map(
    fn: Callable[[T], R],
    items: Sequence[T],
    *,
    workers: int = 0,
    desc: str | None = None,
    progress: bool = True,
) -> list[R]:
    """``[fn(x) for x in items]`` in ``workers`` processes (0: all CPUs; 1: in this process), in order.

    ``fn`` must be a module-level function. Exceptions propagate; functions that should report every bad
    item rather than the first should return errors as values.
    """
    n = resolve_workers(workers, len(items))
    bar = tqdm(total=len(items), desc=desc, disable=not progress or not items, unit="file", leave=False)
    try:
        if n == 1:
            out = []
            for item in items:
                out.append(fn(item))
                bar.update()
            return out
        chunksize = max(1, min(8, len(items) // (4 * n)))
        pool = _pool(n)
        out = []
        try:
            for result in pool.map(functools.partial(_call, fn), items, chunksize=chunksize):
                out.append(result)
                bar.update()
        except BrokenProcessPool:
            _shutdown(n)  # a worker died (killed, out of memory): the next call starts a new pool
            raise
        return out
    finally:
        bar.close()


# One pool per worker count, kept for the life of the process: a stage that scores several systems (or
# analyses and then scores) reuses the same workers, which keep their loaded models (the evaluation's models
# are cached per process), instead of starting processes and loading every model again for each call.
_POOLS: dict[int, ProcessPoolExecutor] = {}


def _pool(workers: int) -> ProcessPoolExecutor:
    pool = _POOLS.get(workers)
    if pool is None:
        ctx = multiprocessing.get_context("forkserver")
        pool = ProcessPoolExecutor(
            max_workers=workers,
            mp_context=ctx,
            initializer=_init_worker,
            initargs=(_Logging.of_this_process(),),
        )
        _POOLS[workers] = pool
    return pool


def _shutdown(workers: int, wait: bool = False) -> None:
    pool = _POOLS.pop(workers, None)
    if pool is not None:
        pool.shutdown(wait=wait, cancel_futures=True)


@atexit.register
def shutdown_pools(wait: bool = False) -> None:
    """Stop every kept worker pool (at exit; ``wait``: until the workers have exited and been reaped)."""
    for workers in list(_POOLS):
        _shutdown(workers, wait)
