"""The MLflow UI link: the saved view it relies on, telemetry off in what the project starts, and, in a real
browser against a real server, the runs table with the compared metrics as columns and every child run
visible without expanding its parent."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from vc.mlflow_ui import (
    COMPARED,
    EVAL_PREFIX,
    SHARED_VIEW_TAG,
    TELEMETRY_OFF,
    VIEW_KEY,
    base_url,
    comparison_url,
    metric_column,
    publish_view,
    server_env,
    start_server,
    stop_server,
    view_state,
    wait_until_up,
)
from vc.tracking import RunTracker, init_tracking, log_evaluation

# MLflow 3.17's log_table on pandas 3 (a dependency's deprecation, not this project's)
pytestmark = pytest.mark.filterwarnings("ignore:For backward compatibility, 'str' dtypes")

ROOT = Path(__file__).resolve().parents[1]
EXPERIMENT = "vc-ui-test"
GROUP = "repro-test"
SYSTEMS = {"stargan-vc2": 7.0, "stargan-vc": 8.0}  # experiment -> MCD of seed 0
SEEDS = (0, 1)
#: What makes MLflow switch telemetry off by itself (pytest, CI): removed from the server's base
#: environment, so only what the project sets can switch it off.
AUTOMATIC_OFF = ("PYTEST_CURRENT_TEST", "CI", "GITHUB_ACTIONS", "GITLAB_CI", "JENKINS_URL", "BUILDKITE")


def _summary(mcd: float) -> dict[str, Any]:
    overall = {"mcd_db": mcd, "cer": mcd / 20, "spk_accuracy": 0.5, "dnsmos_ovrl": 2.5, "wer": 0.4, "n": 8}
    return {"overall": overall, "pairs": [{"source": "a", "target": "b", "mcd_db": mcd}]}


def _log_runs(root: Path) -> dict[str, str]:
    """The pipeline's shape, logged by the project's own code: one parent run per `dvc repro` (the group),
    a child run per experiment x seed and per baseline, each with ``log_evaluation``'s metrics."""
    runs = {}
    for system, mcd in SYSTEMS.items():
        for seed in SEEDS:
            tags = {"vc.kind": "experiment", "vc.experiment": system, "vc.seed": str(seed)}
            tracker = RunTracker.start(
                EXPERIMENT, f"{system}-{seed}", tags=tags, parent_group=GROUP, root=root, system_metrics=False
            )
            log_evaluation(tracker, _summary(mcd + seed / 10), [])
            tracker.end()
            runs[f"{system}-{seed}"] = tracker.run_id
    tags = {"vc.kind": "baseline", "vc.experiment": "mean-var"}
    tracker = RunTracker.start(
        EXPERIMENT, "baseline:mean-var", tags=tags, parent_group=GROUP, root=root, system_metrics=False
    )
    log_evaluation(tracker, _summary(9.0), [])
    tracker.end()
    runs["baseline:mean-var"] = tracker.run_id
    return runs


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A project root with its SQLite store, the runs above and the published view, and (where the browser
    tests can run) the project's MLflow UI starting on a free loopback port meanwhile, from an environment
    without any of the variables that would switch telemetry off without the project."""
    from browser import browser_missing, free_port

    root = tmp_path_factory.mktemp("project")
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("MLFLOW_TRACKING_URI", raising=False)
        mp.delenv("DVC_EXP_NAME", raising=False)
        start = time.monotonic()
        init_tracking(EXPERIMENT, root)  # the schema first: the server never creates it at the same time
        port, process = free_port(), None
        if browser_missing() is None:
            base = {k: v for k, v in os.environ.items() if k not in TELEMETRY_OFF and k not in AUTOMATIC_OFF}
            log_file = root / "mlflow-ui.log"
            process = start_server("127.0.0.1", port, root, base_env=base, log_file=log_file)
        try:
            runs = _log_runs(root)
            exp_id = publish_view(EXPERIMENT, root)
            yield {
                "root": root,
                "runs": runs,
                "experiment_id": exp_id,
                "process": process,
                "url": base_url("127.0.0.1", port),
                "started": start,
            }
        finally:
            if process is not None:
                stop_server(process)


def test_the_view_names_the_metrics_as_log_evaluation_logs_them(project: dict[str, Any]) -> None:
    from mlflow.tracking import MlflowClient

    client = MlflowClient(f"sqlite:///{project['root'] / 'mlflow.db'}")
    logged = client.get_run(project["runs"]["stargan-vc-1"]).data.metrics
    assert {EVAL_PREFIX + m for m in COMPARED} <= set(logged)
    assert logged[f"{EVAL_PREFIX}mcd_db"] == pytest.approx(8.1)
    state = view_state()
    assert state["selectedColumns"][:4] == [f"metrics.`eval/{m}`" for m in COMPARED]
    assert state["orderByKey"] == "metrics.`eval/mcd_db`" and state["orderByAsc"] is True
    assert "runsExpanded" not in state  # not part of a shared view in MLflow 3.17: the filter flattens
    with pytest.raises(KeyError, match="unknown metric 'mcd'"):
        metric_column("mcd")
    tag = client.get_experiment(project["experiment_id"]).tags[SHARED_VIEW_TAG + VIEW_KEY]
    envelope = json.loads(tag)
    assert json.loads(envelope["state"]) == state and isinstance(envelope["createdAt"], int)
    # published again: the same view, its creation time kept
    assert publish_view(EXPERIMENT, project["root"]) == project["experiment_id"]
    again = json.loads(client.get_experiment(project["experiment_id"]).tags[SHARED_VIEW_TAG + VIEW_KEY])
    assert again["createdAt"] == envelope["createdAt"]
    url = comparison_url(base_url("0.0.0.0", 5001), "7")
    assert (
        url
        == "http://127.0.0.1:5001/#/experiments/7/runs?workflowType=machine_learning&viewStateShareKey=vc-comparison"
    )


def test_ui_compare_url_only_saves_the_view_and_prints_the_link(
    project: dict[str, Any], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from vc.tracking import main

    monkeypatch.chdir(project["root"])
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("DVC_ROOT", raising=False)
    for key in TELEMETRY_OFF:
        monkeypatch.delenv(key, raising=False)
    (project["root"] / "params.yaml").write_text(f"tracking:\n  experiment: {EXPERIMENT}\n")
    with pytest.raises(SystemExit) as done:
        main(["ui-compare", "--url-only", "--port", "5123"])
    assert done.value.code == 0
    url = capsys.readouterr().out.strip()
    assert url == comparison_url("http://127.0.0.1:5123", project["experiment_id"])
    assert {k: os.environ.get(k) for k in TELEMETRY_OFF} == TELEMETRY_OFF  # the process switched it off


def test_processes_the_project_starts_have_telemetry_off() -> None:
    assert server_env({}) == TELEMETRY_OFF == {"MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "true"}
    env = server_env({"PATH": "/bin", "MLFLOW_DISABLE_TELEMETRY": "false", "DO_NOT_TRACK": "0"})
    assert env == {"PATH": "/bin", **TELEMETRY_OFF}


def test_make_exports_telemetry_off_to_every_recipe(tmp_path: Path) -> None:
    """Every process `make` starts (dvc repro and its stages, the tests, the UI) inherits the switch."""
    probe = tmp_path / "probe.mk"
    probe.write_text('telemetry-probe:\n\t@echo "$$MLFLOW_DISABLE_TELEMETRY $$DO_NOT_TRACK"\n')
    env = {k: v for k, v in os.environ.items() if k not in TELEMETRY_OFF and not k.startswith("MAKE")}
    out = subprocess.run(
        ["make", "--no-print-directory", "-f", "Makefile", "-f", str(probe), "telemetry-probe"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["true", "true"], (
        "the Makefile should export MLFLOW_DISABLE_TELEMETRY, DO_NOT_TRACK"
    )


@pytest.fixture(scope="module")
def server(project: dict[str, Any]) -> dict[str, Any]:
    """The server of ``project`` once it answers, with its environment as the kernel holds it."""
    process = project["process"]
    if process is None:
        pytest.skip("browser tests cannot run here, so no MLflow UI was started")
    wait_until_up(project["url"], process, timeout=90)
    environ = Path(f"/proc/{process.pid}/environ")
    env = (
        dict(e.split("=", 1) for e in environ.read_text().split("\0") if "=" in e) if environ.exists() else {}
    )
    return {"url": project["url"], "seconds": time.monotonic() - project["started"], "env": env}


def test_the_server_runs_with_telemetry_off(server: dict[str, Any]) -> None:
    if not server["env"]:
        pytest.skip("no /proc here to read the server's environment")
    assert {k: server["env"].get(k) for k in TELEMETRY_OFF} == TELEMETRY_OFF
    assert not set(AUTOMATIC_OFF) & set(server["env"])  # so only the project's switch is in play


#: The runs table's column keys in the order a person sees them (the grid keeps its header cells in DOM
#: order and places them by ``aria-colindex``).
_HEADERS_JS = """return Array.from(document.querySelectorAll('.ag-header-cell[col-id]'))
  .map(e => [Number(e.getAttribute('aria-colindex')), e.getAttribute('col-id')])
  .sort((a, b) => a[0] - b[0]).map(p => p[1])"""
_ROWS_JS = """return Array.from(document.querySelectorAll(
  '.ag-pinned-left-cols-container .ag-row, .ag-center-cols-container .ag-row')).map(e => e.innerText)"""


def test_the_link_opens_the_runs_compared(
    chrome: Any, project: dict[str, Any], server: dict[str, Any]
) -> None:
    from browser import wait_until

    start = time.monotonic()
    chrome.get(comparison_url(server["url"], project["experiment_id"]))
    wanted = [metric_column(m) for m in COMPARED]

    def columns() -> list[str] | None:
        found = [c for c in chrome.execute_script(_HEADERS_JS) if c in wanted]
        return found if found == wanted else None  # every compared metric, in the view's order

    wait_until(columns, 60, interval=0.25, what="the metric columns of the runs table, in order")
    names = [f"{s}-{seed}" for s in SYSTEMS for seed in SEEDS] + ["baseline:mean-var"]

    def rows() -> str | None:
        text = "\n".join(chrome.execute_script(_ROWS_JS))
        return text if all(n in text for n in names) else None

    text = wait_until(rows, 30, interval=0.25, what="every child run as a row")
    assert GROUP not in text  # the parent of the group is filtered out: no expanding needed
    assert "7.1" in text and "8.1" in text  # MCD values of seed 1
    assert "/runs" in chrome.current_url

    def labelled() -> str | None:  # the view's name renders after the table on a loaded machine
        body = chrome.find_element("tag name", "body").text
        return body if "Model training" in body and "Compare systems" in body else None

    wait_until(labelled, 30, interval=0.25, what="the classic view and the saved view's name")
    assert chrome.execute_script("return localStorage.getItem('mlflow.workflowType_v1')") in (
        None,
        '"machine_learning"',
    )
    page = time.monotonic() - start
    sys.stdout.write(f"\nstore and server up {server['seconds']:.1f} s, page {page:.1f} s\n")
