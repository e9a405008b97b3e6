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
    )


def build_parser() -> argparse.ArgumentParser:
    """The stage's arguments; dvc.yaml passes every path."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--corpus", required=True, help="the corpus stage's folder")
    parser.add_argument("--out", required=True, help="the features folder")
    return parser


if __name__ == "__main__":
    run(main, build_parser())
