"""Does the validation curve's cheap MCD rank checkpoints as the report's recipe does?

    python -m benchmarks.validation_recipe                       # stargan-vc2, seed 0, the default training
    python -m benchmarks.validation_recipe --experiment stargan-vc --every 25

Reads the outputs of `dvc repro` up to `validation` (data/features, data/stats.json, data/validation) and
params.yaml. Trains the experiment with its first seed exactly as the train stage does and, every ``--every``
iterations, scores the generator on the same validation items (every ordered pair x
``train.validation_sentences``) twice: with the validation curve's recipe (:mod:`vc.evaluation.validation`:
the converted mel-cepstra, no vocoder) and with the report's (:mod:`vc.evaluation.recipe`: WORLD synthesis,
Harvest/CheapTrick re-analysis, then the same masking, DTW and MCD). Prints both curves, their difference,
the Spearman rank correlation over checkpoints, and whether both pick the same best checkpoint; also the
seconds each recipe takes per scoring. The test sentences are never read.
"""

from __future__ import annotations

import argparse
import logging
import tempfile
import time
from pathlib import Path

import numpy as np
from scipy.stats import spearmanr

from pipeline.common import read_params
from vc.conversion import convert_features, vocode
from vc.evaluation.recipe import analyze_for_eval, score_mcd
from vc.evaluation.validation import ValidationScorer
from vc.features.extract import load_training_matrices
from vc.features.stats import FeatureStats
from vc.features.world import load_features
from vc.stargan.data import FeatureBank
from vc.stargan.store import TrainedModel
from vc.stargan.trainer import Trainer

log = logging.getLogger("benchmarks.validation_recipe")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--experiment", default="stargan-vc2")
    parser.add_argument("--every", type=int, default=None, help="default: train.validate_every")
    parser.add_argument("--features", default="data/features")
    parser.add_argument("--stats", default="data/stats.json")
    parser.add_argument("--validation", default="data/validation")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    args = parse_args(argv)
    params = read_params(args.params)
    exp = params.experiment(args.experiment)
    every = args.every or exp.train.validate_every
    stats = FeatureStats.load(args.stats)
    scorer = ValidationScorer.load(
        args.validation,
        args.features,
        stats,
        params.features,
        params.evaluate,
        sentences=exp.train.validation_sentences,
    )
    world = {
        (i.source, i.utt_id): load_features(Path(args.features) / i.source / f"{i.utt_id}.npz")
        for i in scorer.items
    }
    rate = stats.codec.sample_rate

    def full_recipe(generator) -> float:  # the report's recipe on the same items
        model = TrainedModel(generator, stats, exp, params.features, {})
        values = []
        for item in scorer.items:
            feats = convert_features(model, world[item.source, item.utt_id], item.source, item.target)
            analysis = analyze_for_eval(vocode(feats, stats), rate, params.features)
            values.append(score_mcd(analysis, item.target_analysis, params.evaluate))
        return float(np.mean(values))

    rows: list[tuple[int, float, float, float, float]] = []

    def both(generator) -> dict[str, float]:
        start = time.perf_counter()
        cheap = scorer(generator)
        middle = time.perf_counter()
        full = full_recipe(generator)
        seconds = (middle - start, time.perf_counter() - middle)
        rows.append((trainer.state.step, cheap["val/mcd_db"], full, *seconds))
        return cheap

    bank = FeatureBank.from_matrices(
        load_training_matrices(Path(args.features), "train", exp.model.features), stats, exp.train.crop_frames
    )
    exp = exp.model_copy(update={"train": exp.train.model_copy(update={"validate_every": every})})
    with tempfile.TemporaryDirectory() as checkpoints:
        trainer = Trainer(exp, bank, checkpoints, progress=False, validator=both)
        trainer.fit(resume=False)

    steps, cheap, full, t_cheap, t_full = (np.array(col) for col in zip(*rows, strict=True))
    rho = spearmanr(cheap, full).statistic
    best_cheap, best_full = int(steps[np.argmin(cheap)]), int(steps[np.argmin(full)])
    lines = [
        f"{exp.name}, seed {exp.train.seed}: {len(scorer.items)} validation conversions per checkpoint",
        "| iteration | validation curve dB | report recipe dB | difference |",
        "|---:|---:|---:|---:|",
        *(f"| {s} | {c:.3f} | {f:.3f} | {f - c:+.3f} |" for s, c, f in zip(steps, cheap, full, strict=True)),
        f"Spearman rank correlation over {len(steps)} checkpoints: {rho:.3f}; best checkpoint: {best_cheap} "
        f"(curve) vs {best_full} (recipe): {'the same' if best_cheap == best_full else 'different'}",
        f"seconds per scoring (medians): curve {np.median(t_cheap):.2f}, recipe {np.median(t_full):.2f}",
    ]
    log.info("%s", "\n".join(lines))


if __name__ == "__main__":
    main()
