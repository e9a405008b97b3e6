"""Loss terms of StarGAN-VC(2), one idea each; :mod:`vc.stargan.objective` weights and sums them.

Logits are the discriminator's raw outputs ``(B,)``; features are ``(B, D, T)``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch.nn.functional as F
from torch import Tensor

__all__ = [
    "ADV_LOSSES",
    "adversarial_d_loss",
    "adversarial_d_terms",
    "adversarial_g_loss",
    "classification_loss",
    "cycle_loss",
    "identity_loss",
    "mean_feature_matching_loss",
]

ADV_LOSSES = ("lsgan", "hinge", "bce", "wasserstein")


def _check_kind(kind: str) -> None:
    if kind not in ADV_LOSSES:
        raise ValueError(f"unknown adversarial loss '{kind}' (expected one of {ADV_LOSSES})")


def adversarial_d_terms(kind: str, real_logits: Tensor, fake_logits: Tensor) -> tuple[Tensor, Tensor]:
    """The discriminator's loss on real samples and on fakes, separately (each a scalar).

    ``lsgan``: least squares with targets 1 (real) and 0 (fake), as in StarGAN-VC2 (Sec. 4.1);
    ``hinge``: ``relu(1 - real)``, ``relu(1 + fake)``; ``bce``: binary cross entropy on logits;
    ``wasserstein``: ``-real`` and ``fake`` (the critic's loss of WGAN, Arjovsky et al. 2017, without weight
    clipping or gradient penalty: the source notes' failed experiment used it so).
    """
    _check_kind(kind)
    if kind == "lsgan":
        return (real_logits - 1).square().mean(), fake_logits.square().mean()
    if kind == "hinge":
        return F.relu(1 - real_logits).mean(), F.relu(1 + fake_logits).mean()
    if kind == "wasserstein":
        return -real_logits.mean(), fake_logits.mean()
    return F.softplus(-real_logits).mean(), F.softplus(fake_logits).mean()


def adversarial_d_loss(kind: str, real_logits: Tensor, fake_logits: Tensor) -> Tensor:
    """The discriminator's adversarial loss: real term plus fake term (see :func:`adversarial_d_terms`)."""
    real, fake = adversarial_d_terms(kind, real_logits, fake_logits)
    return real + fake


def adversarial_g_loss(kind: str, fake_logits: Tensor) -> Tensor:
    """The generator's adversarial loss on its fakes' logits ``(B,)``.

    ``lsgan``: ``(fake - 1)^2``; ``hinge`` and ``wasserstein``: ``-fake``; ``bce``: the non-saturating
    ``-log sigmoid(fake)``.
    """
    _check_kind(kind)
    if kind == "lsgan":
        return (fake_logits - 1).square().mean()
    if kind in ("hinge", "wasserstein"):
        return -fake_logits.mean()
    return F.softplus(-fake_logits).mean()


def cycle_loss(x: Tensor, reconstructed: Tensor) -> Tensor:
    """Cycle-consistency loss (L1): ``x`` vs ``G(G(x, s, t), t, s)``, both ``(B, D, T)``."""
    return F.l1_loss(reconstructed, x)


def identity_loss(x: Tensor, mapped: Tensor) -> Tensor:
    """Identity-mapping loss (L1): ``x`` vs ``G(x, s, s)``, both ``(B, D, T)``."""
    return F.l1_loss(mapped, x)


def classification_loss(logits: Tensor, labels: Tensor) -> Tensor:
    """Domain classification loss: cross entropy of speaker logits ``(B, N)`` against labels ``(B,)``."""
    return F.cross_entropy(logits, labels)


def mean_feature_matching_loss(real_features: Sequence[Tensor], fake_features: Sequence[Tensor]) -> Tensor:
    """Mean over D's layers of the L1 distance between the per-channel means of real and fake features.

    Training is non-parallel: a fake and the real target sample beside it in the batch are different
    sentences, so matching them position by position would be wrong. Instead each layer's activations
    ``(B, C, H, W)`` are averaged over the batch and all positions to ``(C,)``, and the fake means are
    pulled towards the real ones (feature matching on statistics, as Salimans et al., "Improved techniques
    for training GANs", NeurIPS 2016, Sec. 3.1, with L1). The real features are detached: this term trains
    G only.

    Not :func:`vc.vocoders.losses.feature_matching_loss` (HiFi-GAN Eq. 4): that one compares real and
    generated audio of the same utterance map by map, summed over layers; this one compares means,
    averaged over layers.
    """
    if len(real_features) != len(fake_features) or not real_features:
        raise ValueError("feature matching needs the same, non-zero number of real and fake layers")
    total = fake_features[0].new_zeros(())
    for real, fake in zip(real_features, fake_features, strict=True):
        dims = [0, *range(2, fake.dim())]
        total = total + F.l1_loss(fake.mean(dim=dims), real.detach().mean(dim=dims))
    return total / len(fake_features)
