"""HiFi-GAN's waveform discriminators: multi-period (MPD) and multi-scale (MSD).

Kong et al., "HiFi-GAN", NeurIPS 2020, Sec. 2.2-2.3. The MPD folds a waveform ``(B, 1, N)`` into
``(B, 1, N / p, p)`` for each period ``p`` (2, 3, 5, 7, 11) and judges it with 2-D convolutions whose kernels
span time only, so every sub-discriminator sees the samples ``p`` apart. The MSD (from MelGAN, Kumar et al.
2019) judges the raw waveform and two average-pooled versions of it with grouped 1-D convolutions; the first
scale uses spectral normalisation, the others weight normalisation.

Each discriminator returns ``(logits, feature_maps)``: a list with one ``(B, L_k)`` tensor of patch logits
per sub-discriminator, and a list (per sub-discriminator) of the activations after every layer (the last is
the logits map before flattening), which the feature-matching loss compares. Widths, kernels and strides are
constructor arguments with the paper's values as defaults, so a tiny configuration fits a CPU test.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.parametrizations import spectral_norm, weight_norm

__all__ = [
    "DiscriminatorOutput",
    "MultiPeriodDiscriminator",
    "MultiScaleDiscriminator",
    "PeriodDiscriminator",
    "ScaleDiscriminator",
]

#: ``(logits [(B, L_k)], feature maps [[(B, C, ...)] per layer])``, one entry per sub-discriminator
DiscriminatorOutput = tuple[list[Tensor], list[list[Tensor]]]


def _norm(module: nn.Module, spectral: bool) -> nn.Module:
    return spectral_norm(module) if spectral else weight_norm(module)


class PeriodDiscriminator(nn.Module):
    """One MPD sub-discriminator for period ``p``: ``(B, 1, N)`` -> logits ``(B, L)`` and feature maps.

    The waveform is reflect-padded at its end to a multiple of ``p`` (any ``N > p - (N mod p)`` works) and
    folded to ``(B, 1, ceil(N / p), p)``. ``channels[:-1]`` are strided layers (``stride`` along time), the
    last entry a stride-1 layer, all with ``kernel_size x 1`` kernels; a ``3 x 1`` convolution gives the
    logits.
    """

    def __init__(
        self,
        period: int,
        *,
        channels: Sequence[int] = (32, 128, 512, 1024, 1024),
        kernel_size: int = 5,
        stride: int = 3,
        slope: float = 0.1,
        spectral: bool = False,
    ) -> None:
        super().__init__()
        if period < 1 or not channels:
            raise ValueError("period must be positive and channels non-empty")
        self.period = period
        self.slope = slope
        pad = (kernel_size // 2, 0)
        widths = [1, *channels]
        self.convs = nn.ModuleList(
            _norm(
                nn.Conv2d(c_in, c_out, (kernel_size, 1), (stride if i < len(channels) - 1 else 1, 1), pad),
                spectral,
            )
            for i, (c_in, c_out) in enumerate(itertools.pairwise(widths))
        )
        self.conv_post = _norm(nn.Conv2d(channels[-1], 1, (3, 1), 1, (1, 0)), spectral)

    def forward(self, x: Tensor) -> tuple[Tensor, list[Tensor]]:
        """``x`` ``(B, 1, N)`` -> ``(logits (B, L), [feature maps (B, C, T', p)])``."""
        b, c, n = x.shape
        if n % self.period:
            x = F.pad(x, (0, self.period - n % self.period), mode="reflect")
        h = x.view(b, c, -1, self.period)
        fmaps = []
        for conv in self.convs:
            h = F.leaky_relu(conv(h), self.slope)
            fmaps.append(h)
        h = self.conv_post(h)
        fmaps.append(h)
        return h.flatten(1), fmaps


class MultiPeriodDiscriminator(nn.Module):
    """HiFi-GAN's MPD: one :class:`PeriodDiscriminator` per period (default 2, 3, 5, 7, 11; primes, so that
    the sub-discriminators overlap as little as possible). ``(B, 1, N)`` -> :data:`DiscriminatorOutput`.
    Keyword arguments other than ``periods`` go to every sub-discriminator."""

    def __init__(
        self,
        periods: Sequence[int] = (2, 3, 5, 7, 11),
        *,
        channels: Sequence[int] = (32, 128, 512, 1024, 1024),
        kernel_size: int = 5,
        stride: int = 3,
        slope: float = 0.1,
    ) -> None:
        super().__init__()
        self.discriminators = nn.ModuleList(
            PeriodDiscriminator(p, channels=channels, kernel_size=kernel_size, stride=stride, slope=slope)
            for p in periods
        )

    def forward(self, x: Tensor) -> DiscriminatorOutput:
        """``x`` ``(B, 1, N)`` -> ``([logits (B, L_p)] per period, [[feature maps]] per period)``."""
        outputs = [d(x) for d in self.discriminators]
        return [o[0] for o in outputs], [o[1] for o in outputs]


class ScaleDiscriminator(nn.Module):
    """One MSD sub-discriminator: grouped strided 1-D convolutions, ``(B, 1, N)`` -> logits ``(B, L)``.

    Layer ``i`` maps to ``channels[i]`` with kernel ``kernels[i]``, stride ``strides[i]`` and
    ``groups[i]`` groups ('same' padding); a 3-tap convolution gives the logits.
    """

    def __init__(
        self,
        *,
        channels: Sequence[int] = (128, 128, 256, 512, 1024, 1024, 1024),
        kernels: Sequence[int] = (15, 41, 41, 41, 41, 41, 5),
        strides: Sequence[int] = (1, 2, 2, 4, 4, 1, 1),
        groups: Sequence[int] = (1, 4, 16, 16, 16, 16, 1),
        slope: float = 0.1,
        spectral: bool = False,
    ) -> None:
        super().__init__()
        if not len(channels) == len(kernels) == len(strides) == len(groups):
            raise ValueError("channels, kernels, strides and groups must have the same length")
        self.slope = slope
        widths = [1, *channels]
        self.convs = nn.ModuleList(
            _norm(nn.Conv1d(c_in, c_out, k, s, padding=k // 2, groups=g), spectral)
            for (c_in, c_out), k, s, g in zip(
                itertools.pairwise(widths), kernels, strides, groups, strict=True
            )
        )
        self.conv_post = _norm(nn.Conv1d(channels[-1], 1, 3, 1, padding=1), spectral)

    def forward(self, x: Tensor) -> tuple[Tensor, list[Tensor]]:
        """``x`` ``(B, 1, N)`` -> ``(logits (B, L), [feature maps (B, C, T')])``."""
        fmaps = []
        h = x
        for conv in self.convs:
            h = F.leaky_relu(conv(h), self.slope)
            fmaps.append(h)
        h = self.conv_post(h)
        fmaps.append(h)
        return h.flatten(1), fmaps


class MultiScaleDiscriminator(nn.Module):
    """HiFi-GAN's MSD: ``scales`` :class:`ScaleDiscriminator` s on the waveform and on successively
    average-pooled copies (kernel ``pool_kernel``, stride ``pool_stride``, padding ``pool_padding``: 4, 2, 2).
    The first scale is spectrally normalised when ``spectral_first`` (the paper's choice, for stability on the
    raw waveform). ``(B, 1, N)`` -> :data:`DiscriminatorOutput`. Remaining keyword arguments configure every
    sub-discriminator."""

    def __init__(
        self,
        scales: int = 3,
        *,
        pool_kernel: int = 4,
        pool_stride: int = 2,
        pool_padding: int = 2,
        spectral_first: bool = True,
        channels: Sequence[int] = (128, 128, 256, 512, 1024, 1024, 1024),
        kernels: Sequence[int] = (15, 41, 41, 41, 41, 41, 5),
        strides: Sequence[int] = (1, 2, 2, 4, 4, 1, 1),
        groups: Sequence[int] = (1, 4, 16, 16, 16, 16, 1),
        slope: float = 0.1,
    ) -> None:
        super().__init__()
        if scales < 1:
            raise ValueError(f"scales must be positive, got {scales}")
        self.discriminators = nn.ModuleList(
            ScaleDiscriminator(
                channels=channels,
                kernels=kernels,
                strides=strides,
                groups=groups,
                slope=slope,
                spectral=spectral_first and i == 0,
            )
            for i in range(scales)
        )
        self.pool = nn.AvgPool1d(pool_kernel, pool_stride, padding=pool_padding)

    def forward(self, x: Tensor) -> DiscriminatorOutput:
        """``x`` ``(B, 1, N)`` -> ``([logits (B, L_s)] per scale, [[feature maps]] per scale)``."""
        logits, fmaps = [], []
        for i, disc in enumerate(self.discriminators):
            if i:
                x = self.pool(x)
            out, maps = disc(x)
            logits.append(out)
            fmaps.append(maps)
        return logits, fmaps
