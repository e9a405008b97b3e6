"""Speaker similarity: cosine between resemblyzer d-vectors and per-speaker centroids.

The encoder is resemblyzer's bundled GE2E model (3-layer LSTM, 256-d output; Wan et al. 2018), shipped in
the wheel as ``pretrained.pt``: nothing is downloaded. An utterance is resampled to 16 kHz (soxr), then
resemblyzer's own ``preprocess_wav`` normalises its level (to -30 dBFS, raise only) and drops long
silences with WebRTC VAD; its embedding is the L2-normalised mean of the embeddings of 1.6 s partial
windows (rate 1.3 per second), exactly as ``VoiceEncoder.embed_utterance`` computes it, except that the
partial windows of many utterances go through the LSTM in one batch.

The encoder ends in a ReLU, so every embedding is non-negative and cosine similarities lie in [0, 1];
different speakers commonly score 0.6-0.8, so read the *difference* between target and source similarity
(and :func:`similarity_scores`'s ``nearest_is_target``), not the absolute value.
"""

from __future__ import annotations

import functools
import logging
import os
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from vc.config import EvaluateConfig
from vc.evaluation.perceptual.base import RowContext
from vc.evaluation.perceptual.common import (
    MODEL_SAMPLE_RATE,
    check_model_path,
    file_sha256,
    nan_scores,
    package_version,
    prepare_audio,
    require,
)
from vc.evaluation.perceptual.offline import enable_offline
from vc.evaluation.perceptual.reference import MaterialError
from vc.io import read_audio

if TYPE_CHECKING:
    from vc.evaluation.perceptual.reference import ReferenceMaterial

__all__ = [
    "EMBEDDING_DIM",
    "METRIC",
    "SPEAKER_KEYS",
    "SpeakerMetric",
    "centroid_sources",
    "embed_utterance",
    "embed_utterances",
    "load_encoder",
    "similarity_scores",
    "speaker_centroids",
    "speaker_provenance",
    "speaker_scores",
]

log = logging.getLogger(__name__)

EMBEDDING_DIM: int = 256
#: Keys of :func:`similarity_scores` (besides ``note``).
SPEAKER_KEYS: tuple[str, ...] = ("spk_sim_target", "spk_sim_source", "nearest_is_target", "nearest_is_source")
#: Less speech than this after VAD trimming gives no embedding (resemblyzer would zero-pad to 1.6 s).
MIN_SPEECH_SECONDS: float = 0.3
_PARTIAL_RATE = 1.3  # partial windows per second: resemblyzer's default
_MIN_COVERAGE = 0.75  # resemblyzer's default


def _import_resemblyzer() -> Any:
    enable_offline()
    require("webrtcvad", "webrtcvad-wheels")
    with warnings.catch_warnings():  # resemblyzer imports scipy.ndimage.morphology, deprecated in SciPy
        warnings.simplefilter("ignore", DeprecationWarning)
        return require("resemblyzer", "resemblyzer")


def _default_weights() -> Path:
    return Path(_import_resemblyzer().__file__).resolve().parent / "pretrained.pt"


def load_encoder(weights: str | os.PathLike[str] | None = None) -> Any:
    """resemblyzer's ``VoiceEncoder`` on CPU, loaded once per process per weights file.

    Args:
        weights: a resemblyzer checkpoint; ``None``: the ``pretrained.pt`` bundled in the wheel.

    Raises:
        MissingExtraError: resemblyzer or webrtcvad-wheels is not installed.
        FileNotFoundError: ``weights`` does not exist (the message names it).
    """
    path = check_model_path(weights if weights is not None else _default_weights(), "speaker encoder weights")
    return _load_encoder(str(path.resolve()))


@functools.lru_cache(maxsize=2)
def _load_encoder(path: str) -> Any:
    resemblyzer = _import_resemblyzer()
    encoder = resemblyzer.VoiceEncoder(device="cpu", verbose=False, weights_fpath=path)
    encoder.eval()
    log.info("speaker encoder: resemblyzer %s, %s", package_version("resemblyzer"), path)
    return encoder


def speaker_provenance(weights: str | os.PathLike[str] | None = None) -> dict[str, str]:
    """Package, version, weights file and its SHA-256, to log beside the scores."""
    path = Path(weights) if weights is not None else _default_weights()
    return {
        "package": "resemblyzer",
        "version": package_version("resemblyzer"),
        "file": str(path),
        "sha256": file_sha256(str(path)),
    }


def _partials(encoder: Any, wav: np.ndarray) -> np.ndarray:
    """Mel spectrograms of one preprocessed utterance's partial windows, ``(P, 160, 40)`` float32."""
    from resemblyzer.audio import wav_to_mel_spectrogram

    wav_slices, mel_slices = encoder.compute_partial_slices(len(wav), _PARTIAL_RATE, _MIN_COVERAGE)
    if wav_slices[-1].stop >= len(wav):
        wav = np.pad(wav, (0, wav_slices[-1].stop - len(wav)))
    mel = wav_to_mel_spectrogram(wav)
    return np.stack([mel[s] for s in mel_slices])


def embed_utterances(
    wavs: Sequence[np.ndarray],
    sample_rate: int,
    *,
    weights: str | os.PathLike[str] | None = None,
    batch_partials: int = 64,
) -> tuple[np.ndarray, list[str]]:
    """Embeddings of many utterances, their partial windows batched through the encoder.

    Args:
        wavs: waveforms, each ``(N_i,)`` in [-1, 1] at ``sample_rate``.
        sample_rate: their rate in Hz (resampled to 16 kHz here).
        weights: encoder checkpoint, ``None`` for the bundled one.
        batch_partials: partial windows per forward pass.

    Returns:
        ``(embeddings, notes)``: float32 ``(U, 256)`` unit vectors, a NaN row for a bad utterance, and one
        note per utterance (``""`` when fine; else why its row is NaN).
    """
    import torch
    from resemblyzer import preprocess_wav

    encoder = load_encoder(weights)
    out = np.full((len(wavs), EMBEDDING_DIM), np.nan, dtype=np.float32)
    notes = [""] * len(wavs)
    mels: list[np.ndarray] = []
    owners: list[int] = []
    for i, wav in enumerate(wavs):
        wav16, note = prepare_audio(wav, sample_rate, min_seconds=MIN_SPEECH_SECONDS)
        if wav16 is not None:
            wav16 = preprocess_wav(wav16)  # already 16 kHz: level normalisation and VAD trimming only
            if len(wav16) < MIN_SPEECH_SECONDS * MODEL_SAMPLE_RATE:
                wav16, note = None, f"too little speech after VAD trimming ({len(wav16) / 16000:.2f} s)"
        if wav16 is None:
            notes[i] = note
            continue
        partials = _partials(encoder, wav16)
        mels.append(partials)
        owners.extend([i] * len(partials))
    if not mels:
        return out, notes
    stacked = np.concatenate(mels)
    with torch.inference_mode():
        partial_embeds = np.concatenate(
            [
                encoder(torch.from_numpy(stacked[k : k + batch_partials])).numpy()
                for k in range(0, len(stacked), batch_partials)
            ]
        )
    owner = np.asarray(owners)
    for i in np.unique(owner):
        mean = partial_embeds[owner == i].mean(axis=0)
        out[i] = mean / np.linalg.norm(mean)
    return out, notes


def embed_utterance(
    wav: np.ndarray, sample_rate: int, *, weights: str | os.PathLike[str] | None = None
) -> np.ndarray:
    """Embedding of one utterance: float32 ``(256,)``, unit norm; all NaN for bad input (logged)."""
    embeddings, notes = embed_utterances([wav], sample_rate, weights=weights)
    if notes[0]:
        log.warning("no speaker embedding: %s", notes[0])
    return embeddings[0]


def speaker_centroids(
    utterances: Mapping[str, Sequence[np.ndarray | str | os.PathLike[str]]],
    sample_rate: int | None = None,
    *,
    weights: str | os.PathLike[str] | None = None,
) -> dict[str, np.ndarray]:
    """Per-speaker centroid: the normalised mean of the embeddings of that speaker's utterances.

    Pass each speaker's *training* utterances, never the sentence being scored, so the similarity measures
    the voice rather than the recording. Bad utterances are skipped with a warning.

    Args:
        utterances: speaker -> waveforms ``(N,)`` (at ``sample_rate``) or audio file paths.
        sample_rate: rate of the waveforms; not needed for paths (read with their own rate).
        weights: encoder checkpoint, ``None`` for the bundled one.

    Returns:
        speaker -> float32 ``(256,)`` unit vector.

    Raises:
        ValueError: a waveform is given without ``sample_rate``, or a speaker has no usable utterance.
        AudioReadError: a path is missing or unreadable (the message names it).
    """
    centroids: dict[str, np.ndarray] = {}
    for speaker, items in utterances.items():
        by_rate: dict[int, list[np.ndarray]] = {}
        for item in items:
            if isinstance(item, (str, os.PathLike)):
                wav, sr = read_audio(item)
            else:
                if sample_rate is None:
                    raise ValueError("speaker_centroids: waveforms need sample_rate")
                wav, sr = item, sample_rate
            by_rate.setdefault(sr, []).append(wav)
        good = []
        for sr, wavs in by_rate.items():
            embeddings, notes = embed_utterances(wavs, sr, weights=weights)
            for note in filter(None, notes):
                log.warning("speaker %s: an utterance left out of the centroid: %s", speaker, note)
            good.append(embeddings[np.all(np.isfinite(embeddings), axis=1)])
        stacked = np.concatenate(good) if good else np.empty((0, EMBEDDING_DIM), np.float32)
        if len(stacked) == 0:
            raise ValueError(f"speaker {speaker!r}: no usable utterance for a centroid")
        mean = stacked.mean(axis=0)
        centroids[speaker] = (mean / np.linalg.norm(mean)).astype(np.float32)
    return centroids


def similarity_scores(
    embedding: np.ndarray, centroids: Mapping[str, np.ndarray], source: str, target: str
) -> dict[str, Any]:
    """Cosine similarity of one utterance's embedding to the target and source speakers' centroids.

    Args:
        embedding: ``(256,)`` from :func:`embed_utterance` (NaN for bad input).
        centroids: speaker -> ``(256,)`` unit vector, from :func:`speaker_centroids`.
        source: the speaker the utterance was converted from.
        target: the speaker it was converted to.

    Returns:
        ``spk_sim_target``, ``spk_sim_source`` (floats in [0, 1] for this encoder), ``nearest_is_target``
        (bool: the target centroid is strictly nearer than every other speaker's), ``nearest_is_source``
        (the same for the source's) and ``note``. For a NaN
        embedding all three are NaN (``nearest_is_target`` too: cast to float before averaging it into a
        conversion accuracy, so a bad item is left out instead of counted as a miss).

    Raises:
        KeyError: ``source`` or ``target`` has no centroid.
    """
    for name in (source, target):
        if name not in centroids:
            raise KeyError(f"no centroid for speaker {name!r}; have {sorted(centroids)}")
    embedding = np.asarray(embedding, dtype=np.float64)
    if embedding.shape != (EMBEDDING_DIM,):
        raise ValueError(f"expected a ({EMBEDDING_DIM},) embedding, got shape {embedding.shape}")
    if not np.all(np.isfinite(embedding)):
        return nan_scores(SPEAKER_KEYS, "no speaker embedding (bad input)")
    embedding = embedding / np.linalg.norm(embedding)
    cosine = {spk: float(np.dot(embedding, np.asarray(c, dtype=np.float64))) for spk, c in centroids.items()}
    others = [value for spk, value in cosine.items() if spk != target]
    not_source = [value for spk, value in cosine.items() if spk != source]
    return {
        "spk_sim_target": cosine[target],
        "spk_sim_source": cosine[source],
        "nearest_is_target": bool(all(cosine[target] > value for value in others)),
        "nearest_is_source": bool(all(cosine[source] > value for value in not_source)),
        "note": "",
    }


def speaker_scores(
    wav: np.ndarray,
    sample_rate: int,
    centroids: Mapping[str, np.ndarray],
    source: str,
    target: str,
    *,
    weights: str | os.PathLike[str] | None = None,
) -> dict[str, Any]:
    """:func:`embed_utterance` then :func:`similarity_scores`, with the bad-input note carried through."""
    embeddings, notes = embed_utterances([wav], sample_rate, weights=weights)
    scores = similarity_scores(embeddings[0], centroids, source, target)
    if notes[0]:
        scores["note"] = notes[0]
    return scores


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


class SpeakerMetric:
    """Speaker similarity as a perceptual group (:class:`~vc.evaluation.perceptual.base.PerceptualMetric`).

    Raw value of a wav: its d-vector. A row's columns: cosine to the target's and the source's centroids and
    whether the target's is the nearest of all speakers' (``spk_accuracy``); a natural recording's: the same
    to its own speaker (the ceiling), its d-vector kept in the material.
    """

    name = "speaker"
    packages = (("resemblyzer", "resemblyzer"), ("webrtcvad", "webrtcvad-wheels"))
    params_key = "evaluate.speaker.weights"
    extra_columns: tuple[str, ...] = ()
    natural_columns = ("spk_sim_own", "spk_accuracy_own")

    def provenance(self, cfg: EvaluateConfig) -> dict[str, str]:
        return speaker_provenance(cfg.speaker.weights)

    def recipe(self, cfg: EvaluateConfig) -> str:
        centroid = (
            "all its training utterances"
            if cfg.speaker.centroid_utterances is None
            else f"its first {cfg.speaker.centroid_utterances} training utterances by id"
        )
        return (
            "Speaker similarity: resample to 16 kHz (soxr), resemblyzer's `preprocess_wav` (level to -30 "
            "dBFS, WebRTC VAD trimming), d-vector = normalised mean of the GE2E encoder's 1.6 s "
            "partial-window embeddings (resemblyzer 0.1.4's bundled weights). A speaker's centroid averages "
            f"{centroid}, never a scored sentence. `spk_sim_target`, `spk_sim_source`: cosine to the "
            "target's and the source's centroid; conversion accuracy: the share of conversions strictly "
            "nearer the target's centroid than every other corpus speaker's."
        )

    def prepare(
        self, material: ReferenceMaterial, train: pd.DataFrame, naturals: pd.DataFrame, cfg: EvaluateConfig
    ) -> str:
        """Every speaker's centroid from its training utterances, or why one of them has none."""
        sources = centroid_sources(
            train, naturals["utt_id"].astype(str).unique(), cfg.speaker.centroid_utterances
        )
        for spk in sorted(set(naturals["speaker"].astype(str))):
            if not sources.get(spk):
                return f"speaker {spk!r} has no training utterance for its centroid"
        try:
            material.centroids = speaker_centroids(sources, weights=cfg.speaker.weights)
        except ValueError as err:  # no utterance with enough speech after VAD
            return f"{err} (too little speech after VAD trimming)"
        material.centroid_utterances = {spk: len(paths) for spk, paths in sources.items()}
        return ""

    def score_wav(
        self, wav: np.ndarray, sample_rate: int, reference_text: str, cfg: EvaluateConfig
    ) -> tuple[dict[str, Any], str]:
        embeddings, notes = embed_utterances([wav], sample_rate, weights=cfg.speaker.weights)
        return {"embedding": embeddings[0]}, notes[0]

    def row(self, raw: Mapping[str, Any], ctx: RowContext, material: ReferenceMaterial) -> dict[str, Any]:
        embedding = raw.get("embedding")
        vector = np.full(EMBEDDING_DIM, np.nan) if embedding is None else embedding
        try:
            sims = similarity_scores(vector, material.centroids, ctx.source, ctx.target)
        except KeyError as err:
            raise MaterialError(f"speaker similarity: {err.args[0]}") from None
        return {
            "spk_sim_target": float(sims["spk_sim_target"]),
            # copy-synthesis has no source speaker
            "spk_sim_source": np.nan if ctx.made_from == "target" else float(sims["spk_sim_source"]),
            "spk_accuracy": float(sims["nearest_is_target"]),
            "spk_nearest_source": np.nan if ctx.made_from == "target" else float(sims["nearest_is_source"]),
        }

    def natural_row(
        self, raw: Mapping[str, Any], speaker: str, utt_id: str, material: ReferenceMaterial
    ) -> dict[str, Any]:
        embedding = raw.get("embedding")
        material.embeddings[speaker, utt_id] = (
            np.full(EMBEDDING_DIM, np.nan, np.float32) if embedding is None else embedding
        )
        own = self.row(raw, RowContext(speaker, speaker), material)
        return {"spk_sim_own": own["spk_sim_target"], "spk_accuracy_own": own["spk_accuracy"]}

    def natural_raw(
        self, natural: Mapping[str, Any], speaker: str, utt_id: str, material: ReferenceMaterial
    ) -> dict[str, Any]:
        return {"embedding": material.embeddings.get((speaker, utt_id))}


METRIC = SpeakerMetric()
