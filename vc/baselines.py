"""The baselines every experiment is framed by, declared once: what each is made from and how.

A :class:`Baseline` entry holds every fact of one baseline: the unit of its items (:data:`vc.statistics.Unit`;
each distinct item is scored once), the vocoder that makes its wavs, which recording it is made from, what
its F0 is, and the function that makes one wav. The ``baselines`` stage, the statistics, the report's vocoder
column and footnotes read this table; ``baselines`` in params.yaml names its entries (a test keeps the
config's allowed names equal to it).

- ``source``: no conversion: the source's recording against the target's of the same sentence, once per
  unordered speaker pair and sentence (A->B and B->A compare the same two wavs);
- ``mean-var``: per-coefficient mean/variance matching of the mel-cepstrum plus the log-Gaussian F0
  transform, per ordered pair and sentence; ``mean-var-mel``: the same matching of the log-mel bins,
  through HiFi-GAN;
- ``copy-synthesis``: the target analysed and resynthesised by WORLD (the vocoder's floor), once per target
  speaker and sentence; ``copy-synthesis-hifigan``: the target's log-mel through HiFi-GAN (the neural
  floor).

To add a baseline: one function that makes a wav from :class:`BaselineInputs`, one entry in
:data:`BASELINES` (or :func:`register` in a test), and its name in the config's ``Baseline`` Literal.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from vc.config import VocoderConfig
from vc.conversion import check_pair, vocode
from vc.features.extract import mel_path
from vc.features.stats import FeatureStats, StatsError
from vc.features.world import WorldFeatures, load_features
from vc.statistics import Unit

__all__ = [
    "BASELINES",
    "Baseline",
    "BaselineInputs",
    "mean_var_convert",
    "mean_var_mel",
    "register",
]

#: Where a system's F0 comes from: the shared log-Gaussian transform of the source's F0 (its F0 metrics
#: measure that transform, not the system), the converted log-mel (the vocoder renders what it carries), or
#: a natural recording's own.
F0Source = Literal["transform", "mel", "recording"]


@dataclass(frozen=True)
class BaselineInputs:
    """What a baseline's wav is made of: the features folder, both scalers and the HiFi-GAN settings."""

    features: Path
    stats: FeatureStats
    mel_stats: FeatureStats
    vocoder: VocoderConfig


#: ``(inputs, source, target, utt_id) -> (waveform (N,), sample rate)``.
MakeWav = Callable[[BaselineInputs, str, str, str], tuple[np.ndarray, int]]


@dataclass(frozen=True)
class Baseline:
    """One baseline.

    Attributes:
        name: its name in params.yaml, the report and MLflow.
        unit: the item its rows are keyed by (``conversion``, ``target``, ``unordered_pair``).
        vocoder: the :data:`vc.conversion.VOCODERS` entry that makes its wavs; empty for recordings.
        made_from: the recording each wav is made from (``target``: similarity to a source is undefined).
        f0: where its F0 comes from (:data:`F0Source`): the report's footnotes.
        make_wav: one wav of an item; None: no wav is made (the recordings themselves are scored).
    """

    name: str
    unit: Unit
    vocoder: str
    made_from: Literal["source", "target"]
    f0: F0Source
    make_wav: MakeWav | None


def mean_var_convert(stats: FeatureStats, feats: WorldFeatures, source: str, target: str) -> WorldFeatures:
    """The ``mean-var`` baseline: per-coefficient mean/variance matching (unscaled) and the F0 transform."""
    check_pair(stats, source, target)
    return WorldFeatures(
        f0=stats.convert_f0(feats.f0, source, target),
        spectral=stats.match_moments(feats.spectral, source, target),
        coded_ap=feats.coded_ap,
        sample_rate=feats.sample_rate,
        frame_period=feats.frame_period,
    )


def mean_var_mel(stats: FeatureStats, mel: np.ndarray, source: str, target: str) -> np.ndarray:
    """The ``mean-var-mel`` baseline: per-bin mean/variance matching of log-mel frames ``(T, 80)`` with the
    log-mel statistics (``stats`` of kind ``mel``)."""
    if stats.feature_kind != "mel":
        raise StatsError("mean_var_mel needs the log-mel statistics (data/stats-mel.json)")
    check_pair(stats, source, target)
    return stats.match_moments(mel, source, target)


def _world(x: BaselineInputs, feats: WorldFeatures) -> tuple[np.ndarray, int]:
    return vocode(feats, x.stats), x.stats.codec.sample_rate


def _hifigan(x: BaselineInputs, mel: np.ndarray) -> tuple[np.ndarray, int]:
    return vocode(mel, x.mel_stats, "hifigan", x.vocoder), x.mel_stats.codec.sample_rate


def _copy_synthesis(x: BaselineInputs, src: str, tgt: str, utt: str) -> tuple[np.ndarray, int]:
    return _world(x, load_features(x.features / tgt / f"{utt}.npz"))


def _mean_var(x: BaselineInputs, src: str, tgt: str, utt: str) -> tuple[np.ndarray, int]:
    return _world(x, mean_var_convert(x.stats, load_features(x.features / src / f"{utt}.npz"), src, tgt))


def _copy_synthesis_hifigan(x: BaselineInputs, src: str, tgt: str, utt: str) -> tuple[np.ndarray, int]:
    return _hifigan(x, np.load(mel_path(x.features / tgt / f"{utt}.npz")))


def _mean_var_mel(x: BaselineInputs, src: str, tgt: str, utt: str) -> tuple[np.ndarray, int]:
    mel = np.load(mel_path(x.features / src / f"{utt}.npz"))
    return _hifigan(x, mean_var_mel(x.mel_stats, mel, src, tgt))


#: Every baseline, in the order the report lists them.
BASELINES: dict[str, Baseline] = {
    b.name: b
    for b in (
        Baseline("source", "unordered_pair", "", "source", "recording", None),
        Baseline("mean-var", "conversion", "world", "source", "transform", _mean_var),
        Baseline("copy-synthesis", "target", "world", "target", "recording", _copy_synthesis),
        Baseline("mean-var-mel", "conversion", "hifigan", "source", "mel", _mean_var_mel),
        Baseline(
            "copy-synthesis-hifigan", "target", "hifigan", "target", "recording", _copy_synthesis_hifigan
        ),
    )
}


def baseline(name: str) -> Baseline:
    """The entry of ``name``; KeyError naming the known baselines if there is none."""
    try:
        return BASELINES[name]
    except KeyError:
        raise KeyError(f"unknown baseline '{name}' (known: {', '.join(BASELINES)})") from None


def wav_relpath(entry: Baseline, source: str, target: str, utt: str) -> Path:
    """Where one of the baseline's wavs goes in its folder: per target for ``target`` units, else per
    ordered pair."""
    folder = target if entry.unit == "target" else f"{source}__{target}"
    return Path(folder) / f"{utt}.wav"


@contextmanager
def register(*entries: Baseline) -> Iterator[None]:
    """Add baselines for the duration of a ``with`` block (tests, notebooks); removed again afterwards."""
    for b in entries:
        if b.name in BASELINES:
            raise ValueError(f"baseline '{b.name}' is registered already")
    BASELINES.update({b.name: b for b in entries})
    try:
        yield
    finally:
        for b in entries:
            BASELINES.pop(b.name, None)
