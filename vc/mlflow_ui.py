"""The MLflow UI, opened on the comparison: the pipeline's runs, flat, with the compared metrics as columns.

What MLflow 3.17's bundled UI supports (read in ``mlflow/server/js/build``), and what this module uses:

- ``workflowType=machine_learning`` in the URL picks the classic "Model training" view instead of the GenAI
  one (the UI keeps the choice in the browser's local storage, ``mlflow.workflowType_v1``);
- ``#/experiments/<id>/runs`` lands on the runs table directly (the bare experiment route redirects and
  keeps only a few URL parameters, not the view's);
- ``viewStateShareKey=<key>`` loads a saved view from the experiment tag ``mlflow.sharedViewState.<key>``:
  a JSON envelope ``{name, createdAt, updatedAt, state}`` whose ``state`` (a JSON string) holds the search
  facets (``searchFilter``, ``orderByKey``, ``orderByAsc``, ...) and the table's UI state
  (``selectedColumns``, ``columnOrder``, ``runsHiddenMode``, ...). ``runsExpanded`` is not part of a
  shared view, but the UI nests child runs under their parent only when the table is unfiltered and sorted
  by start time: the view filters out the empty parent run of each ``dvc repro`` (``vc.kind = group``) and
  sorts by MCD, so every experiment x seed run (and every baseline) is a row of its own.

:func:`publish_view` writes that tag (the project's own view; a person's saved views have other keys),
:func:`comparison_url` builds the link, :func:`serve` starts the UI with telemetry off and opens the link.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
import webbrowser
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from vc.evaluation.registry import spec
from vc.tracking import (
    TAG_EXPERIMENT,
    TAG_GROUP,
    TAG_KIND,
    TELEMETRY_OFF,
    _local_sqlite_path,
    init_tracking,
    project_root,
    tracking_uri,
    with_retry,
)

__all__ = [
    "COMPARED",
    "comparison_url",
    "main_ui_compare",
    "publish_view",
    "serve",
    "server_command",
    "server_env",
    "start_server",
    "view_state",
    "wait_until_up",
]

log = logging.getLogger(__name__)

#: The compared metrics, as registry names: MCD, CER, speaker (conversion) accuracy, predicted MOS.
COMPARED = ("mcd_db", "cer", "spk_accuracy", "dnsmos_ovrl")
#: :func:`vc.tracking.log_evaluation` logs a summary's metric ``m`` as ``eval/m``.
EVAL_PREFIX = "eval/"
#: Tag columns beside the metrics: the system, the training seed, the run's kind and its ``dvc repro``.
TAG_COLUMNS = (TAG_EXPERIMENT, "vc.seed", TAG_KIND, TAG_GROUP)
VIEW_KEY = "vc-comparison"
VIEW_NAME = "Compare systems"
SHARED_VIEW_TAG = "mlflow.sharedViewState."
WORKFLOW_TYPE = "machine_learning"
#: The filter that flattens the table: every run but the empty parent of each `dvc repro`.
RUNS_FILTER = f"tags.`{TAG_KIND}` != 'group'"


# ------------------------------------------------------------------------------------------------ view
def metric_column(metric: str) -> str:
    """The runs table's column key of a registry metric as MLflow holds it (``metrics.`eval/mcd_db```);
    an unknown metric is a KeyError naming the known ones."""
    return f"metrics.`{EVAL_PREFIX}{spec(metric).name}`"


def view_state(metrics: Sequence[str] = COMPARED) -> dict[str, Any]:
    """The saved view: flat runs (the group parents filtered out), best MCD first, the metrics then the
    tag columns, in that order, every run visible in the charts too."""
    columns = [metric_column(m) for m in metrics] + [f"tags.`{t}`" for t in TAG_COLUMNS]
    return {
        "searchFilter": RUNS_FILTER,
        "orderByKey": metric_column(metrics[0]),
        "orderByAsc": not spec(metrics[0]).higher_is_better,
        "startTime": "ALL",
        "lifecycleFilter": "Active",
        "datasetsFilter": [],
        "modelVersionFilter": "All Runs",
        "selectedColumns": columns,
        "columnOrder": columns,
        "columnWidths": {c: 150 for c in columns},
        "runsHiddenMode": "SHOW_ALL",
    }


def view_tag_value(state: Mapping[str, Any], created_ms: int, updated_ms: int, name: str = VIEW_NAME) -> str:
    """The experiment tag's value: the saved-view envelope MLflow 3.17's UI reads."""
    return json.dumps(
        {"name": name, "createdAt": created_ms, "updatedAt": updated_ms, "state": json.dumps(state)}
    )


def publish_view(
    experiment: str,
    root: str | Path | None = None,
    metrics: Sequence[str] = COMPARED,
    key: str = VIEW_KEY,
) -> str:
    """Write the project's comparison view into the MLflow ``experiment`` (created if needed) as the tag
    ``mlflow.sharedViewState.<key>``; return the experiment id. Rewriting it keeps its creation time."""
    from mlflow.tracking import MlflowClient

    exp_id = init_tracking(experiment, root)
    client = MlflowClient(tracking_uri(root))
    tag = SHARED_VIEW_TAG + key
    now = int(time.time() * 1000)
    created = now
    current = with_retry(client.get_experiment, exp_id).tags.get(tag)
    if current:
        try:
            created = int(json.loads(current)["createdAt"])
        except (ValueError, KeyError, TypeError):
            log.warning("replacing the unreadable view tag %s of experiment %s", tag, exp_id)
    with_retry(client.set_experiment_tag, exp_id, tag, view_tag_value(view_state(metrics), created, now))
    return exp_id


def comparison_url(base_url: str, experiment_id: str, key: str = VIEW_KEY) -> str:
    """The link that opens the runs table of ``experiment_id`` in the classic view on the saved view."""
    query = urlencode({"workflowType": WORKFLOW_TYPE, "viewStateShareKey": key})
    return f"{base_url.rstrip('/')}/#/experiments/{experiment_id}/runs?{query}"


def base_url(host: str, port: int | str) -> str:
    """``http://host:port`` (a wildcard bind address is reached on loopback; IPv6 in brackets)."""
    shown = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(host, host)
    return f"http://[{shown}]:{port}" if ":" in shown else f"http://{shown}:{port}"


# ---------------------------------------------------------------------------------------------- server
def server_env(base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment of a process the project starts: ``base`` (default: this one's) with telemetry
    off, whatever ``base`` says."""
    return {**(os.environ if base is None else base), **TELEMETRY_OFF}


def server_command(host: str, port: int | str, root: str | Path | None = None, workers: int = 1) -> list[str]:
    """``python -m mlflow ui`` against the project's store, as ``python -m vc.tracking ui`` runs it, with
    ``workers`` worker processes (one is plenty for one person, and starts fastest)."""
    uri = tracking_uri(root)
    cmd = [sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", uri]
    cmd += ["--host", host, "--port", str(port), "--workers", str(workers)]
    if _local_sqlite_path(uri):
        cmd += ["--default-artifact-root", (project_root(root) / "mlartifacts").as_uri()]
    return cmd


def start_server(
    host: str,
    port: int | str,
    root: str | Path | None = None,
    base_env: Mapping[str, str] | None = None,
    log_file: str | Path | None = None,
) -> subprocess.Popen:
    """Start the MLflow UI (:func:`server_command`) with :func:`server_env`, in its own process group so
    that :func:`stop_server` ends its workers too; its output goes to ``log_file`` (default: inherited)."""
    out = open(log_file, "ab") if log_file else None  # noqa: SIM115 (the child keeps it)
    try:
        return subprocess.Popen(
            server_command(host, port, root),
            env=server_env(base_env),
            stdout=out,
            stderr=subprocess.STDOUT if out else None,
            start_new_session=True,
        )
    finally:
        if out:
            out.close()


def wait_until_up(url: str, process: subprocess.Popen | None = None, timeout: float = 120.0) -> float:
    """Poll ``url``/health until the server answers; return the seconds it took. RuntimeError if the
    process exits first, TimeoutError after ``timeout`` seconds."""
    start = time.monotonic()
    while True:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"the MLflow UI exited with status {process.returncode} before answering")
        try:
            with urllib.request.urlopen(f"{url.rstrip('/')}/health", timeout=2) as answer:
                if answer.status == 200:
                    return time.monotonic() - start
        except (urllib.error.URLError, OSError):
            pass
        if time.monotonic() - start > timeout:
            raise TimeoutError(f"the MLflow UI did not answer at {url} within {timeout:.0f} s")
        time.sleep(0.2)


def stop_server(process: subprocess.Popen, timeout: float = 10.0) -> None:
    """SIGTERM to the server's process group (the server and its workers), SIGKILL if it lingers."""
    if process.poll() is not None:
        return
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout)
    except ProcessLookupError:
        pass


def _open_browser(url: str) -> bool:
    """Open ``url`` where this session has a browser (a desktop, or ``BROWSER`` set); never fail."""
    try:
        webbrowser.get()
    except webbrowser.Error:
        return False
    return webbrowser.open(url)


def serve(
    host: str,
    port: int | str,
    experiment: str,
    root: str | Path | None = None,
    open_browser: bool = True,
) -> int:
    """Publish the comparison view, start the UI, print its link once it answers (and open it where a
    browser exists), then run until the server ends or Ctrl-C; return the server's exit status."""
    os.environ.update(TELEMETRY_OFF)  # this process talks to the store too
    exp_id = publish_view(experiment, root)
    url = comparison_url(base_url(host, port), exp_id)
    process = start_server(host, port, root)
    try:
        seconds = wait_until_up(base_url(host, port), process)
        log.info("MLflow UI up after %.1f s", seconds)
        sys.stdout.write(f"MLflow UI, runs compared: {url}\n")
        sys.stdout.flush()
        if open_browser and not _open_browser(url):
            log.info("no browser found here; open the link above")
        return process.wait()
    except KeyboardInterrupt:
        return 0
    finally:
        stop_server(process)


def main_ui_compare(
    host: str, port: int | str, experiment: str, root: str | Path | None, url_only: bool, open_browser: bool
) -> int:
    """``python -m vc.tracking ui-compare``: :func:`serve`, or with ``url_only`` publish the view and
    print the link only (for a server that runs already, or a screenshot script)."""
    os.environ.update(TELEMETRY_OFF)
    if not url_only:
        return serve(host, port, experiment, root, open_browser)
    url = comparison_url(base_url(host, port), publish_view(experiment, root))
    sys.stdout.write(url + "\n")
    return 0
