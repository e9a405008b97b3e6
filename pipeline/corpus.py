"""Stage `corpus`: synthesize the embedded corpus or read a real one; prepare, split, write the manifest."""

from __future__ import annotations

import argparse

from pipeline.common import read_params, repo_root, run
from vc.corpus.build import build_corpus


def main(args: argparse.Namespace) -> None:
    params = read_params(args.params)
    build_corpus(
        params.corpus,
        params.data,
        args.out,
        min_train_frames=params.train.crop_frames,
        frame_period_ms=params.features.frame_period,
        base_dir=repo_root(),
    )


def build_parser() -> argparse.ArgumentParser:
    """The stage's arguments; dvc.yaml passes every path."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", required=True, help="the prepared corpus folder")
    return parser


if __name__ == "__main__":
    run(main, build_parser())
