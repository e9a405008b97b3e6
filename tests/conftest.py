"""Shared fixtures: synthetic voiced signals and tiny corpora written to tmp_path."""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

# The `chrome` fixture (headless Debian Chromium, tests/browser.py), registered once for every test file.
pytest_plugins = ["browser"]

# Under `pytest -n N` every worker is one process on the same cores: give each its share of the threads before
# anything imports torch. Two workers with one OpenMP thread per core each spin-wait on each other and run the
# torch tests several times slower (the same effect as two trainings at once, README "Sweeps").
if "PYTEST_XDIST_WORKER_COUNT" in os.environ:
    _cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    os.environ.setdefault(
        "OMP_NUM_THREADS", str(max(1, _cores // int(os.environ["PYTEST_XDIST_WORKER_COUNT"])))
    )


def voiced_signal(
    f0: float | np.ndarray,
    seconds: float = 1.0,
    sample_rate: int = 16000,
    *,
    formants: tuple[float, ...] = (700.0, 1200.0, 2600.0),
    seed: int = 0,
) -> np.ndarray:
    """A vowel-like harmonic signal: harmonics of ``f0`` shaped by resonances at ``formants``. ``(N,)``.

    ``f0`` may be a constant or a per-sample contour of length ``seconds * sample_rate``.
    """
    n = int(seconds * sample_rate)
    f0_t = np.broadcast_to(np.asarray(f0, dtype=np.float64), (n,))
    phase = 2 * np.pi * np.cumsum(f0_t) / sample_rate
    out = np.zeros(n)
    for k in range(1, int(sample_rate / 2 / f0_t.max())):
        freq = k * f0_t
        gain = sum(1.0 / (1.0 + ((freq - f) / 120.0) ** 2) for f in formants) / k**0.5
        out += np.where(freq < sample_rate / 2, gain, 0.0) * np.sin(k * phase)
    rng = np.random.default_rng(seed)
    out += 0.002 * rng.standard_normal(n)
    return 0.5 * out / np.abs(out).max()


def write_wav(path: Path, wav: np.ndarray, sample_rate: int = 16000) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, wav, sample_rate, subtype="PCM_16")
    return path


SPEAKER_VOICES = {
    "spkA": (110.0, (650.0, 1100.0, 2500.0)),
    "spkB": (210.0, (800.0, 1400.0, 2900.0)),
    "spkC": (150.0, (700.0, 1250.0, 2700.0)),
}


def speaker_utterance(
    speaker: str, utt_index: int, seconds: float = 1.0, sample_rate: int = 16000
) -> np.ndarray:
    """A deterministic 'sentence' of one synthetic speaker: a gliding F0 contour that depends on the id."""
    base, formants = SPEAKER_VOICES[speaker]
    t = np.arange(int(seconds * sample_rate)) / sample_rate
    contour = base * (1.0 + 0.08 * np.sin(2 * np.pi * (0.7 + 0.15 * utt_index) * t))
    return voiced_signal(contour, seconds, sample_rate, formants=formants, seed=utt_index)


@pytest.fixture
def speaker_dirs_corpus(tmp_path: Path) -> Path:
    """``<root>/<speaker>/uttNN.wav``: 3 speakers x 8 parallel utterances of 1 s at 16 kHz."""
    root = tmp_path / "corpus"
    for spk in SPEAKER_VOICES:
        for i in range(8):
            write_wav(root / spk / f"utt{i:02d}.wav", speaker_utterance(spk, i))
    return root


def write_tiny_features(
    root: Path, speakers: int = 3, utterances: int = 4, dim: int = 12
) -> tuple[Path, Path]:
    """A features folder and statistics file like the features and stats stages write, from random data.

    Returns ``(features_dir, stats_path)``. Speaker ``i`` has spectral features (and log-mels, ``.mel.npy``,
    half as many frames) offset by ``i``.
    """
    import pandas as pd

    from vc.config import FeaturesConfig
    from vc.features.extract import load_corpus_features
    from vc.features.stats import fit_stats
    from vc.features.world import WorldFeatures

    rng = np.random.default_rng(0)
    features = root / "features"
    rows = []
    for s in range(speakers):
        for u in range(utterances):
            frames = 90 + 7 * u
            f0 = np.where(
                rng.random(frames) < 0.7, 100.0 * (1 + s) * np.exp(0.05 * rng.standard_normal(frames)), 0
            )
            feats = WorldFeatures(
                f0, rng.standard_normal((frames, dim)) + s, np.zeros((frames, 2)), 16000, 5.0
            )
            path = Path(f"spk{s}") / f"u{u}.npz"
            (features / path.parent).mkdir(parents=True, exist_ok=True)
            feats.save(features / path)
            mel = rng.standard_normal((frames // 2, 80)).astype(np.float32) - 5.0 + s
            np.save(features / path.with_suffix(".mel.npy"), mel)  # as the features stage writes beside it
            rows.append(
                {
                    "speaker": f"spk{s}",
                    "utt_id": f"u{u}",
                    "split": "train" if u else "test",
                    "duration": frames / 200,
                    "status": "ok",
                    "note": "",
                    "frames": frames,
                    "path": str(path),
                }
            )
    pd.DataFrame(rows).to_csv(features / "index.csv", index=False)
    stats = fit_stats(load_corpus_features(features, "train"), FeaturesConfig(mcep_order=dim - 1), "global")
    stats.save(root / "stats.json")
    return features, root / "stats.json"


ROOT = Path(__file__).resolve().parents[1]

# `make test` runs `pytest -n 2 --dist loadfile --no-loadscope-reorder`: each file's tests on one worker (so a
# module fixture such as test_pipeline's project is built once), files handed out in collection order. The
# end-to-end files go first, longest first, so the longest chain starts at once and the unit tests fill the
# gaps. (`--dist loadgroup` would be the finer tool, but with pytest 9.2 it silently stops grouping:
# pytest-xdist issue #1386.)
END_TO_END_FIRST = (
    "test_pipeline.py",
    "test_bad_input.py",
    "test_gpu_script.py",
    "test_interruption.py",
    "test_sweep.py",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    rank = {name: i for i, name in enumerate(END_TO_END_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable: files keep their own order


TINY_PARAMS_OVERRIDES = {
    # One process per stage (workers: 1): with a dozen files a pool costs more than it saves, and the tests
    # run two at a time on two cores. test_bad_input runs the pools end to end.
    "corpus": {
        "workers": 1,
        "min_train_utterances": 2,
        "split": {"test_utterances": 2, "validation_utterances": 1},
        "embedded": {
            "workers": 1,
            "speakers": {
                "low": {"voice": "en-us+m1", "pitch": 30, "range": 50, "rate": 170},
                "mid": {"voice": "en-us+m3", "pitch": 70, "range": 50, "rate": 190},
                "high": {"voice": "en-us+f2", "pitch": 60, "range": 50, "rate": 180},
            },
            "sentences": [
                "The old boat drifted toward the harbor.",
                "A warm breeze carried the smell of bread.",
                "She painted the fence bright green.",
                "Our train leaves the station at nine.",
                "The children laughed at the puppy.",
                "Heavy clouds gathered over the hills.",
            ],
        },
    },
    "features": {"workers": 1, "f0_method": "dio"},  # harvest still runs in evaluation's MCD recipe
    # three of the six ordered pairs, a cycle: every speaker is a source and a target once
    "convert": {"workers": 1, "pairs": [["low", "mid"], ["mid", "high"], ["high", "low"]]},
    "model": {
        "generator": {"channels": 4, "res_blocks": 1},
        "discriminator": {"channels": 4, "classifier_channels": 4},
    },
    "train": {
        "iterations": 6,
        "batch_size": 4,
        "crop_frames": 64,
        "log_every": 2,
        "checkpoint_every": 3,
        "num_threads": 1,
        "optimizer": {"decay_start": 3},
    },
    # a WORLD system and a log-mel one (HiFi-GAN), compared in one report; 32 mel frames = 0.37 s
    "experiments": {
        "stargan-vc2": {},
        "stargan-vc2-mel": {"model": {"features": "mel"}, "train": {"crop_frames": 32}},
    },
    "evaluate": {
        "bootstrap": 100,
        "samples_to_log": 1,
        "workers": 1,
        "perceptual": ["speaker", "intelligibility", "naturalness"],  # every metric, end to end
        "asr": {"beam_size": 1},  # greedy decoding: the same code path, less decoding
    },
    # the diagnosis stage: 4-iteration runs of stargan-vc2 and with one switch, on the validation sentence
    "diagnosis": {
        "enabled": True,
        "experiment": "stargan-vc2",
        "start": "stargan-vc2",
        "iterations": 4,
        "validate_every": 2,
        "switches": {"hinge": {"train": {"adv_loss": "hinge"}}},
    },
    # the contrast stage: stargan-vc2 against itself with one difference (the walk and its report section)
    "contrast": {
        "enabled": True,
        "better": "stargan-vc2",
        "worse": "stargan-vc2",
        "iterations": 4,
        "validate_every": 2,
        "switches": {"no-id": {"train": {"lambdas": {"id": 0.0}}}},
    },
    "tracking": {"experiment": "pipeline-test"},
    # one seed: each seed repeats every training, conversion and evaluation stage (and each queued
    # experiment's); test_bad_input's project trains two and checks the seed spread end to end
    "seeds": [0],
}


def make_project_copy(dest: Path, overrides: dict | None = None) -> Path:
    """A fresh git+DVC project at ``dest`` with this repo's pipeline and tiny params; returns ``dest``."""
    import shutil
    import subprocess

    import yaml

    from vc.configlib import deep_merge

    dest.mkdir(parents=True, exist_ok=True)
    for name in ("dvc.yaml", ".dvcignore", ".gitignore"):
        shutil.copy2(ROOT / name, dest / name)
    for name in ("pipeline", "vc", "listening-test"):
        shutil.copytree(ROOT / name, dest / name, ignore=shutil.ignore_patterns("__pycache__"))
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params = deep_merge(params, TINY_PARAMS_OVERRIDES)
    params["experiments"] = TINY_PARAMS_OVERRIDES["experiments"]  # mappings that replace, not merge
    params["corpus"]["embedded"]["speakers"] = TINY_PARAMS_OVERRIDES["corpus"]["embedded"]["speakers"]
    params["diagnosis"] = TINY_PARAMS_OVERRIDES["diagnosis"]
    params["contrast"] = TINY_PARAMS_OVERRIDES["contrast"]
    params = deep_merge(params, overrides or {})
    if overrides and "experiments" in overrides:  # the named experiments, not added to the tiny ones
        params["experiments"] = overrides["experiments"]
    (dest / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    run = {"cwd": dest, "check": True, "capture_output": True}
    subprocess.run(["git", "init", "-q"], **run)
    subprocess.run([sys_bin("dvc"), "init", "-q"], **run)
    subprocess.run([sys_bin("dvc"), "config", "core.analytics", "false"], **run)
    subprocess.run(["git", "add", "-A"], **run)
    subprocess.run(
        ["git", "-c", "user.name=test", "-c", "user.email=test@example.com", "commit", "-qm", "init"], **run
    )
    return dest


def sys_bin(name: str) -> str:
    """A console script of the running interpreter's environment (``dvc``, ``mlflow``)."""
    import sys

    return str(Path(sys.executable).parent / name)


def project_env(**extra: str) -> dict[str, str]:
    """The environment for subprocesses: this interpreter's bin first on PATH, a private MLflow store unless
    given, no inherited DVC variables."""
    import os
    import sys

    env = {k: v for k, v in os.environ.items() if not k.startswith(("DVC_", "MLFLOW_"))}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["OMP_NUM_THREADS"] = "1"
    env["MLFLOW_SYSTEM_METRICS_SAMPLING_INTERVAL"] = "1"  # tiny runs end before the default 10 s sample
    env.update(extra)
    return env


# ------------------------------------------------------------- end-to-end helpers (DVC, MLflow, git)
def dvc(
    project: Path, *args: str, timeout: int = 900, check: bool = True, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    result = subprocess.run(
        [sys_bin("dvc"), *args],
        cwd=project,
        env=project_env(**(env or {})),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if check:
        assert result.returncode == 0, (
            f"dvc {' '.join(args)}:\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
        )
    return result


def mlflow_client(project: Path):
    from mlflow.tracking import MlflowClient

    return MlflowClient(f"sqlite:///{project / 'mlflow.db'}")


def runs_of(project: Path, filter_string: str = "") -> list:
    client = mlflow_client(project)
    exp = client.get_experiment_by_name("pipeline-test")
    return client.search_runs([exp.experiment_id], filter_string=filter_string, max_results=1000)


def git(project: Path, *args: str) -> str:
    """``git <args>`` in ``project``; its stdout."""
    return subprocess.run(["git", *args], cwd=project, check=True, capture_output=True, text=True).stdout


def git_commit_all(project: Path, message: str) -> None:
    git(project, "add", "-A")
    git(project, "-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-qm", message)


@contextlib.contextmanager
def mlflow_server(store: Path) -> Iterator[str]:
    """A real `mlflow server` on 127.0.0.1 with a SQLite backend and an artifacts destination under ``store``;
    yields its URL."""
    import socket
    import time
    import urllib.request

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    store.mkdir(parents=True, exist_ok=True)
    proc = subprocess.Popen(
        [
            *(sys_bin("mlflow"), "server", "--host", "127.0.0.1", "--port", str(port)),
            *("--backend-store-uri", f"sqlite:///{store / 'mlflow.db'}"),
            *("--artifacts-destination", (store / "artifacts").as_uri(), "--workers", "1"),
        ],
        cwd=store,
        env=project_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 120
        while True:
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=2):
                    break  # urlopen raises HTTPError (an OSError) for an error status
            except OSError:
                if time.time() > deadline:
                    raise RuntimeError("mlflow server did not start") from None
                time.sleep(0.5)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=30)
