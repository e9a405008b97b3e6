"""The validation curve's score: how far a generator's conversions of the validation sentences are from the
target speaker's recordings, cheap enough to run during training.

The report's recipe (:mod:`vc.evaluation.recipe`) synthesises every conversion and analyses the waveform
again; this one stops before the vocoder. Per item (a source speaker, a target speaker, a validation
sentence both recorded):

1. the source recording's model features (``data/features``: the generator's input), converted by the
   generator (normalised with the source's scaler, de-normalised with the target's), give mel-cepstra
   ``(T, D+1)`` on the source's frames; ``features.spectral: coded_sp`` features are decoded to the
   envelope and turned into the recipe's mel-cepstrum first;
2. silent frames are those of the source recording, by the recipe's rule (frame power of its CheapTrick
   envelope below ``evaluate.power_threshold_db`` relative to the utterance mean; the conversion keeps the
   source's timing); the target's are the target recording's;
3. MCD after exact DTW on c1..cD, exactly as the recipe's steps 4-5 (:func:`vc.evaluation.metrics.mcd`).

``val/mcd_db_to_source`` is the same distance from the conversion to its own input, the source recording
(frame by frame, no DTW: the conversion keeps the source's frames): a generator that copies its input
scores near 0, whatever the target.

The score of a generator is the mean over the items. The same items give two constant lines to read it
against: ``val/mcd_db_mean_var`` (the mean-var baseline's mel-cepstra: per-coefficient mean and variance
of the source mapped to the target's) and ``val/mcd_db_source`` (the source recording unconverted). The
analyses of the validation recordings come from the ``validation`` stage (:func:`write_analyses`).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd
from torch import nn

from vc.config import EvaluateConfig, FeaturesConfig
from vc.corpus.selection import evaluation_plan
from vc.evaluation.metrics import mcd, mcd_frames
from vc.evaluation.recipe import RecipeAnalysis
from vc.features.mcep import mcep_alpha, sp2mc
from vc.features.stats import FeatureStats
from vc.features.world import load_features
from vc.stargan.store import generator_spectra

__all__ = ["INDEX", "ValidationItem", "ValidationScorer"]

log = logging.getLogger(__name__)

#: The validation stage's list of analysed recordings (``speaker, utt_id``), beside ``<speaker>/<utt>.npz``.
INDEX = "index.csv"

Convert = Callable[[np.ndarray, str, str], np.ndarray]  # (T, D) source features -> (T, D) converted


class ValidationItem(NamedTuple):
    """One conversion of the validation curve: the generator's input and the recordings it is scored on."""

    source: str
    target: str
    utt_id: str
    features: np.ndarray  # (T, D) the source recording's model features, unnormalised
    source_analysis: RecipeAnalysis  # the recipe's analysis of the source recording (its silent frames)
    target_analysis: RecipeAnalysis  # ... of the target speaker's recording of the same sentence


class ValidationScorer:
    """Scores a generator on fixed validation items (see the module's recipe).

    ``stats``: the scaler and the per-speaker moments the model trains with (WORLD features only: a
    log-mel model has no mel-cepstrum to score); ``features``: the features config (the recipe's order and
    all-pass constant); ``evaluate``: the silence threshold.
    """

    def __init__(
        self,
        items: list[ValidationItem],
        stats: FeatureStats,
        features: FeaturesConfig,
        evaluate: EvaluateConfig,
    ) -> None:
        if stats.feature_kind != "world":
            raise ValueError("the validation MCD scores WORLD-feature models (model.features: world)")
        if not items:
            raise ValueError("no validation items: the corpus has no validation sentence shared by a pair")
        self.items = items
        self.stats = stats
        self.features = features
        self.threshold = evaluate.power_threshold_db
        self._baselines: dict[str, float] | None = None
        self.alpha = mcep_alpha(features.mcep_alpha, stats.codec.sample_rate)

    # ------------------------------------------------------------------------------------------ build
    @classmethod
    def load(
        cls,
        analyses: str | Path,
        features_dir: str | Path,
        stats: FeatureStats,
        features: FeaturesConfig,
        evaluate: EvaluateConfig,
        *,
        sentences: int | None = None,
    ) -> ValidationScorer:
        """The items of every ordered pair of ``stats.speakers`` x the first ``sentences`` validation
        sentences both recorded (by id; None: all), from the validation stage's ``analyses`` folder and the
        features stage's folder."""
        analyses, features_dir = Path(analyses), Path(features_dir)
        index = pd.read_csv(analyses / INDEX, dtype=str)
        index = index[index["speaker"].isin(stats.speakers)]
        plan = evaluation_plan(index, list(stats.speakers), max_utterances=sentences)
        cache: dict[tuple[str, str], RecipeAnalysis] = {}

        def analysis(speaker: str, utt: str) -> RecipeAnalysis:
            if (speaker, utt) not in cache:
                cache[speaker, utt] = RecipeAnalysis.load(analyses / speaker / f"{utt}.npz")
            return cache[speaker, utt]

        items = []
        for src, tgt, utt in plan.itertuples(index=False):
            feats = load_features(features_dir / src / f"{utt}.npz").spectral
            items.append(ValidationItem(src, tgt, utt, feats, analysis(src, utt), analysis(tgt, utt)))
        log.info(
            "validation curve: %d conversions (%d pairs x up to %s sentences)",
            len(items),
            plan.groupby(["source", "target"]).ngroups,
            sentences or "all",
        )
        return cls(items, stats, features, evaluate)

    # ---------------------------------------------------------------------------------------- scoring
    def _mcep(self, spectral: np.ndarray) -> np.ndarray:
        """Model features ``(T, D)`` -> the recipe's mel-cepstrum ``(T, order + 1)``."""
        codec, order = self.stats.codec, self.features.mcep_order
        if codec.kind == "mcep" and codec.dim == order + 1 and np.isclose(codec.alpha, self.alpha):
            return spectral
        return sp2mc(codec.decode(spectral), order=order, alpha=self.alpha)

    def _distances(
        self, mcep: np.ndarray, source: RecipeAnalysis, target: RecipeAnalysis
    ) -> tuple[float, float]:
        """MCD to the target recording (DTW) and to the source recording (frame by frame: the conversion
        keeps the source's timing), both over the source's non-silent frames."""
        frames = min(len(mcep), len(source.power_db), len(source.mcep))  # one grid; guard an edge frame
        speech = source.power_db[:frames] > self.threshold
        to_target = mcd(
            mcep[:frames], target.mcep, converted_mask=speech, target_mask=target.power_db > self.threshold
        ).mcd_db
        to_source = mcd_frames(mcep[:frames][speech, 1:], source.mcep[:frames][speech, 1:]).mean()
        return to_target, float(to_source)

    def distances(self, convert: Convert) -> tuple[float, float]:
        """Mean MCD (dB) of ``convert``'s conversions to the target recordings and to the source
        recordings, over the items."""
        pairs = [
            self._distances(self._mcep(convert(item.features, item.source, item.target)), *item[4:])
            for item in self.items
        ]
        to_target, to_source = np.mean(pairs, axis=0)
        return float(to_target), float(to_source)

    def score(self, convert: Convert) -> float:
        """Mean MCD (dB) of ``convert``'s conversions to the target recordings, over the items."""
        return self.distances(convert)[0]

    def baselines(self) -> dict[str, float]:
        """``val/mcd_db_mean_var`` and ``val/mcd_db_source`` (computed once)."""
        if self._baselines is None:
            self._baselines = {
                "val/mcd_db_mean_var": self.score(self.stats.match_moments),
                "val/mcd_db_source": self.score(lambda x, src, tgt: x),
            }
        return self._baselines

    def generator_converter(self, generator: nn.Module) -> Convert:
        """``generator`` as a :data:`Convert` (fp32, no gradients, on the generator's device)."""
        return functools.partial(generator_spectra, generator, self.stats)

    def __call__(self, generator: nn.Module) -> dict[str, float]:
        """``val/mcd_db`` of ``generator`` and ``val/mcd_db_to_source`` (how near its conversions stay to
        their input: near 0 is a generator that copies), with the two baselines' lines."""
        to_target, to_source = self.distances(self.generator_converter(generator))
        return {"val/mcd_db": to_target, "val/mcd_db_to_source": to_source, **self.baselines()}
