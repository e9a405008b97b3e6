"""The final model folder: everything conversion needs, and nothing else.

``<folder>/generator.pt``
    the generator's ``state_dict`` (loaded with ``weights_only=True`` and ``strict=True``);
``<folder>/config.json``
    the resolved experiment config, the feature config, the number of speakers, feature dim, package version;
``<folder>/stats.json``
    the scaler, per-speaker log-F0 statistics and the speaker list (:class:`vc.features.stats.FeatureStats`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

import vc
from vc.config import ExperimentConfig, FeaturesConfig
from vc.configlib import build, to_dict
from vc.errors import InputError
from vc.features.stats import FeatureStats, StatsError
from vc.io import atomic_dir, write_json
from vc.stargan.networks import Generator, build_generator

__all__ = ["ModelLoadError", "TrainedModel", "generator_spectra", "load_model", "save_model"]


class ModelLoadError(InputError):
    """A model folder is missing a file or does not match its config; the message names the path."""


@torch.no_grad()
def generator_spectra(
    generator: torch.nn.Module, stats: FeatureStats, x: np.ndarray, source: str, target: str
) -> np.ndarray:
    """``generator``'s conversion of one utterance's frames ``x`` ``(T, D)`` from ``source`` to ``target``:
    normalised with ``stats``, converted in fp32 on the generator's device without gradients (put it in eval
    mode first), de-normalised. Returns ``(T, D)`` float64.

    Raises:
        StatsError: an unknown speaker, ``source == target``, or frames of another dimension.
    """
    s, t = stats.index(source), stats.index(target)  # StatsError names unknown speakers
    if s == t:
        raise StatsError(f"target speaker equals source speaker ('{source}'); conversion needs two speakers")
    if x.ndim != 2 or x.shape[1] != stats.dim:
        raise StatsError(f"features of shape {tuple(x.shape)}, the model expects (frames, {stats.dim})")
    device = next(generator.parameters()).device
    z = torch.from_numpy(stats.normalize(x, source).T.astype(np.float32))[None].to(device)
    codes = (torch.tensor([s], device=device), torch.tensor([t], device=device))
    y = generator(z, *codes)[0].T.double().cpu().numpy()  # (T, D)
    return stats.denormalize(y, target)


@dataclass
class TrainedModel:
    generator: Generator  # in eval mode
    stats: FeatureStats
    experiment: ExperimentConfig
    features: FeaturesConfig
    info: dict[str, Any]

    @property
    def speakers(self) -> list[str]:
        return self.stats.speakers


def save_model(
    folder: str | Path,
    generator: torch.nn.Module,
    experiment: ExperimentConfig,
    features: FeaturesConfig,
    stats: FeatureStats,
    info: dict[str, Any] | None = None,
) -> None:
    """Write the model folder atomically (replacing any previous one)."""
    with atomic_dir(folder) as tmp:
        torch.save({k: v.detach().cpu() for k, v in generator.state_dict().items()}, tmp / "generator.pt")
        stats.save(tmp / "stats.json")
        write_json(
            tmp / "config.json",
            {
                "vc_version": vc.__version__,
                "num_speakers": len(stats.speakers),
                "feature_dim": stats.dim,
                "experiment": to_dict(experiment),
                "features": to_dict(features),
                "info": info or {},
            },
        )


def load_model(folder: str | Path, device: str | torch.device = "cpu") -> TrainedModel:
    """Load a model folder written by :func:`save_model`."""
    folder = Path(folder)
    for name in ("generator.pt", "config.json", "stats.json"):
        if not (folder / name).is_file():
            raise ModelLoadError(f"{folder}: not a model folder (missing {name})")
    config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    experiment = build(ExperimentConfig, config["experiment"])
    features = build(FeaturesConfig, config["features"])
    stats = FeatureStats.load(folder / "stats.json")
    generator = build_generator(config["num_speakers"], config["feature_dim"], experiment.model.generator)
    state = torch.load(folder / "generator.pt", map_location="cpu", weights_only=True)
    try:
        generator.load_state_dict(state, strict=True)
    except RuntimeError as err:
        raise ModelLoadError(f"{folder / 'generator.pt'}: weights do not match config.json ({err})") from None
    generator.to(device).eval()
    return TrainedModel(generator, stats, experiment, features, config.get("info", {}))
