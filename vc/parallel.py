"""Process-parallel map with a progress bar, for per-utterance work (synthesis, analysis, evaluation)."""

from __future__ import annotations

import atexit
import multiprocessing
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
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


def _init_worker() -> None:
    # One process per core: keep BLAS/OpenMP inside each worker single-threaded to avoid oversubscription.
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = "1"


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
            for result in pool.map(fn, items, chunksize=chunksize):
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
        pool = ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=_init_worker)
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
