"""MLflow tracking: where runs go, concurrency-safe store creation, retries. (A real tracking server, end to
end: test_bad_input.py.)"""

from __future__ import annotations

from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pytest

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


# The pipeline against a real `mlflow server` (HTTP transport, server-side artifacts): test_bad_input.py,
# whose messy-corpus project logs to one (a pipeline run costs minutes on two cores: one run serves both).
