"""Stage `stats`: fit the feature scalers and per-speaker log-F0 statistics on the training split, for the
WORLD features (``--out``) and for the log-mels of mel systems (``--mel-out``)."""

from __future__ import annotations

import argparse
import logging
import math

from pipeline.common import read_params, run
from vc.features.extract import load_corpus_features, load_training_matrices
from vc.features.stats import fit_mel_stats, fit_stats

log = logging.getLogger("pipeline.stats")


def main(args: argparse.Namespace) -> None:
    params = read_params(args.params)
    stats = fit_stats(load_corpus_features(args.features, "train"), params.features, params.stats.scaler)
    mel = fit_mel_stats(load_training_matrices(args.features, "train", "mel"), stats)
    stats.save(args.out)
    mel.save(args.mel_out)
    for spk, mu, sd in zip(stats.speakers, stats.logf0_mean, stats.logf0_std, strict=True):
        log.info(
            "%s: log-F0 mean %.3f (%.0f Hz), std %.3f, %d training frames",
            spk,
            mu,
            math.exp(mu),
            sd,
            stats.train_frames[spk],
        )


def build_parser() -> argparse.ArgumentParser:
    """The stage's arguments; dvc.yaml passes every path."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--features", required=True, help="the features stage's folder")
    parser.add_argument("--out", required=True, help="statistics of the WORLD features (JSON)")
    parser.add_argument("--mel-out", required=True, help="statistics of the log-mels (JSON)")
    return parser


if __name__ == "__main__":
    run(main, build_parser())
