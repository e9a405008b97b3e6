"""Run by torchrun from test_distributed.py: the train stage's main(), then every rank saves its weights."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import torch

from pipeline.common import add_common_args
from pipeline.train import build_parser, main

if __name__ == "__main__":
    parser = build_parser()
    add_common_args(parser)
    args = parser.parse_args(sys.argv[1:])
    state = main(args)
    rank = int(os.environ["RANK"])
    Path(args.out).mkdir(parents=True, exist_ok=True)  # rank 1 may get here before rank 0's export
    torch.save(state.generator.state_dict(), Path(args.out) / f"rank{rank}-generator.pt")
    torch.save(state.discriminator.state_dict(), Path(args.out) / f"rank{rank}-discriminator.pt")
