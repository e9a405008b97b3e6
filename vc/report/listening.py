"""The listening page: the same sentence from every system, side by side, with its scores beside each clip.

:func:`write_listening_page` writes a static folder (``index.html``, ``audio/``, ``mel/``, ``clips.csv``)
that opens from disk in any browser: no server, no CDN. For a selection of held-out sentences and speaker
pairs, one row per (sentence, pair) holds

- the source speaker's recording and the target speaker's recording of the same sentence (the corpus);
- every experiment's conversion (one training seed's) and every baseline's wav;

each with the per-item MCD, CER, similarity to the target speaker and predicted MOS (DNSMOS OVRL) read
from the evaluation outputs (``scores.csv`` of the evaluate and baselines stages, the references stage's
``perceptual/naturals.csv``), and a small log-mel spectrogram.

The clips on the page are copies, loudness-matched for listening (:func:`match_level`); the files that
were scored are only read. The HTML is made by :mod:`vc.report.listening_html`.
"""

from __future__ import annotations

import csv
import logging
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from vc.audio import ACTIVE_RANGE_DB, FRAME_SECONDS, PEAK_CEILING_DBFS, match_level, to_mono
from vc.baselines import baseline, wav_relpath
from vc.errors import InputError
from vc.evaluation.registry import spec
from vc.io import atomic_dir, read_audio, write_text, write_wav
from vc.layout import perceptual_dir, run_dir
from vc.report.listening_html import PageClip, render_page

__all__ = [
    "PAGE_METRICS",
    "Clip",
    "Item",
    "PageInputs",
    "collect_items",
    "write_listening_page",
]

log = logging.getLogger(__name__)

#: The scores shown beside each clip, in order (registry names: labels, decimals and direction come from
#: :data:`vc.evaluation.registry.METRICS`).
PAGE_METRICS = ("mcd_db", "cer", "spk_sim_target", "dnsmos_ovrl")
#: Loudness matching: the active level is the RMS of the 20 ms frames within 40 dB of the loudest frame
#: (a simple stand-in for ITU-T P.56's active speech level), and no copy peaks above -1 dBFS.
#: The spectrograms' colour scale, natural-log mel magnitude (fixed: clips at one level compare by eye).
MEL_RANGE = (-11.5, 0.5)
SOURCE_LABEL = "source (natural)"
TARGET_LABEL = "target (natural)"
NATURAL = "natural"
#: The columns a system's score rows are keyed by, per unit (``source`` keeps both directions of a pair).
_KEYS = {
    "conversion": ("source", "target", "utt_id"),
    "unordered_pair": ("source", "target", "utt_id"),
    "target": ("target", "utt_id"),
}


@dataclass(frozen=True)
class PageInputs:
    """The stage outputs the page reads (every path as dvc.yaml passes it)."""

    corpus: Path
    references: Path
    converted_experiments: Path
    eval_experiments: Path
    converted_baselines: Path
    eval_baselines: Path


@dataclass(frozen=True)
class Clip:
    """One wav of a row: ``system`` (an experiment, a baseline or a natural recording), the scored file,
    its scores (``PAGE_METRICS`` names; NaN where not scored) and the ASR transcript, if any."""

    system: str
    kind: str
    wav: Path
    metrics: Mapping[str, float]
    transcript: str = ""


@dataclass(frozen=True)
class Item:
    """One row of the page: a sentence converted from ``source`` to ``target``."""

    utt_id: str
    source: str
    target: str
    text: str
    clips: tuple[Clip, ...]

    @property
    def pair(self) -> str:
        return f"{self.source} \u2192 {self.target}"


# ------------------------------------------------------------------------------------------ reading
def _read_csv(path: Path, what: str) -> pd.DataFrame:
    if not path.is_file():
        raise InputError(f"{path}: no {what} (run the stage that writes it first)")
    text = dict.fromkeys(("source", "target", "utt_id", "speaker", "path", "text", "asr_transcript"), str)
    return pd.read_csv(path, dtype=text, keep_default_na=False)


def _rows(df: pd.DataFrame, keys: Sequence[str], path: Path) -> dict[tuple[str, ...], dict]:
    missing = [k for k in keys if k not in df.columns]
    if missing:
        raise InputError(f"{path}: no column {', '.join(missing)}")
    return {tuple(str(r[k]) for k in keys): r for r in df.to_dict(orient="records")}


def _number(value: object) -> float:
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return math.nan


def _metrics(row: Mapping | None, columns: Mapping[str, str]) -> dict[str, float]:
    """``{metric: value}`` of ``row`` read through ``columns`` (metric -> the row's column)."""
    return {m: _number((row or {}).get(c)) if c else math.nan for m, c in columns.items()}


@dataclass(frozen=True)
class _System:
    """A system's wavs and score rows: ``keys`` are the columns its rows are keyed by (its unit)."""

    name: str
    kind: str
    keys: tuple[str, ...]
    scores: dict[tuple[str, ...], dict]
    scores_path: Path
    wav_path: Callable[[str, str, str], Path]

    def clip(self, source: str, target: str, utt: str) -> Clip:
        where = {"source": source, "target": target, "utt_id": utt}
        row = self.scores.get(tuple(where[k] for k in self.keys))
        if row is None:
            raise InputError(f"{self.scores_path}: no scores of {source}->{target} {utt} ({self.name})")
        metrics = _metrics(row, {m: m for m in PAGE_METRICS})
        return Clip(self.name, self.kind, self.wav_path(source, target, utt), metrics, _text(row))


def _text(row: Mapping | None) -> str:
    value = (row or {}).get("asr_transcript")
    return value if isinstance(value, str) else ""


def _experiment(inputs: PageInputs, name: str, seed: int) -> _System:
    folder = run_dir(inputs.converted_experiments, name, seed)
    index_path = folder / "index.csv"
    index = _rows(
        _read_csv(index_path, f"conversion index of {name} seed {seed}"), _KEYS["conversion"], index_path
    )
    scores_path = run_dir(inputs.eval_experiments, name, seed) / "scores.csv"
    scores = _read_csv(scores_path, f"scores of {name} seed {seed}")
    if "seed" in scores.columns:
        scores = scores[pd.to_numeric(scores["seed"], errors="coerce") == seed]

    def wav_path(source: str, target: str, utt: str) -> Path:
        row = index.get((source, target, utt))
        if row is None:
            raise InputError(f"{index_path}: no conversion of {source}->{target} {utt}")
        return folder / row["path"]

    keys = _KEYS["conversion"]
    return _System(name, "experiment", keys, _rows(scores, keys, scores_path), scores_path, wav_path)


def _baseline(inputs: PageInputs, name: str) -> _System:
    entry = baseline(name)
    scores_path = Path(inputs.eval_baselines) / name / "scores.csv"
    keys = _KEYS[entry.unit]
    scores = _rows(_read_csv(scores_path, f"scores of baseline {name}"), keys, scores_path)
    folder = Path(inputs.converted_baselines) / name

    def wav_path(source: str, target: str, utt: str) -> Path:
        return folder / wav_relpath(entry, source, target, utt)

    return _System(name, "baseline", keys, scores, scores_path, wav_path)


@dataclass(frozen=True)
class _Naturals:
    """The corpus's recordings (manifest) and their perceptual scores (the references stage's)."""

    corpus: Path
    wavs: dict[tuple[str, ...], dict]
    scores: dict[tuple[str, ...], dict]
    source_rows: _System | None

    def clip(self, speaker: str, utt: str, label: str, columns: Mapping[str, str]) -> Clip:
        row = self.wavs.get((speaker, utt))
        if row is None:
            raise InputError(f"{self.corpus / 'manifest.csv'}: no recording {speaker}/{utt}")
        scores = self.scores.get((speaker, utt))
        return Clip(label, NATURAL, self.corpus / row["path"], _metrics(scores, columns), _text(scores))

    def source_clip(self, source: str, target: str, utt: str) -> Clip:
        """The source's recording, scored as the ``source`` baseline scored it against this target (MCD to
        the target's recording, similarity to the target); without that baseline, its own scores."""
        own = {m: m if spec(m).natural_column == m else "" for m in PAGE_METRICS}
        clip = self.clip(source, utt, SOURCE_LABEL, own)
        if self.source_rows is None:
            return clip
        scored = self.source_rows.clip(source, target, utt)
        return Clip(SOURCE_LABEL, NATURAL, clip.wav, scored.metrics, scored.transcript or clip.transcript)

    def target_clip(self, target: str, utt: str) -> Clip:
        """The target's recording with the natural recordings' scores (its similarity to its own voice)."""
        columns = {m: spec(m).natural_column for m in PAGE_METRICS}  # "": not scored (NaN)
        return self.clip(target, utt, TARGET_LABEL, columns)


def _naturals(inputs: PageInputs, baselines: Sequence[str]) -> _Naturals:
    manifest_path = Path(inputs.corpus) / "manifest.csv"
    manifest = _read_csv(manifest_path, "corpus manifest")
    naturals_path = perceptual_dir(inputs.references) / "naturals.csv"
    scores = _rows(
        _read_csv(naturals_path, "natural recordings' scores"), ("speaker", "utt_id"), naturals_path
    )
    source = _baseline(inputs, "source") if "source" in baselines else None
    return _Naturals(
        Path(inputs.corpus), _rows(manifest, ("speaker", "utt_id"), manifest_path), scores, source
    )


# ------------------------------------------------------------------------------------------ selection
def _candidates(systems: Sequence[_System]) -> list[tuple[str, str, str]]:
    """The ``(source, target, utt)`` items every converting system scored, sorted."""
    converting = [s for s in systems if len(s.keys) == 3]
    if not converting:
        raise InputError("the listening page needs at least one experiment or converting baseline")
    common = set.intersection(*(set(s.scores) for s in converting))
    return sorted(common)


def select(
    candidates: Sequence[tuple[str, str, str]],
    sentences: int,
    pairs: Sequence[tuple[str, str]] = (),
) -> list[tuple[str, str, str]]:
    """The first ``sentences`` sentence ids (sorted) of each pair in ``pairs`` (empty: every pair the
    systems converted, sorted), as ``(source, target, utt)``; an unknown pair is an error naming it."""
    if sentences < 1:
        raise InputError(f"listening page: sentences must be at least 1, got {sentences}")
    by_pair: dict[tuple[str, str], list[str]] = {}
    for source, target, utt in candidates:
        by_pair.setdefault((source, target), []).append(utt)
    chosen = [tuple(p) for p in pairs] or sorted(by_pair)
    unknown = [f"{s}->{t}" for s, t in chosen if (s, t) not in by_pair]
    if unknown:
        known = ", ".join(f"{s}->{t}" for s, t in sorted(by_pair))
        raise InputError(f"listening page pairs {', '.join(unknown)} were not converted (converted: {known})")
    return [(s, t, u) for s, t in chosen for u in sorted(by_pair[(s, t)])[:sentences]]


def collect_items(
    inputs: PageInputs,
    experiments: Sequence[str],
    baselines: Sequence[str],
    seed: int,
    sentences: int,
    pairs: Sequence[tuple[str, str]] = (),
) -> list[Item]:
    """The page's rows: for each selected (sentence, pair), the natural recordings, then each experiment's
    conversion of training seed ``seed`` (params order), then each baseline's wav (params order; the
    ``source`` baseline is the source recording itself)."""
    systems = [_experiment(inputs, name, seed) for name in experiments]
    systems += [_baseline(inputs, name) for name in baselines if name != "source"]
    naturals = _naturals(inputs, baselines)
    items = []
    for source, target, utt in select(_candidates(systems), sentences, pairs):
        clips = [naturals.source_clip(source, target, utt), naturals.target_clip(target, utt)]
        clips += [s.clip(source, target, utt) for s in systems]
        text = str(naturals.wavs[(source, utt)].get("text") or "")
        items.append(Item(utt, source, target, text, tuple(clips)))
    return items


# ------------------------------------------------------------------------------------------ writing
def write_mel_png(wav: np.ndarray, sample_rate: int, path: Path) -> None:
    """A small log-mel spectrogram image (80 mel bands high, one pixel per 11.6 ms frame at 22.05 kHz),
    low frequencies at the bottom, on a fixed colour scale so that loudness-matched clips compare."""
    from matplotlib import image

    from vc.features.mel import MelConfig, log_mel

    cfg = MelConfig(sample_rate=sample_rate, fmax=min(8000.0, sample_rate / 2))
    padded = np.pad(wav, (0, max(0, cfg.n_fft - len(wav))))
    mel = log_mel(padded.astype(np.float32), cfg)  # (T, 80), natural log
    image.imsave(path, mel.T, cmap="magma", vmin=MEL_RANGE[0], vmax=MEL_RANGE[1], origin="lower")


def _copy(clip: Clip, row: int, column: int, folder: Path, level_dbfs: float) -> PageClip:
    """The clip's loudness-matched copy and spectrogram in ``folder``; the scored file is only read."""
    wav, rate = read_audio(clip.wav)
    wav, _ = to_mono(wav)
    leveled = match_level(wav, rate, level_dbfs)
    stem = f"{row:03d}-{column:02d}"
    audio, mel = f"audio/{stem}.wav", f"mel/{stem}.png"
    write_wav(folder / audio, leveled.wav, rate)
    write_mel_png(leveled.wav, rate, folder / mel)
    return PageClip(clip, audio, mel, leveled.gain_db, leveled.level_dbfs, leveled.limited, len(wav) / rate)


def write_listening_page(
    out: str | Path,
    inputs: PageInputs,
    *,
    experiments: Sequence[str],
    baselines: Sequence[str],
    seed: int,
    sentences: int,
    pairs: Sequence[tuple[str, str]] = (),
    level_dbfs: float = -26.0,
    title: str = "Listening page",
) -> dict[str, object]:
    """Write the page folder ``out`` atomically (``index.html``, ``audio/``, ``mel/``, ``clips.csv``: each
    copy, the file it was made from and its gain) and return a summary (rows, clips, systems)."""
    if not -60.0 <= level_dbfs <= PEAK_CEILING_DBFS:
        raise InputError(
            f"listening page: level_dbfs must be in [-60, {PEAK_CEILING_DBFS}], got {level_dbfs}"
        )
    items = collect_items(inputs, experiments, baselines, seed, sentences, pairs)
    with atomic_dir(out) as folder:
        (folder / "audio").mkdir()
        (folder / "mel").mkdir()
        rows = [
            (item, [_copy(c, r, k, folder, level_dbfs) for k, c in enumerate(item.clips)])
            for r, item in enumerate(items)
        ]
        _write_clips_csv(folder / "clips.csv", rows)
        html = render_page(title, rows, seed=seed, method=level_method(level_dbfs))
        write_text(folder / "index.html", html)
    systems = list(dict.fromkeys(c.system for item in items for c in item.clips))
    summary = {"rows": len(rows), "clips": sum(len(c) for _, c in rows), "systems": systems}
    log.info(
        "listening page %s: %d rows, %d clips, %d systems",
        Path(out) / "index.html",
        summary["rows"],
        summary["clips"],
        len(systems),
    )
    return summary


def level_method(level_dbfs: float) -> str:
    """How the clips were loudness-matched, in words (the page states it)."""
    return (
        "Every clip on this page is a copy scaled by one gain so that its active level is "
        f"{level_dbfs:g} dBFS (the RMS of its {FRAME_SECONDS * 1000:g} ms frames within "
        f"{ACTIVE_RANGE_DB:g} dB of its loudest frame, a simple stand-in for ITU-T P.56's active speech "
        "level); a copy that would then peak above "
        f"{PEAK_CEILING_DBFS:g} dBFS is scaled to peak there instead and marked \u201cpeak-limited\u201d. "
        "The files that were scored are untouched, and the scores beside each clip are theirs."
    )


def _write_clips_csv(path: Path, rows: Sequence[tuple[Item, Sequence[PageClip]]]) -> None:
    fields = ["row", "utt_id", "source", "target", "system", "kind", "scored_file", "copy", "image"]
    fields += ["gain_db", "level_dbfs", "peak_limited", "seconds"]
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(fields)
        for r, (item, clips) in enumerate(rows):
            for c in clips:
                writer.writerow(
                    [
                        r,
                        item.utt_id,
                        item.source,
                        item.target,
                        c.clip.system,
                        c.clip.kind,
                        str(c.clip.wav),
                        c.audio,
                        c.image,
                        f"{c.gain_db:.3f}",
                        f"{c.level_dbfs:.3f}",
                        int(c.limited),
                        f"{c.seconds:.3f}",
                    ]
                )
