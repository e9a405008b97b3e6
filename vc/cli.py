"""The `vc` command: convert wav files with a trained model folder (the vocoder follows the model: WORLD for
WORLD-feature models, HiFi-GAN for log-mel models).

vc convert --model models/stargan-vc2/model --source-speaker low1 --target-speaker high2 in.wav out.wav
vc speakers --model models/stargan-vc2/model
vc cost                      # what the last `make repro` cost, stage by stage
vc cost --exp NAME           # what an experiment DVC ran in a copy (--temp, the queue) cost
vc listen build|invite|revoke|status|serve|export   # the listening test (README "Listen and rate")
vc sweep run|status|cancel   # a grid of DVC experiments, locally or on SLURM (README "Sweeps on a cluster")
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import get_args

from vc.config import ConvertConfig, Energy
from vc.features.stats import StatsError
from vc.io import AudioReadError
from vc.stargan.store import ModelLoadError, load_model

log = logging.getLogger("vc")


def _convert(args: argparse.Namespace) -> None:
    from vc.config import VocoderConfig
    from vc.conversion import convert_wav

    model = load_model(args.model)
    vocoder = VocoderConfig(checkpoint=args.hifigan_checkpoint)
    seconds = convert_wav(
        model, args.input, args.output, args.source_speaker, args.target_speaker, vocoder, args.energy
    )
    log.info("wrote %s (%.2f s, %s -> %s)", args.output, seconds, args.source_speaker, args.target_speaker)


def _speakers(args: argparse.Namespace) -> None:
    for name in load_model(args.model).speakers:
        sys.stdout.write(name + "\n")


def _cost(args: argparse.Namespace) -> None:
    from vc.cost import EXPERIMENTS_DIR
    from vc.cost_table import cost_markdown, load_costs

    folder = Path(args.dir) / EXPERIMENTS_DIR / args.exp if args.exp else Path(args.dir)
    costs = load_costs(folder)
    if not costs and args.exp:
        names = sorted(p.name for p in (Path(args.dir) / EXPERIMENTS_DIR).glob("*") if p.is_dir())
        raise ValueError(
            f"{folder}: no cost files of experiment {args.exp!r} (experiments with cost files: "
            f"{', '.join(names) or 'none'})"
        )
    if not costs:
        raise ValueError(f"{folder}: no cost files (they are written by `make repro` / `dvc repro`)")
    sys.stdout.write(cost_markdown(costs, heading="#", experiment=args.exp))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="vc", description="StarGAN-VC2 voice conversion")
    parser.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    sub = parser.add_subparsers(dest="command", required=True)
    conv = sub.add_parser("convert", help="convert a wav file (any sample rate) to another speaker's voice")
    conv.add_argument("--model", required=True, help="a model folder (models/<experiment>/model)")
    conv.add_argument("--source-speaker", required=True)
    conv.add_argument("--target-speaker", required=True)
    conv.add_argument(
        "--hifigan-checkpoint",
        default=None,
        help="log-mel models: a HiFi-GAN V1 generator checkpoint (default: the bundled universal one); "
        "WORLD-feature models use the WORLD vocoder",
    )
    conv.add_argument(
        "--energy",
        choices=get_args(Energy),
        default=ConvertConfig.model_fields["energy"].default,
        help="WORLD-feature models: c0 (frame energy) from mean-var's conversion of the input (default, as "
        "convert.energy) or from the generator",
    )
    conv.add_argument("input", help="input wav")
    conv.add_argument("output", help="output wav (written at the model's sample rate)")
    conv.set_defaults(func=_convert)
    spk = sub.add_parser("speakers", help="list the speakers a model knows")
    spk.add_argument("--model", required=True)
    spk.set_defaults(func=_speakers)
    cost = sub.add_parser("cost", help="what the last run of each stage cost (time, CPU, memory, phases)")
    cost.add_argument("--dir", default="costs", help="the cost files' folder (default: costs)")
    cost.add_argument(
        "--exp",
        default=None,
        help="an experiment DVC ran in a copy (`dvc exp run --temp`, the queue): the stages it re-ran, from "
        "<dir>/exps/<name>/",
    )
    cost.set_defaults(func=_cost)
    from vc.listen.cli import add_commands as add_listen_commands
    from vc.sweep.cli import add_commands as add_sweep_commands

    add_listen_commands(sub)
    add_sweep_commands(sub)
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level, format="%(levelname)s %(name)s: %(message)s")
    try:
        args.func(args)
    except (ModelLoadError, StatsError, AudioReadError, ValueError) as err:
        log.error("%s", err)
        sys.exit(2)


if __name__ == "__main__":
    main()
