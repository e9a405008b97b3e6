"""Losses for fine-tuning a GAN vocoder: HiFi-GAN's recipe and ParallelWaveGAN's multi-resolution STFT loss.

- Least-squares adversarial losses (Mao et al., LSGAN; HiFi-GAN Sec. 2.4, Eq. 1-2) summed over every
  sub-discriminator of the MPD and the MSD.
- Feature matching (HiFi-GAN Eq. 4, from MelGAN): L1 between the discriminator's activations on real and
  generated audio, every layer of every sub-discriminator.
- Mel-spectrogram L1 (HiFi-GAN Eq. 3) on log-mels of the full band (``fmax=None``: ``fmax_for_loss: null``).
- Multi-resolution STFT loss (Yamamoto et al., "Parallel WaveGAN", ICASSP 2020, Sec. 2.3): spectral
  convergence plus log STFT magnitude distance, averaged over several FFT/hop/window resolutions.

No weights live here: :func:`weighted_total` combines named terms with the caller's ``lambdas`` (HiFi-GAN
uses ``{"adv": 1, "fm": 2, "mel": 45}``) and returns the total with every term as a float for logging.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from vc.features.mel import HIFIGAN_22K, MelConfig, log_mel_torch

__all__ = [
    "MelL1Loss",
    "MultiResolutionSTFTLoss",
    "STFTLoss",
    "discriminator_adv_loss",
    "discriminator_terms",
    "feature_matching_loss",
    "generator_adv_loss",
    "generator_adversarial_terms",
    "generator_terms",
    "log_stft_magnitude",
    "spectral_convergence",
    "stft_magnitude",
    "weighted_total",
]


# ------------------------------------------------------------------------------------------ adversarial
def discriminator_adv_loss(real: Sequence[Tensor], fake: Sequence[Tensor]) -> Tensor:
    """LSGAN discriminator loss ``sum_k mean((1 - D_k(x))^2) + mean(D_k(G(s))^2)``.

    ``real``/``fake``: the logits ``(B, L_k)`` of every sub-discriminator on real and (detached) generated
    audio. Returns a scalar.
    """
    if len(real) != len(fake) or not real:
        raise ValueError(f"need matching non-empty logit lists, got {len(real)} and {len(fake)}")
    terms = [(1 - r).square().mean() + f.square().mean() for r, f in zip(real, fake, strict=True)]
    return torch.stack(terms).sum()


def generator_adv_loss(fake: Sequence[Tensor]) -> Tensor:
    """LSGAN generator loss ``sum_k mean((1 - D_k(G(s)))^2)`` over logits ``(B, L_k)``; a scalar."""
    if not fake:
        raise ValueError("need at least one discriminator output")
    return torch.stack([(1 - f).square().mean() for f in fake]).sum()


def feature_matching_loss(real: Sequence[Sequence[Tensor]], fake: Sequence[Sequence[Tensor]]) -> Tensor:
    """``sum_k sum_i mean|D_k^i(x) - D_k^i(G(s))|`` over sub-discriminators ``k`` and layers ``i``; a scalar.

    ``real``/``fake``: per sub-discriminator, the list of its feature maps (any shapes, equal pairwise). The
    real maps are treated as constants (detached), as the generator cannot change them. Real and generated
    audio are the same utterance, so the maps are compared position by position; StarGAN's non-parallel
    training compares their means instead (:func:`vc.stargan.losses.mean_feature_matching_loss`).
    """
    if len(real) != len(fake) or not real:
        raise ValueError(f"need matching non-empty feature-map lists, got {len(real)} and {len(fake)}")
    terms = [
        F.l1_loss(g, r.detach())
        for maps_r, maps_g in zip(real, fake, strict=True)
        for r, g in zip(maps_r, maps_g, strict=True)
    ]
    return torch.stack(terms).sum()


# ----------------------------------------------------------------------------------------------- mel
class MelL1Loss(nn.Module):
    """Mean absolute difference of log-mel spectrograms: ``(B, 1, N)``, ``(B, 1, N)`` -> scalar.

    ``cfg`` is the analysis; by default the vocoder's (:data:`vc.features.mel.HIFIGAN_22K`) over the full band
    (``full_band=True`` sets ``fmax=None``, HiFi-GAN's ``fmax_for_loss: null``).
    """

    def __init__(self, cfg: MelConfig = HIFIGAN_22K, *, full_band: bool = True) -> None:
        super().__init__()
        self.cfg = replace(cfg, fmax=None) if full_band else cfg

    def forward(self, fake: Tensor, real: Tensor) -> Tensor:
        return F.l1_loss(log_mel_torch(fake, self.cfg), log_mel_torch(real, self.cfg))


# ---------------------------------------------------------------------------------------------- STFT
def stft_magnitude(x: Tensor, fft_size: int, hop: int, win_length: int, *, floor: float = 1e-7) -> Tensor:
    """Linear STFT magnitude ``(B, N)`` -> ``(B, frames, fft_size // 2 + 1)``: centred frames, periodic Hann
    window of ``win_length`` samples, ``sqrt(max(|X|^2, floor))`` so that the log and its gradient stay
    finite in digital silence."""
    window = torch.hann_window(win_length, dtype=x.dtype, device=x.device)
    spec = torch.stft(
        x, fft_size, hop_length=hop, win_length=win_length, window=window, center=True, return_complex=True
    )
    power = spec.real.square() + spec.imag.square()
    return torch.sqrt(torch.clamp(power, min=floor)).transpose(1, 2)


def log_stft_magnitude(fake_mag: Tensor, real_mag: Tensor) -> Tensor:
    """Log STFT magnitude loss ``mean|log |Y| - log |X||`` over magnitudes ``(B, frames, bins)``; a scalar."""
    return F.l1_loss(torch.log(fake_mag), torch.log(real_mag))


def spectral_convergence(fake_mag: Tensor, real_mag: Tensor) -> Tensor:
    """Spectral convergence ``||Y - X||_F / ||Y||_F`` (``Y`` real) over magnitudes ``(B, frames, bins)``."""
    return torch.linalg.norm(real_mag - fake_mag) / torch.linalg.norm(real_mag)


class STFTLoss(nn.Module):
    """One STFT resolution: fake and real ``(B, 1, N)`` or ``(B, N)`` -> scalars ``(sc, log magnitude)``."""

    def __init__(self, fft_size: int, hop: int, win_length: int, *, floor: float = 1e-7) -> None:
        super().__init__()
        if not 0 < win_length <= fft_size or hop <= 0:
            raise ValueError(
                f"need 0 < win_length <= fft_size and hop > 0, got {fft_size}/{hop}/{win_length}"
            )
        self.fft_size, self.hop, self.win_length, self.floor = fft_size, hop, win_length, floor

    def forward(self, fake: Tensor, real: Tensor) -> tuple[Tensor, Tensor]:
        fake, real = fake.reshape(-1, fake.shape[-1]), real.reshape(-1, real.shape[-1])
        args = (self.fft_size, self.hop, self.win_length)
        fake_mag = stft_magnitude(fake, *args, floor=self.floor)
        real_mag = stft_magnitude(real, *args, floor=self.floor)
        return spectral_convergence(fake_mag, real_mag), log_stft_magnitude(fake_mag, real_mag)


class MultiResolutionSTFTLoss(nn.Module):
    """ParallelWaveGAN's multi-resolution STFT loss: :class:`STFTLoss` at every ``(fft, hop, win)`` triple,
    each term averaged over the resolutions. ``(B, 1, N)``, ``(B, 1, N)`` -> ``(sc, mag)`` scalars.

    The defaults are the paper's three resolutions (chosen for 24 kHz audio); the caller sums ``sc + mag`` (or
    weights them separately).
    """

    def __init__(
        self,
        fft_sizes: Sequence[int] = (1024, 2048, 512),
        hops: Sequence[int] = (120, 240, 50),
        win_lengths: Sequence[int] = (600, 1200, 240),
        *,
        floor: float = 1e-7,
    ) -> None:
        super().__init__()
        if not len(fft_sizes) == len(hops) == len(win_lengths) or not fft_sizes:
            raise ValueError("fft_sizes, hops and win_lengths must be non-empty and of the same length")
        self.resolutions = nn.ModuleList(
            STFTLoss(f, h, w, floor=floor) for f, h, w in zip(fft_sizes, hops, win_lengths, strict=True)
        )

    def forward(self, fake: Tensor, real: Tensor) -> tuple[Tensor, Tensor]:
        pairs = [loss(fake, real) for loss in self.resolutions]
        sc = torch.stack([p[0] for p in pairs]).mean()
        mag = torch.stack([p[1] for p in pairs]).mean()
        return sc, mag


# -------------------------------------------------------------------------------------------- a step
def discriminator_terms(
    discriminators: Mapping[str, nn.Module], real: Tensor, fake: Tensor
) -> dict[str, Tensor]:
    """LSGAN loss of every named discriminator (e.g. ``{"mpd": ..., "msd": ...}``) on real audio and on
    generated audio ``(B, 1, N)``, which is detached here. Returns ``{name: scalar}``."""
    fake = fake.detach()
    return {name: discriminator_adv_loss(d(real)[0], d(fake)[0]) for name, d in discriminators.items()}


def generator_adversarial_terms(
    discriminators: Mapping[str, nn.Module], real: Tensor, fake: Tensor
) -> dict[str, Tensor]:
    """The generator's ``adv`` (LSGAN) and ``fm`` (feature matching) terms summed over the named
    discriminators, for real and generated audio ``(B, 1, N)``; the real audio's maps without gradients."""
    adv, fm = [], []
    for disc in discriminators.values():
        logits_fake, maps_fake = disc(fake)
        with torch.no_grad():
            _, maps_real = disc(real)
        adv.append(generator_adv_loss(logits_fake))
        fm.append(feature_matching_loss(maps_real, maps_fake))
    return {"adv": torch.stack(adv).sum(), "fm": torch.stack(fm).sum()}


def generator_terms(
    discriminators: Mapping[str, nn.Module],
    real: Tensor,
    fake: Tensor,
    *,
    mel_loss: nn.Module,
    stft_loss: MultiResolutionSTFTLoss | None = None,
) -> dict[str, Tensor]:
    """The generator's terms for one batch of real and generated audio ``(B, 1, N)``: ``adv`` and ``fm``
    (:func:`generator_adversarial_terms`), ``mel`` (:class:`MelL1Loss`), and with ``stft_loss`` also
    ``stft_sc`` and ``stft_mag``. Weight them with :func:`weighted_total`."""
    terms = generator_adversarial_terms(discriminators, real, fake)
    terms["mel"] = mel_loss(fake, real)
    if stft_loss is not None:
        terms["stft_sc"], terms["stft_mag"] = stft_loss(fake, real)
    return terms


# --------------------------------------------------------------------------------------------- total
def weighted_total(
    terms: Mapping[str, Tensor], lambdas: Mapping[str, float], *, prefix: str = "", log: bool = True
) -> tuple[Tensor, dict[str, float]]:
    """``sum_k lambdas[k] * terms[k]`` and every term as a float, named ``prefix + k`` (for MLflow and the DVC
    plots file), plus ``prefix + "total"``.

    Every term needs a weight and every weight a term: a typo in a params key is an error, not a silently
    unweighted (or ignored) loss. A weight of 0 keeps the term in the log but out of the gradient. With
    ``log=False`` the floats are not made (no device-to-host copy: a training loop that logs tensors).
    """
    missing, unknown = sorted(set(terms) - set(lambdas)), sorted(set(lambdas) - set(terms))
    if missing or unknown:
        raise ValueError(f"loss weights do not match the terms: missing {missing}, unknown {unknown}")
    if not terms:
        raise ValueError("no loss terms")
    total = next(iter(terms.values())).new_zeros(())
    for name, value in terms.items():
        if lambdas[name]:
            total = total + lambdas[name] * value
    if not log:
        return total, {}
    logged = {f"{prefix}{k}": float(v.detach()) for k, v in terms.items()}
    logged[f"{prefix}total"] = float(total.detach())
    return total, logged
