"""MLflow tracking that survives DVC experiment workspaces, parallel queue workers and interruptions.

Where runs go:

- ``MLFLOW_TRACKING_URI`` when set (a tracking server for teams, or any store MLflow accepts);
- otherwise a SQLite database ``mlflow.db`` and an artifact folder ``mlartifacts/`` at the repository root,
  by absolute path. ``dvc exp run`` runs stages in temporary copies under ``.dvc/tmp/exps/`` that are
  deleted afterwards, so the root is taken from ``DVC_ROOT`` and, inside such a copy, the repository that
  holds it (:func:`project_root`).

Concurrency: the database schema and the MLflow experiment are created once under a file lock
(:func:`init_tracking`, also ``python -m vc.tracking init``), SQLite runs in WAL mode, and every write is
retried with backoff when the store answers "database is locked" or is briefly unreachable.

Run it as ``python -m vc.tracking init|ui``.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlparse

from filelock import FileLock

import vc
from vc.errors import InputError
from vc.layout import workspace_of

if TYPE_CHECKING:
    from vc.config import Params

__all__ = ["RunTracker", "group_tag", "init_tracking", "log_evaluation", "project_root", "tracking_uri"]

log = logging.getLogger(__name__)
T = TypeVar("T")

#: MLflow's usage telemetry, off in every process of the project (MLflow reads these at each event). Every
#: process that talks to MLflow imports this module first (``mlflow`` is imported inside its functions).
TELEMETRY_OFF = {"MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "true"}
os.environ.update(TELEMETRY_OFF)

ENV_URI = "MLFLOW_TRACKING_URI"
TAG_EXPERIMENT = "vc.experiment"
TAG_GROUP = "vc.group"
TAG_DVC_EXP = "dvc.exp_name"
TAG_KIND = "vc.kind"
TAG_STAGE = "vc.stage"
TAG_VERSION = "vc.version"
TAG_COMMIT = "mlflow.source.git.commit"


# ------------------------------------------------------------------------------------------- locations
def project_root(start: str | Path | None = None) -> Path:
    """The repository root that outlives DVC's temporary experiment copies."""
    return workspace_of(start or os.environ.get("DVC_ROOT") or Path.cwd())[0]


def tracking_uri(root: str | Path | None = None) -> str:
    """``MLFLOW_TRACKING_URI``, else ``sqlite:///<root>/mlflow.db`` (absolute)."""
    env = os.environ.get(ENV_URI)
    if env:
        return env
    return f"sqlite:///{project_root(root) / 'mlflow.db'}"


def _local_sqlite_path(uri: str) -> Path | None:
    if not uri.startswith("sqlite:///"):
        return None
    return Path(urlparse(uri).path)


def artifact_location(root: str | Path | None = None) -> str | None:
    """Where a new experiment keeps artifacts: ``<root>/mlartifacts`` for the local store; the server decides
    otherwise (``--artifacts-destination`` / ``--default-artifact-root``)."""
    if os.environ.get(ENV_URI) and not _local_sqlite_path(os.environ[ENV_URI]):
        return None
    return (project_root(root) / "mlartifacts").as_uri()


# --------------------------------------------------------------------------------------------- retries
def _transient(err: BaseException) -> bool:
    text = str(err).lower()
    return any(
        s in text
        for s in (
            "database is locked",
            "temporarily_unavailable",
            "connection",
            "timed out",
            "503",
            "502",
            "504",
            "max retries",
        )
    )


def with_retry(fn: Callable[..., T], *args: Any, attempts: int = 8, **kwargs: Any) -> T:
    """Call ``fn``; retry transient store errors (SQLite locks, an unreachable server) with backoff.

    Kept by hand because MLflow retries only its HTTP requests (``MLFLOW_HTTP_REQUEST_MAX_RETRIES``), not
    the SQLAlchemy store's "database is locked", which parallel queue workers on one SQLite file do hit.
    """
    for attempt in range(attempts):
        try:
            return fn(*args, **kwargs)
        except Exception as err:
            if attempt == attempts - 1 or not _transient(err):
                raise
            delay = min(10.0, 0.2 * 2**attempt)
            log.warning("MLflow store busy (%s); retrying in %.1f s", str(err).splitlines()[0][:120], delay)
            time.sleep(delay)
    raise AssertionError("unreachable")


# ------------------------------------------------------------------------------------------------ init
def init_tracking(experiment: str, root: str | Path | None = None) -> str:
    """Create the store's schema and the MLflow ``experiment`` if needed; return the experiment id.

    Safe to call from parallel processes: creation happens under a file lock beside the SQLite database.
    """
    from mlflow.tracking import MlflowClient

    uri = tracking_uri(root)
    db = _local_sqlite_path(uri)
    lock: contextlib.AbstractContextManager = contextlib.nullcontext()
    if db is not None:
        db.parent.mkdir(parents=True, exist_ok=True)
        lock = FileLock(str(db) + ".lock", timeout=300)
    with lock:
        if db is not None:
            with contextlib.closing(sqlite3.connect(db, timeout=30)) as con:
                con.execute("PRAGMA journal_mode=WAL")  # persistent: readers never block the writer
        client = MlflowClient(uri)  # creates or upgrades-checks the schema
        exp = with_retry(client.get_experiment_by_name, experiment)
        if exp is None:
            return with_retry(client.create_experiment, experiment, artifact_location=artifact_location(root))
        if exp.lifecycle_stage == "deleted":
            with_retry(client.restore_experiment, exp.experiment_id)
        return exp.experiment_id


# ------------------------------------------------------------------------------------------------ tags
def git_commit(cwd: str | Path | None = None) -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, timeout=10, check=True
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def group_tag(params_text: str, commit: str | None) -> str:
    """What makes one ``dvc repro`` recognisable: the DVC experiment name, else the commit and params hash."""
    dvc_exp = os.environ.get("DVC_EXP_NAME")
    if dvc_exp:
        return dvc_exp
    import hashlib

    digest = hashlib.sha256(params_text.encode()).hexdigest()[:8]
    return f"repro-{(commit or 'nogit')[:8]}-{digest}"


# ------------------------------------------------------------------------------------------------- run
class RunTracker:
    """One MLflow run. Every write goes through :func:`with_retry`; metrics are sent in batches."""

    def __init__(self, run_id: str, uri: str) -> None:
        from mlflow.tracking import MlflowClient

        self.run_id = run_id
        self.uri = uri
        self.client = MlflowClient(uri)
        self._system_metrics = False  # whether this process's active MLflow run is this one
        self.reattached = False  # whether resume() reopened this run (it already holds its earlier metrics)

    # -- lifecycle
    @classmethod
    def start(
        cls,
        experiment: str,
        run_name: str,
        *,
        tags: Mapping[str, str] | None = None,
        params: Mapping[str, Any] | None = None,
        parent_group: str | None = None,
        root: str | Path | None = None,
        system_metrics: bool = True,
    ) -> RunTracker:
        """Create a run in ``experiment`` (created if needed), optionally under the group's parent run."""
        from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID

        uri = tracking_uri(root)
        exp_id = init_tracking(experiment, root)
        tags = dict(tags or {})
        if parent_group:
            tags[MLFLOW_PARENT_RUN_ID] = _group_parent(uri, exp_id, parent_group)
            tags[TAG_GROUP] = parent_group
        if os.environ.get("DVC_EXP_NAME"):
            tags[TAG_DVC_EXP] = os.environ["DVC_EXP_NAME"]
        from mlflow.tracking import MlflowClient

        run = with_retry(MlflowClient(uri).create_run, exp_id, run_name=run_name, tags=tags)
        tracker = cls(run.info.run_id, uri)
        if params:
            tracker.log_params(params)
        if system_metrics:
            tracker._start_system_metrics()
        log.info("MLflow run %s (%s) in experiment '%s' at %s", tracker.run_id, run_name, experiment, uri)
        return tracker

    @classmethod
    def for_stage(
        cls,
        params: Params,
        stage: str,
        run_name: str,
        params_path: str | Path,
        *,
        kind: str,
        system: str | None = None,
        tags: Mapping[str, str] | None = None,
        run_params: Mapping[str, Any] | None = None,
        system_metrics: bool = True,
        root: str | Path | None = None,
    ) -> RunTracker:
        """The run of DVC stage ``stage`` in the MLflow experiment ``params.tracking.experiment``, under the
        parent run of this ``dvc repro`` (:func:`group_tag` of the params file's text and the commit).

        Its tags are those every stage's run carries: ``vc.stage``, ``vc.kind`` (``kind``: experiment,
        baseline, vocoder), ``vc.experiment`` (the system's name, ``system``, where there is one), the git
        commit and the package version; ``tags`` adds others. ``run_params`` are logged as MLflow params.
        """
        commit = git_commit()
        standard = {TAG_STAGE: stage, TAG_KIND: kind, TAG_COMMIT: commit or "", TAG_VERSION: vc.__version__}
        if system is not None:
            standard[TAG_EXPERIMENT] = system
        return cls.start(
            params.tracking.experiment,
            run_name,
            tags={**standard, **(tags or {})},
            params=run_params,
            parent_group=group_tag(Path(params_path).read_text(encoding="utf-8"), commit),
            root=root,
            system_metrics=system_metrics,
        )

    @classmethod
    def resume(cls, run_id: str, root: str | Path | None = None) -> RunTracker:
        """Reopen a run (conversion and evaluation log into their training run)."""
        tracker = cls(run_id, tracking_uri(root))
        with_retry(tracker.client.update_run, run_id, status="RUNNING")
        tracker.reattached = True
        return tracker

    def _start_system_metrics(self) -> None:
        """CPU, memory, disk (and GPU) usage, by MLflow's public monitor (every 10 s, or
        ``MLFLOW_SYSTEM_METRICS_SAMPLING_INTERVAL``): the run becomes the process's active run with
        ``log_system_metrics=True``; :meth:`end` ends it."""
        import mlflow

        try:
            mlflow.set_tracking_uri(self.uri)
            with_retry(mlflow.start_run, run_id=self.run_id, log_system_metrics=True)
            self._system_metrics = True
        except Exception as err:  # system metrics are a convenience; never fail training for them
            log.warning("system metrics disabled: %s", err)
            self._system_metrics = False

    def end(self, status: str = "FINISHED") -> None:
        """Terminate the run: ``FINISHED``, ``FAILED`` or ``KILLED``."""
        if self._system_metrics:
            import mlflow

            mlflow.end_run(status=status)  # stops the monitor (and terminates the run)
            self._system_metrics = False
        with_retry(self.client.set_terminated, self.run_id, status=status)

    # -- data
    def log_params(self, params: Mapping[str, Any]) -> None:
        from mlflow.entities import Param

        items = [Param(k, _param_value(v)) for k, v in params.items()]
        for i in range(0, len(items), 100):
            with_retry(self.client.log_batch, self.run_id, params=items[i : i + 100])

    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        self.log_metric_rows([(step, dict(metrics))])

    def log_metric_rows(self, rows: list[tuple[int | None, Mapping[str, float]]]) -> None:
        """Log many ``(step, {name: value})`` rows in a few batched writes."""
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        items = [Metric(k, float(v), now, step or 0) for step, row in rows for k, v in row.items()]
        for i in range(0, len(items), 1000):
            with_retry(self.client.log_batch, self.run_id, metrics=items[i : i + 1000])

    def set_tags(self, tags: Mapping[str, Any]) -> None:
        from mlflow.entities import RunTag

        with_retry(self.client.log_batch, self.run_id, tags=[RunTag(k, str(v)) for k, v in tags.items()])

    def log_artifact(self, path: str | Path, artifact_path: str | None = None) -> None:
        with_retry(self.client.log_artifact, self.run_id, str(path), artifact_path)

    def log_artifacts(self, folder: str | Path, artifact_path: str | None = None) -> None:
        with_retry(self.client.log_artifacts, self.run_id, str(folder), artifact_path)

    @contextlib.contextmanager
    def terminate_on_exit(self) -> Iterator[RunTracker]:
        """End the run FINISHED on success, KILLED on interruption, FAILED on error."""
        try:
            yield self
        except (KeyboardInterrupt, SystemExit) as err:
            self.end("KILLED" if not isinstance(err, SystemExit) or err.code not in (0, None) else "FINISHED")
            raise
        except BaseException:
            self.end("FAILED")
            raise
        self.end("FINISHED")


def log_evaluation(
    tracker: RunTracker, summary: Mapping[str, Any], files: list[tuple[str | Path, str]]
) -> None:
    """Evaluation metrics under names shared by every system (``eval/mcd_db``, ``eval/mcd_db_ci_low``, ...,
    ``eval/spk_sim_target``, ``eval/cer``, ``eval/dnsmos_ovrl``, ...), the per-pair table, and ``files`` as
    ``(path, artifact folder)`` pairs (samples, plots, scores). The perceptual metrics' provenance and the
    skipped ones become tags (``vc.perceptual.intelligibility.sha256``, ``vc.perceptual.skipped.<name>``)."""
    import pandas as pd

    overall = {f"eval/{k}": float(v) for k, v in summary["overall"].items() if isinstance(v, int | float)}
    tracker.log_metrics(overall)
    perceptual = summary.get("perceptual")
    if perceptual is not None:
        tags = {"vc.perceptual.metrics": ",".join(perceptual["metrics"]) or "none"}
        tags.update({f"vc.perceptual.skipped.{m}": why for m, why in perceptual["skipped"].items()})
        for metric, provenance in perceptual["provenance"].items():
            tags.update({f"vc.perceptual.{metric}.{k}": v for k, v in provenance.items() if v})
        tracker.set_tags(tags)
    pairs = pd.DataFrame(summary["pairs"])
    with_retry(tracker.client.log_table, tracker.run_id, data=pairs, artifact_file="eval/per_pair.json")
    for path, folder in files:
        tracker.log_artifact(path, folder)


def _param_value(value: Any) -> str:
    text = str(value)
    return text if len(text) <= 6000 else text[:5997] + "..."


def _group_parent(uri: str, exp_id: str, group: str) -> str:
    """The id of the group's parent run (a finished, empty run named after the group), created once."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(uri)
    db = _local_sqlite_path(uri)
    lock = FileLock(str(db) + ".lock", timeout=300) if db else contextlib.nullcontext()
    with lock:
        found = with_retry(
            client.search_runs,
            [exp_id],
            filter_string=f"tags.`{TAG_GROUP}` = '{group}' and tags.`{TAG_KIND}` = 'group'",
            max_results=1,
        )
        if found:
            return found[0].info.run_id
        tags = {TAG_GROUP: group, TAG_KIND: "group"}
        if os.environ.get("DVC_EXP_NAME"):
            tags[TAG_DVC_EXP] = os.environ["DVC_EXP_NAME"]
        run = with_retry(client.create_run, exp_id, run_name=group, tags=tags)
        with_retry(client.set_terminated, run.info.run_id, status="FINISHED")
        return run.info.run_id


# ------------------------------------------------------------------------------------------------- CLI
def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m vc.tracking", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--params",
        default="params.yaml",
        help="params file, relative to the project root (default: params.yaml)",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    init = sub.add_parser("init", help="create the tracking store's schema and the MLflow experiment")
    init.add_argument("--experiment", default=None, help="default: tracking.experiment of the params file")
    ui = sub.add_parser("ui", help="start the MLflow UI against the project's tracking store")
    ui.add_argument("--host", default="127.0.0.1", help="bind address (default 127.0.0.1: this machine only)")
    ui.add_argument("--port", default="5000")
    compare = sub.add_parser(
        "ui-compare",
        help="start the MLflow UI and print (and open, where a browser exists) the link to the runs compared",
    )
    compare.add_argument(
        "--host", default="127.0.0.1", help="bind address (default 127.0.0.1: this machine only)"
    )
    compare.add_argument("--port", default="5000")
    compare.add_argument("--url-only", action="store_true", help="only save the view and print the link")
    compare.add_argument("--no-browser", action="store_true", help="print the link, open no browser")
    args = parser.parse_args(argv)
    logging.basicConfig(level="INFO", format="%(levelname)s %(name)s: %(message)s")
    root = project_root()
    try:
        name = getattr(args, "experiment", None) or _tracking_experiment(root / args.params)
    except InputError as err:
        log.error("%s", err)
        sys.exit(2)
    exp_id = init_tracking(name, root)
    if args.command == "init":
        log.info("tracking store %s ready; experiment '%s' has id %s", tracking_uri(root), name, exp_id)
        return
    if args.command == "ui-compare":
        from vc.mlflow_ui import main_ui_compare

        sys.exit(main_ui_compare(args.host, args.port, name, root, args.url_only, not args.no_browser))
    cmd = [
        sys.executable,
        "-m",
        "mlflow",
        "ui",
        "--backend-store-uri",
        tracking_uri(root),
        "--host",
        args.host,
        "--port",
        str(args.port),
    ]
    if _local_sqlite_path(tracking_uri(root)):
        cmd += ["--default-artifact-root", (root / "mlartifacts").as_uri()]
    log.info("MLflow UI at http://%s:%s", args.host, args.port)
    os.execv(sys.executable, cmd)


def _tracking_experiment(params_path: Path) -> str:
    """``tracking.experiment`` of the params file, validated as every stage validates it (a typo anywhere
    is an error); without a params file, the config's default."""
    from vc.config import load_params, load_params_file

    return (load_params_file(params_path) if params_path.is_file() else load_params({})).tracking.experiment


if __name__ == "__main__":
    main()
