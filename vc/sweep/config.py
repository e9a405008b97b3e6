"""The ``sweep:`` section of params.yaml: defaults of ``vc sweep`` (executor, SLURM resources, folders).

No DVC stage lists these keys, so changing them re-runs nothing. They are checked here, by pydantic models
that reject unknown keys naming them, not by :mod:`vc.config` (whose :class:`vc.config.Params` only has to
accept the section). Every value can be overridden on the command line.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field

from vc.config import Section
from vc.configlib import ConfigError, build

__all__ = ["SlurmConfig", "SweepConfig", "load_sweep_config", "split_params"]


class SlurmConfig(Section):
    """``sweep.slurm``: resources of one point's SLURM job (submitit's SlurmExecutor parameters)."""

    partition: str | None = Field(None, description="SLURM partition; null: the cluster's default")
    time_min: int = Field(120, gt=0, description="time limit of one job, minutes")
    cpus_per_task: int = Field(4, ge=1, description="CPUs of one point's job")
    gpus_per_node: int = Field(0, ge=0, description="GPUs of one point's job (0: CPU training)")
    mem_gb: float = Field(16.0, gt=0, description="memory of one job, GB")
    array_parallelism: int = Field(8, ge=1, description="the most points running at once (job array %N)")
    python: str | None = Field(
        None, description="python command the jobs run (a venv's bin/python); null: the submitting one"
    )
    signal_delay_s: int = Field(
        120, ge=10, description="SIGUSR2 this many seconds before the time limit: checkpoint and requeue"
    )
    max_requeues: int = Field(3, ge=0, description="timeouts a job may be requeued after")
    setup: tuple[str, ...] = Field((), description="shell lines run before the job (module load ...)")


class SweepConfig(Section):
    """``sweep:``: where sweeps keep their state and what they share."""

    executor: Literal["local", "slurm"] = Field("local", description="local (the DVC queue) | slurm")
    jobs: int = Field(1, ge=1, description="local: DVC queue workers (dvc queue start -j)")
    state_dir: str = Field("sweeps", description="sweep state folders, relative to the repository root")
    workspaces: str | None = Field(
        None,
        description="slurm: folder of the points' repository clones (shared or node-local); "
        "null: .dvc/tmp/sweeps/<sweep> in the repository (git-ignored)",
    )
    checkpoints: str = Field(
        "checkpoints/sweeps",
        description="training checkpoints of each point, keyed by its fingerprint (a persistent folder)",
    )
    tracking_uri: str | None = Field(
        None,
        description="MLflow store every job reaches; null: the submitting checkout's (MLFLOW_TRACKING_URI "
        "or its SQLite file, which only suits jobs on one machine)",
    )
    slurm: SlurmConfig = Field(default_factory=SlurmConfig)


def split_params(data: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """A parsed params.yaml as (the science params without ``sweep``, the ``sweep`` section)."""
    if data is None:
        return {}, {}
    if not isinstance(data, dict):
        raise ConfigError("", "params must be a mapping of sections")
    rest = {k: v for k, v in data.items() if k != "sweep"}
    section = data.get("sweep") or {}
    return rest, section


def load_sweep_config(params_path: str | Path) -> SweepConfig:
    """The ``sweep`` section of a params file (defaults when the file or the section is absent)."""
    import yaml

    path = Path(params_path)
    if not path.is_file():
        return SweepConfig()
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as err:
        raise ConfigError("", f"{path}: not valid YAML ({err})") from None
    _, section = split_params(data)
    try:
        return build(SweepConfig, section, prefix="sweep")
    except ConfigError as err:
        raise ConfigError(err.key, err.message, source=str(path)) from None
