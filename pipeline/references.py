"""Stage `references`: what every evaluation of the scored split shares, computed once.

- the MCD recipe's analysis of every held-out utterance of ``convert.split``
  (``<out>/<speaker>/<utt>.npz``);
- the perceptual metrics' reference material (``<out>/perceptual/``, :mod:`vc.perceptual.scoring`): a
  speaker-similarity centroid per speaker from its training utterances, and the natural recordings' own
  scores (d-vector, transcript, CER/WER, DNSMOS), with the skipped metrics and the models' provenance.
"""

from __future__ import annotations

import argparse
import logging
from dataclasses import dataclass
from pathlib import Path

from pipeline.common import read_params, run
from vc.config import FeaturesConfig
from vc.corpus.build import read_manifest
from vc.evaluation import analyze_wav_for_eval, usable_utterances
from vc.features.extract import read_index
from vc.io import atomic_dir
from vc.parallel import parallel_map
from vc.perceptual.scoring import build_reference_material

log = logging.getLogger("pipeline.references")


@dataclass(frozen=True)
class _Job:
    wav: Path
    out: Path
    features: FeaturesConfig


def _analyze(job: _Job) -> None:
    analyze_wav_for_eval(job.wav, job.features).save(job.out)


def main(args: argparse.Namespace) -> None:
    params = read_params(args.params)
    corpus = Path(args.corpus)
    manifest, index = read_manifest(corpus / "manifest.csv"), read_index(args.features)
    rows = usable_utterances(manifest, index, params.convert.split)
    with atomic_dir(args.out) as tmp:
        jobs = [
            _Job(corpus / p, tmp / s / f"{u}.npz", params.features)
            for s, u, p in zip(rows["speaker"], rows["utt_id"], rows["path"], strict=True)
        ]
        parallel_map(_analyze, jobs, workers=params.evaluate.workers, desc="reference analysis")

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
        material.save(tmp / "perceptual")
    if material.metrics:
        n = material.naturals
        log.info(
            "natural recordings (%d): similarity to their own speaker %.3f, CER %.3f, DNSMOS OVRL %.2f",
            len(n),
            n["spk_sim_own"].mean(),
            n["cer"].mean(),
            n["dnsmos_ovrl"].mean(),
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", default="data/corpus")
    parser.add_argument("--features", default="data/features")
    parser.add_argument("--out", default="eval/references")
    run(main, parser)
