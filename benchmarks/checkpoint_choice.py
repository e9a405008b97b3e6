"""Which generator should the pipeline convert, the last or the best by the validation curve?

    python -m benchmarks.checkpoint_choice          # every WORLD training run of the last `make repro`

The best generator (``model-best/``) is picked on the first ``train.validation_sentences`` validation
sentences of every pair, so its own curve flatters it. This scores both generators of every run on the
validation sentences the curve never saw (the rest of the validation split), with the curve's recipe
(:mod:`vc.evaluation.validation`), and prints each run's two MCDs and their difference (best minus last;
negative: the best generator is better on unseen sentences). Reads models/, data/features, data/stats.json and
data/validation after `make repro`; never a test sentence.
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

import numpy as np

from pipeline.common import read_params
from vc.evaluation.validation import ValidationScorer
from vc.features.stats import FeatureStats
from vc.stargan.store import load_model

log = logging.getLogger("benchmarks.checkpoint_choice")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--models", default="models")
    parser.add_argument("--features", default="data/features")
    parser.add_argument("--stats", default="data/stats.json")
    parser.add_argument("--validation", default="data/validation")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    args = parse_args(argv)
    params = read_params(args.params)
    stats = FeatureStats.load(args.stats)
    every = ValidationScorer.load(args.validation, args.features, stats, params.features, params.evaluate)
    lines = [
        "| run | best iteration | last: MCD on unseen validation sentences | best | best - last |",
        "|---|---:|---:|---:|---:|",
    ]
    differences = []
    for summary in sorted(Path(args.models).glob("*/seed-*/train.json")):
        train = json.loads(summary.read_text())
        curve = train.get("validation", {})
        if not curve.get("curve"):
            continue  # no validation curve (log-mel): its best generator is its last
        seen = curve["sentences_per_pair"]
        chosen = {
            i.utt_id
            for i in ValidationScorer.load(
                args.validation, args.features, stats, params.features, params.evaluate, sentences=seen
            ).items
        }
        unseen = ValidationScorer(
            [i for i in every.items if i.utt_id not in chosen], stats, params.features, params.evaluate
        )
        last = unseen.score(unseen.generator_converter(load_model(summary.parent / "model").generator))
        best = unseen.score(unseen.generator_converter(load_model(summary.parent / "model-best").generator))
        differences.append(best - last)
        run = f"{train['experiment']}/seed-{train['seed']}"
        lines.append(f"| {run} | {curve['best_step']} | {last:.3f} | {best:.3f} | {best - last:+.3f} |")
    lines.append(
        f"mean difference over {len(differences)} runs: {np.mean(differences):+.3f} dB; the best generator "
        f"is better on unseen sentences in {sum(d < 0 for d in differences)}, the same in "
        f"{sum(d == 0 for d in differences)}, worse in {sum(d > 0 for d in differences)}"
    )
    log.info("%s", "\n".join(lines))


if __name__ == "__main__":
    main()
