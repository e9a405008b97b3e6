"""Stage `listen_page`: the listening page (``listen/index.html``): the same test sentences from the corpus
and from every system side by side, loudness-matched copies, each with its scores and a spectrogram."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from pipeline.common import read_params, run
from vc.errors import InputError
from vc.report.listening import PageInputs, write_listening_page

log = logging.getLogger("pipeline.listen_page")

#: The stage's paths, each required (dvc.yaml states them): the page's inputs, then its folder.
PATHS = (
    "corpus",
    "references",
    "converted-experiments",
    "eval-experiments",
    "converted-baselines",
    "eval-baselines",
    "out",
)


def build_page(args: argparse.Namespace) -> dict[str, object]:
    """Read params.yaml's ``listen_page`` section and write the page; return its summary."""
    params = read_params(args.params)
    cfg = params.listen_page
    seed = params.seeds[0] if cfg.seed is None else cfg.seed
    if seed not in params.seeds:
        raise InputError(f"listen_page.seed: {seed} is not one of seeds {list(params.seeds)}")
    inputs = PageInputs(
        corpus=Path(args.corpus),
        references=Path(args.references),
        converted_experiments=Path(args.converted_experiments),
        eval_experiments=Path(args.eval_experiments),
        converted_baselines=Path(args.converted_baselines),
        eval_baselines=Path(args.eval_baselines),
    )
    return write_listening_page(
        args.out,
        inputs,
        experiments=list(params.experiments),
        baselines=list(params.baselines),
        seed=seed,
        sentences=cfg.sentences,
        pairs=[tuple(p) for p in cfg.pairs],
        level_dbfs=cfg.level_dbfs,
        title=f"{params.report.title}: listening page",
    )


def build_parser() -> argparse.ArgumentParser:
    """The stage's arguments; dvc.yaml passes every path."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    for name in PATHS:
        parser.add_argument(f"--{name}", required=True)
    return parser


def main(argv: list[str] | None = None) -> None:
    """Parse ``argv`` (default: the command line), set up logging and write the page; bad input exits 2."""
    run(build_page, build_parser(), argv)


if __name__ == "__main__":
    main()
