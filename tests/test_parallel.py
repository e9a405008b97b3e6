"""vc.parallel's kept worker pools: the workers of a process that is killed stop with it."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

# An item that says where it runs, then waits for a signal; on SIGTERM it writes that it stopped cleanly (as
# a training saves its checkpoint and ends its MLflow run) and raises, as the training loop does.
ITEMS = """
import os, signal, sys, time
from pathlib import Path

def nap(item):
    out = Path(os.environ["PROBE_DIR"])
    def stop(signum, frame):
        (out / f"stopped-{item}").write_text(str(os.getpid()))
        raise SystemExit(128 + signum)
    signal.signal(signal.SIGTERM, stop)
    (out / f"started-{item}").write_text(str(os.getpid()))
    time.sleep(600)
"""

OWNER = """
import logging, sys
sys.path.insert(0, sys.argv[1])
import items
from vc.parallel import parallel_map
logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
parallel_map(items.nap, list(range(6)), workers=2, progress=False)
"""


def alive(pid: int) -> bool:
    """Running, not a zombie waiting to be reaped."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state not in ("Z", "X")


def wait_for(condition, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return condition()


def test_the_workers_of_a_killed_process_stop_and_start_nothing_queued(tmp_path: Path) -> None:
    """``kill -9`` of a process in ``parallel_map`` (a stage killed alone): its two workers, busy with an item
    each and with more items queued, get SIGTERM, finish their items' handlers, exit, and start no other
    item; without the watch they would live on as orphans of the fork server and work through the queue.
    They say so in their owner's log format."""
    (tmp_path / "items.py").write_text(ITEMS)
    probe = tmp_path / "probe"
    probe.mkdir()
    log = tmp_path / "owner.log"
    with log.open("w") as stderr:
        owner = subprocess.Popen(
            [sys.executable, "-c", textwrap.dedent(OWNER), str(tmp_path)],
            env={**os.environ, "PROBE_DIR": str(probe)},
            stderr=stderr,
        )
    workers: set[int] = set()
    try:
        assert wait_for(lambda: len(list(probe.glob("started-*"))) == 2, 60), log.read_text()
        workers = {int(p.read_text()) for p in probe.glob("started-*")}
        assert len(workers) == 2 and all(alive(pid) for pid in workers)
        owner.send_signal(signal.SIGKILL)
        owner.wait(10)
        assert wait_for(lambda: not any(alive(pid) for pid in workers), 20), "workers outlived their owner"
    finally:
        owner.kill()
        for pid in workers:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    started = sorted(p.name for p in probe.glob("started-*"))
    stopped = sorted(p.name for p in probe.glob("stopped-*"))
    assert len(started) == 2, f"a worker took a queued item after its owner died: {started}"
    assert [name.replace("stopped", "started") for name in stopped] == started
    # the workers log as their owner set up logging (a fork server's child would start without it)
    assert log.read_text().count("WARNING vc.parallel: worker ") == 2, log.read_text()
