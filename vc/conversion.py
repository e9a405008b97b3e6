"""Conversion: features of a source utterance -> the target speaker's features -> a waveform.

Per utterance (StarGAN-VC2's conversion recipe):

1. the source's spectral features, normalised with the scaler (:class:`vc.features.stats.FeatureStats`);
2. the generator with the (source, target) codes; features de-normalised with the target's scaler;
3. F0 by the log-Gaussian normalised linear transform with both speakers' log-F0 statistics;
4. aperiodicity passed through unchanged;
5. a vocoder (``convert.vocoder``; WORLD today, a registry entry for a neural vocoder tomorrow).

:func:`mean_var_convert` is the ``mean-var`` baseline: the same F0 transform and per-coefficient mean and
variance matching of the mel-cepstrum instead of a model.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from vc.audio import resample, to_mono
from vc.features.stats import FeatureStats, StatsError
from vc.features.world import WorldFeatures, analyze, synthesize
from vc.io import read_audio, write_wav
from vc.model_store import TrainedModel

__all__ = ["VOCODERS", "convert_features", "convert_wav", "mean_var_convert", "vocode"]

Vocoder = Callable[[WorldFeatures, FeatureStats], np.ndarray]


def _world(feats: WorldFeatures, stats: FeatureStats) -> np.ndarray:
    return synthesize(feats.f0, feats.spectral, feats.coded_ap, stats.codec, feats.frame_period)


VOCODERS: dict[str, Vocoder] = {"world": _world}


def vocode(feats: WorldFeatures, stats: FeatureStats, vocoder: str = "world") -> np.ndarray:
    """Waveform ``(N,)`` at ``stats.codec.sample_rate`` from features, by the named vocoder."""
    try:
        return VOCODERS[vocoder](feats, stats)
    except KeyError:
        raise ValueError(
            f"convert.vocoder: unknown vocoder '{vocoder}' (known: {', '.join(VOCODERS)})"
        ) from None


def _check_pair(stats: FeatureStats, source: str, target: str) -> tuple[int, int]:
    s, t = stats.index(source), stats.index(target)  # StatsError names unknown speakers
    if s == t:
        raise StatsError(f"target speaker equals source speaker ('{source}'); conversion needs two speakers")
    return s, t


@torch.no_grad()
def convert_features(model: TrainedModel, feats: WorldFeatures, source: str, target: str) -> WorldFeatures:
    """Convert one utterance's features ``(T, D)`` from ``source`` to ``target`` with the generator."""
    stats = model.stats
    s, t = _check_pair(stats, source, target)
    if feats.spectral.shape[1] != stats.dim:
        raise StatsError(
            f"features have {feats.spectral.shape[1]} coefficients, the model expects {stats.dim}"
        )
    device = next(model.generator.parameters()).device
    x = torch.from_numpy(stats.normalize(feats.spectral, source).T.astype(np.float32))[None].to(device)
    codes = (torch.tensor([s], device=device), torch.tensor([t], device=device))
    y = model.generator(x, *codes)[0].T.double().cpu().numpy()  # (T, D)
    return WorldFeatures(
        f0=stats.convert_f0(feats.f0, source, target),
        spectral=stats.denormalize(y, target),
        coded_ap=feats.coded_ap,
        sample_rate=feats.sample_rate,
        frame_period=feats.frame_period,
    )


def mean_var_convert(stats: FeatureStats, feats: WorldFeatures, source: str, target: str) -> WorldFeatures:
    """The ``mean-var`` baseline: per-coefficient mean/variance matching (unscaled) and the F0 transform."""
    s, t = _check_pair(stats, source, target)
    z = (feats.spectral - stats.spectral_mean[s]) / stats.spectral_std[s]
    return WorldFeatures(
        f0=stats.convert_f0(feats.f0, source, target),
        spectral=z * stats.spectral_std[t] + stats.spectral_mean[t],
        coded_ap=feats.coded_ap,
        sample_rate=feats.sample_rate,
        frame_period=feats.frame_period,
    )


def convert_wav(
    model: TrainedModel,
    wav_in: str | Path,
    wav_out: str | Path,
    source: str,
    target: str,
    vocoder: str = "world",
) -> float:
    """Convert a wav file of any sample rate; write it at the model's rate; return the seconds written."""
    stats = model.stats
    _check_pair(stats, source, target)
    wav, sr = read_audio(wav_in)
    wav, _ = to_mono(wav)
    wav = resample(wav, sr, stats.codec.sample_rate)
    feats = analyze(wav, stats.codec.sample_rate, model.features)
    out = vocode(convert_features(model, feats, source, target), stats, vocoder)
    write_wav(wav_out, out, stats.codec.sample_rate)
    return len(out) / stats.codec.sample_rate
