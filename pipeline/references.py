"""Stage `references`: what every evaluation of the scored split shares, computed once.

- the MCD recipe's analysis of every held-out utterance of ``convert.split``
  (``<out>/<speaker>/<utt>.npz``);
- the perceptual metrics' reference material (``<out>/perceptual/``,
  :mod:`vc.evaluation.perceptual.material`): a speaker-similarity centroid per speaker from its training
  utterances, and the natural recordings' own scores (d-vector, transcript, CER/WER, DNSMOS), with the
  skipped metrics and the models' provenance.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from pipeline.common import read_params, run
from vc.corpus.build import read_manifest
from vc.corpus.selection import usable_utterances
from vc.evaluation.perceptual.material import build_reference_material
from vc.evaluation.recipe import analyze_recordings
from vc.evaluation.registry import natural_line
from vc.features.extract import read_index
from vc.io import atomic_dir
from vc.layout import perceptual_dir

log = logging.getLogger("pipeline.references")


def main(args: argparse.Namespace) -> None:
    params = read_params(args.params)
    corpus = Path(args.corpus)
    manifest, index = read_manifest(corpus / "manifest.csv"), read_index(args.features)
    rows = usable_utterances(manifest, index, params.convert.split)
    with atomic_dir(args.out) as tmp:
        analyze_recordings(rows, corpus, tmp, params.features, workers=params.evaluate.workers)

        train = usable_utterances(manifest, index, "train")  # what training saw, skipped files left out
        texts = manifest.set_index(["speaker", "utt_id"])["text"]
        naturals = rows.assign(
            path=[str(corpus / p) for p in rows["path"]],
            text=[texts.get((s, u), "") for s, u in zip(rows["speaker"], rows["utt_id"], strict=True)],
        )
        material = build_reference_material(
            train.assign(path=[str(corpus / p) for p in train["path"]]),
            naturals,
            params.evaluate,
            workers=params.evaluate.workers,
        )
        material.save(perceptual_dir(tmp))
    if material.metrics:
        log.info("natural recordings (%d): %s", len(material.naturals), natural_line(material.naturals))


def build_parser() -> argparse.ArgumentParser:
    """The stage's arguments; dvc.yaml passes every path."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    for name in ("corpus", "features", "out"):
        parser.add_argument(f"--{name}", required=True)
    return parser


if __name__ == "__main__":
    run(main, build_parser())
