"""The StarGAN-VC2 generator and its ablations (topology and conditioning).

Kaneko et al., "StarGAN-VC2: Rethinking conditional methods for StarGAN-based voice conversion",
Interspeech 2019. Sec. 3.3 and Fig. 2 describe the 2-1-2D generator; the ``2d`` and ``1d`` topologies and
the ``concat`` conditioning are the paper's comparison points (Sec. 4.2, Table 1).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from vc.stargan.layers import CodeConcatConv, ConvBlock, ResidualBlock, pad_to_multiple

__all__ = ["CONDITIONINGS", "TOPOLOGIES", "UPSAMPLINGS", "Generator"]

TOPOLOGIES = ("2-1-2d", "2d", "1d")
CONDITIONINGS = ("cin_source_target", "cin_target", "concat")
UPSAMPLINGS = ("halve", "keep")
_STRIDE = 4  # two stride-2 downsamplings: time (and frequency in 2-D) is padded to a multiple of 4


class Generator(nn.Module):
    """Maps source features to a target speaker's: ``(B, D, T)``, ``src``, ``tgt`` -> ``(B, D, T)``.

    ``topology``: ``2-1-2d`` (StarGAN-VC2: 2-D down/upsampling around 1-D residual blocks), ``2d`` (2-D
    residual blocks at the downsampled resolution, kernel 3x3) or ``1d`` (CycleGAN-VC-style: the D
    coefficients are the input channels of 1-D convolutions over time). ``conditioning``:
    ``cin_source_target`` (StarGAN-VC2: conditional instance norm from the source and target codes),
    ``cin_target`` (from the target code only) or ``concat`` (StarGAN-VC1: the target one-hot code as
    constant extra channels on the input of every convolution, plain instance norm).

    Every keyword argument is required: they are the fields of :class:`vc.config.GeneratorConfig`, whose
    defaults are the only ones (:func:`vc.stargan.networks.build_generator` maps the section onto them).

    Widths: the input convolution yields ``channels``, downsampling blocks ``2 * channels``, residual blocks
    ``res_channels`` (``None``: ``2 * channels``; twice that before the residual GLU). ``upsampling`` is the
    reading of Fig. 2's upsampling blocks (conv 1024 -> pixel shuffle 256 -> GLU at ``channels = 128``):
    ``halve`` (a channel-halving GLU: the blocks yield ``channels`` and ``channels // 2``, i.e. 128 and 64)
    or ``keep`` (the gate ``h * sigmoid(h)`` keeps the shuffled width: ``2 * channels`` and ``channels``,
    256 and 128, as common public reimplementations build it).
    A small ``channels`` keeps the 2-D convolutions cheap on a CPU, while ``res_channels`` keeps the 1-D
    bottleneck (``2 * channels * D / 4`` values per frame squeezed into it) wide enough to carry the spectrum.
    ``res_kernel`` is the kernel of the 1-D residual convolutions (``2-1-2d`` and ``1d``).
    Any ``D`` and ``T`` work (``T >= 5`` in training, where instance norm needs two frames after the 4x
    downsampling): inputs are replicate-padded to a multiple of 4 and the output is cropped back.
    """

    def __init__(
        self,
        num_speakers: int,
        feature_dim: int,
        *,
        topology: str,
        conditioning: str,
        channels: int,
        res_blocks: int,
        res_kernel: int,
        res_channels: int | None,
        upsampling: str,
    ) -> None:
        super().__init__()
        if topology not in TOPOLOGIES:
            raise ValueError(f"unknown generator topology '{topology}' (expected one of {TOPOLOGIES})")
        if upsampling not in UPSAMPLINGS:
            raise ValueError(f"unknown upsampling '{upsampling}' (expected one of {UPSAMPLINGS})")
        if conditioning not in CONDITIONINGS:
            raise ValueError(f"unknown conditioning '{conditioning}' (expected one of {CONDITIONINGS})")
        if num_speakers < 1 or feature_dim < 1:
            raise ValueError("num_speakers and feature_dim must be positive")
        self.num_speakers = num_speakers
        self.feature_dim = feature_dim
        self.topology = topology
        self.conditioning = conditioning

        n, c = num_speakers, channels
        wide, half = 2 * c, max(c // 2, 1)
        rc = res_channels or wide  # residual width (the paper: 2 * channels)
        cat = n if conditioning == "concat" else 0  # extra code channels on every conv input
        cin_dim = {"cin_source_target": 2 * n, "cin_target": n, "concat": 0}[conditioning]
        nd = 1 if topology == "1d" else 2
        io_kernel = (15,) if nd == 1 else (5, 15)
        kernel = (5,) * nd
        io_channels = feature_dim if nd == 1 else 1

        # Fig. 2: input conv with GLU; two downsampling blocks (stride 2, IN, GLU).
        self.input = ConvBlock(nd, io_channels, c, io_kernel, norm=False, cond_channels=cat)
        self.down = nn.ModuleList(
            [
                ConvBlock(nd, c, wide, kernel, 2, cond_channels=cat),
                ConvBlock(nd, wide, wide, kernel, 2, cond_channels=cat),
            ]
        )
        # Fig. 2: 2D -> 1D reshape, 1x1 conv + IN; 1D -> 2D: 1x1 conv + IN, reshape.
        self.freq = -(-feature_dim // _STRIDE)  # padded feature axis after two stride-2 blocks
        self.to_1d: ConvBlock | None = None
        self.to_2d: ConvBlock | None = None
        res_nd, res_k = (2, (3, 3)) if topology == "2d" else (1, (res_kernel,))
        if topology == "2-1-2d":
            flat = wide * self.freq
            self.to_1d = ConvBlock(1, flat, rc, 1, glu=False, cond_channels=cat)
            self.to_2d = ConvBlock(1, rc, flat, 1, glu=False, cond_channels=cat)
        elif rc != wide:  # 1x1 projections in and out of a residual stack of another width
            self.to_1d = ConvBlock(res_nd, wide, rc, 1, glu=False, cond_channels=cat)
            self.to_2d = ConvBlock(res_nd, rc, wide, 1, glu=False, cond_channels=cat)
        self.res = nn.ModuleList(
            [ResidualBlock(res_nd, rc, res_k, cin_dim=cin_dim, cond_channels=cat) for _ in range(res_blocks)]
        )
        # Fig. 2: upsampling = conv, pixel shuffle, IN, gate. At channels=128, halve: 1024 -> 256 -> 128, then
        # 512 -> 128 -> 64; keep: 1024 -> 256 -> 256, then 512 -> 128 -> 128.
        keep = upsampling == "keep"
        up1, up2 = (wide, c) if keep else (c, half)
        self.up = nn.ModuleList(
            [
                ConvBlock(nd, wide, up1, kernel, shuffle=2, cond_channels=cat, self_gate=keep),
                ConvBlock(nd, up1, up2, kernel, shuffle=2, cond_channels=cat, self_gate=keep),
            ]
        )
        self.output = CodeConcatConv(nd, up2, io_channels, io_kernel, cond_channels=cat)

    def speaker_code(self, src: Tensor, tgt: Tensor, dtype: torch.dtype) -> Tensor:
        """The conditioning code ``(B, K)``: one-hot ``[src, tgt]`` (K = 2N) or one-hot ``tgt`` (K = N)."""
        tgt_code = F.one_hot(tgt, self.num_speakers).to(dtype)
        if self.conditioning == "cin_source_target":
            return torch.cat([F.one_hot(src, self.num_speakers).to(dtype), tgt_code], dim=1)
        return tgt_code

    def forward(self, x: Tensor, src: Tensor, tgt: Tensor) -> Tensor:
        """``x`` ``(B, D, T)`` normalised features, ``src``/``tgt`` ``(B,)`` long -> ``(B, D, T)``."""
        if x.dim() != 3 or x.shape[1] != self.feature_dim:
            raise ValueError(f"expected features (B, {self.feature_dim}, T), got {tuple(x.shape)}")
        _, dim, frames = x.shape
        code = self.speaker_code(src, tgt, x.dtype)
        if self.topology == "1d":
            h = pad_to_multiple(x, _STRIDE, dims=1)  # (B, D, T')
        else:
            h = pad_to_multiple(x.unsqueeze(1), _STRIDE, dims=2)  # (B, 1, D', T')
        h = self.input(h, code)
        for block in self.down:
            h = block(h, code)
        if self.topology == "2-1-2d":
            b, c, f, t = h.shape  # (B, 2C, D'/4, T'/4) -> (B, 2C * D'/4, T'/4) -> (B, R, T'/4)
            h = self.to_1d(h.reshape(b, c * f, t), code)
            for block in self.res:
                h = block(h, code)
            h = self.to_2d(h, code).reshape(b, c, f, t)
        else:
            if self.to_1d is not None:
                h = self.to_1d(h, code)
            for block in self.res:
                h = block(h, code)
            if self.to_2d is not None:
                h = self.to_2d(h, code)
        for block in self.up:
            h = block(h, code)
        y = self.output(h, code)
        if self.topology == "1d":
            return y[..., :frames]
        return y[:, 0, :dim, :frames]
