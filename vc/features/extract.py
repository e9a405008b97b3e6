"""Analyse a prepared corpus into per-utterance feature files, in parallel processes.

Output folder: ``<speaker>/<utt>.npz`` (WORLD features, see :class:`vc.features.world.WorldFeatures`),
``<speaker>/<utt>.mel.npy`` (the HiFi-GAN log-mel ``(T_mel, 80)`` float32, :func:`log_mel_features`),
``index.csv`` (one row per manifest row: frames, voiced frames, mean F0, log-mel frames, status) and
``summary.json`` (per speaker: utterances, seconds, mean F0). Everything in the folder is a function of the
corpus and the settings, byte for byte, so DVC sees a re-run with the same inputs as unchanged; the wall time
and real-time factor go to a separate file.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from vc import cost
from vc.audio import resample
from vc.config import FeatureKind, FeaturesConfig
from vc.errors import InputError
from vc.features.mel import HIFIGAN_22K, log_mel
from vc.features.world import analyze, load_features
from vc.io import AudioReadError, atomic_dir, read_audio, write_json
from vc.parallel import parallel_map, resolve_workers

__all__ = [
    "AnalysisJob",
    "FeatureError",
    "analyze_corpus",
    "analyze_file",
    "load_corpus_features",
    "load_training_matrices",
    "log_mel_features",
    "mel_path",
    "read_index",
]

log = logging.getLogger(__name__)


class FeatureError(InputError):
    """An utterance cannot be analysed (unreadable, no voiced frames); the message names the file."""


@dataclass(frozen=True)
class AnalysisJob:
    """One utterance to analyse: its prepared wav, the .npz to write, the analysis settings."""

    wav_path: Path
    out_path: Path
    cfg: FeaturesConfig


def mel_path(npz_path: str | Path) -> Path:
    """The log-mel file beside a WORLD feature file: ``<utt>.npz`` -> ``<utt>.mel.npy``."""
    return Path(npz_path).with_suffix(".mel.npy")


def log_mel_features(wav: np.ndarray, fs: int) -> np.ndarray:
    """The HiFi-GAN log-mel of a mono waveform ``(N,)`` at ``fs``: ``(T_mel, 80)`` float32 at 22,050 Hz, hop
    256 (11.6 ms frames), exactly as the bundled vocoder was trained (:mod:`vc.features.mel`); the waveform
    is resampled to the vocoder's rate first."""
    wav = resample(np.asarray(wav, dtype=np.float64), fs, HIFIGAN_22K.sample_rate)
    return log_mel(wav.astype(np.float32), HIFIGAN_22K).astype(np.float32)


def analyze_file(job: AnalysisJob) -> dict:
    """Analyse one wav and save its WORLD features and log-mel; bad input comes back as ``status=bad`` with
    the reason."""
    try:
        wav, fs = read_audio(job.wav_path)
    except AudioReadError as err:
        return {"status": "bad", "note": str(err)}
    feats = analyze(wav, fs, job.cfg)
    voiced = int(feats.voiced.sum())
    if voiced == 0:
        return {
            "status": "bad",
            "note": f"{job.wav_path}: no voiced frames (F0 is 0 everywhere; "
            f"f0_floor={job.cfg.f0_floor}, f0_ceil={job.cfg.f0_ceil})",
            "frames": len(feats.f0),
        }
    feats.save(job.out_path)
    mel = log_mel_features(wav, fs)
    np.save(mel_path(job.out_path), mel)
    return {
        "status": "ok",
        "note": "",
        "frames": len(feats.f0),
        "voiced_frames": voiced,
        "mean_f0": round(float(feats.f0[feats.voiced].mean()), 2),
        "mel_frames": len(mel),
    }


def analyze_corpus(
    manifest: pd.DataFrame,
    corpus_dir: str | Path,
    out_dir: str | Path,
    cfg: FeaturesConfig,
    *,
    on_bad_file: str = "error",
) -> pd.DataFrame:
    """Analyse every usable manifest row; return the feature index (also written to ``out_dir``).

    ``out_dir`` gets the same bytes for the same inputs: the time it took is logged (with the real-time
    factor) and recorded as the cost phase ``world analysis``, never written into it.
    """
    corpus_dir = Path(corpus_dir)
    rows = manifest[(manifest["status"] == "ok") & (manifest["split"].isin(["train", "validation", "test"]))]
    rows = rows[["speaker", "utt_id", "split", "duration", "path"]].reset_index(drop=True)
    wavs = [corpus_dir / p for p in rows.pop("path")]
    paths = [Path(spk) / f"{utt}.npz" for spk, utt in zip(rows["speaker"], rows["utt_id"], strict=True)]
    with atomic_dir(out_dir) as tmp:
        jobs = [AnalysisJob(wav, tmp / path, cfg) for wav, path in zip(wavs, paths, strict=True)]
        wall = time.perf_counter()
        with cost.phase("world analysis", count=len(jobs), unit="utterance"):
            results = pd.DataFrame(parallel_map(analyze_file, jobs, workers=cfg.workers, desc="analysis"))
        wall = time.perf_counter() - wall
        index = pd.concat([rows, results], axis=1)
        index["path"] = [str(p) for p in paths]
        bad = index["status"] == "bad"
        if bad.any():
            if on_bad_file == "error":
                more = f" (and {int(bad.sum()) - 1} more)" if bad.sum() > 1 else ""
                raise FeatureError(
                    index.loc[bad, "note"].iloc[0]
                    + more
                    + ". Set corpus.on_bad_file: skip to skip such files."
                )
            for note in index.loc[bad, "note"]:
                log.warning("skipping: %s", note)
            index.loc[bad, "status"] = "skipped"
        index.to_csv(tmp / "index.csv", index=False)
        summary = features_summary(index)
        write_json(tmp / "summary.json", summary)
    audio = summary["audio_seconds"]
    log.info(
        "analysed %.1f s of audio in %.1f s with %d processes (real-time factor %.4f)",
        audio,
        wall,
        resolve_workers(cfg.workers, len(paths)),
        wall / audio if audio else float("nan"),
    )
    return index


def features_summary(index: pd.DataFrame) -> dict:
    """Per speaker: utterances, seconds and mean F0 (weighted by voiced frames); the total seconds."""
    index = _numeric(index)
    ok = index[index["status"] == "ok"]
    speakers = {}
    for spk, g in ok.groupby("speaker", sort=False):
        speakers[spk] = {
            "utterances": len(g),
            "seconds": round(float(g["duration"].sum()), 2),
            "mean_f0_hz": round(float(np.average(g["mean_f0"], weights=g["voiced_frames"])), 1),
        }
    audio = float(ok["duration"].sum())
    skipped = index[index["status"] != "ok"]
    return {
        "speakers": speakers,
        "audio_seconds": round(audio, 2),
        "skipped_files": [
            {"file": f"{spk}/{utt}", "reason": str(note)}
            for spk, utt, note in zip(skipped["speaker"], skipped["utt_id"], skipped["note"], strict=True)
        ],
    }


def _numeric(index: pd.DataFrame) -> pd.DataFrame:
    """Numeric columns as numbers (a skipped file leaves them empty: NaN, never text)."""
    index = index.copy()
    for column in ("duration", "frames", "voiced_frames", "mean_f0", "mel_frames"):
        if column in index:
            index[column] = pd.to_numeric(index[column].replace("", None), errors="coerce")
    return index


def read_index(features_dir: str | Path) -> pd.DataFrame:
    path = Path(features_dir) / "index.csv"
    if not path.is_file():
        raise FeatureError(f"{path}: no feature index (run the features stage first)")
    text = {c: str for c in ("speaker", "utt_id", "split", "status", "note", "path")}
    return _numeric(pd.read_csv(path, dtype=text, keep_default_na=False))


def _usable_paths(features_dir: Path, split: str) -> list[tuple[str, Path]]:
    index = read_index(features_dir)
    index = index[(index["status"] == "ok") & (index["split"] == split)]
    return [(spk, features_dir / path) for spk, path in zip(index["speaker"], index["path"], strict=True)]


def load_corpus_features(features_dir: str | Path, split: str) -> dict[str, list]:
    """``{speaker: [WorldFeatures, ...]}`` for the usable utterances of ``split`` (train/validation/test)."""
    out: dict[str, list] = {}
    for spk, path in _usable_paths(Path(features_dir), split):
        out.setdefault(spk, []).append(load_features(path))
    return out


def load_training_matrices(features_dir: str | Path, split: str, kind: FeatureKind) -> dict[str, list]:
    """``{speaker: [(T, D) float64, ...]}``: what a model of feature ``kind`` sees, unnormalised (``world``:
    the WORLD spectral features; ``mel``: the log-mel frames)."""
    out: dict[str, list] = {}
    for spk, path in _usable_paths(Path(features_dir), split):
        if kind == "world":
            matrix = load_features(path).spectral
        else:
            try:
                matrix = np.load(mel_path(path)).astype(np.float64)
            except FileNotFoundError:
                raise FeatureError(
                    f"{mel_path(path)}: no log-mel file (features from an older version: run `dvc repro "
                    "features` again)"
                ) from None
        out.setdefault(spk, []).append(matrix)
    return out
