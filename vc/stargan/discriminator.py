"""The StarGAN-VC2 projection discriminator and StarGAN-VC1's domain classifier.

Kaneko et al., Interspeech 2019, Sec. 3.1 (source-and-target conditional adversarial loss) and Fig. 3; the
projection follows Miyato & Koyama, "cGANs with projection discriminator", ICLR 2018.
"""

from __future__ import annotations

import math

from torch import Tensor, nn

from vc.stargan.layers import ConvBlock

__all__ = ["D_CONDITIONINGS", "Discriminator", "DomainClassifier"]

D_CONDITIONINGS = ("source_target", "target", "classifier")


def _check_features(x: Tensor, feature_dim: int) -> None:
    if x.dim() != 3 or x.shape[1] != feature_dim:
        raise ValueError(f"expected features (B, {feature_dim}, T), got {tuple(x.shape)}")


class Discriminator(nn.Module):
    """Real/fake logits conditioned on the speakers: ``(B, D, T)``, ``src``, ``tgt`` -> ``(B,)``, features.

    Fig. 3: a 3x3 conv with GLU (``channels``), four IN+GLU blocks of widths 2, 4, 8, 8 x ``channels``
    (3x3 stride 2 three times, then 1x5 stride 1), global sum (``pooling="sum"``, the paper) or mean pooling
    over frequency and time, then
    ``linear(h) + <embed(cond), h>`` (projection). ``cond`` is the pair ``src * N + tgt`` for
    ``source_target`` (N^2 embeddings, Sec. 3.1) and ``tgt`` for ``target`` and ``classifier``.

    Every keyword argument is required: they are the fields of :class:`vc.config.DiscriminatorConfig`, whose
    defaults are the only ones. ``classifier_channels`` is not used here: it is accepted so that the section
    maps onto this constructor, and :func:`vc.stargan.networks.build_models` uses it to build the
    :class:`DomainClassifier`.
    """

    def __init__(
        self,
        num_speakers: int,
        feature_dim: int,
        *,
        conditioning: str,
        channels: int,
        classifier_channels: int,
        pooling: str,
    ) -> None:
        super().__init__()
        if pooling not in ("sum", "mean"):
            raise ValueError(f"unknown discriminator pooling '{pooling}' (expected 'sum' or 'mean')")
        self.pooling = pooling
        if conditioning not in D_CONDITIONINGS:
            raise ValueError(
                f"unknown discriminator conditioning '{conditioning}' (expected one of {D_CONDITIONINGS})"
            )
        self.num_speakers = num_speakers
        self.feature_dim = feature_dim
        self.conditioning = conditioning
        c = channels
        self.blocks = nn.ModuleList(
            [
                ConvBlock(2, 1, c, 3, norm=False),
                ConvBlock(2, c, 2 * c, 3, 2),
                ConvBlock(2, 2 * c, 4 * c, 3, 2),
                ConvBlock(2, 4 * c, 8 * c, 3, 2),
                ConvBlock(2, 8 * c, 8 * c, (1, 5), 1),
            ]
        )
        width = 8 * c
        self.linear = nn.Linear(width, 1)
        rows = num_speakers**2 if conditioning == "source_target" else num_speakers
        self.embed = nn.Embedding(rows, width)
        bound = 1.0 / math.sqrt(width)  # the scale of the linear head's default initialisation
        nn.init.uniform_(self.embed.weight, -bound, bound)

    def condition_index(self, src: Tensor, tgt: Tensor) -> Tensor:
        """Row of the projection embedding ``(B,)``: the (source, target) pair or the target."""
        if self.conditioning == "source_target":
            return src * self.num_speakers + tgt
        return tgt

    def forward(self, x: Tensor, src: Tensor, tgt: Tensor) -> tuple[Tensor, list[Tensor]]:
        """``x`` ``(B, D, T)`` -> logits ``(B,)`` and the five block outputs ``(B, C_i, H_i, W_i)``."""
        _check_features(x, self.feature_dim)
        h = x.unsqueeze(1)
        features: list[Tensor] = []
        for block in self.blocks:
            h = block(h)
            features.append(h)
        # Fig. 3: global sum pooling, (B, 8C). "mean" divides by the map size, so the logits do not grow with
        # the crop length: the adversarial gradient stays on the scale of the reconstruction losses.
        pooled = h.sum(dim=(2, 3)) if self.pooling == "sum" else h.mean(dim=(2, 3))
        projection = (self.embed(self.condition_index(src, tgt)) * pooled).sum(dim=1)
        return self.linear(pooled).squeeze(1) + projection, features


class DomainClassifier(nn.Module):
    """StarGAN-VC1's auxiliary domain classifier: ``(B, D, T)`` -> speaker logits ``(B, N)``.

    A 3x3 conv with GLU, three stride-2 IN+GLU blocks, all of width ``channels``
    (``discriminator.classifier_channels``, required), global average pooling and a linear layer.
    """

    def __init__(self, num_speakers: int, feature_dim: int, *, channels: int) -> None:
        super().__init__()
        self.feature_dim = feature_dim
        c = channels
        self.blocks = nn.Sequential(
            ConvBlock(2, 1, c, 3, norm=False),
            ConvBlock(2, c, c, 3, 2),
            ConvBlock(2, c, c, 3, 2),
            ConvBlock(2, c, c, 3, 2),
        )
        self.linear = nn.Linear(c, num_speakers)

    def forward(self, x: Tensor) -> Tensor:
        _check_features(x, self.feature_dim)
        h = self.blocks(x.unsqueeze(1))
        return self.linear(h.mean(dim=(2, 3)))
