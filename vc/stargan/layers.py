"""Building blocks shared by the generator, the discriminator and the domain classifier.

Every block works on 1-D feature maps ``(B, C, T)`` or 2-D feature maps ``(B, C, H, W)`` (``nd`` = 1 or 2).
Blocks take an optional speaker ``code`` ``(B, K)`` so that StarGAN-VC1's "concatenate the one-hot code to
every convolution's input" and StarGAN-VC2's conditional instance normalisation share one code path.
"""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = [
    "CodeConcatConv",
    "ConditionalInstanceNorm",
    "ConvBlock",
    "InstanceNorm",
    "PixelShuffle1d",
    "PixelShuffle2d",
    "ResidualBlock",
    "ThinConv2d",
    "broadcast_code",
    "pad_to_multiple",
]

Kernel = int | tuple[int, ...]


def _as_tuple(value: Kernel, nd: int) -> tuple[int, ...]:
    return (value,) * nd if isinstance(value, int) else tuple(value)


def pad_to_multiple(x: Tensor, multiple: int, dims: int) -> Tensor:
    """Replicate-pad the last ``dims`` axes of ``x`` at their end up to a multiple of ``multiple``.

    Replicate padding (rather than reflect) works for any length, even a single frame. A no-op (no copy) when
    the sizes already divide.
    """
    pads: list[int] = []
    for size in reversed(x.shape[-dims:]):
        pads += [0, -size % multiple]
    if not any(pads):
        return x
    return F.pad(x, pads, mode="replicate")


def instance_norm(x: Tensor, eps: float, weight: Tensor | None = None, bias: Tensor | None = None) -> Tensor:
    """Instance norm of ``x`` ``(B, C, *)``: each sample's channel over every axis after the channels, then
    ``weight`` and ``bias`` ``(C,)`` if given; ``(B, C, *)``.

    The statistics and the result of :func:`torch.nn.functional.instance_norm` (without running
    statistics), computed as a group norm of one group per channel: on the CPU its kernels take bfloat16
    directly, where ``instance_norm`` repeats the affine parameters ``B`` times and goes through batch norm
    over ``B * C`` channels (one thread, bf16, forward and backward: 1.9 against 2.4 ms at 16 x 64 x 18 x 64,
    0.41 against 1.13 ms at 16 x 256 x 32).
    """
    return F.group_norm(x, x.shape[1], weight, bias, eps)


class InstanceNorm(nn.Module):
    """Affine instance norm over every axis after the channels of ``(B, C, T)`` or ``(B, C, H, W)``
    (:func:`instance_norm`): the parameters (``weight`` 1, ``bias`` 0 at first, state-dict keys included)
    and the result of ``nn.InstanceNorm1d/2d(C, affine=True)``."""

    def __init__(self, num_features: int, *, eps: float = 1e-5) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(num_features))
        self.bias = nn.Parameter(torch.zeros(num_features))

    def forward(self, x: Tensor) -> Tensor:
        """``(B, C, *)`` -> ``(B, C, *)``."""
        return instance_norm(x, self.eps, self.weight, self.bias)


def broadcast_code(code: Tensor, like: Tensor) -> Tensor:
    """Broadcast a code ``(B, K)`` to constant maps ``(B, K, *like.shape[2:])`` (a view, no copy)."""
    view = code.view(*code.shape, *([1] * (like.dim() - 2)))
    return view.expand(-1, -1, *like.shape[2:])


class ConditionalInstanceNorm(nn.Module):
    """Conditional instance normalisation (StarGAN-VC2 Sec. 3.2): ``gamma(c) * IN(x) + beta(c)``.

    ``gamma`` and ``beta`` ``(B, C)`` are a learned linear map of the speaker code ``c`` ``(B, K)`` (one-hot
    source and target codes concatenated, or the target code alone). Initialised so that ``gamma`` is about 1
    and ``beta`` about 0: small random weights (so the block conditions from the first step), bias (1, 0).
    """

    def __init__(self, num_features: int, code_dim: int, *, eps: float = 1e-5) -> None:
        super().__init__()
        self.eps = eps
        self.affine = nn.Linear(code_dim, 2 * num_features)
        nn.init.normal_(self.affine.weight, std=0.02)
        with torch.no_grad():
            self.affine.bias[:num_features].fill_(1.0)
            self.affine.bias[num_features:].zero_()

    def forward(self, x: Tensor, code: Tensor) -> Tensor:
        """``x`` ``(B, C, *)``, ``code`` ``(B, K)`` -> ``(B, C, *)``."""
        gamma, beta = self.affine(code).chunk(2, dim=1)
        h = instance_norm(x, self.eps)
        return torch.addcmul(broadcast_code(beta, x), h, broadcast_code(gamma, x))


class PixelShuffle1d(nn.Module):
    """1-D pixel shuffle: ``(B, C * r, T)`` -> ``(B, C, T * r)``; channel ``c * r + i`` to frame ``t * r + i``
    of channel ``c``.

    The same channel-to-position order as :class:`torch.nn.PixelShuffle` on one axis.
    """

    def __init__(self, factor: int) -> None:
        super().__init__()
        self.factor = factor

    def forward(self, x: Tensor) -> Tensor:
        b, c, t = x.shape
        r = self.factor
        return x.view(b, c // r, r, t).transpose(2, 3).reshape(b, c // r, t * r)


class PixelShuffle2d(nn.Module):
    """2-D pixel shuffle: ``(B, C * r * r, H, W)`` -> ``(B, C, H * r, W * r)``, the result of
    :class:`torch.nn.PixelShuffle` (channel ``c * r * r + i * r + j`` to position ``(h * r + i, w * r + j)``).

    One permuted copy, which on the CPU moves bfloat16 maps several times faster than ``nn.PixelShuffle``'s
    kernel (0.8 against 2.0 ms at 16 x 64 x 18 x 64, one thread).
    """

    def __init__(self, factor: int) -> None:
        super().__init__()
        self.factor = factor

    def forward(self, x: Tensor) -> Tensor:
        b, c, h, w = x.shape
        r = self.factor
        out = c // (r * r)
        return x.view(b, out, r, r, h, w).permute(0, 1, 4, 2, 5, 3).reshape(b, out, h * r, w * r)


def _in_bfloat16(x: Tensor) -> bool:
    """Whether a CPU convolution of ``x`` runs in bfloat16: a bf16 input, or bf16 autocast on."""
    autocast = torch.is_autocast_enabled("cpu") and torch.get_autocast_dtype("cpu") == torch.bfloat16
    return x.dtype == torch.bfloat16 or autocast


@functools.cache
def has_amx_tiles() -> bool:
    """Whether this CPU multiplies bfloat16 on AMX tiles (Intel Xeon since Sapphire Rapids), as torch says."""
    return bool(getattr(torch.cpu, "_is_amx_tile_supported", lambda: False)())


class ThinConv2d(nn.Conv2d):
    """A stride-1 'same' 2-D convolution to a few channels (the generator's output layer, to 1 channel with
    kernel 5x15), for which oneDNN's AVX-512 kernels are slow on the CPU; elsewhere a plain convolution.

    The parameters and the result are those of :class:`torch.nn.Conv2d` (up to float rounding). On the CPU
    it takes one of three routes (one core, batch 16 x C x 36 x 128, bf16 autocast, forward / forward and
    backward in ms):

    - in bfloat16 (autocast or bf16 input) on a CPU with AMX tiles, the plain convolution in bfloat16, which
      oneDNN runs on the tiles (C = 8: 8.0 ms forward and backward, against 19.5 for the FFT route);
    - otherwise, up to :attr:`FFT_MAX_CHANNELS` input channels, real FFTs in fp32 (measured on a CPU without
      AMX tiles, where the plain convolution was 12 / 72 at C = 8: 8.9 / 29.6 against 32.1 / 58.0 for the
      overlap-add route, on a loaded machine; in fp32 the FFTs are faster with AMX tiles too);
    - wider, a 1x1 convolution to one map per output channel and kernel tap, then an overlap-add
      (:func:`torch.nn.functional.fold`) (C = 64: 26.9 / 73.9 against 69.3 / 297.7 for FFTs).

    So on a CPU with AMX tiles a bf16-autocast training computes this layer in bfloat16 like every other
    convolution, and elsewhere in fp32: one of the ways a run's numbers depend on the CPU type.
    """

    FFT_MAX_CHANNELS = 16

    def forward(self, x: Tensor) -> Tensor:
        """``(B, C, H, W)`` -> ``(B, O, H, W)``."""
        if x.device.type != "cpu" or (_in_bfloat16(x) and has_amx_tiles()):
            return super().forward(x)
        y = self._fft(x) if x.shape[1] <= self.FFT_MAX_CHANNELS else self._fold(x)
        return y if self.bias is None else y + self.bias.view(1, -1, 1, 1)

    def _fft(self, x: Tensor) -> Tensor:
        _, _, h, w = x.shape
        kh, kw = self.weight.shape[2:]
        ph, pw = self.padding
        size = (h + kh - 1, w + kw - 1)  # linear (not circular) convolution
        with torch.autocast("cpu", enabled=False):
            spectrum = torch.fft.rfft2(x.float(), s=size)  # (B, C, H', W'/2 + 1)
            kernel = torch.fft.rfft2(self.weight.float().flip(2, 3), s=size)  # (O, C, H', W'/2 + 1)
            full = torch.fft.irfft2(torch.einsum("bchw,ochw->bohw", spectrum, kernel), s=size)
        return full[:, :, kh - 1 - ph : kh - 1 - ph + h, kw - 1 - pw : kw - 1 - pw + w]

    def _fold(self, x: Tensor) -> Tensor:
        out, _, kh, kw = self.weight.shape
        # fold adds block (o, i, j) at offset (i, j) - padding: flip the taps to correlate, not convolve
        taps = self.weight.flip(2, 3).permute(0, 2, 3, 1).reshape(out * kh * kw, -1, 1, 1)
        cols = F.conv2d(x, taps).flatten(2)  # (B, O * kh * kw, H * W)
        return F.fold(cols, x.shape[2:], (kh, kw), padding=self.padding)


class CodeConcatConv(nn.Module):
    """A 'same'-padded convolution whose input may carry ``cond_channels`` extra constant code channels.

    With ``cond_channels > 0`` (StarGAN-VC1's conditioning) the code ``(B, cond_channels)`` is broadcast over
    the input's spatial axes and concatenated to its channels before the convolution. A 2-D convolution to a
    single channel is a :class:`ThinConv2d`.
    """

    def __init__(
        self,
        nd: int,
        in_channels: int,
        out_channels: int,
        kernel: Kernel,
        stride: Kernel = 1,
        *,
        cond_channels: int = 0,
    ) -> None:
        super().__init__()
        kernel = _as_tuple(kernel, nd)
        stride = _as_tuple(stride, nd)
        conv_cls: type[nn.Conv1d | nn.Conv2d] = nn.Conv1d
        if nd == 2:
            thin = out_channels == 1 and stride == (1, 1) and all(k % 2 for k in kernel)
            conv_cls = ThinConv2d if thin else nn.Conv2d
        self.cond_channels = cond_channels
        self.conv = conv_cls(
            in_channels + cond_channels,
            out_channels,
            kernel,
            stride=stride,
            padding=tuple(k // 2 for k in kernel),
        )

    def forward(self, x: Tensor, code: Tensor | None = None) -> Tensor:
        if self.cond_channels:
            if code is None:
                raise ValueError("this convolution is conditioned; pass the speaker code")
            x = torch.cat([x, broadcast_code(code, x)], dim=1)
        return self.conv(x)


class ConvBlock(nn.Module):
    """Convolution -> [pixel shuffle] -> [instance norm] -> [GLU].

    With ``glu`` the convolution produces ``2 * out_channels`` (times ``shuffle ** nd`` before a pixel
    shuffle) and :func:`torch.nn.functional.glu` halves them: both GLU halves come from one convolution.
    With ``self_gate`` the convolution produces ``out_channels`` (times ``shuffle ** nd``) and the gate is
    ``h * sigmoid(h)``, which keeps the width (the reading of StarGAN-VC2's Fig. 2 in common
    reimplementations); ``glu`` is then ignored.
    """

    def __init__(
        self,
        nd: int,
        in_channels: int,
        out_channels: int,
        kernel: Kernel,
        stride: Kernel = 1,
        *,
        norm: bool = True,
        glu: bool = True,
        shuffle: int = 1,
        cond_channels: int = 0,
        self_gate: bool = False,
    ) -> None:
        super().__init__()
        self.self_gate = self_gate
        glu = glu and not self_gate
        width = 2 * out_channels if glu else out_channels
        self.conv = CodeConcatConv(
            nd, in_channels, width * shuffle**nd, kernel, stride, cond_channels=cond_channels
        )
        self.shuffle: nn.Module | None = None
        if shuffle > 1:
            self.shuffle = PixelShuffle2d(shuffle) if nd == 2 else PixelShuffle1d(shuffle)
        self.norm = InstanceNorm(width) if norm else None
        self.glu = glu

    def forward(self, x: Tensor, code: Tensor | None = None) -> Tensor:
        h = self.conv(x, code)
        if self.shuffle is not None:
            h = self.shuffle(h)
        if self.norm is not None:
            h = self.norm(h)
        if self.self_gate:
            return h * torch.sigmoid(h)
        return F.glu(h, dim=1) if self.glu else h


class ResidualBlock(nn.Module):
    """``x + GLU(norm(conv(x)))`` at width ``channels`` (StarGAN-VC2 Fig. 2, the 1-D residual blocks).

    The convolution produces ``2 * channels``; the norm is conditional instance norm when ``cin_dim > 0``
    (StarGAN-VC2), plain affine instance norm otherwise (StarGAN-VC1, which conditions via ``cond_channels``).
    """

    def __init__(
        self, nd: int, channels: int, kernel: Kernel, *, cin_dim: int = 0, cond_channels: int = 0
    ) -> None:
        super().__init__()
        self.conv = CodeConcatConv(nd, channels, 2 * channels, kernel, cond_channels=cond_channels)
        self.norm: nn.Module = (
            ConditionalInstanceNorm(2 * channels, cin_dim) if cin_dim else InstanceNorm(2 * channels)
        )
        self.conditional = cin_dim > 0

    def forward(self, x: Tensor, code: Tensor | None = None) -> Tensor:
        h = self.conv(x, code)
        h = self.norm(h, code) if self.conditional else self.norm(h)
        return x + F.glu(h, dim=1)
