"""The validation curve's scorer (vc.evaluation.validation) on synthetic speakers: what it measures, its
baselines' lines, its item selection, and how the train stage's generator is wrapped."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import speaker_utterance

from vc.config import EvaluateConfig, FeaturesConfig
from vc.evaluation.recipe import analyze_for_eval
from vc.evaluation.validation import INDEX, ValidationScorer
from vc.features.stats import fit_stats
from vc.features.world import analyze

FS = 16000
FEATURES = FeaturesConfig(f0_method="dio")
EVALUATE = EvaluateConfig()
SPEAKERS = ("spkA", "spkB", "spkC")


@pytest.fixture(scope="module")
def folders(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, object]:
    """Validation analyses (3 speakers x 3 sentences), their model features, statistics fitted on them."""
    root = tmp_path_factory.mktemp("validation")
    analyses, features = root / "analyses", root / "features"
    train: dict[str, list] = {}
    rows = []
    for spk in SPEAKERS:
        for i in range(3):
            wav = speaker_utterance(spk, i, 0.8)
            analyze_for_eval(wav, FS, FEATURES).save(analyses / spk / f"v{i}.npz")
            feats = analyze(wav, FS, FEATURES)
            feats.save(features / spk / f"v{i}.npz")
            train.setdefault(spk, []).append(feats)
            rows.append({"speaker": spk, "utt_id": f"v{i}"})
    pd.DataFrame(rows).to_csv(analyses / INDEX, index=False)
    return analyses, features, fit_stats(train, FEATURES, "per_speaker")


def scorer(folders: tuple, sentences: int | None = None) -> ValidationScorer:
    analyses, features, stats = folders
    return ValidationScorer.load(analyses, features, stats, FEATURES, EVALUATE, sentences=sentences)


class _Copy(torch.nn.Module):
    """A 'generator' that returns its input: conversion by copying."""

    def __init__(self) -> None:
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(1))

    def forward(self, x: torch.Tensor, src: torch.Tensor, tgt: torch.Tensor) -> torch.Tensor:
        return x + 0 * self.w


def test_items_are_every_ordered_pair_times_the_first_sentences(folders: tuple) -> None:
    assert len(scorer(folders).items) == 6 * 3
    two = scorer(folders, sentences=2)
    assert len(two.items) == 6 * 2 and {i.utt_id for i in two.items} == {"v0", "v1"}
    assert {(i.source, i.target) for i in two.items} == {(s, t) for s in SPEAKERS for t in SPEAKERS if s != t}


def test_copying_scores_the_unconverted_source_and_zero_to_its_input(folders: tuple) -> None:
    s = scorer(folders)
    to_target, to_source = s.distances(lambda x, src, tgt: x)
    assert to_target == pytest.approx(s.baselines()["val/mcd_db_source"])
    # not exactly 0: the model features here come from Dio F0, the recipe's analysis from Harvest
    assert to_source == pytest.approx(0, abs=0.1)
    # distinct synthetic speakers: far apart; mean-var moves towards the target on these items
    assert s.baselines()["val/mcd_db_source"] > 2.0
    assert s.baselines()["val/mcd_db_mean_var"] < s.baselines()["val/mcd_db_source"]


def test_the_generator_runs_between_the_source_and_target_scalers(folders: tuple) -> None:
    """An identity generator normalises with the source's per-speaker scaler and de-normalises with the
    target's: exactly the mean-var baseline."""
    scores = scorer(folders)(_Copy().eval())
    assert scores["val/mcd_db"] == pytest.approx(scores["val/mcd_db_mean_var"], abs=1e-6)
    assert scores["val/mcd_db_to_source"] > 1.0
    assert set(scores) == {"val/mcd_db", "val/mcd_db_to_source", "val/mcd_db_mean_var", "val/mcd_db_source"}


def test_a_perfect_conversion_scores_below_the_baselines(folders: tuple) -> None:
    s = scorer(folders)
    analyses = {(i.target, i.utt_id): i.target_analysis for i in s.items}

    def oracle(x: np.ndarray, src: str, tgt: str) -> np.ndarray:  # the target's own cepstra, same length
        utt = next(i.utt_id for i in s.items if i.source == src and i.target == tgt and i.features is x)
        target = analyses[tgt, utt].mcep
        index = np.linspace(0, len(target) - 1, len(x)).round().astype(int)
        return target[index]

    to_target, to_source = s.distances(oracle)
    assert to_target < 1.0 < s.baselines()["val/mcd_db_mean_var"] and to_source > 2.0


def test_no_validation_sentence_is_a_clear_error(folders: tuple, tmp_path: Path) -> None:
    _, features, stats = folders
    pd.DataFrame({"speaker": [], "utt_id": []}).to_csv(tmp_path / INDEX, index=False)
    with pytest.raises(ValueError, match="no held-out sentences"):
        ValidationScorer.load(tmp_path, features, stats, FEATURES, EVALUATE)


def test_convert_checkpoint_names_the_model_folder(tmp_path: Path) -> None:
    from pipeline.convert import model_folder

    (tmp_path / "model").mkdir()
    assert model_folder(tmp_path, "last") == tmp_path / "model"
    assert model_folder(tmp_path, "best") == tmp_path / "model"  # a run from before model-best/ existed
    (tmp_path / "model-best").mkdir()
    assert model_folder(tmp_path, "best") == tmp_path / "model-best"
    assert model_folder(tmp_path, "last") == tmp_path / "model"
