"""Conversion: features of a source utterance -> the target speaker's features -> a waveform.

Per utterance (StarGAN-VC2's conversion recipe), for a model of WORLD features (``model.features: world``):

1. the source's spectral features, normalised with the scaler (:class:`vc.features.stats.FeatureStats`);
2. the generator with the (source, target) codes; features de-normalised with the target's scaler;
3. F0 by the log-Gaussian normalised linear transform with both speakers' log-F0 statistics;
4. aperiodicity passed through unchanged;
5. the WORLD vocoder.

A model of log-mel features (``model.features: mel``) does steps 1-2 on the 80-bin log-mel and hands the
result to HiFi-GAN; there is no F0 transform: the converted mel carries the pitch, which the vocoder renders.

The vocoders are a registry (:data:`VOCODERS`): each entry names the feature kind it synthesises, the one
place that maps a feature kind to its vocoder. The baselines (mean-var, copy-synthesis) are in
:mod:`vc.baselines`.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from vc.audio import resample, to_mono
from vc.config import Energy, FeatureKind, VocoderConfig
from vc.features.stats import FeatureStats, StatsError
from vc.features.world import WorldFeatures, analyze, synthesize
from vc.io import read_audio, write_wav
from vc.stargan.store import TrainedModel, generator_spectra

__all__ = [
    "VOCODERS",
    "Vocoder",
    "check_pair",
    "convert_features",
    "convert_mel",
    "convert_spectra",
    "convert_wav",
    "vocode",
    "vocoder_for",
]


@dataclass(frozen=True)
class Vocoder:
    """A registry entry: the feature kind it synthesises, its name in the report, and
    ``(features, stats, cfg) -> wav (N,)`` at ``stats.codec.sample_rate``."""

    features: FeatureKind
    label: str
    synthesize: Callable[[Any, FeatureStats, VocoderConfig], np.ndarray]


def _world(feats: WorldFeatures, stats: FeatureStats, cfg: VocoderConfig) -> np.ndarray:
    return synthesize(feats.f0, feats.spectral, feats.coded_ap, stats.codec, feats.frame_period)


@functools.lru_cache(maxsize=2)
def hifigan_generator(checkpoint: str | None, config: str) -> torch.nn.Module:
    """The HiFi-GAN generator for inference, loaded once per process (``checkpoint`` None: bundled)."""
    from vc.vocoders.hifigan import load_pretrained  # torch-heavy; only mel systems need it

    return load_pretrained(checkpoint, config=config)


def _hifigan(mel: np.ndarray, stats: FeatureStats, cfg: VocoderConfig) -> np.ndarray:
    from vc.vocoders.hifigan import vocode as hifigan_vocode

    model = hifigan_generator(cfg.checkpoint, cfg.generator)
    return hifigan_vocode(model, mel, chunk_frames=cfg.chunk_frames).astype(np.float64)


VOCODERS: dict[str, Vocoder] = {
    "world": Vocoder("world", "WORLD", _world),
    "hifigan": Vocoder("mel", "HiFi-GAN", _hifigan),
}


def vocoder_for(kind: FeatureKind) -> str:
    """The registry name of the vocoder of feature ``kind`` (``world`` -> WORLD, ``mel`` -> HiFi-GAN)."""
    return next(name for name, v in VOCODERS.items() if v.features == kind)


def vocode(
    features: WorldFeatures | np.ndarray,
    stats: FeatureStats,
    vocoder: str = "world",
    cfg: VocoderConfig | None = None,
) -> np.ndarray:
    """Waveform ``(N,)`` at ``stats.codec.sample_rate`` from features (``WorldFeatures`` for WORLD, log-mel
    frames ``(T, 80)`` for HiFi-GAN), by the named vocoder."""
    try:
        entry = VOCODERS[vocoder]
    except KeyError:
        raise ValueError(f"unknown vocoder '{vocoder}' (known: {', '.join(VOCODERS)})") from None
    kind = stats.feature_kind
    if entry.features != kind:
        raise ValueError(f"vocoder '{vocoder}' synthesises {entry.features} features, not {kind}")
    return entry.synthesize(features, stats, cfg or VocoderConfig())


def check_pair(stats: FeatureStats, source: str, target: str) -> tuple[int, int]:
    """The speakers' codes; :class:`StatsError` for an unknown speaker or ``source == target``."""
    s, t = stats.index(source), stats.index(target)  # StatsError names unknown speakers
    if s == t:
        raise StatsError(f"target speaker equals source speaker ('{source}'); conversion needs two speakers")
    return s, t


def convert_spectra(model: TrainedModel, x: np.ndarray, source: str, target: str) -> np.ndarray:
    """The generator's conversion of one utterance's frames ``(T, D)`` (WORLD spectral features or log-mel,
    as the model was trained) from ``source`` to ``target``: normalise, convert, de-normalise."""
    return generator_spectra(model.generator, model.stats, x, source, target)


def convert_features(
    model: TrainedModel, feats: WorldFeatures, source: str, target: str, energy: Energy = "mean-var"
) -> WorldFeatures:
    """Convert one utterance's WORLD features from ``source`` to ``target``: spectra ``(T, D)`` by the
    generator, F0 by the log-Gaussian transform, aperiodicity unchanged. ``energy`` (``convert.energy``):
    ``mean-var`` replaces the generator's c0 (column 0: each frame's log energy) by the source's c0 moved to
    the target's mean and variance, as the mean-var baseline converts it; ``generator`` keeps it."""
    spectral = convert_spectra(model, feats.spectral, source, target)
    if energy == "mean-var":
        spectral[:, 0] = model.stats.match_moments(feats.spectral, source, target)[:, 0]
    return WorldFeatures(
        f0=model.stats.convert_f0(feats.f0, source, target),
        spectral=spectral,
        coded_ap=feats.coded_ap,
        sample_rate=feats.sample_rate,
        frame_period=feats.frame_period,
    )


def convert_mel(model: TrainedModel, mel: np.ndarray, source: str, target: str) -> np.ndarray:
    """Convert one utterance's log-mel ``(T_mel, 80)`` from ``source`` to ``target`` (a mel model)."""
    if model.stats.feature_kind != "mel":
        raise StatsError("convert_mel needs a model trained on log-mel features (model.features: mel)")
    return convert_spectra(model, mel, source, target)


def convert_wav(
    model: TrainedModel,
    wav_in: str | Path,
    wav_out: str | Path,
    source: str,
    target: str,
    vocoder_cfg: VocoderConfig | None = None,
    energy: Energy = "mean-var",
) -> float:
    """Convert a wav file of any sample rate; write it at the model's rate (WORLD: the training corpus's;
    HiFi-GAN: 22,050 Hz); return the seconds written. The vocoder follows the model's feature kind;
    ``energy`` as in :func:`convert_features`."""
    from vc.features.extract import log_mel_features

    stats = model.stats
    check_pair(stats, source, target)
    wav, sr = read_audio(wav_in)
    wav, _ = to_mono(wav)
    if stats.feature_kind == "mel":
        converted: WorldFeatures | np.ndarray = convert_mel(model, log_mel_features(wav, sr), source, target)
        name = "hifigan"
    else:
        wav = resample(wav, sr, stats.codec.sample_rate)
        feats = analyze(wav, stats.codec.sample_rate, model.features)
        converted, name = convert_features(model, feats, source, target, energy), "world"
    out = vocode(converted, stats, name, vocoder_cfg)
    write_wav(wav_out, out, stats.codec.sample_rate)
    return len(out) / stats.codec.sample_rate
