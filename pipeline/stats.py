"""Stage `stats`: fit the feature scaler and per-speaker log-F0 statistics on the training split."""

from __future__ import annotations

import argparse
import logging
import math

from pipeline.common import read_params, run
from vc.features.extract import load_corpus_features
from vc.features.stats import fit_stats

log = logging.getLogger("pipeline.stats")


def main(args: argparse.Namespace) -> None:
    params = read_params(args.params)
    stats = fit_stats(load_corpus_features(args.features, "train"), params.features, params.stats.scaler)
    stats.save(args.out)
    for spk, mu, sd in zip(stats.speakers, stats.logf0_mean, stats.logf0_std, strict=True):
        log.info(
            "%s: log-F0 mean %.3f (%.0f Hz), std %.3f, %d training frames",
            spk,
            mu,
            math.exp(mu),
            sd,
            stats.train_frames[spk],
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--features", default="data/features")
    parser.add_argument("--out", default="data/stats.json")
    run(main, parser)
