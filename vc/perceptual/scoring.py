"""The perceptual metrics as the evaluation scores them: reference material once, then every utterance.

**Reference material** (:func:`build_reference_material`; the ``references`` stage), once per corpus and
scored split:

- a **centroid** per speaker: the normalised mean d-vector of the speaker's *training* utterances, never a
  sentence of the scored split (:func:`centroid_sources`);
- the **natural recordings** of the scored split: each one's d-vector, ASR transcript, CER/WER against its
  sentence text (the floor a conversion is read against), DNSMOS, and its similarity to its own speaker's
  centroid (the ceiling of speaker similarity);
- which metric groups ran, which were skipped and why, and each model's provenance.

**Scores** (:func:`score_perceptual`), for every row ``(source, target, utt_id, path)`` of an evaluation:
``spk_sim_target`` and ``spk_sim_source`` (cosine to the target's and the source's centroids),
``spk_accuracy`` (1 when the utterance is nearer the target's centroid than every other corpus speaker's,
else 0: its mean is the conversion accuracy), ``cer`` and ``wer`` (against the sentence text; for a corpus
without texts, against the ASR transcript of the recording the utterance was made from), ``dnsmos_ovrl``,
``dnsmos_sig``, ``dnsmos_bak``, ``dnsmos_p808``, plus ``asr_transcript`` and ``perceptual_note``. A row with
an empty ``path`` is the unconverted source: its values come from the natural recording, computed once.
Bad audio (empty, silent, too short, unreadable) gives NaN and the reason in ``perceptual_note``.

Every model runs on CPU with one thread per process, loaded once per process; ``workers`` processes share the
utterances. Nothing touches the network (:func:`vc.perceptual.offline.enable_offline`).
"""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from vc.config import AsrConfig, DnsmosConfig, EvaluateConfig, FeaturesConfig, SpeakerMetricConfig
from vc.errors import InputError
from vc.evaluation import score_system
from vc.io import AudioReadError, read_audio, save_npz, write_json
from vc.perceptual import PERCEPTUAL_GROUPS, missing_packages
from vc.perceptual.offline import enable_offline

__all__ = [
    "COLUMNS",
    "MaterialError",
    "ReferenceMaterial",
    "build_reference_material",
    "centroid_sources",
    "check_models",
    "metric_status",
    "score_perceptual",
]

log = logging.getLogger(__name__)

#: metric group (``evaluate.perceptual``) -> the score columns it writes.
COLUMNS: dict[str, tuple[str, ...]] = {
    "speaker": ("spk_sim_target", "spk_sim_source", "spk_accuracy"),
    "intelligibility": ("cer", "wer"),
    "naturalness": ("dnsmos_ovrl", "dnsmos_sig", "dnsmos_bak", "dnsmos_p808"),
}
NATURAL_COLUMNS = (
    "speaker", "utt_id", "text", "asr_transcript", "cer", "wer",
    "dnsmos_ovrl", "dnsmos_sig", "dnsmos_bak", "dnsmos_p808", "spk_sim_own", "spk_accuracy_own",
    "perceptual_note",
)  # fmt: skip
_DNSMOS = COLUMNS["naturalness"]


class MaterialError(InputError):
    """Reference material is missing or a model cannot be set up; the message names the file or params key."""


# ------------------------------------------------------------------------------------ reference material
@dataclass
class ReferenceMaterial:
    """What every evaluation of one corpus and split shares (written by the ``references`` stage).

    Attributes:
        metrics: metric groups that ran (a subset of ``speaker``, ``intelligibility``, ``naturalness``).
        skipped: metric group -> why it did not run (switched off, or packages not installed).
        provenance: metric group -> package, version, model file and its SHA-256.
        centroids: speaker -> ``(256,)`` unit vector (empty without ``speaker``).
        centroid_utterances: speaker -> training utterances its centroid averages.
        naturals: one row per natural recording of the scored split (:data:`NATURAL_COLUMNS`).
        embeddings: ``(speaker, utt_id)`` -> ``(256,)`` d-vector of that recording (NaN if it had none).
    """

    metrics: tuple[str, ...]
    skipped: dict[str, str]
    provenance: dict[str, dict[str, str]] = field(default_factory=dict)
    centroids: dict[str, np.ndarray] = field(default_factory=dict)
    centroid_utterances: dict[str, int] = field(default_factory=dict)
    naturals: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=NATURAL_COLUMNS))
    embeddings: dict[tuple[str, str], np.ndarray] = field(default_factory=dict)

    @property
    def asr_reference(self) -> str:
        """What CER/WER compare against: ``sentence text``, ``source transcript`` or ``mixed``."""
        with_text = int((self.naturals["text"].fillna("").str.strip() != "").sum())
        if with_text == len(self.naturals):
            return "sentence text"
        return "source transcript" if with_text == 0 else "mixed"

    def info(self) -> dict[str, Any]:
        """The JSON-ready description written to ``material.json`` and into every ``summary.json``."""
        return {
            "metrics": list(self.metrics),
            "skipped": self.skipped,
            "provenance": self.provenance,
            "asr_reference": self.asr_reference if "intelligibility" in self.metrics else "",
            "centroid_utterances": self.centroid_utterances,
        }

    def save(self, folder: str | Path) -> None:
        """``material.json``, ``naturals.csv``, ``centroids.npz`` and ``embeddings.npz`` in ``folder``."""
        folder = Path(folder)
        write_json(folder / "material.json", self.info())
        self.naturals.reindex(columns=NATURAL_COLUMNS).to_csv(folder / "naturals.csv", index=False)
        speakers = sorted(self.centroids)
        save_npz(
            folder / "centroids.npz",
            speakers=np.asarray(speakers, dtype=str),
            centroids=np.asarray([self.centroids[s] for s in speakers], np.float32).reshape(-1, 256),
        )
        keys = sorted(self.embeddings)
        save_npz(
            folder / "embeddings.npz",
            speaker=np.asarray([k[0] for k in keys], dtype=str),
            utt_id=np.asarray([k[1] for k in keys], dtype=str),
            embeddings=np.asarray([self.embeddings[k] for k in keys], np.float32).reshape(-1, 256),
        )

    @classmethod
    def load(cls, folder: str | Path) -> ReferenceMaterial:
        """Read what :meth:`save` wrote; :class:`MaterialError` naming the folder if it is incomplete."""
        folder = Path(folder)
        names = ("material.json", "naturals.csv", "centroids.npz", "embeddings.npz")
        missing = [n for n in names if not (folder / n).is_file()]
        if missing:
            raise MaterialError(
                f"{folder}: no perceptual reference material ({', '.join(missing)} missing); "
                "run the references stage first"
            )
        info = json.loads((folder / "material.json").read_text(encoding="utf-8"))
        text = {"speaker": str, "utt_id": str, "text": str, "asr_transcript": str, "perceptual_note": str}
        naturals = pd.read_csv(folder / "naturals.csv", dtype=text, keep_default_na=False)
        for column in set(NATURAL_COLUMNS) - set(text):
            naturals[column] = pd.to_numeric(naturals[column].replace("", None), errors="coerce")
        with np.load(folder / "centroids.npz") as z:
            centroids = dict(zip(z["speakers"].tolist(), z["centroids"], strict=True))
        with np.load(folder / "embeddings.npz") as z:
            keys = zip(z["speaker"].tolist(), z["utt_id"].tolist(), strict=True)
            embeddings = dict(zip(keys, z["embeddings"], strict=True))
        return cls(
            tuple(info["metrics"]),
            info["skipped"],
            info["provenance"],
            centroids,
            info["centroid_utterances"],
            naturals,
            embeddings,
        )


def metric_status(requested: Sequence[str]) -> tuple[tuple[str, ...], dict[str, str]]:
    """``(metrics that can run, {metric: why skipped})`` for ``evaluate.perceptual``, in canonical order.

    A metric is skipped when it is not requested, or when a package it needs is not installed
    (:func:`vc.perceptual.missing_packages`; nothing is imported).
    """
    missing = missing_packages()
    run, skipped = [], {}
    for metric in PERCEPTUAL_GROUPS:
        if metric not in requested:
            skipped[metric] = "switched off (evaluate.perceptual)"
        elif missing[metric]:
            skipped[metric] = (
                f"not installed: {', '.join(missing[metric])} (the optional extra vc[metrics]; "
                "`make repro` installs it)"
            )
        else:
            run.append(metric)
    return tuple(run), skipped


def centroid_sources(
    train: pd.DataFrame, scored_ids: Sequence[str], limit: int | None = None
) -> dict[str, list[str]]:
    """Per speaker, the training utterances its centroid is built from (paths, by utterance id).

    Args:
        train: ``speaker, utt_id, path`` of the training split.
        scored_ids: sentence ids of the scored split; an utterance of one of them is never used, so a
            similarity measures the voice, not the recording.
        limit: at most this many utterances per speaker (the first by id); ``None``: all.
    """
    usable = train[~train["utt_id"].isin(set(scored_ids))].sort_values(["speaker", "utt_id"], kind="stable")
    return {
        str(spk): group["path"].astype(str).tolist()[:limit]
        for spk, group in usable.groupby("speaker", sort=False)
    }


def check_models(cfg: EvaluateConfig) -> tuple[tuple[str, ...], dict[str, str]]:
    """:func:`metric_status`, then every model of the metrics that can run found (:class:`MaterialError`
    naming the params key if not): what ``python -m pipeline.check`` verifies before any stage runs."""
    metrics, skipped = metric_status(cfg.perceptual)
    _provenance(metrics, cfg)
    return metrics, skipped


def _provenance(metrics: Sequence[str], cfg: EvaluateConfig) -> dict[str, dict[str, str]]:
    """Each metric's model provenance; also checks that every model exists before any work starts."""
    from vc.perceptual.intelligibility import BUNDLED_MODEL, asr_provenance, load_asr, resolve_asr_model
    from vc.perceptual.naturalness import dnsmos_provenance
    from vc.perceptual.speaker import speaker_provenance

    enable_offline()
    out: dict[str, dict[str, str]] = {}
    try:
        if "speaker" in metrics:
            key = "evaluate.speaker.weights"
            out["speaker"] = speaker_provenance(cfg.speaker.weights)
        if "intelligibility" in metrics:
            key = "evaluate.asr.model"
            model = None if cfg.asr.model == BUNDLED_MODEL else cfg.asr.model
            if model is not None and not Path(resolve_asr_model(model)).is_dir():
                load_asr(model, cfg.asr.compute_type, 1)  # a name: it must be in the local cache
            out["intelligibility"] = {
                **asr_provenance(model),
                "compute_type": cfg.asr.compute_type,
                "beam_size": str(cfg.asr.beam_size),
            }
        if "naturalness" in metrics:
            key = "evaluate.dnsmos"
            out["naturalness"] = {**dnsmos_provenance(), "max_windows": str(cfg.dnsmos.max_windows)}
    except (FileNotFoundError, RuntimeError) as err:
        raise MaterialError(f"params key '{key}': {err}") from None
    return out


# ------------------------------------------------------------------------------------------- one wav
@dataclass(frozen=True)
class _WavJob:
    path: str
    reference_text: str  # what CER/WER compare against; "" gives NaN
    metrics: tuple[str, ...]
    speaker: SpeakerMetricConfig
    asr: AsrConfig
    dnsmos: DnsmosConfig


@functools.cache
def _one_thread() -> None:
    """One intra-op thread for torch in this process: the evaluation's processes share the cores."""
    import torch

    torch.set_num_threads(1)


def _join_notes(notes: Sequence[tuple[str, str]]) -> str:
    """``[(metric, note), ...]`` -> ``"note (metric, metric); other note (metric)"``."""
    by_note: dict[str, list[str]] = {}
    for metric, note in notes:
        if note:
            by_note.setdefault(note, []).append(metric)
    return "; ".join(f"{note} ({', '.join(metrics)})" for note, metrics in by_note.items())


def _score_wav(job: _WavJob) -> dict[str, Any]:
    """Embedding, transcript, CER/WER and DNSMOS of one wav; NaN and a note for bad audio."""
    out: dict[str, Any] = {"embedding": None, "asr_transcript": ""}
    try:
        wav, sr = read_audio(job.path)
    except AudioReadError as err:
        return {**out, "perceptual_note": str(err)}
    enable_offline()
    _one_thread()
    notes: list[tuple[str, str]] = []
    if "speaker" in job.metrics:
        from vc.perceptual.speaker import embed_utterances

        embeddings, embed_notes = embed_utterances([wav], sr, weights=job.speaker.weights)
        out["embedding"] = embeddings[0]
        notes.append(("speaker", embed_notes[0]))
    if "intelligibility" in job.metrics:
        from vc.perceptual.intelligibility import BUNDLED_MODEL, intelligibility_scores

        asr = intelligibility_scores(
            wav,
            sr,
            job.reference_text,
            model=None if job.asr.model == BUNDLED_MODEL else job.asr.model,
            compute_type=job.asr.compute_type,
            cpu_threads=1,
            beam_size=job.asr.beam_size,
            language=job.asr.language,
        )
        if not job.reference_text.strip() and asr["hypothesis"]:
            asr["note"] = "no reference text to score the transcript against"
        out.update(cer=asr["cer"], wer=asr["wer"], asr_transcript=asr["hypothesis"])
        notes.append(("intelligibility", asr["note"]))
    if "naturalness" in job.metrics:
        from vc.perceptual.naturalness import dnsmos

        mos = dnsmos(wav, sr, num_threads=1, max_windows=job.dnsmos.max_windows)
        out.update({k: mos[k] for k in _DNSMOS})
        notes.append(("naturalness", mos["note"]))
    return {**out, "perceptual_note": _join_notes(notes)}


def _score_wavs(jobs: list[_WavJob], workers: int, desc: str) -> dict[str, dict[str, Any]]:
    from vc.parallel import parallel_map

    return dict(
        zip([j.path for j in jobs], parallel_map(_score_wav, jobs, workers=workers, desc=desc), strict=True)
    )


def _similarity(
    embedding: np.ndarray | None, centroids: Mapping[str, np.ndarray], source: str, target: str
) -> dict[str, float]:
    from vc.perceptual.speaker import EMBEDDING_DIM, similarity_scores

    vector = np.full(EMBEDDING_DIM, np.nan) if embedding is None else embedding
    try:
        sims = similarity_scores(vector, centroids, source, target)
    except KeyError as err:
        raise MaterialError(f"speaker similarity: {err.args[0]}") from None
    return {
        "spk_sim_target": float(sims["spk_sim_target"]),
        "spk_sim_source": float(sims["spk_sim_source"]),
        "spk_accuracy": float(sims["nearest_is_target"]),
    }


def _centroids(
    sources: Mapping[str, Sequence[str]], speakers: Sequence[str], cfg: SpeakerMetricConfig
) -> dict[str, np.ndarray] | str:
    """Every speaker's centroid from its training utterances, or why one of them has none."""
    from vc.perceptual.speaker import speaker_centroids

    for spk in speakers:
        if not sources.get(spk):
            return f"speaker {spk!r} has no training utterance for its centroid"
    try:
        return speaker_centroids(sources, weights=cfg.weights)
    except ValueError as err:  # no utterance with enough speech after VAD
        return f"{err} (too little speech after VAD trimming)"


# ------------------------------------------------------------------------------------------- stages
def build_reference_material(
    train: pd.DataFrame,
    naturals: pd.DataFrame,
    cfg: EvaluateConfig,
    *,
    workers: int = 0,
) -> ReferenceMaterial:
    """Centroids, natural recordings' scores, skipped metrics and provenance (see the module docstring).

    Args:
        train: ``speaker, utt_id, path`` of every usable training utterance (paths readable from here).
        naturals: ``speaker, utt_id, path, text`` of every recording of the scored split.
        cfg: the ``evaluate`` section (``perceptual``, ``speaker``, ``asr``, ``dnsmos``).
        workers: processes for the natural recordings (0: this job's share of the CPUs).

    A speaker without a usable training utterance (none has 0.3 s of speech after VAD trimming) leaves
    the speaker metric out, with the reason in :attr:`ReferenceMaterial.skipped`.

    Raises:
        MaterialError: a model path does not exist, or a model name is not in the local cache.
    """
    metrics, skipped = metric_status(cfg.perceptual)
    for metric, why in skipped.items():
        log.warning("perceptual metric %s skipped: %s", metric, why)
    material = ReferenceMaterial(metrics, skipped)
    rows = naturals[["speaker", "utt_id", "text"]].fillna("").astype(str).reset_index(drop=True)
    material.naturals = rows.reindex(columns=NATURAL_COLUMNS)
    if not metrics:
        return material
    material.provenance = _provenance(metrics, cfg)
    if "speaker" in metrics:
        sources = centroid_sources(
            train, naturals["utt_id"].astype(str).unique(), cfg.speaker.centroid_utterances
        )
        centroids = _centroids(sources, sorted(set(rows["speaker"])), cfg.speaker)
        if isinstance(centroids, str):  # a speaker without one: no similarity can be read; say why
            log.warning("perceptual metric speaker skipped: %s", centroids)
            metrics = tuple(m for m in metrics if m != "speaker")
            material.metrics, material.skipped["speaker"] = metrics, centroids
            material.provenance.pop("speaker", None)
        else:
            material.centroids = centroids
            material.centroid_utterances = {spk: len(paths) for spk, paths in sources.items()}
    jobs = [
        _WavJob(str(p), t, metrics, cfg.speaker, cfg.asr, cfg.dnsmos)
        for p, t in zip(naturals["path"], rows["text"], strict=True)
    ]
    results = _score_wavs(jobs, workers, "perceptual: natural recordings")
    table = []
    for spk, utt, job in zip(rows["speaker"], rows["utt_id"], jobs, strict=True):
        result = results[job.path]
        row = {k: v for k, v in result.items() if k != "embedding"}
        if "speaker" in metrics:
            embedding = result["embedding"]
            material.embeddings[spk, utt] = (
                np.full(256, np.nan, np.float32) if embedding is None else embedding
            )
            own = _similarity(embedding, material.centroids, spk, spk)
            row.update(spk_sim_own=own["spk_sim_target"], spk_accuracy_own=own["spk_accuracy"])
        table.append(row)
    material.naturals = pd.concat(
        [rows, pd.DataFrame(table).drop(columns=["text"], errors="ignore")], axis=1
    ).reindex(columns=NATURAL_COLUMNS)
    return material


def score_perceptual(
    items: pd.DataFrame,
    material: ReferenceMaterial,
    cfg: EvaluateConfig,
    *,
    workers: int = 0,
    desc: str = "perceptual",
    made_from: Literal["source", "target"] = "source",
) -> pd.DataFrame:
    """The perceptual columns for every row of ``items``, in its order (no columns if none ran).

    Args:
        items: ``source, target, utt_id, path`` (a wav, or ``""`` for the unconverted source recording).
        material: :class:`ReferenceMaterial` of the same corpus and split; its ``metrics`` are scored.
        cfg: the ``evaluate`` section (model settings; must match the material's).
        workers: processes (each wav once).
        desc: progress-bar label.
        made_from: the recording each wav was made from: ``source`` (conversions) or ``target``
            (copy-synthesis, whose similarity to a source speaker is then NaN). Without sentence texts, CER
            and WER are scored against that recording's ASR transcript.
    """
    metrics = material.metrics
    if not metrics:
        return pd.DataFrame(index=range(len(items)))
    naturals = material.naturals.set_index(["speaker", "utt_id"])

    def natural(spk: str, utt: str) -> pd.Series:
        try:
            return naturals.loc[(spk, utt)]
        except KeyError:
            raise MaterialError(f"no natural recording {spk}/{utt} in the reference material") from None

    def reference_text(spk: str, utt: str) -> str:
        row = natural(spk, utt)
        return str(row["text"]).strip() or str(row["asr_transcript"]).strip()

    keys = list(zip(items["source"], items["target"], items["utt_id"], strict=True))
    paths = [str(p) if isinstance(p, str | Path) else "" for p in items["path"]]
    jobs = {
        path: _WavJob(
            path,
            reference_text(src if made_from == "source" else tgt, utt),
            metrics,
            cfg.speaker,
            cfg.asr,
            cfg.dnsmos,
        )
        for (src, tgt, utt), path in zip(keys, paths, strict=True)
        if path
    }
    results = _score_wavs(list(jobs.values()), workers, desc) if jobs else {}
    rows = []
    for (src, tgt, utt), path in zip(keys, paths, strict=True):
        if path:
            result = results[path]
            embedding = result["embedding"]
        else:
            result = natural(src, utt).to_dict()
            embedding = material.embeddings.get((src, utt))
            if not str(result["text"]).strip():
                result.update(cer=np.nan, wer=np.nan)  # no text: the recording would be its own reference
        row: dict[str, Any] = {}
        if "speaker" in metrics:
            row.update(_similarity(embedding, material.centroids, src, tgt))
            if made_from == "target":
                row["spk_sim_source"] = np.nan  # copy-synthesis has no source speaker
        for metric in ("intelligibility", "naturalness"):
            if metric in metrics:
                row.update({k: result.get(k, np.nan) for k in COLUMNS[metric]})
        if "intelligibility" in metrics:
            row["asr_transcript"] = result.get("asr_transcript", "")
        row["perceptual_note"] = result.get("perceptual_note", "") or ""
        rows.append(row)
    columns = [c for m in PERCEPTUAL_GROUPS if m in metrics for c in COLUMNS[m]]
    extra = ["asr_transcript"] if "intelligibility" in metrics else []
    return pd.DataFrame(rows).reindex(columns=[*columns, *extra, "perceptual_note"])


def score_every_metric(
    items: pd.DataFrame,
    references: str | Path,
    material: ReferenceMaterial,
    features: FeaturesConfig,
    cfg: EvaluateConfig,
    *,
    workers: int = 0,
    label: str = "",
    made_from: Literal["source", "target"] = "source",
) -> pd.DataFrame:
    """One system's rows: the MCD recipe's columns (:func:`vc.evaluation.score_system`) beside the
    perceptual ones (:func:`score_perceptual`), in the order of ``items``; ``label`` names the progress
    bars."""
    suffix = f" {label}" if label else ""
    return pd.concat(
        [
            score_system(items, references, features, cfg, workers=workers, desc=f"evaluate{suffix}"),
            score_perceptual(
                items, material, cfg, workers=workers, desc=f"perceptual{suffix}", made_from=made_from
            ),
        ],
        axis=1,
    )
