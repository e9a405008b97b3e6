"""Whisper's audio encoder in PyTorch, built from a CTranslate2 model folder's own weights.

faster-whisper pads every clip to Whisper's 30 s window, so each transcript pays one encoder pass over
3,000 mel frames whatever the clip's length; for tiny.en that pass is most of an utterance's ASR cost.
CTranslate2 has no bfloat16 on the CPU. This module reads the encoder's weights from the model's
``model.bin`` (the same file CTranslate2 loads), runs the encoder in PyTorch, where bfloat16 matrix products
use AMX tiles or AVX-512 BF16, and hands the encoder's output to CTranslate2, which decodes from it as
from its own (``Whisper.generate`` accepts encoder output). Decoding, the tokenizer, the beam search and
every option are faster-whisper's, unchanged.

The encoder (Radford et al. 2022, Whisper, Sec. 2.2): two 3-tap convolutions with GELU (the second with
stride 2: 3,000 frames -> 1,500 positions), the learned or sinusoidal position table added, pre-norm
Transformer layers (self-attention with the query, key and value projections fused in one matrix, then a
GELU MLP), a final layer norm: ``(B, n_mels, 3000)`` -> ``(B, 1500, d_model)``.

Precisions (``evaluate.asr.encoder``; see the README's "Perceptual metrics" for the measured effect on CER):

- ``torch-f32``: float32 throughout; equals CTranslate2's float32 encoder to about 1e-5 (relative).
- ``torch-bf16``: the convolutions, the projections and the attention in bfloat16 (autocast); the residual
  stream and the layer norms in float32. Keeping the attention in float32 as well cost 1.5x the encoder's
  time and brought the transcripts no nearer float32's (README).
"""

from __future__ import annotations

import functools
import math
import struct
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from vc.errors import InputError

__all__ = [
    "EncoderPrecision",
    "ModelFileError",
    "WhisperEncoder",
    "load_encoder",
    "read_ctranslate2_variables",
]

EncoderPrecision = Literal["f32", "bf16"]

#: ``model.bin`` layouts this reader knows (CTranslate2's ``CURRENT_BINARY_VERSION`` 5 and 6).
_BINARY_VERSIONS = (5, 6)
#: CTranslate2's data type ids (``include/ctranslate2/types.h``) -> numpy; bfloat16 is read as its raw bits.
_DTYPES: dict[int, Any] = {0: np.float32, 1: np.int8, 2: np.int16, 3: np.int32, 4: np.float16, 5: np.uint16}


class ModelFileError(InputError):
    """A CTranslate2 ``model.bin`` that is not a readable Whisper model with float encoder weights."""


def read_ctranslate2_variables(path: str | Path, prefix: str = "") -> dict[str, np.ndarray]:
    """The variables of a CTranslate2 ``model.bin`` whose names start with ``prefix``, as numpy arrays.

    The file is: uint32 binary version, the spec's name, uint32 revision, uint32 variable count, then per
    variable its name, uint8 rank, uint32 dimensions, uint8 type id, uint32 byte count and the bytes (strings
    are a uint16 length counting a trailing NUL). bfloat16 arrays come back as float32.

    Raises:
        ModelFileError: naming the file, when it is missing, truncated, of an unknown version or not Whisper.
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as err:
        raise ModelFileError(f"{path}: cannot read the CTranslate2 model ({err.strerror})") from None
    offset = 0

    def take(fmt: str) -> int:
        nonlocal offset
        (value,) = struct.unpack_from(fmt, data, offset)
        offset += struct.calcsize(fmt)
        return value

    def text() -> str:
        nonlocal offset
        size = take("H")
        value = data[offset : offset + size - 1].decode("utf-8")
        offset += size
        return value

    out: dict[str, np.ndarray] = {}
    try:
        version = take("I")
        if version not in _BINARY_VERSIONS:
            raise ModelFileError(f"{path}: CTranslate2 binary version {version}, this reader knows 5 and 6")
        spec = text()
        if spec != "WhisperSpec":
            raise ModelFileError(f"{path}: a {spec!r} model, not a Whisper model")
        take("I")  # the spec's revision
        for _ in range(take("I")):
            name = text()
            shape = tuple(take("I") for _ in range(take("B")))
            type_id, size = take("B"), take("I")
            if name.startswith(prefix):
                if type_id not in _DTYPES:
                    raise ModelFileError(f"{path}: variable {name!r} has unknown type id {type_id}")
                dtype = np.dtype(_DTYPES[type_id])
                array = np.frombuffer(data, dtype, size // dtype.itemsize, offset).reshape(shape)
                if type_id == 5:  # bfloat16: the high half of a float32
                    array = (array.astype(np.uint32) << 16).view(np.float32)
                out[name] = array
            offset += size
    except (struct.error, ValueError, UnicodeDecodeError) as err:
        raise ModelFileError(f"{path}: truncated or corrupt CTranslate2 model ({err})") from None
    return out


class WhisperEncoder(nn.Module):
    """Whisper's encoder: log-mel ``(B, n_mels, 2 * P)`` -> ``(B, P, d_model)``, ``P`` at most the position
    table's length (1,500: 30 s).

    Built from CTranslate2's variable names (``encoder/conv1/weight``, ``encoder/layer_0/self_attention/
    linear_0/weight``, ...); the weights are kept in float32 (``model.bin`` stores them in float16 or
    float32). ``precision`` ``bf16`` runs the convolutions, the linear layers and the attention under
    bfloat16 autocast; the residual stream and the layer norms stay in float32.
    """

    def __init__(self, variables: dict[str, np.ndarray], precision: EncoderPrecision = "bf16") -> None:
        super().__init__()
        if precision not in ("f32", "bf16"):
            raise ValueError(f"precision must be 'f32' or 'bf16', got {precision!r}")
        self.precision = precision
        weights = {k.removeprefix("encoder/"): v for k, v in variables.items() if k.startswith("encoder/")}
        quantized = sorted(k for k, v in weights.items() if v.dtype == np.int8)
        if quantized:
            raise ModelFileError(
                f"the encoder's weights are int8 ({quantized[0]}, ...): convert the model with float16 or "
                "float32 weights, or set evaluate.asr.encoder: ctranslate2"
            )
        self.heads = int(weights.pop("num_heads", np.array(0)))
        self.layers = sum(1 for k in weights if k.endswith("self_attention/linear_0/weight"))
        if not self.heads or not self.layers or "conv1/weight" not in weights:
            raise ModelFileError("no Whisper encoder weights (encoder/conv1, encoder/layer_*, num_heads)")
        tensors = {k.replace("/", "__"): torch.tensor(v, dtype=torch.float32) for k, v in weights.items()}
        self.params = nn.ParameterDict({k: nn.Parameter(t) for k, t in tensors.items()})  # no "/" in keys
        self.requires_grad_(False)
        self.n_mels = int(weights["conv1/weight"].shape[1])
        self.d_model = int(weights["conv1/weight"].shape[0])

    def _w(self, name: str) -> Tensor:
        return self.params[name.replace("/", "__")]

    def _linear(self, x: Tensor, name: str) -> Tensor:
        return F.linear(x, self._w(f"{name}/weight"), self._w(f"{name}/bias"))

    def _norm(self, x: Tensor, name: str) -> Tensor:
        return F.layer_norm(x.float(), (self.d_model,), self._w(f"{name}/gamma"), self._w(f"{name}/beta"))

    @torch.inference_mode()
    def forward(self, mel: Tensor) -> Tensor:
        """``(B, n_mels, T)`` float32 -> ``(B, T // 2, d_model)`` float32."""
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.precision == "bf16"):
            x = F.gelu(F.conv1d(mel, self._w("conv1/weight"), self._w("conv1/bias"), padding=1))
            x = F.gelu(F.conv1d(x, self._w("conv2/weight"), self._w("conv2/bias"), stride=2, padding=1))
            x = x.transpose(1, 2).float() + self._w("position_encodings/encodings")[: x.shape[2]]
            batch, length, width = x.shape
            head = width // self.heads
            for i in range(self.layers):
                layer = f"layer_{i}"
                y = self._norm(x, f"{layer}/self_attention/layer_norm")
                qkv = self._linear(y, f"{layer}/self_attention/linear_0")
                q, k, v = (z.view(batch, length, self.heads, head).transpose(1, 2) for z in qkv.chunk(3, -1))
                a = F.scaled_dot_product_attention(q, k, v, scale=1 / math.sqrt(head))
                a = a.transpose(1, 2).reshape(batch, length, width)
                x = x + self._linear(a, f"{layer}/self_attention/linear_1").float()
                y = self._norm(x, f"{layer}/ffn/layer_norm")
                y = self._linear(F.gelu(self._linear(y, f"{layer}/ffn/linear_0")), f"{layer}/ffn/linear_1")
                x = x + y.float()
            return self._norm(x, "layer_norm")


@functools.lru_cache(maxsize=2)
def load_encoder(model_dir: str, precision: EncoderPrecision = "bf16") -> WhisperEncoder:
    """The encoder of the CTranslate2 Whisper model in ``model_dir``, loaded once per process."""
    path = Path(model_dir) / "model.bin"
    try:
        return WhisperEncoder(read_ctranslate2_variables(path, "encoder/"), precision).eval()
    except ModelFileError as err:
        if str(path) in str(err):
            raise
        raise ModelFileError(f"{path}: {err}") from None
