"""A private single-node SLURM cluster for tests: munged, slurmctld and slurmd on loopback ports.

Everything lives under one temporary folder (config, munge key, sockets, state, spool, logs); the daemons run
in the foreground of their own processes and are stopped by process id. Clients find the cluster through
``SLURM_CONF``, which the :func:`slurm_cluster` fixture sets for the session (submitit's ``sbatch`` calls and
jobs inherit it). Needs Debian's ``slurm-wlm`` and ``munge`` (``make test`` installs them when it runs as
root); without them the fixture skips, saying so. The daemons must run as root to start jobs as the
submitting user, so the fixture also skips when not root.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

BINARIES = ("munged", "slurmctld", "slurmd", "sbatch", "sinfo", "squeue", "scontrol", "scancel")


@dataclass
class SlurmCluster:
    """A running test cluster: its folder, config path, node name and the daemons' processes."""

    root: Path
    conf: Path
    node: str
    cpus: int
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)

    @property
    def env(self) -> dict[str, str]:
        """The environment of a SLURM client of this cluster."""
        return {**os.environ, "SLURM_CONF": str(self.conf)}

    def run(self, *cmd: str, check: bool = True, timeout: float = 30) -> subprocess.CompletedProcess:
        """Run a SLURM client command against this cluster."""
        return subprocess.run(cmd, env=self.env, capture_output=True, text=True, check=check, timeout=timeout)

    def sbatch(self, script: str, *args: str) -> str:
        """Submit a batch ``script`` (its text); return the job id."""
        path = self.root / f"job-{time.monotonic_ns()}.sh"
        path.write_text(script, encoding="utf-8")
        out = self.run("sbatch", "--parsable", *args, str(path)).stdout.strip()
        return out.split(";")[0]

    def job_state(self, job_id: str) -> str:
        """The job's state (PENDING, RUNNING, COMPLETED, ...) as ``scontrol show job`` reports it; "" once
        the controller has forgotten it."""
        res = self.run("scontrol", "-o", "show", "job", job_id, check=False)
        for item in res.stdout.split():
            if item.startswith("JobState="):
                return item.split("=", 1)[1]
        return ""

    def wait_state(self, job_id: str, states: tuple[str, ...], timeout: float = 30) -> str:
        """Poll until the job is in one of ``states``; return it (AssertionError after ``timeout``)."""
        deadline = time.monotonic() + timeout
        state = ""
        while time.monotonic() < deadline:
            state = self.job_state(job_id)
            if state in states:
                return state
            time.sleep(0.2)
        raise AssertionError(f"job {job_id} is {state or 'gone'}, not {states}, after {timeout} s")

    def cancel_all(self, timeout: float = 15) -> None:
        """Cancel every job of the cluster and wait until none is left running (their slurmstepd exit)."""
        if self.processes.get("slurmctld") is None or self.processes["slurmctld"].poll() is not None:
            return
        jobs = self.run("squeue", "-h", "-o", "%i", check=False, timeout=10).stdout.split()
        if jobs:
            self.run("scancel", *jobs, check=False, timeout=10)
        deadline = time.monotonic() + timeout
        while jobs and time.monotonic() < deadline:
            jobs = self.run("squeue", "-h", "-o", "%i", check=False, timeout=10).stdout.split()
            time.sleep(0.2)

    def stop(self) -> None:
        """Cancel the jobs, then stop every daemon by process id (SIGTERM, then SIGKILL), slurmd first."""
        self.cancel_all()
        for name in ("slurmd", "slurmctld", "munged"):
            proc = self.processes.pop(name, None)
            if proc is None or proc.poll() is not None:
                continue
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)


#: Set to 1 (``.ci/run`` does) to make a missing SLURM fail the tests instead of skipping them.
REQUIRED_ENV = "VC_SLURM_REQUIRED"


def missing_reason() -> str | None:
    """Why a cluster cannot start here, or None."""
    absent = [b for b in BINARIES if shutil.which(b) is None and not Path("/usr/sbin", b).exists()]
    if absent:
        return (
            f"SLURM test cluster needs Debian's slurm-wlm and munge (missing: {', '.join(absent)}); "
            "`make test` installs them with apt when run as root"
        )
    if os.geteuid() != 0:
        return "SLURM test cluster: slurmd must run as root to start jobs"
    return None


def _binary(name: str) -> str:
    return shutil.which(name) or str(Path("/usr/sbin", name))


def free_port() -> int:
    """A TCP port free on the loopback interface now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def machine_memory_mb() -> int:
    """The machine's memory in MB (what slurmd reports as RealMemory), less a margin."""
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return max(256, int(line.split()[1]) // 1024 - 256)
    return 1024


def write_config(root: Path, node: str, cpus: int) -> Path:
    """slurm.conf of a one-node cluster on loopback, state and logs under ``root``."""
    ctld_port, node_port = free_port(), free_port()
    conf = root / "slurm.conf"
    lines = [
        "ClusterName=vctest",
        f"SlurmctldHost={node}(127.0.0.1)",
        f"SlurmctldPort={ctld_port}",
        f"SlurmdPort={node_port}",
        "SlurmUser=root",
        "SlurmdUser=root",
        "AuthType=auth/munge",
        "CredType=cred/munge",
        # cred_expire also bounds how long a requeued job waits before it may start again (default 120 s)
        f"AuthInfo=socket={root / 'munge' / 'munge.socket'},cred_expire=5",
        f"StateSaveLocation={root / 'state'}",
        f"SlurmdSpoolDir={root / 'spool' / '%n'}",
        f"SlurmctldPidFile={root / 'run' / 'slurmctld.pid'}",
        f"SlurmdPidFile={root / 'run' / 'slurmd.pid'}",
        f"SlurmctldLogFile={root / 'log' / 'slurmctld.log'}",
        f"SlurmdLogFile={root / 'log' / 'slurmd.log'}",
        "SlurmctldDebug=info",
        "SlurmdDebug=info",
        "ProctrackType=proctrack/linuxproc",
        "TaskPlugin=task/none",
        "MpiDefault=none",
        "SwitchType=switch/none",
        "SchedulerType=sched/builtin",
        "SchedulerParameters=sched_interval=1",
        "SelectType=select/cons_tres",
        "SelectTypeParameters=CR_Core_Memory",
        "AccountingStorageType=accounting_storage/none",
        "JobCompType=jobcomp/none",
        "JobAcctGatherType=jobacct_gather/none",
        "ReturnToService=2",
        "KillWait=5",
        "MinJobAge=600",
        "InactiveLimit=0",
        "MessageTimeout=5",
        "SlurmdTimeout=30",
        "JobRequeue=1",
        f"NodeName={node} NodeAddr=127.0.0.1 CPUs={cpus} RealMemory={machine_memory_mb()} State=UNKNOWN",
        f"PartitionName=debug Nodes={node} Default=YES MaxTime=INFINITE State=UP OverSubscribe=NO",
    ]
    conf.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return conf


def _start_munge(root: Path) -> subprocess.Popen:
    """munged with its own key, socket, pid, log and seed files (it refuses group/world-writable folders)."""
    mdir = root / "munge"  # the socket's folder: munged wants it searchable by everyone
    mdir.mkdir()
    mdir.chmod(0o755)
    kdir = root / "munge-key"  # the key's: private
    kdir.mkdir(mode=0o700)
    key = kdir / "munge.key"
    key.write_bytes(os.urandom(1024))
    key.chmod(0o600)
    cmd = [
        _binary("munged"),
        "--foreground",
        f"--key-file={key}",
        f"--socket={mdir / 'munge.socket'}",
        f"--pid-file={mdir / 'munged.pid'}",
        f"--log-file={mdir / 'munged.log'}",
        f"--seed-file={mdir / 'munged.seed'}",
        "--num-threads=2",
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _wait_for((mdir / "munge.socket").exists, proc, "munged", mdir / "munged.log")
    return proc


def _wait_for(ready, proc: subprocess.Popen, name: str, log: Path, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if ready():
            return
        if proc.poll() is not None:
            text = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
            raise RuntimeError(f"{name} exited with {proc.returncode}: {err}\n{text}")
        time.sleep(0.1)
    raise RuntimeError(f"{name} did not become ready in {timeout} s (log: {log})")


def start_cluster(root: Path) -> SlurmCluster:
    """Start munged, slurmctld and slurmd under ``root``; return when the node is idle."""
    root.mkdir(parents=True, exist_ok=True)
    root.chmod(0o755)  # munged requires its socket folder's parents to be searchable by all
    for sub in ("state", "spool", "run", "log"):
        (root / sub).mkdir(mode=0o700)
    node = socket.gethostname().split(".")[0]
    cpus = os.cpu_count() or 1
    cluster = SlurmCluster(root, write_config(root, node, cpus), node, cpus)
    env = cluster.env
    try:
        cluster.processes["munged"] = _start_munge(root)
        ctld = [_binary("slurmctld"), "-D", "-i", "-f", str(cluster.conf)]
        cluster.processes["slurmctld"] = subprocess.Popen(
            ctld, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        slurmd = [_binary("slurmd"), "-D", "-N", node, "-f", str(cluster.conf)]
        cluster.processes["slurmd"] = subprocess.Popen(
            slurmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        _wait_for(
            lambda: _node_idle(cluster), cluster.processes["slurmd"], "slurmd", root / "log" / "slurmd.log"
        )
    except BaseException:
        cluster.stop()
        raise
    return cluster


def _node_idle(cluster: SlurmCluster) -> bool:
    if cluster.processes["slurmctld"].poll() is not None:
        log = cluster.root / "log" / "slurmctld.log"
        raise RuntimeError(
            f"slurmctld exited: {log.read_text(errors='replace')[-2000:] if log.exists() else ''}"
        )
    res = cluster.run("sinfo", "-h", "-N", "-o", "%T", check=False, timeout=10)
    return res.returncode == 0 and res.stdout.strip().startswith("idle")


@pytest.fixture(scope="session")
def slurm_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SlurmCluster]:
    """A running private cluster for the session; ``SLURM_CONF`` points at it while it runs."""
    reason = missing_reason()
    if reason and os.environ.get(REQUIRED_ENV) == "1":  # CI (.ci/run): the SLURM tests must run
        pytest.fail(f"{REQUIRED_ENV}=1: {reason}")
    if reason:
        pytest.skip(reason)
    # Not under pytest's basetemp: munged requires every folder above its socket to be searchable by all
    # (pytest's are 0700), and the socket path must be short (sockaddr_un holds 108 bytes).
    del tmp_path_factory
    root = Path(tempfile.mkdtemp(prefix="vc-slurm-"))
    root.chmod(0o755)
    try:
        cluster = start_cluster(root / "c")
    except BaseException:
        shutil.rmtree(root, ignore_errors=True)
        raise
    old = os.environ.get("SLURM_CONF")
    os.environ["SLURM_CONF"] = str(cluster.conf)
    try:
        yield cluster
    finally:
        cluster.stop()
        if old is None:
            os.environ.pop("SLURM_CONF", None)
        else:
            os.environ["SLURM_CONF"] = old
        shutil.rmtree(root, ignore_errors=True)
