"""Bad and unusual files in a real-layout corpus, end to end through DVC: with `corpus.on_bad_file: skip`
they are skipped by whichever stage meets them and listed in the manifest and the report, with no
traceback anywhere; with `error`, the first stage that meets one stops with the file's name.

The `skip` project is also the end-to-end test of a real MLflow tracking server (HTTP transport, artifacts
stored by the server) and of two training seeds: one pipeline run, minutes on two cores, serves all three.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
from conftest import make_project_copy, mlflow_server, project_env, speaker_utterance, sys_bin, write_wav

pytestmark = pytest.mark.slow

FS = 16000


def _noise() -> np.ndarray:
    """Loud noise with no periodicity: passes preparation, has no voiced frames for WORLD."""
    noise = np.random.default_rng(0).standard_normal(FS) * 0.3
    return np.convolve(noise, np.ones(2) / 2, mode="same")


def messy_corpus(root: Path, *, bad: bool = True, unvoiced: bool = True) -> dict[str, str]:
    """Two speakers x 8 parallel utterances, plus (``bad``) broken files and (``unvoiced``) a noise file.

    Returns ``{speaker/file name: expected outcome}`` for the files that are not plain good ones.
    """
    for spk in ("spkA", "spkB"):
        for i in range(8):
            write_wav(root / spk / f"utt{i:02d}.wav", speaker_utterance(spk, i))
    expected: dict[str, str] = {}
    # unusual but usable: a stereo file, an 8 kHz file and a name with a space and a non-ASCII letter
    stereo = np.stack([speaker_utterance("spkA", 8)] * 2, axis=1)
    write_wav(root / "spkA" / "utt08.wav", stereo)
    write_wav(root / "spkB" / "utt08.wav", speaker_utterance("spkB", 8, sample_rate=8000), 8000)
    write_wav(root / "spkA" / "utt é 09.wav", speaker_utterance("spkA", 9))
    expected.update({"spkA/utt08.wav": "ok", "spkB/utt08.wav": "ok", "spkA/utt é 09.wav": "ok"})
    if bad:
        (root / "spkA" / "broken.wav").write_bytes(b"RIFF\x00\x00 this is not a wav file")
        sf.write(root / "spkB" / "empty.wav", np.zeros((0,)), FS, subtype="PCM_16")
        sf.write(root / "spkA" / "nan.wav", np.full(FS, np.nan), FS, subtype="FLOAT")
        write_wav(root / "spkB" / "silent.wav", np.zeros(FS))
        write_wav(root / "spkA" / "one-sample.wav", np.full(1, 0.5))
        square = 0.5 * np.sign(np.sin(2 * np.pi * 150 * np.arange(2 * FS) / FS))  # 2 s: voiced, no speech
        write_wav(root / "spkB" / "square.wav", square)
        expected.update(
            {
                "spkA/broken.wav": "unreadable or corrupt",
                "spkB/empty.wav": "empty audio",
                "spkA/nan.wav": "NaN",
                "spkB/silent.wav": "silent",
                "spkA/one-sample.wav": "too short: 1 sample",
                "spkB/square.wav": "no speech found",
            }
        )
    if unvoiced:
        write_wav(root / "spkB" / "noise.wav", _noise())
        expected["spkB/noise.wav"] = "no voiced frames"
    return expected


def _project(tmp_path: Path, corpus: Path, on_bad_file: str, seeds: tuple[int, ...] = (0,)) -> Path:
    return make_project_copy(
        tmp_path / "project",
        {
            # process pools end to end (the other pipeline tests run one process per stage), and one
            # perceptual metric through references, evaluate and baselines with skipped files
            "corpus": {
                "source": "directory",
                "root": str(corpus),
                "on_bad_file": on_bad_file,
                "split": {"test_utterances": 2, "validation_utterances": 1},
                "workers": 2,
            },
            # DIO in a narrow band finds no F0 in noise; the synthetic voices (110, 210 Hz) are inside it
            "features": {"f0_method": "dio", "f0_floor": 90.0, "f0_ceil": 260.0, "workers": 2},
            "convert": {"workers": 2, "pairs": []},
            "baselines": ["source", "mean-var", "copy-synthesis"],  # HiFi-GAN's: test_pipeline
            "evaluate": {"workers": 2, "perceptual": ["speaker"]},
            "experiments": {"stargan-vc2": {}},
            "seeds": list(seeds),
        },
    )


def _repro(project: Path, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys_bin("dvc"), "repro"],
        cwd=project,
        env=project_env(**env),
        capture_output=True,
        text=True,
        timeout=900,
    )


class SkipRun(NamedTuple):
    project: Path
    output: str  # DVC's stdout and stderr
    expected: dict[str, str]  # messy_corpus's outcomes
    server: str  # the tracking server's URL
    store: Path  # the server's backend and artifact store


@pytest.fixture(scope="module")
def skipping(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SkipRun]:
    """The messy corpus with ``on_bad_file: skip`` and two seeds, reproduced against a tracking server."""
    root = tmp_path_factory.mktemp("skip")
    with mlflow_server(root / "server") as url:
        expected = messy_corpus(root / "corpus")
        project = _project(root, root / "corpus", "skip", seeds=(0, 1))
        result = _repro(project, MLFLOW_TRACKING_URI=url)
        output = result.stdout + result.stderr
        assert result.returncode == 0, output[-5000:]
        yield SkipRun(project, output, expected, url, root / "server")


def test_skipped_files_flow_through_every_stage_to_the_report(skipping: SkipRun) -> None:
    project, expected = skipping.project, skipping.expected
    assert "Traceback" not in skipping.output
    manifest = pd.read_csv(project / "data/corpus/manifest.csv", keep_default_na=False)
    index = pd.read_csv(project / "data/features/index.csv", keep_default_na=False)
    report = (project / "reports/report.md").read_text()
    for name, outcome in expected.items():
        row = manifest[manifest["source"].str.endswith(f"/{name}")]
        assert len(row) == 1, name
        if outcome == "ok":
            assert row["status"].iloc[0] == "ok", (name, row["note"].iloc[0])
        elif name == "spkB/noise.wav":  # prepared fine, skipped by the features stage
            feat = index[index["utt_id"] == row["utt_id"].iloc[0]]
            assert feat["status"].tolist() == ["skipped"] and outcome in feat["note"].iloc[0]
            assert f"{row['speaker'].iloc[0]}/{row['utt_id'].iloc[0]}" in report
        else:
            assert row["status"].iloc[0] == "skipped" and outcome in row["note"].iloc[0], name
            assert name in report, name
    metrics = json.loads((project / "reports/metrics.json").read_text())
    assert metrics["stargan-vc2"]["n"] == 8  # 2 ordered pairs x 2 test sentences x 2 seeds
    # the seed spread: the SD of the two trainings' mean MCDs, as each seed's evaluation scored them
    means = [
        pd.read_csv(project / f"eval/experiments/stargan-vc2/seed-{seed}/scores.csv")["mcd_db"].mean()
        for seed in (0, 1)
    ]
    assert metrics["stargan-vc2"]["seeds"] == 2
    assert metrics["stargan-vc2"]["mcd_db_seed_sd"] == pytest.approx(np.std(means, ddof=1), abs=1e-4)


def test_pipeline_against_a_tracking_server(skipping: SkipRun, tmp_path: Path) -> None:
    project, url, store = skipping.project, skipping.server, skipping.store
    assert not (project / "mlflow.db").exists() and not (project / "mlartifacts").exists()

    from mlflow.tracking import MlflowClient

    client = MlflowClient(url)
    exp = client.get_experiment_by_name("pipeline-test")
    runs = {r.info.run_name: r for r in client.search_runs([exp.experiment_id])}
    expected = {"stargan-vc2/seed-0", "stargan-vc2/seed-1", "baseline:source", "baseline:mean-var"}
    assert expected | {"baseline:copy-synthesis"} <= set(runs)
    for seed in (0, 1):
        run = runs[f"stargan-vc2/seed-{seed}"]
        assert run.info.status == "FINISHED" and {"g/cyc", "eval/mcd_db"} <= set(run.data.metrics)
        assert run.data.params["train.seed"] == str(seed)
        assert [m.step for m in client.get_metric_history(run.info.run_id, "g/cyc")] == [2, 4, 6]
    config = client.download_artifacts(run.info.run_id, "model/config.json", str(tmp_path / "dl"))
    assert json.loads(Path(config).read_text())["experiment"]["name"] == "stargan-vc2"
    # last and best generator of each run, stored by the server, not the client
    assert len(list((store / "artifacts").rglob("generator.pt"))) == 4


def test_error_stops_at_the_first_stage_that_meets_a_bad_file(tmp_path: Path) -> None:
    messy_corpus(tmp_path / "corpus", unvoiced=False)
    project = _project(tmp_path / "a", tmp_path / "corpus", "error")
    result = _repro(project)
    output = result.stdout + result.stderr
    assert result.returncode != 0 and "Traceback" not in output
    assert "broken.wav" in output and "on_bad_file: skip" in output
    assert not (project / "data/corpus").exists()  # nothing half-written

    messy_corpus(tmp_path / "corpus2", bad=False)  # only the noise file: the corpus stage accepts it
    project = _project(tmp_path / "b", tmp_path / "corpus2", "error")
    result = _repro(project)
    output = result.stdout + result.stderr
    assert result.returncode != 0 and "Traceback" not in output
    assert "noise.wav: no voiced frames" in output and (project / "data/corpus/manifest.csv").is_file()
    assert not (project / "data/features").exists()
