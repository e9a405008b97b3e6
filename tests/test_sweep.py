"""`vc sweep`: spec parsing and refusal (no SLURM), dry-run, and real sweeps on the private SLURM cluster
(tests/slurm_cluster.py) of a tiny DVC project whose one stage is a stand-in training script: it trains a
deterministic toy loop, checkpoints every step into ``checkpoints/`` and logs to MLflow, reattaching to its
run after a restart (the way the pipeline's training is meant to).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from slurm_cluster import SlurmCluster, slurm_cluster  # noqa: F401 (the fixture)

from vc.sweep.cli import main as sweep_main
from vc.sweep.config import SweepConfig, load_sweep_config
from vc.sweep.executors import pending_tasks, plan_sweep, submit
from vc.sweep.spec import SweepSpecError, build_points, parse_sets, read_points_file, validate_points
from vc.sweep.state import SweepDir

STANDIN = '''
"""Stand-in training: x <- x - lr * grad of (x - 3)^2 per step; a checkpoint per step; MLflow metrics."""
import json, os, sys, time
from pathlib import Path
import yaml
from vc import cost
params = yaml.safe_load(open("params.yaml"))
# what the stage costs, recorded as the pipeline's stages do (written when the stage ends without an error)
recording = cost.record("train", cost.cost_path())
recording.__enter__()
iters, lr = params["train"]["iterations"], params["train"]["optimizer"]["lr_g"]
ckpt = Path("checkpoints") / "standin.json"
ckpt.parent.mkdir(exist_ok=True)
state = json.loads(ckpt.read_text()) if ckpt.exists() else {"step": 0, "x": 0.0, "run_id": None}
tracker = None
if os.environ.get("STANDIN_MLFLOW", "1") == "1":
    from vc.tracking import RunTracker
    if state["run_id"]:
        tracker = RunTracker.resume(state["run_id"])
    else:
        tracker = RunTracker.start("sweeptest", "standin", system_metrics=False)
        state["run_id"] = tracker.run_id
print("resumed from step", state["step"], flush=True)
if lr == 0.666:
    tracker and tracker.end("FAILED")
    sys.exit("diverged: lr 0.666")
while state["step"] < iters:
    state["x"] -= lr * 2 * (state["x"] - 3.0)
    state["step"] += 1
    if tracker:
        tracker.log_metrics({"loss": (state["x"] - 3.0) ** 2}, step=state["step"])
    tmp = ckpt.with_suffix(".tmp")
    tmp.write_text(json.dumps(state))
    os.replace(tmp, ckpt)
    time.sleep(float(os.environ.get("STANDIN_STEP_S", "0.02")))
final = {"loss": round((state["x"] - 3.0) ** 2, 10), "step": state["step"]}
Path("metrics.json").write_text(json.dumps(final))
tracker and tracker.end("FINISHED")
recording.__exit__(None, None, None)
'''


def _git(repo: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True)


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A committed git + DVC project whose one stage is the stand-in."""
    return make_project(tmp_path_factory.mktemp("proj"))


def make_project(repo: Path) -> Path:
    """A committed git + DVC project in ``repo``: params.yaml valid for vc.config, one stage running the
    stand-in, the MLflow store (SQLite at its root) initialised."""
    _git(repo, "init", "-q", "-b", "main")
    _git(repo, "config", "user.email", "t@example.com")
    _git(repo, "config", "user.name", "t")
    subprocess.run([sys.executable, "-m", "dvc", "init", "-q"], cwd=repo, check=True)
    subprocess.run([sys.executable, "-m", "dvc", "config", "core.analytics", "false"], cwd=repo, check=True)
    (repo / "standin.py").write_text(STANDIN)
    params = {
        "train": {"iterations": 10, "optimizer": {"lr_g": 0.1, "decay": "none"}},
        "tracking": {"experiment": "sweeptest"},
        "sweep": {"slurm": {"cpus_per_task": 1, "mem_gb": 0.25, "time_min": 10, "signal_delay_s": 10}},
    }
    (repo / "params.yaml").write_text(yaml.safe_dump(params))
    stage = {
        "cmd": f"{sys.executable} standin.py",
        "deps": ["standin.py"],
        "params": ["train.iterations", "train.optimizer.lr_g"],
        "metrics": [{"metrics.json": {"cache": False}}],
    }
    (repo / "dvc.yaml").write_text(yaml.safe_dump({"stages": {"train": stage}}))
    (repo / ".gitignore").write_text("/checkpoints\n/sweeps\n/costs\nmlflow.db*\n/mlartifacts\n")
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "-m", "project")
    from vc.tracking import init_tracking

    init_tracking("sweeptest", repo)  # the store's schema once, not in two jobs at the same time
    return repo


# ------------------------------------------------------------------------------------ specs, no SLURM
def test_grid_is_the_cartesian_product_of_sets() -> None:
    points = build_points(["train.optimizer.lr_g=1e-3,5e-4", "seeds=[0],[1]"])
    assert [dict(p.overrides) for p in points] == [
        {"train.optimizer.lr_g": 0.001, "seeds": [0]},
        {"train.optimizer.lr_g": 0.001, "seeds": [1]},
        {"train.optimizer.lr_g": 0.0005, "seeds": [0]},
        {"train.optimizer.lr_g": 0.0005, "seeds": [1]},
    ]
    assert points[1].set_args() == ["-S", "++train.optimizer.lr_g=0.001", "-S", "++seeds=[1]"]
    # a key params.yaml does not spell out (an experiment's overrides are {}): DVC needs ++, given or not
    assert parse_sets(["++experiments.stargan-vc2.train.optimizer.lr_g=1e-3"]) == [
        {"experiments.stargan-vc2.train.optimizer.lr_g": 0.001}
    ]
    assert parse_sets(["train.optimizer.betas=[0.5,0.9],[0.4,0.99]"]) == [
        {"train.optimizer.betas": [0.5, 0.9]},
        {"train.optimizer.betas": [0.4, 0.99]},
    ]
    assert len({p.fingerprint for p in points}) == 4


def test_points_file(tmp_path: Path) -> None:
    path = tmp_path / "points.yaml"
    path.write_text("points:\n  - {train.iterations: 20}\n  - {train.iterations: 30, train.batch_size: 4}\n")
    assert read_points_file(path) == [
        {"train.iterations": 20},
        {"train.iterations": 30, "train.batch_size": 4},
    ]
    path.write_text("[]\n")
    with pytest.raises(SweepSpecError, match=r"points\.yaml"):
        read_points_file(path)


@pytest.mark.parametrize(
    ("sets", "key", "why"),
    [
        (["train.optimizer.lr_gg=1e-3"], "train.optimizer.lr_gg", "unknown key"),
        (["train.iterations="], "train.iterations", "empty grid"),
        (["train.optimizer.lr_g=1e-3,-1"], "train.optimizer.lr_g", "must be > 0"),
        (["train.optimizer.name=sgd"], "train.optimizer.name", "not one of"),
        (["sweep.executor=slurm"], "sweep.executor", "not a science param"),
    ],
)
def test_bad_specs_are_refused_naming_the_key(sets: list[str], key: str, why: str, tmp_path: Path) -> None:
    params = tmp_path / "params.yaml"
    params.write_text("train: {iterations: 10, optimizer: {decay: none}}\n")
    with pytest.raises(SweepSpecError, match=why) as err:
        validate_points(build_points(sets), params)
    assert f"'{key}'" in str(err.value)


def test_nothing_is_submitted_for_a_bad_spec(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stop:
        sweep_main(
            ["sweep", "run", "bad", "--repo", str(project), "-S", "train.nope=1,2", "--executor", "slurm"]
        )
    assert stop.value.code == 2
    assert not (project / "sweeps" / "bad").exists()


def test_dry_run_prints_the_jobs(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = ["sweep", "run", "dry", "--repo", str(project), "-S", "train.optimizer.lr_g=0.1,0.2"]
    sweep_main([*args, "--executor", "slurm", "--partition", "gpu", "--gpus", "1", "--dry-run"])
    out = capsys.readouterr().out.splitlines()
    assert "2 points" in out[0] and "partition gpu" in out[0] and "1 GPUs" in out[0] and "1 CPUs" in out[0]
    assert "-S ++train.optimizer.lr_g=0.1 --name dry-p0-" in out[1]
    assert "-S ++train.optimizer.lr_g=0.2 --name dry-p1-" in out[2]
    assert not (project / "sweeps" / "dry").exists()


def test_a_point_on_several_gpus_trains_under_torchrun(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    config = SweepConfig.model_validate({"executor": "slurm", "slurm": {"gpus_per_node": 4}})
    ((_, task),) = plan_sweep(project, "gpu", build_points(["train.iterations=20"]), config).tasks
    assert dict(task.env) == {"VC_NPROC_PER_NODE": "4"}
    assert task.checkpoints.startswith(str(project / "checkpoints" / "sweeps"))
    assert task.tracking_uri == f"sqlite:///{project / 'mlflow.db'}"


# ------------------------------------------------------------------------------------ on the cluster
def _wait_points(sweep: SweepDir, states: set[str], timeout: float = 60) -> list[dict]:
    deadline = time.monotonic() + timeout
    points = sweep.points()
    while time.monotonic() < deadline:
        points = sweep.points()
        if all(p["state"] in states for p in points):
            return points
        time.sleep(0.3)
    logs = "\n".join(Path(p["log"]).read_text()[-1500:] for p in points if Path(p.get("log", "-")).exists())
    raise AssertionError(f"points not in {states}: {[(p['point_id'], p['state']) for p in points]}\n{logs}")


def _slurm_config(project: Path) -> SweepConfig:
    return load_sweep_config(project / "params.yaml").model_copy(update={"executor": "slurm"})


def _sweep(project: Path, name: str, sets: list[str]) -> SweepDir:
    points = build_points(sets)
    validate_points(points, project / "params.yaml")
    plan = plan_sweep(project, name, points, _slurm_config(project))
    assert submit(plan)
    return plan.sweep_dir


def _exp_names(project: Path) -> set[str]:
    out = subprocess.run(
        [sys.executable, "-m", "dvc", "exp", "list", "--name-only"],
        cwd=project,
        capture_output=True,
        text=True,
    )
    return set(out.stdout.split())


def _runs(project: Path, exp_name: str) -> list:
    from mlflow.tracking import MlflowClient

    client = MlflowClient(f"sqlite:///{project / 'mlflow.db'}")
    ids = [e.experiment_id for e in client.search_experiments()]
    return client.search_runs(ids, filter_string=f"tags.`dvc.exp_name` = '{exp_name}'")


@pytest.fixture
def on_cluster(slurm_cluster: SlurmCluster, monkeypatch: pytest.MonkeyPatch) -> SlurmCluster:  # noqa: F811
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    return slurm_cluster


def test_two_point_sweep_and_a_failing_point(on_cluster: SlurmCluster, project: Path) -> None:
    sweep = _sweep(project, "two", ["train.optimizer.lr_g=0.1,0.666"])
    good, failing = _wait_points(sweep, {"done", "failed"})
    assert good["state"] == "done" and failing["state"] == "failed"
    assert "exited with" in failing["error"]
    assert Path(good["log"]).is_file()
    names = _exp_names(project)
    assert good["exp_name"] in names and failing["exp_name"] not in names  # nothing partial is published
    ok, bad = _runs(project, good["exp_name"]), _runs(project, failing["exp_name"])
    assert [r.info.status for r in ok] == ["FINISHED"] and ok[0].data.tags["vc.sweep"] == "two"
    assert [r.info.status for r in bad] == ["FAILED"] and bad[0].data.tags["vc.sweep.state"] == "failed"
    # what the point's stage cost outlives its workspace; a failed point keeps none
    kept = project / "costs" / "exps" / good["exp_name"] / "train.json"
    assert json.loads(kept.read_text())["stage"] == "train"
    assert not (project / "costs" / "exps" / failing["exp_name"]).exists()
    # re-submitting the sweep (here with another second point) skips the point already done
    points = build_points(["train.optimizer.lr_g=0.1,0.2"])
    plan = plan_sweep(project, "two", points, _slurm_config(project))
    assert [t.exp_name for _, t in pending_tasks(plan)] == [points[1].exp_name("two")]
    status = subprocess.run(
        [sys.executable, "-m", "vc.sweep.cli", "sweep", "status", "two", "--repo", str(project)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "done" in status and "failed" in status


def test_cancel_stops_the_jobs(
    on_cluster: SlurmCluster,
    project: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("STANDIN_STEP_S", "0.5")
    sweep = _sweep(project, "stop", ["train.iterations=100", "train.optimizer.lr_g=0.01"])
    (point,) = _wait_points(sweep, {"running"}, timeout=30)
    sweep_main(["sweep", "cancel", "stop", "--repo", str(project)])
    on_cluster.wait_state(point["job_id"], ("CANCELLED",), timeout=20)
    time.sleep(1)
    (point,) = sweep.points()
    assert point["state"] == "cancelled"
    sweep_main(["sweep", "status", "stop", "--repo", str(project)])
    assert "cancelled" in capsys.readouterr().out


def _uninterrupted(project: Path, tmp_path: Path, iterations: int, lr: float) -> dict:
    work = tmp_path / "ref"
    work.mkdir()
    (work / "standin.py").write_text(STANDIN)
    params = {"train": {"iterations": iterations, "optimizer": {"lr_g": lr}}}
    (work / "params.yaml").write_text(yaml.safe_dump(params))
    env = {"STANDIN_MLFLOW": "0", "PATH": "/usr/bin:/bin", "STANDIN_STEP_S": "0"}
    subprocess.run([sys.executable, "standin.py"], cwd=work, env=env, check=True, capture_output=True)
    return json.loads((work / "metrics.json").read_text())


def test_requeue_resumes_from_the_checkpoint(
    on_cluster: SlurmCluster, project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STANDIN_STEP_S", "0.15")  # 6 s of training: the requeue lands in the middle
    sweep = _sweep(project, "rq", ["train.iterations=40", "train.optimizer.lr_g=0.05"])
    (point,) = sweep.points()
    ckpt = (
        project
        / "checkpoints"
        / "sweeps"
        / build_points(["train.iterations=40", "train.optimizer.lr_g=0.05"])[0].fingerprint
    )
    deadline = time.monotonic() + 60
    step = 0
    while time.monotonic() < deadline and step < 5:
        if (ckpt / "standin.json").exists():
            step = json.loads((ckpt / "standin.json").read_text())["step"]
        time.sleep(0.05)
    assert 5 <= step < 40, f"training never got to the middle (step {step})"
    on_cluster.run("scontrol", "requeue", point["job_id"])
    on_cluster.wait_state(point["job_id"], ("PENDING",), timeout=20)
    # SLURM holds a requeued job for cred_expire seconds (5 on the test cluster, 120 by default)
    (done,) = _wait_points(sweep, {"done", "failed"}, timeout=60)
    assert done["state"] == "done" and done["attempts"] == 2
    log = Path(done["log"]).read_text()
    resumed = [int(line.split()[-1]) for line in log.splitlines() if line.startswith("resumed from step")]
    assert resumed[0] == 0 and 5 <= resumed[-1] < 40, log[-2000:]
    show = ["git", "show", f"{_exp_ref(project, done['exp_name'])}:metrics.json"]
    metrics = json.loads(subprocess.run(show, cwd=project, capture_output=True, text=True, check=True).stdout)
    assert metrics == _uninterrupted(project, tmp_path, 40, 0.05)
    (run,) = _runs(project, done["exp_name"])  # the same run continued, not a second one
    assert run.info.status == "FINISHED"
    from mlflow.tracking import MlflowClient

    history = MlflowClient(f"sqlite:///{project / 'mlflow.db'}").get_metric_history(run.info.run_id, "loss")
    assert sorted({m.step for m in history}) == list(range(1, 41))


def _exp_ref(project: Path, name: str) -> str:
    """The git ref of DVC experiment ``name`` (refs/exps/<baseline>/<name>)."""
    cmd = ["git", "for-each-ref", "--format=%(refname)", "refs/exps/"]
    refs = subprocess.run(cmd, cwd=project, capture_output=True, text=True, check=True).stdout.split()
    (ref,) = [r for r in refs if r.endswith("/" + name)]
    return ref
