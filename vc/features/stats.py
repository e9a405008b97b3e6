"""Normalisation statistics: one file that travels with the model (speakers, scaler, log-F0, codec).

- Spectral features are standardised by scikit-learn ``StandardScaler``\\ s fitted incrementally on the
  training frames: one for all speakers (``global``) or one per speaker (``per_speaker``).
- Per speaker: mean and standard deviation of log F0 over voiced training frames (for the log-Gaussian
  normalised F0 transform), and the unscaled mean and standard deviation of every spectral coefficient
  (for the ``mean-var`` baseline).
- The speaker list fixes the speaker codes: speaker ``i`` of the list is code ``i`` of the model.

The log-mel features of mel systems get the same kind of file (:func:`fit_mel_stats`): scalers and
per-speaker statistics of the log-mel frames, the log-F0 statistics of the WORLD analysis, a ``mel`` codec.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from vc.config import FeatureKind, FeaturesConfig
from vc.errors import InputError
from vc.features.mel import HIFIGAN_22K
from vc.features.world import SpectralCodec, WorldFeatures
from vc.io import write_json

__all__ = ["FeatureStats", "StatsError", "fit_mel_stats", "fit_stats"]


class StatsError(InputError):
    """Statistics are missing, inconsistent, or asked for an unknown speaker (named in the message)."""


@dataclass
class FeatureStats:
    speakers: list[str]
    scaler: str  # "global" | "per_speaker"
    mean: np.ndarray  # (1 or S, D): the scaler's mean per row
    scale: np.ndarray  # (1 or S, D): the scaler's standard deviation per row
    logf0_mean: np.ndarray  # (S,)
    logf0_std: np.ndarray  # (S,)
    spectral_mean: np.ndarray  # (S, D) unscaled, per speaker
    spectral_std: np.ndarray  # (S, D) unscaled, per speaker
    codec: SpectralCodec
    frame_period: float
    train_frames: dict[str, int]

    # -------------------------------------------------------------------------------------- lookups
    def index(self, speaker: str) -> int:
        """The model's code for ``speaker``."""
        try:
            return self.speakers.index(speaker)
        except ValueError:
            raise StatsError(
                f"unknown speaker '{speaker}'; known speakers: {', '.join(self.speakers)}"
            ) from None

    def _row(self, speaker: str) -> int:
        return self.index(speaker) if self.scaler == "per_speaker" else 0

    def normalize(self, spectral: np.ndarray, speaker: str) -> np.ndarray:
        """``(T, D)`` -> ``(T, D)`` standardised with ``speaker``'s scaler (the global one if global)."""
        row = self._row(speaker)
        return (spectral - self.mean[row]) / self.scale[row]

    def denormalize(self, spectral: np.ndarray, speaker: str) -> np.ndarray:
        row = self._row(speaker)
        return spectral * self.scale[row] + self.mean[row]

    def match_moments(self, spectral: np.ndarray, source: str, target: str) -> np.ndarray:
        """``(T, D)`` -> ``(T, D)``: each coefficient's per-speaker mean and standard deviation moved from
        ``source``'s to ``target``'s (the ``mean-var`` baselines' spectral conversion)."""
        s, t = self.index(source), self.index(target)
        z = (spectral - self.spectral_mean[s]) / self.spectral_std[s]
        return z * self.spectral_std[t] + self.spectral_mean[t]

    def convert_f0(self, f0: np.ndarray, source: str, target: str) -> np.ndarray:
        """Log-Gaussian normalised transform of F0 ``(T,)``: voiced frames map source -> target stats."""
        s, t = self.index(source), self.index(target)
        out = np.zeros_like(f0, dtype=np.float64)
        voiced = f0 > 0
        z = (np.log(f0[voiced]) - self.logf0_mean[s]) / self.logf0_std[s]
        out[voiced] = np.exp(z * self.logf0_std[t] + self.logf0_mean[t])
        return out

    # ---------------------------------------------------------------------------------------- file
    def save(self, path: str | Path) -> None:
        write_json(
            path,
            {
                "speakers": self.speakers,
                "scaler": self.scaler,
                "mean": self.mean.tolist(),
                "scale": self.scale.tolist(),
                "logf0_mean": self.logf0_mean.tolist(),
                "logf0_std": self.logf0_std.tolist(),
                "spectral_mean": self.spectral_mean.tolist(),
                "spectral_std": self.spectral_std.tolist(),
                "codec": asdict(self.codec),
                "frame_period": self.frame_period,
                "train_frames": self.train_frames,
            },
        )

    @classmethod
    def load(cls, path: str | Path) -> FeatureStats:
        path = Path(path)
        if not path.is_file():
            raise StatsError(f"{path}: no statistics file (run the stats stage first)")
        try:
            d = json.loads(path.read_text(encoding="utf-8"))
            arrays = {
                k: np.asarray(d[k], dtype=np.float64)
                for k in ("mean", "scale", "logf0_mean", "logf0_std", "spectral_mean", "spectral_std")
            }
            return cls(
                speakers=list(d["speakers"]),
                scaler=d["scaler"],
                codec=SpectralCodec(**d["codec"]),
                frame_period=float(d["frame_period"]),
                train_frames=dict(d["train_frames"]),
                **arrays,
            )
        except (KeyError, TypeError, ValueError) as err:
            raise StatsError(f"{path}: not a valid statistics file ({err})") from None

    @property
    def dim(self) -> int:
        return int(self.mean.shape[1])

    @property
    def feature_kind(self) -> FeatureKind:
        """The features these statistics normalise: ``mel`` (log-mel) or ``world`` (every WORLD codec)."""
        return "mel" if self.codec.kind == "mel" else "world"


@dataclass
class _Scalers:
    mean: np.ndarray  # (1 or S, D)
    scale: np.ndarray  # (1 or S, D)
    spectral_mean: np.ndarray  # (S, D)
    spectral_std: np.ndarray  # (S, D)
    frames: dict[str, int]


def _fit_scalers(matrices: dict[str, list[np.ndarray]], scaler: str, dim: int, what: str) -> _Scalers:
    """StandardScalers over ``{speaker: [(T, D), ...]}``: the chosen normalisation and per-speaker moments."""
    # Imported here: scikit-learn (0.7 s with the scipy.stats it loads) is needed to fit, not by every stage
    # that reads the statistics (convert, train, the report).
    from sklearn.preprocessing import StandardScaler

    glob = StandardScaler()
    per_speaker = []
    for spk, mats in matrices.items():
        per = StandardScaler()
        for m in mats:
            if m.shape[1] != dim:
                raise StatsError(f"speaker '{spk}': {what} of dim {m.shape[1]}, expected {dim}")
            per.partial_fit(m)
            glob.partial_fit(m)
        per_speaker.append(per)
    chosen = [glob] if scaler == "global" else per_speaker
    return _Scalers(
        mean=np.stack([s.mean_ for s in chosen]),
        scale=np.stack([s.scale_ for s in chosen]),
        spectral_mean=np.stack([s.mean_ for s in per_speaker]),
        spectral_std=np.stack([s.scale_ for s in per_speaker]),
        frames={spk: int(s.n_samples_seen_) for spk, s in zip(matrices, per_speaker, strict=True)},
    )


def fit_stats(train: dict[str, list[WorldFeatures]], cfg: FeaturesConfig, scaler: str) -> FeatureStats:
    """Fit statistics on training features ``{speaker: [WorldFeatures, ...]}`` (speakers in that order)."""
    speakers = list(train)
    if len(speakers) < 2:
        raise StatsError(f"need training features of at least 2 speakers, got {len(speakers)}")
    first = train[speakers[0]][0]
    codec = SpectralCodec.from_config(cfg, first.sample_rate)
    logf0_mean, logf0_std = [], []
    for spk in speakers:
        for feats in train[spk]:
            if feats.sample_rate != codec.sample_rate:
                raise StatsError(
                    f"speaker '{spk}': features at {feats.sample_rate} Hz, expected {codec.sample_rate} Hz"
                )
        logf0 = np.concatenate([np.log(f.f0[f.voiced]) for f in train[spk]])
        if logf0.size < 2:
            raise StatsError(f"speaker '{spk}': fewer than 2 voiced training frames")
        logf0_mean.append(logf0.mean())
        logf0_std.append(logf0.std())
    fitted = _fit_scalers(
        {spk: [f.spectral for f in train[spk]] for spk in speakers}, scaler, codec.dim, "features"
    )
    return FeatureStats(
        speakers=speakers,
        scaler=scaler,
        mean=fitted.mean,
        scale=fitted.scale,
        logf0_mean=np.asarray(logf0_mean),
        logf0_std=np.asarray(logf0_std),
        spectral_mean=fitted.spectral_mean,
        spectral_std=fitted.spectral_std,
        codec=codec,
        frame_period=first.frame_period,
        train_frames=fitted.frames,
    )


def fit_mel_stats(mels: dict[str, list[np.ndarray]], world: FeatureStats) -> FeatureStats:
    """Statistics of the training log-mels ``{speaker: [(T_mel, 80), ...]}`` for mel systems: the same
    speakers (codes) and scaler kind as ``world``, whose log-F0 statistics are carried over."""
    missing = [s for s in world.speakers if not mels.get(s)]
    if missing:
        raise StatsError(f"no training log-mels for speaker(s) {', '.join(missing)}")
    cfg = HIFIGAN_22K
    fitted = _fit_scalers({s: mels[s] for s in world.speakers}, world.scaler, cfg.n_mels, "log-mels")
    return FeatureStats(
        speakers=list(world.speakers),
        scaler=world.scaler,
        mean=fitted.mean,
        scale=fitted.scale,
        logf0_mean=world.logf0_mean,
        logf0_std=world.logf0_std,
        spectral_mean=fitted.spectral_mean,
        spectral_std=fitted.spectral_std,
        codec=SpectralCodec("mel", cfg.sample_rate, cfg.n_fft, cfg.n_mels, 0.0),
        frame_period=1000.0 * cfg.hop_length / cfg.sample_rate,
        train_frames=fitted.frames,
    )
