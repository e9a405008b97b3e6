"""Stage `validation`: the MCD recipe's analysis of every validation recording, for the validation curves
of the train stages (:mod:`vc.evaluation.validation`).

Writes ``<out>/<speaker>/<utt>.npz`` (:class:`vc.evaluation.recipe.RecipeAnalysis`: mel-cepstrum, F0,
frame power) and ``<out>/index.csv`` (``speaker, utt_id``). Only the validation split is read: nothing the
report scores, so a validation curve, and the checkpoint it picks, never sees a test sentence.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from pipeline.common import read_params, run
from vc.corpus.build import read_manifest
from vc.corpus.selection import usable_utterances
from vc.evaluation.recipe import analyze_recordings
from vc.evaluation.validation import INDEX
from vc.features.extract import read_index
from vc.io import atomic_dir

log = logging.getLogger("pipeline.validation")


def main(args: argparse.Namespace) -> None:
    params = read_params(args.params)
    corpus = Path(args.corpus)
    manifest, index = read_manifest(corpus / "manifest.csv"), read_index(args.features)
    rows = usable_utterances(manifest, index, "validation")
    with atomic_dir(args.out) as tmp:
        analyze_recordings(
            rows, corpus, tmp, params.features, workers=params.evaluate.workers, desc="validation analysis"
        )
        rows[["speaker", "utt_id"]].to_csv(tmp / INDEX, index=False)
    log.info("validation recordings analysed: %d (%d speakers)", len(rows), rows["speaker"].nunique())


def build_parser() -> argparse.ArgumentParser:
    """The stage's arguments; dvc.yaml passes every path."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    for name in ("corpus", "features", "out"):
        parser.add_argument(f"--{name}", required=True)
    return parser


if __name__ == "__main__":
    run(main, build_parser())
