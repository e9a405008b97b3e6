"""The cost files every stage writes (vc.cost), the table built from them (vc.cost_table, `vc cost`)."""

from __future__ import annotations

import argparse
import json
import os
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pipeline.common import run
from vc import cost
from vc.cli import main as vc_main
from vc.cost_table import cost_markdown, load_costs, run_costs
from vc.parallel import parallel_map


def _burn(seconds: float) -> float:
    """Spin the CPU for ``seconds`` (a worker's work); returns what it measured."""
    start = time.process_time()
    while time.process_time() - start < seconds:
        pass
    return time.process_time() - start


def test_a_recorded_stage_writes_its_phases_work_and_machine(tmp_path: Path) -> None:
    path = tmp_path / "costs" / "evaluate@x-0.json"
    with cost.record("evaluate@x-0", path):
        with cost.phase("mcd", count=4, unit="utterance"):
            _burn(0.05)
            with cost.phase("inner"):
                pass
        with cost.phase("mcd", count=2, unit="utterance"):
            pass
        cost.work("perceptual/asr", 0.5, 1, "utterance")
        cost.work("perceptual/asr", 0.25, 1, "utterance")
    data = json.loads(path.read_text())
    phases = {p["name"]: p for p in data["phases"]}
    assert set(phases) == {"mcd", "mcd/inner"}
    assert phases["mcd"]["calls"] == 2 and phases["mcd"]["count"] == 6
    assert phases["mcd"]["cpu_s"] >= 0.04 and data["wall_s"] >= phases["mcd"]["wall_s"]
    (asr,) = data["work"]
    assert asr["wall_s"] == pytest.approx(0.75) and asr["count"] == 2
    assert set(data["host"]) == {"cpu", "amx", "cores"} and data["host"]["cores"] >= 1
    assert data["peak_mb"] > 10
    mode = stat.S_IMODE(path.stat().st_mode)
    assert mode == 0o666 & ~_umask(), oct(mode)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_phases_outside_a_recording_do_nothing() -> None:
    with cost.phase("anything", count=3) as entry:
        entry.count += 2  # as the training loop counts its iterations
        cost.work("anything", 1.0)


def test_items_counted_inside_a_phase_are_recorded(tmp_path: Path) -> None:
    with cost.record("train@x-0", tmp_path / "c.json"), cost.phase("fit", unit="iteration") as fit:
        fit.count = 500
    (fit_row,) = json.loads((tmp_path / "c.json").read_text())["phases"]
    assert fit_row["count"] == 500 and fit_row["unit"] == "iteration"


def test_a_failed_stage_keeps_the_previous_cost_file(tmp_path: Path) -> None:
    path = tmp_path / "train@a-0.json"
    path.write_text("previous")
    with pytest.raises(RuntimeError), cost.record("train@a-0", path):
        raise RuntimeError("training diverged")
    assert path.read_text() == "previous"


def test_worker_processes_count_in_the_cpu_time(tmp_path: Path) -> None:
    path = tmp_path / "c.json"
    with cost.record("stage", path):
        measured = parallel_map(_burn, [0.3, 0.3], workers=2, progress=False)
    assert sum(measured) >= 0.55
    assert json.loads(path.read_text())["cpu_s"] >= 0.5  # the workers' CPU, reaped at the stage's end


def test_where_the_cost_goes(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for var in ("DVC_ROOT", "DVC_STAGE", "RANK"):
        monkeypatch.delenv(var, raising=False)
    assert cost.cost_path() is None
    assert cost.cost_path("x.json") == Path("x.json")
    monkeypatch.setenv("DVC_ROOT", str(tmp_path))
    monkeypatch.setenv("DVC_STAGE", "train@stargan-vc2-0")
    assert cost.cost_path() == tmp_path / "costs" / "train@stargan-vc2-0.json"
    monkeypatch.setenv("RANK", "1")  # torchrun's other ranks record nothing
    assert cost.cost_path() is None


@pytest.mark.parametrize("dvc_root", ["workspace", "copy"])
def test_an_experiment_run_in_a_copy_keeps_its_costs_apart(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, dvc_root: str
) -> None:
    """`dvc exp run --temp` and the queue run the stages in ``.dvc/tmp/exps/<copy>``: their costs go to
    ``costs/exps/<name>/``, never over the files that describe the workspace's own outputs."""
    workspace = tmp_path / "repo"
    copy = workspace / ".dvc" / "tmp" / "exps" / "standalone" / "tmpab12cd"
    copy.mkdir(parents=True)
    monkeypatch.delenv("RANK", raising=False)
    monkeypatch.setenv("DVC_ROOT", str(workspace if dvc_root == "workspace" else copy))
    monkeypatch.setenv("DVC_STAGE", "train@stargan-vc2-0")
    monkeypatch.setenv("DVC_EXP_NAME", "woods-coth")
    monkeypatch.chdir(copy)
    expected = workspace / "costs" / "exps" / "woods-coth" / "train@stargan-vc2-0.json"
    assert cost.cost_path() == expected
    monkeypatch.delenv("DVC_EXP_NAME")  # a copy without a name: the copy's folder names it
    assert cost.cost_path() == workspace / "costs" / "exps" / "tmpab12cd" / "train@stargan-vc2-0.json"
    monkeypatch.setenv("DVC_EXP_NAME", "woods-coth")
    monkeypatch.chdir(workspace)  # `dvc exp run` in the workspace: its outputs are the workspace's
    monkeypatch.setenv("DVC_ROOT", str(workspace))
    assert cost.cost_path() == workspace / "costs" / "train@stargan-vc2-0.json"


def test_every_stage_records_its_cost_under_dvc(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("DVC_ROOT", str(tmp_path))
    monkeypatch.setenv("DVC_STAGE", "features")
    monkeypatch.delenv("RANK", raising=False)

    def main(args: argparse.Namespace) -> None:
        with cost.phase("analysis", count=3, unit="utterance"):
            pass

    run(main, argparse.ArgumentParser(), [])
    data = json.loads((tmp_path / "costs" / "features.json").read_text())
    assert data["stage"] == "features" and data["phases"][0]["count"] == 3


_STAGE_SCRIPT = """
import argparse, atexit, sys, threading, time
from pathlib import Path
from pipeline.common import run
from vc.errors import InputError

out = Path(sys.argv[1])


class Teardown:
    def __del__(self):  # runs in the interpreter's teardown, which a finished stage skips
        (out / "teardown").write_text("ran")


kept = Teardown()


def late_writer():
    time.sleep(0.3)
    (out / "thread").write_text("joined")


def main(args):
    threading.Thread(target=late_writer).start()  # not a daemon: the exit waits for it
    atexit.register(lambda: (out / "atexit").write_text("ran"))
    print("unflushed", end="")
    if args.fail:
        raise InputError("bad input, said once")


parser = argparse.ArgumentParser()
parser.add_argument("--fail", action="store_true")
run(main, parser, sys.argv[2:])
"""


@pytest.mark.parametrize("fail", [False, True])
def test_a_stage_process_exits_like_python_without_the_teardown(tmp_path: Path, fail: bool) -> None:
    script = tmp_path / "stage.py"
    script.write_text(_STAGE_SCRIPT)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1]), "DVC_ROOT": str(tmp_path)}
    env.pop("DVC_STAGE", None)
    res = subprocess.run(
        [sys.executable, str(script), str(tmp_path), *(["--fail"] if fail else [])],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=120,
    )
    assert res.returncode == (2 if fail else 0), res.stderr
    assert res.stdout == "unflushed"  # stdout flushed
    assert (tmp_path / "thread").read_text() == "joined"  # non-daemon threads joined
    assert (tmp_path / "atexit").read_text() == "ran"  # atexit handlers run
    assert not (tmp_path / "teardown").exists()  # the module teardown skipped
    assert ("bad input, said once" in res.stderr) == fail


def test_run_called_in_a_process_leaves_it_running(tmp_path: Path) -> None:
    """run() from a test (main defined outside __main__) returns instead of ending the process."""
    ran: list[argparse.Namespace] = []

    def main(args: argparse.Namespace) -> None:
        ran.append(args)

    run(main, argparse.ArgumentParser(), [])
    assert len(ran) == 1


def _cost_file(folder: Path, stage: str, wall: float, phases: list, work: list, cpu: str = "CPU A") -> None:
    folder.mkdir(parents=True, exist_ok=True)
    data = {
        "version": cost.VERSION,
        "stage": stage,
        "started": "2026-12-04T10:00:00+00:00",
        "wall_s": wall,
        "cpu_s": wall * 1.5,
        "peak_mb": 500.0,
        "host": {"cpu": cpu, "amx": True, "cores": 2},
        "phases": phases,
        "work": work,
    }
    (folder / f"{stage}.json").write_text(json.dumps(data))


def _phase(name: str, wall: float, count: int = 0, unit: str = "") -> dict:
    return {"name": name, "wall_s": wall, "cpu_s": wall, "calls": 1, "count": count, "unit": unit}


def test_the_table_adds_up_stages_phases_work_and_training(tmp_path: Path) -> None:
    folder = tmp_path / "costs"
    for seed in (0, 1):
        _cost_file(folder, f"train@vc2-{seed}", 60.0, [_phase("fit", 50.0, 500, "iteration")], [])
    asr = {**_phase("perceptual/intelligibility", 30.0, 100, "utterance"), "calls": 100}
    load = {**_phase("perceptual/intelligibility (load)", 4.0, 0, "utterance"), "calls": 2}
    _cost_file(folder, "evaluate@vc2-0", 80.0, [_phase("perceptual", 70.0, 100, "utterance")], [asr, load])
    (folder / "broken.json").write_text("{not json")
    (folder / "old.json").write_text(json.dumps({"version": 0, "stage": "old"}))
    costs = load_costs(folder)
    assert [c["stage"] for c in costs] == ["evaluate@vc2-0", "train@vc2-0", "train@vc2-1"]
    text = cost_markdown(costs)
    assert "| train | 2 | 120.0 | 60% |" in text  # 120 of 200 s
    assert "| evaluate | 1 | 80.0 | 40% |" in text
    assert "| **all** | 3 | **200.0** | 100% |" in text
    assert "| evaluate | perceptual | 70.0 | 88% | 100 utterances | 0.700 s/utterance |" in text
    assert "| perceptual/intelligibility | 30.0 | 100 utterances | 0.300 |" in text
    assert "| perceptual/intelligibility (load) | 4.0 | 2 calls | 2.00 per call |" in text
    assert "| train@vc2-1 | 500 | 50.0 | 0.100 | 60.0 |" in text
    assert "Measured on CPU A, with AMX tiles, 2 cores." in text
    _cost_file(folder, "report", 1.0, [], [], cpu="CPU B")
    assert "several machines" in cost_markdown(load_costs(folder))
    assert cost_markdown([]) == ""


def test_vc_cost_prints_the_table_or_says_why_not(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    with pytest.raises(SystemExit) as stop:
        vc_main(["cost", "--dir", str(tmp_path / "none")])
    assert stop.value.code == 2
    _cost_file(tmp_path / "costs", "features", 12.0, [], [])
    vc_main(["cost", "--dir", str(tmp_path / "costs")])
    out = capsys.readouterr().out
    assert out.startswith("# Cost of the last run of each stage") and "| features | 1 | 12.0 | 100% |" in out
    _cost_file(tmp_path / "costs" / "exps" / "woods-coth", "train@vc2-0", 70.0, [], [])
    vc_main(["cost", "--dir", str(tmp_path / "costs")])
    assert "train" not in capsys.readouterr().out  # the workspace's table leaves experiments out
    vc_main(["cost", "--dir", str(tmp_path / "costs"), "--exp", "woods-coth"])
    out = capsys.readouterr().out
    assert out.startswith("# Cost of experiment woods-coth") and "`vc cost --exp woods-coth`" in out
    assert "| train | 1 | 70.0 | 100% |" in out and "features" not in out
    with pytest.raises(SystemExit) as stop:
        vc_main(["cost", "--dir", str(tmp_path / "costs"), "--exp", "other"])
    assert stop.value.code == 2
    assert "experiments with cost files: woods-coth" in caplog.text


def test_the_report_of_an_experiment_run_in_a_copy_has_that_experiments_cost(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The report stage of ``dvc exp run --temp`` (or a queued experiment) runs in a copy that holds no
    cost files: its cost section is the experiment's own stages, read from the workspace's
    ``costs/exps/<name>/``; in the workspace, the workspace's table; outside DVC, none."""
    from pipeline.report import _cost_section

    workspace = tmp_path / "repo"
    copy = workspace / ".dvc" / "tmp" / "exps" / "standalone" / "tmpab12cd"
    copy.mkdir(parents=True)
    _cost_file(workspace / "costs", "features", 12.0, [], [])
    _cost_file(workspace / "costs" / "exps" / "woods-coth", "train@vc2-0", 70.0, [], [])
    monkeypatch.delenv("RANK", raising=False)
    monkeypatch.delenv("DVC_ROOT", raising=False)
    monkeypatch.delenv("DVC_STAGE", raising=False)
    assert run_costs() is None and _cost_section(None) == ""
    assert "| features | 1 | 12.0 | 100% |" in _cost_section(str(workspace / "costs"))

    monkeypatch.setenv("DVC_ROOT", str(copy))
    monkeypatch.setenv("DVC_STAGE", "report")
    monkeypatch.setenv("DVC_EXP_NAME", "woods-coth")
    monkeypatch.chdir(copy)
    assert run_costs() == (workspace / "costs" / "exps" / "woods-coth", "woods-coth")
    section = _cost_section(None)
    assert section.startswith("## Cost of experiment woods-coth")
    assert "| train | 1 | 70.0 | 100% |" in section and "features" not in section

    monkeypatch.setenv("DVC_ROOT", str(workspace))
    monkeypatch.chdir(workspace)
    assert run_costs() == (workspace / "costs", None)
    section = _cost_section(None)
    assert section.startswith("## Cost of the last run of each stage")
    assert "| features | 1 | 12.0 | 100% |" in section and "train" not in section
