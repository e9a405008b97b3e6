"""Validation before work: bad params stop a stage (or `pipeline.check`) with one clear line and no output."""

from __future__ import annotations

import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from conftest import ROOT, project_env, write_tiny_features


def run_module(module: str, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = project_env(PYTHONPATH=str(ROOT))
    return subprocess.run(
        [sys.executable, "-m", module, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120
    )


def params_with(tmp_path: Path, changes: dict) -> Path:
    from vc.configlib import deep_merge

    params = deep_merge(yaml.safe_load((ROOT / "params.yaml").read_text()), changes)
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(params, sort_keys=False))
    return path


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"train": {"optimizer": {"lr_g": -0.001}}}, "params key 'train.optimizer.lr_g': must be > 0"),
        ({"train": {"lamdbas": {}}}, "params key 'train.lamdbas': unknown key; did you mean 'lambdas'?"),
        ({"convert": {"pairs": [["low1", "low1"]]}}, "'convert.pairs[0]': target equals source ('low1')"),
        ({"convert": {"pairs": [["low1", "nobody"]]}}, "'convert.pairs[0]': unknown speaker 'nobody'"),
        ({"corpus": {"speakers": ["low1", "ghost"]}}, "'corpus.speakers': unknown speaker(s) ghost"),
        (
            {"experiments": {"x": {"train": {"crop_frames": 4}}}},
            "'experiments.x.train.crop_frames': must be >= 8",
        ),
        # dvc.yaml tracks presets.${preset}: the active preset must be a name defined in params.yaml
        ({"preset": None}, "'preset': null is not a preset name: dvc.yaml tracks presets.${preset}"),
        ({"preset": "gpu"}, "params key 'preset': unknown preset 'gpu' (presets: default, paper,"),
        pytest.param(
            {"preset": "gpu-vocoder"},  # the repository's GPU preset on a machine without one
            "'vocoder.finetune.device': is 'cuda' but no CUDA device is available",
            marks=pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA"),
        ),
    ],
)
def test_check_rejects_bad_params(tmp_path: Path, changes: dict, message: str) -> None:
    params = params_with(tmp_path, changes)
    result = run_module("pipeline.check", "--params", str(params), cwd=tmp_path)
    assert result.returncode == 2
    assert message in result.stderr and "Traceback" not in result.stderr


def test_check_rejects_a_crop_longer_than_every_utterance(tmp_path: Path) -> None:
    write_tiny_features(tmp_path / "data")  # utterances of 90 to 111 frames
    shutil.copy(ROOT / "dvc.yaml", tmp_path)  # which names the features folder
    params = params_with(
        tmp_path, {"train": {"crop_frames": 64}, "experiments": {"long": {"train": {"crop_frames": 200}}}}
    )
    result = run_module("pipeline.check", "--params", str(params), cwd=tmp_path)
    assert result.returncode == 2
    assert (
        "'experiments.long.train.crop_frames': 200 frames is longer than every training utterance"
        in result.stderr
    )


def stage_args(stage: str, **item: object) -> tuple[str, list[str]]:
    """The module and arguments of ``stage``'s command in dvc.yaml, with ``${item.<key>}`` filled in."""
    cmd = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"][stage]
    cmd = cmd.get("do", cmd)["cmd"]
    for key, value in item.items():
        cmd = cmd.replace(f"${{item.{key}}}", str(value))
    words = shlex.split(cmd.removeprefix("exec "))
    assert words[:2] == ["python", "-m"], cmd
    return words[2], words[3:]


def test_stages_reject_an_unknown_experiment_before_any_work(tmp_path: Path) -> None:
    params = params_with(tmp_path, {})
    for stage in ("train", "convert", "evaluate"):
        module, args = stage_args(stage, experiment="stargan-vc3", seed=0)  # dvc.yaml's paths, none there
        result = run_module(module, *args, "--params", str(params), cwd=tmp_path)
        assert result.returncode == 2, module
        defined = "stargan-vc2, stargan-vc2-no-id, stargan-vc, stargan-vc-record, stargan-vc2-mel"
        assert f"unknown experiment 'stargan-vc3' (defined: {defined})" in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["params.yaml"]  # nothing written


def test_check_passes_the_repository_params(tmp_path: Path) -> None:
    result = run_module("pipeline.check", "--params", str(ROOT / "params.yaml"), cwd=tmp_path)
    assert result.returncode == 0 and "params OK: 5 experiments" in result.stderr


def test_check_measures_a_log_mel_crop_in_log_mel_frames_and_needs_the_vocoder(tmp_path: Path) -> None:
    import pandas as pd

    features, _ = write_tiny_features(tmp_path / "data")  # 90 to 111 WORLD frames
    shutil.copy(ROOT / "dvc.yaml", tmp_path)
    index = pd.read_csv(features / "index.csv")
    index.assign(mel_frames=index["frames"] // 2).to_csv(features / "index.csv", index=False)  # 45 to 55
    mel = {"model": {"features": "mel"}, "train": {"crop_frames": 60}}  # fits WORLD frames, not log-mel ones
    params = params_with(tmp_path, {"train": {"crop_frames": 64}, "experiments": {"stargan-vc2-mel": mel}})
    result = run_module("pipeline.check", "--params", str(params), cwd=tmp_path)
    assert result.returncode == 2
    assert (
        "60 frames is longer than every training utterance of speaker 'spk0' (longest: 55 log-mel frames)"
        in (result.stderr)
    )
    params = params_with(tmp_path, {"vocoder": {"checkpoint": "missing/generator.pt"}})
    result = run_module("pipeline.check", "--params", str(params), cwd=tmp_path)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert f"'vocoder.checkpoint': {tmp_path / 'missing/generator.pt'}: no such file" in result.stderr


def test_pairs_are_checked_against_the_speakers_of_a_corpus_folder(speaker_dirs_corpus: Path) -> None:
    """The config knows only configured speakers; a corpus folder's are checked by the one pair check."""
    from pipeline.check import check_data
    from vc.config import ConfigError, load_params

    corpus = {"source": "directory", "root": str(speaker_dirs_corpus)}
    params = load_params({"corpus": corpus, "convert": {"pairs": [["spkA", "spkB"], ["spkC", "nobody"]]}})
    with pytest.raises(ConfigError) as info:
        check_data(params, speaker_dirs_corpus.parent)
    assert info.value.key == "convert.pairs[1]"
    assert "unknown speaker 'nobody' (speakers: spkA, spkB, spkC)" in str(info.value)
    params = load_params({"corpus": corpus, "convert": {"pairs": [["spkA", "spkB"]]}})
    notes = check_data(params, speaker_dirs_corpus.parent)
    assert "corpus folder: 24 files of 3 speakers" in notes
    assert "convert.pairs: 1 pair(s) of the corpus's speakers" in notes


def test_hifigan_systems_are_the_mel_experiments_and_the_hifigan_baselines() -> None:
    from pipeline.check import mel_systems
    from vc.config import load_params

    params = load_params(
        {
            "experiments": {"w": {}, "m": {"model": {"features": "mel"}}},
            "report": {"reference": "w"},
            "baselines": ["source", "mean-var", "copy-synthesis-hifigan"],
        }
    )
    assert mel_systems(params) == ["m", "copy-synthesis-hifigan"]


def test_check_names_a_diagnosis_experiment_that_is_not_defined(tmp_path: Path) -> None:
    """dvc.yaml tracks the diagnosed and contrasted experiments' params, so they must exist even with those
    stages off."""
    import yaml

    doc = yaml.safe_load((ROOT / "params.yaml").read_text())
    doc["experiments"] = {"stargan-vc2": {}}
    doc["diagnosis"]["enabled"] = doc["contrast"]["enabled"] = False
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(doc))
    result = run_module("pipeline.check", "--params", str(tmp_path / "params.yaml"), cwd=tmp_path)
    assert result.returncode != 0 and "params key 'diagnosis.experiment'" in result.stderr
    assert "'stargan-vc-record' is not under experiments (defined: stargan-vc2)" in result.stderr
    doc["experiments"] = {"stargan-vc2": {}, "stargan-vc-record": {}, "stargan-vc": {}}
    doc["contrast"]["worse"] = "stargan-vc2-no-id"  # the contrast stage tracks it the same way
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(doc))
    result = run_module("pipeline.check", "--params", str(tmp_path / "params.yaml"), cwd=tmp_path)
    assert result.returncode != 0 and "params key 'contrast.worse'" in result.stderr
