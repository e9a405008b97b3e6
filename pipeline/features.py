"""Stage `features`: WORLD analysis of every usable utterance (F0, spectral features, coded aperiodicity)."""

from __future__ import annotations

import argparse
from pathlib import Path

from pipeline.common import read_params, run
from vc.corpus.build import read_manifest
from vc.features.extract import analyze_corpus


def main(args: argparse.Namespace) -> None:
    params = read_params(args.params)
    corpus = Path(args.corpus)
    analyze_corpus(
        read_manifest(corpus / "manifest.csv"),
        corpus,
        args.out,
        params.features,
        on_bad_file=params.corpus.on_bad_file,
        timing_path=args.timing,
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--corpus", default="data/corpus")
    parser.add_argument("--out", default="data/features")
    parser.add_argument(
        "--timing",
        default="data/features-timing.json",
        help="JSON file for the wall time and real-time factor",
    )
    run(main, parser)
