"""MLflow tracking: where runs go, concurrency-safe store creation, retries, and a real tracking server."""

from __future__ import annotations

import json
import socket
import subprocess
import time
import urllib.request
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pytest
from conftest import make_project_copy, project_env, sys_bin

from vc import tracking
from vc.tracking import RunTracker, init_tracking, project_root, tracking_uri, with_retry


def test_project_root_escapes_dvc_experiment_workspaces(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DVC_ROOT", raising=False)
    assert project_root(tmp_path / "repo/.dvc/tmp/exps/tmpab12cd") == tmp_path / "repo"
    assert project_root(tmp_path / "repo/.dvc/tmp/exps/run/4f2e1a") == tmp_path / "repo"
    assert project_root(tmp_path / "repo") == tmp_path / "repo"
    monkeypatch.setenv("DVC_ROOT", str(tmp_path / "main"))
    assert project_root() == tmp_path / "main"


def test_tracking_uri_prefers_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert tracking_uri(tmp_path) == f"sqlite:///{tmp_path / 'mlflow.db'}"
    assert tracking.artifact_location(tmp_path) == (tmp_path / "mlartifacts").as_uri()
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:5999")
    assert tracking_uri(tmp_path) == "http://127.0.0.1:5999"
    assert tracking.artifact_location(tmp_path) is None  # the server decides


def _init(root: str) -> str:
    return init_tracking("race", root)


def test_parallel_initialisation_creates_one_experiment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    with ProcessPoolExecutor(4) as pool:
        ids = list(pool.map(_init, [str(tmp_path)] * 4))
    assert len(set(ids)) == 1
    import sqlite3

    with sqlite3.connect(tmp_path / "mlflow.db") as con:
        assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_with_retry_retries_locked_database_and_not_other_errors() -> None:
    calls = []

    def flaky() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise RuntimeError("(sqlite3.OperationalError) database is locked")
        return "ok"

    assert with_retry(flaky) == "ok" and len(calls) == 3
    with pytest.raises(ValueError, match="bad"):
        with_retry(lambda: (_ for _ in ()).throw(ValueError("bad")))


def test_run_tracker_marks_interrupted_runs_killed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("DVC_EXP_NAME", raising=False)
    tracker = RunTracker.start("states", "run", root=tmp_path, system_metrics=False, params={"a": 1})
    with pytest.raises(KeyboardInterrupt), tracker.terminate_on_exit():
        tracker.log_metrics({"x": 1.0}, step=3)
        raise KeyboardInterrupt
    run = tracker.client.get_run(tracker.run_id)
    assert run.info.status == "KILLED" and run.data.metrics["x"] == 1.0 and run.data.params["a"] == "1"
    failed = RunTracker.start("states", "run2", root=tmp_path, system_metrics=False)
    with pytest.raises(ValueError), failed.terminate_on_exit():
        raise ValueError("boom")
    assert failed.client.get_run(failed.run_id).info.status == "FAILED"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def mlflow_server(tmp_path: Path):
    """A real `mlflow server` on 127.0.0.1 with a SQLite backend and an artifacts destination."""
    port = _free_port()
    store = tmp_path / "server"
    store.mkdir()
    proc = subprocess.Popen(
        [
            sys_bin("mlflow"),
            "server",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--backend-store-uri",
            f"sqlite:///{store / 'mlflow.db'}",
            "--artifacts-destination",
            (store / "artifacts").as_uri(),
            "--workers",
            "1",
        ],
        cwd=store,
        env=project_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 120
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
                if response.status == 200:
                    break
        except OSError:
            time.sleep(0.5)
    else:
        proc.kill()
        pytest.fail("mlflow server did not start")
    yield url, store
    proc.terminate()
    proc.wait(timeout=30)


@pytest.mark.slow
def test_pipeline_against_a_tracking_server(mlflow_server: tuple[str, Path], tmp_path: Path) -> None:
    pytest.importorskip("espeakng_loader")
    url, store = mlflow_server
    # no perceptual metrics or HiFi-GAN: test_pipeline checks those; here only the transport differs
    overrides = {
        "experiments": {"stargan-vc2": {}},
        "seeds": [0],
        "baselines": ["source", "mean-var", "copy-synthesis"],
        "evaluate": {"perceptual": []},
    }
    project = make_project_copy(tmp_path / "project", overrides)
    env = project_env(MLFLOW_TRACKING_URI=url)
    result = subprocess.run(
        [sys_bin("dvc"), "repro"], cwd=project, env=env, capture_output=True, text=True, timeout=900
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    assert not (project / "mlflow.db").exists() and not (project / "mlartifacts").exists()

    from mlflow.tracking import MlflowClient

    client = MlflowClient(url)
    exp = client.get_experiment_by_name("pipeline-test")
    runs = {r.info.run_name: r for r in client.search_runs([exp.experiment_id])}
    expected = {"stargan-vc2/seed-0", "baseline:source", "baseline:mean-var"}
    assert expected | {"baseline:copy-synthesis"} <= set(runs)
    run = runs["stargan-vc2/seed-0"]
    assert run.info.status == "FINISHED" and {"g/cyc", "eval/mcd_db"} <= set(run.data.metrics)
    assert [m.step for m in client.get_metric_history(run.info.run_id, "g/cyc")] == [2, 4, 6]
    config = client.download_artifacts(run.info.run_id, "model/config.json", str(tmp_path / "dl"))
    assert json.loads(Path(config).read_text())["experiment"]["name"] == "stargan-vc2"
    assert list((store / "artifacts").rglob("generator.pt"))  # stored by the server, not the client
