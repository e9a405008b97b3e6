"""WORLD analysis and synthesis (pyworld) with the spectral envelope as a mel-cepstrum or a coded envelope.

Per utterance: F0 by Harvest (or DIO + StoneMask), the spectral envelope by CheapTrick, aperiodicity by D4C,
all on a ``frame_period`` grid (5 ms). The envelope becomes either

- ``mcep``: a mel-cepstrum ``c0..cM`` by pysptk's ``sp2mc`` transform (order 34 at 22.05 kHz, all-pass
  constant :func:`pysptk.util.mcepalpha` of the sample rate unless set; computed as one matrix product per
  utterance, :mod:`vc.features.mcep`), or
- ``coded_sp``: :func:`pyworld.code_spectral_envelope` (the 36-dim coded envelope of public StarGAN-VC2 code).

Aperiodicity is stored coded (:func:`pyworld.code_aperiodicity`), which is what conversion passes through.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyworld as pw

from vc.config import FeaturesConfig
from vc.features.mcep import mc2sp, mcep_alpha, sp2mc
from vc.io import save_npz

__all__ = ["SpectralCodec", "WorldFeatures", "analyze", "load_features", "synthesize"]


@dataclass(frozen=True)
class SpectralCodec:
    """Turns CheapTrick envelopes into model features and back, for one sample rate."""

    kind: str  # "mcep" | "coded_sp" | "mel" (log-mel for HiFi-GAN: no WORLD envelope, see vc.vocoders)
    sample_rate: int
    fft_size: int
    dim: int  # features per frame
    alpha: float  # all-pass constant (mcep only; 0 for coded_sp)

    @classmethod
    def from_config(cls, cfg: FeaturesConfig, sample_rate: int) -> SpectralCodec:
        fft_size = pw.get_cheaptrick_fft_size(sample_rate, cfg.f0_floor)
        alpha = mcep_alpha(cfg.mcep_alpha, sample_rate)
        return cls(
            cfg.spectral, sample_rate, fft_size, cfg.dim, float(alpha) if cfg.spectral == "mcep" else 0.0
        )

    def _world_only(self) -> None:
        if self.kind == "mel":
            raise ValueError("log-mel features have no WORLD envelope: a neural vocoder synthesises them")

    def encode(self, sp: np.ndarray) -> np.ndarray:
        """Power envelope ``(T, fft_size // 2 + 1)`` -> features ``(T, dim)`` (float64)."""
        self._world_only()
        if self.kind == "mcep":
            return sp2mc(sp, order=self.dim - 1, alpha=self.alpha)
        return pw.code_spectral_envelope(sp, self.sample_rate, self.dim)

    def decode(self, feats: np.ndarray) -> np.ndarray:
        """Features ``(T, dim)`` -> power envelope ``(T, fft_size // 2 + 1)`` (float64, C-contiguous)."""
        self._world_only()
        feats = np.ascontiguousarray(feats, dtype=np.float64)
        if self.kind == "mcep":
            sp = mc2sp(feats, alpha=self.alpha, fftlen=self.fft_size)
        else:
            sp = pw.decode_spectral_envelope(feats, self.sample_rate, self.fft_size)
        return np.ascontiguousarray(sp)


@dataclass
class WorldFeatures:
    """One utterance's features on a ``frame_period`` ms grid of T frames."""

    f0: np.ndarray  # (T,) Hz, 0 where unvoiced
    spectral: np.ndarray  # (T, D) mel-cepstrum or coded envelope
    coded_ap: np.ndarray  # (T, A) coded aperiodicity (A depends on the sample rate)
    sample_rate: int
    frame_period: float

    @property
    def voiced(self) -> np.ndarray:
        return self.f0 > 0

    def save(self, path: str | Path) -> None:
        save_npz(
            path,
            f0=self.f0,
            spectral=self.spectral.astype(np.float32),
            coded_ap=self.coded_ap.astype(np.float32),
            sample_rate=self.sample_rate,
            frame_period=self.frame_period,
        )


def load_features(path: str | Path) -> WorldFeatures:
    with np.load(path) as z:
        return WorldFeatures(
            z["f0"].astype(np.float64),
            z["spectral"].astype(np.float64),
            z["coded_ap"].astype(np.float64),
            int(z["sample_rate"]),
            float(z["frame_period"]),
        )


def extract_f0(wav: np.ndarray, fs: int, cfg: FeaturesConfig) -> tuple[np.ndarray, np.ndarray]:
    """F0 ``(T,)`` and frame times ``(T,)`` by Harvest, or DIO refined by StoneMask."""
    wav = np.ascontiguousarray(wav, dtype=np.float64)
    if cfg.f0_method == "harvest":
        return pw.harvest(wav, fs, f0_floor=cfg.f0_floor, f0_ceil=cfg.f0_ceil, frame_period=cfg.frame_period)
    f0, t = pw.dio(wav, fs, f0_floor=cfg.f0_floor, f0_ceil=cfg.f0_ceil, frame_period=cfg.frame_period)
    return pw.stonemask(wav, f0, t, fs), t


def analyze(wav: np.ndarray, fs: int, cfg: FeaturesConfig) -> WorldFeatures:
    """WORLD analysis of a mono waveform ``(N,)``."""
    wav = np.ascontiguousarray(wav, dtype=np.float64)
    codec = SpectralCodec.from_config(cfg, fs)
    f0, t = extract_f0(wav, fs, cfg)
    sp = pw.cheaptrick(wav, f0, t, fs, f0_floor=cfg.f0_floor, fft_size=codec.fft_size)
    ap = pw.d4c(wav, f0, t, fs, fft_size=codec.fft_size)
    return WorldFeatures(
        f0=f0,
        spectral=codec.encode(sp),
        coded_ap=pw.code_aperiodicity(ap, fs),
        sample_rate=fs,
        frame_period=cfg.frame_period,
    )


def synthesize(
    f0: np.ndarray, spectral: np.ndarray, coded_ap: np.ndarray, codec: SpectralCodec, frame_period: float
) -> np.ndarray:
    """WORLD synthesis: F0 ``(T,)``, features ``(T, D)``, coded aperiodicity ``(T, A)`` -> wav ``(N,)``."""
    sp = codec.decode(spectral)
    ap = pw.decode_aperiodicity(
        np.ascontiguousarray(coded_ap, dtype=np.float64), codec.sample_rate, codec.fft_size
    )
    f0 = np.ascontiguousarray(f0, dtype=np.float64)
    return pw.synthesize(f0, sp, ap, codec.sample_rate, frame_period)
