"""Stage `references`: analyse every held-out utterance of ``convert.split`` once by the evaluation recipe."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

from pipeline.common import read_params, run
from vc.config import FeaturesConfig
from vc.corpus.build import read_manifest
from vc.evaluation import analyze_wav_for_eval, usable_utterances
from vc.features.extract import read_index
from vc.io import atomic_dir
from vc.parallel import parallel_map


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
    rows = usable_utterances(
        read_manifest(corpus / "manifest.csv"), read_index(args.features), params.convert.split
    )
    with atomic_dir(args.out) as tmp:
        jobs = [
            _Job(corpus / p, tmp / s / f"{u}.npz", params.features)
            for s, u, p in zip(rows["speaker"], rows["utt_id"], rows["path"], strict=True)
        ]
        parallel_map(_analyze, jobs, workers=params.evaluate.workers, desc="reference analysis")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--corpus", default="data/corpus")
    parser.add_argument("--features", default="data/features")
    parser.add_argument("--out", default="eval/references")
    run(main, parser)
