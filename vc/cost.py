"""What a stage costs: wall time, CPU time and peak memory, split into phases, recorded beside (never inside)
the science.

A stage runs inside :func:`record`, which writes one JSON file when the stage ends (by default, under DVC,
``<repo>/costs/<stage address>.json``, e.g. ``costs/train@stargan-vc2-0.json``; an experiment that DVC runs
in a copy of the workspace writes ``<repo>/costs/exps/<experiment name>/`` instead). The files are not DVC
outputs and no stage depends on them: a cost figure can never change a result or make a stage look changed.
``vc cost`` adds them up (:mod:`vc.cost_table`).

Code anywhere below a stage marks its phases and per-item work without knowing whether anything records::

    with cost.phase("mcd", count=len(items), unit="utterance"):
        ...                                   # wall and CPU seconds of this block, in this process
    cost.work("asr", seconds, count=1, unit="utterance")  # seconds spent inside worker processes

Phases are wall-clock blocks of the stage's main process (they may nest; a nested phase is named
``outer/inner``). Work entries add up seconds measured inside worker processes, so a metric's cost per
utterance is known even when two workers share the cores. CPU time includes every child process (the
running ones read through psutil); peak memory is the largest peak resident set among this process and its
children.
"""

from __future__ import annotations

import contextlib
import contextvars
import datetime as dt
import logging
import os
import platform
import resource
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import psutil

from vc.io import write_json
from vc.layout import workspace_of
from vc.parallel import shutdown_pools

__all__ = [
    "COST_DIR",
    "EXPERIMENTS_DIR",
    "Recorder",
    "Usage",
    "cost_path",
    "host",
    "phase",
    "record",
    "work",
]

log = logging.getLogger(__name__)

#: Folder (under the repository root) of the cost files that stages write when DVC runs them.
COST_DIR = "costs"
#: Folder (under :data:`COST_DIR`) of the cost files of experiments that DVC runs in copies, one per name.
EXPERIMENTS_DIR = "exps"
#: Bump when the file layout changes; ``vc cost`` skips files of another version, saying so.
VERSION = 1


@dataclass(frozen=True)
class Usage:
    """A snapshot of this process's clocks and memory."""

    wall: float
    cpu: float
    peak_mb: float

    @classmethod
    def now(cls) -> Usage:
        own = resource.getrusage(resource.RUSAGE_SELF)
        kids = resource.getrusage(resource.RUSAGE_CHILDREN)  # children that have exited
        live_cpu, live_peak_kib = _live_descendants()
        cpu = own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime + live_cpu
        return cls(time.perf_counter(), cpu, max(own.ru_maxrss, kids.ru_maxrss, live_peak_kib) / 1024.0)


def _live_descendants() -> tuple[float, int]:
    """CPU seconds and the largest peak resident set (KiB) of this process's running descendants.

    Worker pools start their processes from a fork server (a grandchild's usage never reaches
    ``RUSAGE_CHILDREN``) and are kept for the stage's life, so the running ones are asked directly.
    """
    cpu, peak = 0.0, 0
    for proc in psutil.Process().children(recursive=True):
        with contextlib.suppress(psutil.Error, OSError, ValueError):
            times = proc.cpu_times()
            cpu += times.user + times.system
            for line in Path(f"/proc/{proc.pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    peak = max(peak, int(line.split()[1]))
    return cpu, peak


@dataclass
class Entry:
    """Accumulated seconds of one phase or one kind of work, and the items they covered."""

    name: str
    wall_s: float = 0.0
    cpu_s: float = 0.0
    calls: int = 0
    count: int = 0
    unit: str = ""


@dataclass
class Recorder:
    """The phases and work of one stage run (see the module docstring)."""

    stage: str
    start: Usage = field(default_factory=Usage.now)
    started: str = field(default_factory=lambda: dt.datetime.now(dt.UTC).isoformat(timespec="seconds"))
    phases: dict[str, Entry] = field(default_factory=dict)
    work: dict[str, Entry] = field(default_factory=dict)
    _stack: list[str] = field(default_factory=list)

    @contextlib.contextmanager
    def phase(self, name: str, count: int = 0, unit: str = "") -> Iterator[Entry]:
        full = "/".join([*self._stack, name])
        entry = self.phases.setdefault(full, Entry(full, unit=unit))
        self._stack.append(name)
        before = Usage.now()
        try:
            yield entry
        finally:
            after = Usage.now()
            self._stack.pop()
            entry.wall_s += after.wall - before.wall
            entry.cpu_s += after.cpu - before.cpu
            entry.calls += 1
            entry.count += count
            entry.unit = entry.unit or unit

    def add_work(self, name: str, seconds: float, count: int, unit: str) -> None:
        entry = self.work.setdefault(name, Entry(name, unit=unit))
        entry.wall_s += seconds
        entry.calls += 1
        entry.count += count

    def summary(self) -> dict[str, Any]:
        end = Usage.now()
        return {
            "version": VERSION,
            "stage": self.stage,
            "started": self.started,
            "wall_s": round(end.wall - self.start.wall, 3),
            "cpu_s": round(end.cpu - self.start.cpu, 3),
            "peak_mb": round(end.peak_mb, 1),
            "host": host(),
            "phases": [_rounded(e) for e in self.phases.values()],
            "work": [_rounded(e) for e in self.work.values()],
        }


def _rounded(entry: Entry) -> dict[str, Any]:
    out = asdict(entry)
    out["wall_s"], out["cpu_s"] = round(entry.wall_s, 3), round(entry.cpu_s, 3)
    return out


_CURRENT: contextvars.ContextVar[Recorder | None] = contextvars.ContextVar("vc_cost", default=None)


@contextlib.contextmanager
def phase(name: str, count: int = 0, unit: str = "") -> Iterator[Entry]:
    """Time a block as a phase of the recording stage; yields its entry (items may be counted on it inside
    the block). Nothing is recorded when no stage records (the entry is then a throwaway)."""
    recorder = _CURRENT.get()
    if recorder is None:
        yield Entry(name, unit=unit)
        return
    with recorder.phase(name, count, unit) as entry:
        yield entry


def work(name: str, seconds: float, count: int = 1, unit: str = "") -> None:
    """Add ``seconds`` spent on ``count`` items of ``name`` (e.g. measured in a worker process)."""
    recorder = _CURRENT.get()
    if recorder is not None:
        recorder.add_work(name, seconds, count, unit)


def cost_path(explicit: str | None = None) -> Path | None:
    """Where this stage's cost goes: ``explicit``; else, when DVC runs the stage, the workspace's
    ``costs/<DVC_STAGE>.json``, or ``costs/exps/<DVC_EXP_NAME>/<DVC_STAGE>.json`` when the stage runs in one
    of DVC's experiment copies (``dvc exp run --temp``, the queue): an experiment's costs never replace
    those of the workspace's outputs; else nowhere (``None``)."""
    if explicit:
        return Path(explicit)
    if os.environ.get("RANK", "0") != "0":  # torchrun: rank 0 records the job
        return None
    root, stage = os.environ.get("DVC_ROOT"), os.environ.get("DVC_STAGE")
    if not root or not stage:
        return None
    name = f"{stage.replace(os.sep, '_')}.json"
    workspace = workspace_of(root)[0]
    if not workspace_of(Path.cwd())[1]:
        return workspace / COST_DIR / name
    experiment = os.environ.get("DVC_EXP_NAME") or Path.cwd().resolve().name
    return workspace / COST_DIR / EXPERIMENTS_DIR / experiment.replace(os.sep, "_") / name


@contextlib.contextmanager
def record(stage: str, path: str | os.PathLike[str] | None) -> Iterator[Recorder]:
    """Record the block as stage ``stage``; write the summary to ``path`` if it ends without an error.

    A failed stage writes nothing (its previous cost file, describing outputs that still stand, stays). A
    cost file that cannot be written is logged and skipped: cost never fails a stage.
    """
    recorder = Recorder(stage)
    token = _CURRENT.set(recorder)
    try:
        yield recorder
    finally:
        _CURRENT.reset(token)
    if path is None:
        return
    summary = recorder.summary()  # before the kept worker pools stop: their usage is read while they run
    shutdown_pools(wait=True)
    try:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        write_json(path, summary)
    except OSError as err:
        log.warning("cost of %s not written to %s: %s", stage, path, err)
        return
    log.info("cost: %.1f s wall, %.1f s CPU, %.0f MB peak -> %s", *_headline(summary), path)


def _headline(summary: dict[str, Any]) -> tuple[float, float, float]:
    return summary["wall_s"], summary["cpu_s"], summary["peak_mb"]


def host() -> dict[str, Any]:
    """The machine a figure comes from: CPU model, whether it has AMX tiles, cores this process may use."""
    model, amx = platform.processor() or platform.machine(), False
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name") and ":" in line:
                model = line.split(":", 1)[1].strip()
            elif line.startswith("flags"):
                amx = "amx_tile" in line.split()
                break
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        cores = os.cpu_count() or 1
    return {"cpu": model, "amx": amx, "cores": cores}
