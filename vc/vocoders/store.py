"""Where the vocoder conversion uses is recorded: the ``vocoder`` stage's output folder.

The folder always holds ``vocoder.json``. After fine-tuning it says ``finetuned: true`` and names
``generator.pt`` (``{"generator": state_dict}`` with the weight norm in place, the original HiFi-GAN format,
loadable by :func:`vc.vocoders.hifigan.load_pretrained` with ``strict=True``); without fine-tuning it says
``finetuned: false`` and conversion uses the configured pretrained checkpoint. :func:`resolve_vocoder`
turns the folder into the :class:`vc.config.VocoderConfig` that conversion and the mel baselines use.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vc.config import VocoderConfig
from vc.errors import InputError
from vc.io import atomic_path, write_json

if TYPE_CHECKING:
    from torch import nn

__all__ = [
    "FINETUNED_FILE",
    "MANIFEST_FILE",
    "resolve_vocoder",
    "save_finetuned",
    "write_pretrained_manifest",
]

FINETUNED_FILE = "generator.pt"
MANIFEST_FILE = "vocoder.json"


def save_finetuned(folder: str | Path, generator: nn.Module, info: dict[str, Any]) -> None:
    """Write ``folder/generator.pt`` (``{"generator": state_dict}``, weight norm kept, the original format)
    and ``folder/vocoder.json`` (``info`` with ``finetuned: true``), each atomically."""
    import torch  # here, so that reading a manifest (the report stage) does not load torch

    folder = Path(folder)
    with atomic_path(folder / FINETUNED_FILE) as tmp:
        torch.save({"generator": {k: v.cpu() for k, v in generator.state_dict().items()}}, tmp)
    write_json(folder / MANIFEST_FILE, {"finetuned": True, "file": FINETUNED_FILE, **info})


def write_pretrained_manifest(folder: str | Path, info: dict[str, Any]) -> None:
    """``folder/vocoder.json`` saying that conversion uses the pretrained generator (no fine-tuning), and
    no ``generator.pt``. ``info`` must be machine-independent (no absolute paths), so that the same inputs
    give the same bytes and DVC does not re-run conversions."""
    folder = Path(folder)
    (folder / FINETUNED_FILE).unlink(missing_ok=True)
    write_json(folder / MANIFEST_FILE, {"finetuned": False, **info})


def resolve_vocoder(cfg: VocoderConfig, folder: str | Path) -> VocoderConfig:
    """The vocoder configuration conversion uses, given the ``vocoder`` stage's output ``folder``: ``cfg``
    with ``checkpoint`` pointing at the fine-tuned generator when the stage fine-tuned one, else ``cfg``.

    Raises :class:`vc.errors.InputError` naming the file when the folder has no readable manifest or names
    a generator file that is missing.
    """
    folder = Path(folder)
    manifest = folder / MANIFEST_FILE
    try:
        info = json.loads(manifest.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(f"{manifest}: no vocoder manifest (run the `vocoder` stage first)") from None
    except (OSError, json.JSONDecodeError) as err:
        raise InputError(f"{manifest}: not a readable vocoder manifest ({err})") from None
    if not info.get("finetuned"):
        return cfg
    checkpoint = folder / info.get("file", FINETUNED_FILE)
    if not checkpoint.is_file():
        raise InputError(f"{manifest}: names a fine-tuned generator {checkpoint}, which is missing")
    if info.get("generator") not in (None, cfg.generator):
        raise InputError(
            f"{manifest}: the generator was fine-tuned as HiFi-GAN '{info['generator']}', "
            f"but vocoder.generator is '{cfg.generator}'"
        )
    return cfg.model_copy(update={"checkpoint": str(checkpoint)})
