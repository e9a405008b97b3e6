"""Build a prepared corpus folder: ``wav/<speaker>/<utt>.wav``, ``manifest.csv``, ``summary.json``.

The sources are the embedded eSpeak NG corpus or a real corpus folder; every file goes through
:func:`vc.audio.prepare`, the split is assigned (:mod:`vc.corpus.split`), and the result appears at once
(:func:`vc.io.atomic_dir`): an error or an interruption leaves the previous corpus folder untouched.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd

from vc.audio import UnusableAudioError, prepare
from vc.config import AudioConfig, CorpusConfig, VoiceConfig
from vc.corpus.layouts import SourceUtterance, scan_corpus
from vc.corpus.split import assign_splits
from vc.corpus.transcripts import read_transcripts
from vc.errors import InputError
from vc.io import AudioReadError, atomic_dir, read_audio, write_json, write_wav
from vc.parallel import parallel_map

__all__ = ["MANIFEST_COLUMNS", "CorpusError", "build_corpus", "frames_in", "read_manifest"]

log = logging.getLogger(__name__)

MANIFEST_COLUMNS = [
    "speaker", "utt_id", "split", "path", "duration", "sample_rate",
    "source", "source_sample_rate", "source_duration", "status", "note", "text",
]  # fmt: skip


class CorpusError(InputError):
    """A corpus cannot be built as configured; the message names the file or the params key."""


def frames_in(duration_s: float, frame_period_ms: float) -> int:
    """Number of WORLD analysis frames of a ``duration_s`` signal (pyworld: ``1 + len * 1000 / fs // fp``)."""
    return 1 + int(duration_s * 1000.0 / frame_period_ms)


@dataclass(frozen=True)
class _Job:
    speaker: str
    utt_id: str
    source: str  # a file path, or a description of the synthetic voice
    text: str
    out: Path
    audio: AudioConfig
    wav: np.ndarray | None = None  # synthesized audio (embedded corpus); None: read ``source``
    sample_rate: int = 0


def _prepare_one(job: _Job) -> dict:
    """Prepare and write one utterance; bad input (unreadable, too short, silent, no speech:
    :func:`vc.audio.prepare`) is returned as ``status=bad`` with the reason."""
    row = {"speaker": job.speaker, "utt_id": job.utt_id, "source": job.source, "text": job.text}
    try:
        if job.wav is None:
            wav, sr = read_audio(job.source)
        else:
            wav, sr = job.wav, job.sample_rate
        row["source_sample_rate"] = sr
        row["source_duration"] = round(len(wav) / sr, 4)
        prepared = prepare(wav, sr, job.audio, name=job.source)
    except (AudioReadError, UnusableAudioError) as err:
        return {**row, "status": "bad", "note": str(err).removeprefix(f"{job.source}: ")}  # the row names it
    write_wav(job.out, prepared.wav, prepared.sample_rate)
    return {
        **row,
        "status": "ok",
        "note": "; ".join(prepared.notes),
        "duration": round(prepared.duration, 4),
        "sample_rate": prepared.sample_rate,
    }


def _embedded_jobs(cfg: CorpusConfig, audio: AudioConfig, tmp: Path) -> list[_Job]:
    from vc.corpus import espeak  # optional extra (GPL-3.0); imported only for the embedded corpus

    speakers = cfg.speakers or tuple(cfg.embedded.speakers)
    voices: dict[str, VoiceConfig] = {s: cfg.embedded.speakers[s] for s in speakers}
    for spk, voice in voices.items():
        try:
            espeak.validate_voice(voice.voice)
        except espeak.EspeakError as err:
            raise CorpusError(f"corpus.embedded.speakers.{spk}.voice: {err}") from None
    ids = [f"s{i + 1:03d}" for i in range(len(cfg.embedded.sentences))]
    pairs = [
        (spk, utt, text) for spk in speakers for utt, text in zip(ids, cfg.embedded.sentences, strict=True)
    ]
    log.info(
        "synthesizing %d utterances (%d speakers x %d sentences) with eSpeak NG",
        len(pairs),
        len(speakers),
        len(ids),
    )
    wavs = espeak.synthesize_many(
        [(text, voices[spk]) for spk, _, text in pairs], workers=cfg.embedded.workers
    )
    return [
        _Job(
            spk,
            utt,
            f"espeak-ng:{voices[spk].voice} pitch={voices[spk].pitch} range={voices[spk].range} "
            f"rate={voices[spk].rate}",
            text,
            tmp / "wav" / spk / f"{utt}.wav",
            audio,
            wav,
            espeak.SAMPLE_RATE,
        )
        for (spk, utt, text), wav in zip(pairs, wavs, strict=True)
    ]


def _resolve(path: str, base_dir: Path) -> Path:
    p = Path(path).expanduser()
    return (p if p.is_absolute() else base_dir / p).resolve()


def _directory_jobs(cfg: CorpusConfig, audio: AudioConfig, tmp: Path, base_dir: Path) -> list[_Job]:
    utts: list[SourceUtterance] = scan_corpus(_resolve(cfg.root or "", base_dir), cfg.layout, cfg.speakers)
    if cfg.transcripts is not None:
        transcripts = read_transcripts(_resolve(cfg.transcripts, base_dir))
        texts = [transcripts.text(u.speaker, u.utt_id) or u.text for u in utts]
        missing = sum(not t for t in texts)
        log.info("corpus.transcripts: texts for %d of %d utterances", len(utts) - missing, len(utts))
        if missing:
            log.warning(
                "corpus.transcripts: %s has no text for %d utterances (e.g. %s/%s); intelligibility scores "
                "those against the ASR transcript of the source recording",
                transcripts.source,
                missing,
                *next((u.speaker, u.utt_id) for u, t in zip(utts, texts, strict=True) if not t),
            )
        utts = [replace(u, text=t) for u, t in zip(utts, texts, strict=True)]
    return [
        _Job(u.speaker, u.utt_id, str(u.audio), u.text, tmp / "wav" / u.speaker / f"{u.utt_id}.wav", audio)
        for u in utts
    ]


def _reject(rows: pd.DataFrame, mask: pd.Series, note: str, on_bad_file: str, tmp: Path) -> None:
    """Mark ``rows[mask]`` skipped (with a warning) or raise naming the first file, per ``on_bad_file``."""
    if not mask.any():
        return
    first = rows[mask].iloc[0]
    if on_bad_file == "error":
        detail = first["note"] if first["status"] == "bad" else note
        more = f" (and {int(mask.sum()) - 1} more)" if mask.sum() > 1 else ""
        raise CorpusError(
            f"{first['source']}: {detail}{more}. Set corpus.on_bad_file: skip to skip such files."
        )
    for idx in rows.index[mask]:
        log.warning("skipping %s: %s", rows.at[idx, "source"], rows.at[idx, "note"] or note)
        if rows.at[idx, "status"] == "ok":
            rows.at[idx, "note"] = note
            (tmp / rows.at[idx, "path"]).unlink(missing_ok=True)
        rows.at[idx, "status"] = "skipped"
        rows.at[idx, "split"] = ""


def build_corpus(
    cfg: CorpusConfig,
    audio: AudioConfig,
    out_dir: str | Path,
    *,
    min_train_frames: int,
    frame_period_ms: float,
    base_dir: str | Path = ".",
) -> pd.DataFrame:
    """Build the prepared corpus at ``out_dir``; return the manifest.

    ``min_train_frames`` is the training crop: a training utterance with fewer WORLD frames is bad input.
    ``base_dir`` resolves a relative ``cfg.root``.
    """
    with atomic_dir(out_dir) as tmp:
        jobs = (
            _embedded_jobs(cfg, audio, tmp)
            if cfg.source == "embedded"
            else _directory_jobs(cfg, audio, tmp, Path(base_dir))
        )
        log.info("preparing %d files", len(jobs))
        rows = pd.DataFrame(parallel_map(_prepare_one, jobs, workers=cfg.workers, desc="prepare"))
        rows["path"] = [str(j.out.relative_to(tmp)) for j in jobs]
        rows["split"] = ""
        _reject(rows, rows["status"] == "bad", "", cfg.on_bad_file, tmp)

        ok = rows["status"] == "ok"
        speakers = list(dict.fromkeys(rows["speaker"]))
        triples = list(
            zip(rows.loc[ok, "speaker"], rows.loc[ok, "utt_id"], rows.loc[ok, "text"], strict=True)
        )
        splits = assign_splits(triples, speakers, cfg.split)
        rows.loc[ok, "split"] = [
            splits[s, u] for s, u in zip(rows.loc[ok, "speaker"], rows.loc[ok, "utt_id"], strict=True)
        ]
        frames = rows["duration"].fillna(0).map(lambda d: frames_in(d, frame_period_ms))
        short = (rows["split"] == "train") & (frames < min_train_frames)
        _reject(
            rows,
            short,
            f"shorter than the training crop ({min_train_frames} frames = "
            f"{min_train_frames * frame_period_ms / 1000:.2f} s, train.crop_frames)",
            cfg.on_bad_file,
            tmp,
        )

        counts = Counter(rows.loc[rows["split"] == "train", "speaker"])
        for spk in speakers:
            if counts[spk] < cfg.min_train_utterances:
                raise CorpusError(
                    f"speaker '{spk}' has {counts[spk]} usable training utterances; "
                    f"corpus.min_train_utterances is {cfg.min_train_utterances}"
                )
        rows = rows.reindex(columns=MANIFEST_COLUMNS)
        rows.to_csv(tmp / "manifest.csv", index=False)
        write_json(tmp / "summary.json", corpus_summary(rows))
    return rows


def corpus_summary(rows: pd.DataFrame) -> dict:
    """Per-speaker utterance counts and seconds of prepared audio, by split."""
    ok = rows[rows["status"] == "ok"]
    skipped = rows[rows["status"] != "ok"]
    out = {
        "speakers": {},
        "utterances": len(ok),
        "seconds": round(float(ok["duration"].sum()), 2),
        "skipped": len(skipped),
        "skipped_files": [
            {"file": str(f), "reason": str(n)}
            for f, n in zip(skipped["source"], skipped["note"], strict=True)
        ],
    }
    for spk, group in ok.groupby("speaker", sort=False):
        out["speakers"][spk] = {
            "utterances": len(group),
            "train": int((group["split"] == "train").sum()),
            "validation": int((group["split"] == "validation").sum()),
            "test": int((group["split"] == "test").sum()),
            "seconds": round(float(group["duration"].sum()), 2),
        }
    return out


def read_manifest(path: str | Path) -> pd.DataFrame:
    """The manifest of a built corpus, with ``utt_id`` kept as text (``001`` stays ``001``)."""
    path = Path(path)
    if not path.is_file():
        raise CorpusError(f"{path}: no corpus manifest (run the corpus stage first)")
    text = {c: str for c in ("speaker", "utt_id", "split", "path", "source", "status", "note", "text")}
    df = pd.read_csv(path, dtype=text, keep_default_na=False)
    for column in ("duration", "sample_rate", "source_sample_rate", "source_duration"):
        if column in df:  # skipped files leave these empty: NaN, never text
            df[column] = pd.to_numeric(df[column].replace("", None), errors="coerce")
    return df
