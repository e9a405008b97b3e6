"""Stage `contrast`: which difference between two experiments decides which one is better (params
``contrast``), scored on the validation sentences only.

The report's ablation table ranks experiments on the test sentences; this stage explains an ordering. It
trains ``contrast.worse`` unchanged, then with each of ``contrast.switches`` (one difference of
``contrast.better`` from it) added alone (``<worse>+<switch>``), then ``contrast.better`` itself, every run
for ``contrast.iterations`` from seed ``contrast.seed``, and scores each run's last generator with the
validation curve's recipe (:mod:`vc.evaluation.validation`). The walk is :mod:`pipeline.diagnosis`'s; the
result is ``<out>/contrast.json`` for the report's "Contrast" section.
"""

from __future__ import annotations

import argparse

from pipeline.common import run
from pipeline.diagnosis import build_parser
from pipeline.diagnosis import main as walk


def main(args: argparse.Namespace) -> None:
    walk(args, section="contrast")


if __name__ == "__main__":
    parser = build_parser()
    parser.description = __doc__.split("\n\n")[0]
    run(main, parser)
