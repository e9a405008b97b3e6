"""Training batches: random crops of normalised features, random source and a different random target.

The training set lives in memory (a few hundred MB even for VCTK-sized corpora of mel-cepstra). Sampling is
keyed by ``(seed, rank, step, substep)`` rather than by a running generator, so a resumed run draws exactly
the batches an uninterrupted one would, on every rank, with no random state to save.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

import numpy as np
import torch

from vc.errors import InputError
from vc.features.stats import FeatureStats
from vc.features.world import WorldFeatures
from vc.stargan.objective import Batch

__all__ = ["CropError", "FeatureBank"]

log = logging.getLogger(__name__)


class CropError(InputError):
    """The training crop is longer than the usable utterances; the message names the speaker and lengths."""


class FeatureBank:
    """Per speaker, the normalised training features as float32 tensors ``(D, T_i)``, all ``T_i >= crop``.

    Speaker ``i`` of ``speakers`` is the model's code ``i``.
    """

    def __init__(
        self, features: Mapping[str, Sequence[np.ndarray]], speakers: Sequence[str], crop_frames: int
    ):
        self.speakers = list(speakers)
        self.crop_frames = crop_frames
        self.utterances: list[list[torch.Tensor]] = []
        for spk in self.speakers:
            feats = features.get(spk, [])
            if not feats:
                raise CropError(f"speaker '{spk}' has no training features")
            longest = max(f.shape[0] for f in feats)
            usable = [
                torch.from_numpy(np.ascontiguousarray(f.T, dtype=np.float32))
                for f in feats
                if f.shape[0] >= crop_frames
            ]
            if not usable:
                raise CropError(
                    f"train.crop_frames = {crop_frames} is longer than every training utterance of speaker "
                    f"'{spk}' (longest: {longest} frames)"
                )
            if len(usable) < len(feats):
                log.warning(
                    "speaker '%s': %d of %d utterances are shorter than the %d-frame crop and unused",
                    spk,
                    len(feats) - len(usable),
                    len(feats),
                    crop_frames,
                )
            self.utterances.append(usable)
        self.dim = int(self.utterances[0][0].shape[0])

    @classmethod
    def from_matrices(
        cls, train: Mapping[str, Sequence[np.ndarray]], stats: FeatureStats, crop_frames: int
    ) -> FeatureBank:
        """Normalise ``{speaker: [(T, D) features]}`` (WORLD or log-mel, matching ``stats``) with ``stats``;
        codes follow ``stats.speakers``."""
        missing = [s for s in stats.speakers if s not in train]
        if missing:
            raise CropError(
                f"no training features for speaker(s) {', '.join(missing)} of the statistics file"
            )
        normalised = {spk: [stats.normalize(m, spk) for m in train[spk]] for spk in stats.speakers}
        return cls(normalised, stats.speakers, crop_frames)

    @classmethod
    def from_features(
        cls, train: Mapping[str, Sequence[WorldFeatures]], stats: FeatureStats, crop_frames: int
    ) -> FeatureBank:
        """:meth:`from_matrices` of the WORLD spectral features of ``{speaker: [WorldFeatures]}``."""
        return cls.from_matrices(
            {spk: [f.spectral for f in feats] for spk, feats in train.items()}, stats, crop_frames
        )

    @property
    def num_speakers(self) -> int:
        return len(self.speakers)

    def _crop(self, speaker: int, rng: np.random.Generator) -> torch.Tensor:
        utts = self.utterances[speaker]
        utt = utts[rng.integers(len(utts))]
        start = rng.integers(utt.shape[1] - self.crop_frames + 1)
        return utt[:, start : start + self.crop_frames]

    def sample(self, batch_size: int, rng: np.random.Generator) -> Batch:
        """A batch: ``x`` ``(B, D, crop)`` of random sources, ``y`` ``(B, D, crop)`` of other speakers."""
        n = self.num_speakers
        src = rng.integers(n, size=batch_size)
        tgt = (src + rng.integers(1, n, size=batch_size)) % n  # uniform over the other speakers
        x = torch.stack([self._crop(int(s), rng) for s in src])
        y = torch.stack([self._crop(int(t), rng) for t in tgt])
        return Batch(x=x, src=torch.from_numpy(src), y=y, tgt=torch.from_numpy(tgt))

    @staticmethod
    def rng(seed: int, rank: int, step: int, substep: int) -> np.random.Generator:
        """The generator of one (rank, step, substep) draw."""
        return np.random.default_rng([seed, rank, step, substep])
