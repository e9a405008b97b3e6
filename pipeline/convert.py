"""Stage `convert@<experiment>-<seed>`: convert every held-out sentence (``convert.split``: test unless
tuning) of every speaker pair to wav with one trained run: WORLD features through the WORLD vocoder, log-mel
through HiFi-GAN (section ``vocoder``; the generator the `vocoder` stage fine-tuned, when it did); wavs are
written at the corpus's sample rate."""

from __future__ import annotations

import argparse
import functools
import logging
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from pipeline.common import read_params, run
from vc import cost
from vc.audio import resample
from vc.config import Energy, VocoderConfig
from vc.conversion import convert_features, convert_mel, vocode, vocoder_for
from vc.corpus.build import read_manifest
from vc.corpus.selection import evaluation_plan, usable_utterances
from vc.features.extract import mel_path, read_index
from vc.features.world import load_features
from vc.io import atomic_dir, write_wav
from vc.layout import run_dir
from vc.parallel import parallel_map
from vc.stargan.store import TrainedModel, load_model
from vc.vocoders.store import resolve_vocoder

log = logging.getLogger("pipeline.convert")


@dataclass(frozen=True)
class _Job:
    model: Path
    features: Path
    source: str
    target: str
    out: Path
    vocoder: VocoderConfig
    sample_rate: int  # of the written wav (the corpus's)
    energy: Energy  # convert.energy (WORLD models)


@functools.lru_cache(maxsize=2)
def _model(folder: Path) -> TrainedModel:
    torch.set_num_threads(1)  # one process per core
    return load_model(folder)


def _convert_one(job: _Job) -> dict[str, float]:
    """Convert one utterance and write its wav (in a worker process; the model is loaded once per process).

    Returns the seconds of each step (model loading, the generator, the vocoder, writing), for the cost.
    """
    clock = time.perf_counter()
    seconds = {}

    def lap(step: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        seconds[step] = now - clock
        clock = now

    model = _model(job.model)
    lap("load")
    stats = model.stats
    kind = stats.feature_kind
    if kind == "mel":
        converted = convert_mel(model, np.load(mel_path(job.features)), job.source, job.target)
    else:
        converted = convert_features(model, load_features(job.features), job.source, job.target, job.energy)
    lap("generator")
    wav = vocode(converted, stats, vocoder_for(kind), job.vocoder)
    lap(f"vocoder ({vocoder_for(kind)})")
    write_wav(job.out, resample(wav, stats.codec.sample_rate, job.sample_rate), job.sample_rate)
    lap("write")
    return seconds


def model_folder(run: Path, checkpoint: str) -> Path:
    """The generator ``convert.checkpoint`` names in a training run's folder: ``model/`` (last) or
    ``model-best/`` (best: the lowest validation MCD; the last generator where the run had no validation
    curve)."""
    if checkpoint == "best":
        if (run / "model-best").is_dir():
            return run / "model-best"
        log.info("%s has no model-best/ (trained before validation curves): the last generator", run)
    return run / "model"


def main(args: argparse.Namespace) -> None:
    params = read_params(args.params)
    exp = params.experiment(args.experiment, args.seed)  # unknown names are errors naming the defined ones
    model_dir = model_folder(run_dir(args.models, exp.name, exp.train.seed), params.convert.checkpoint)
    model = load_model(model_dir)
    vocoder = resolve_vocoder(params.vocoder_config(), args.vocoder)
    features = Path(args.features)
    plan = evaluation_plan(
        usable_utterances(
            read_manifest(Path(args.corpus) / "manifest.csv"), read_index(features), params.convert.split
        ),
        model.speakers,
        params.convert.pairs,
        params.convert.max_utterances,
    )
    out = run_dir(args.out, exp.name, exp.train.seed)
    paths = [str(Path(f"{src}__{tgt}") / f"{utt}.wav") for src, tgt, utt in plan.itertuples(index=False)]
    with atomic_dir(out) as tmp:
        jobs = [
            _Job(
                model_dir.resolve(),
                features / src / f"{utt}.npz",
                src,
                tgt,
                tmp / rel,
                vocoder,
                params.data.sample_rate,
                params.convert.energy,
            )
            for (src, tgt, utt), rel in zip(plan.itertuples(index=False), paths, strict=True)
        ]
        with cost.phase("convert", count=len(jobs), unit="utterance"):
            laps = parallel_map(_convert_one, jobs, workers=params.convert.workers, desc="convert")
        for seconds in laps:
            for step, s in seconds.items():
                cost.work(f"convert/{step}", s, int(step != "load"), "utterance")
        plan.assign(path=paths).to_csv(tmp / "index.csv", index=False)
    log.info(
        "converted %d %s sentences (%d pairs) with %s, seed %d",
        len(plan),
        params.convert.split,
        plan.groupby(["source", "target"]).ngroups,
        exp.name,
        exp.train.seed,
    )


def build_parser() -> argparse.ArgumentParser:
    """The stage's arguments; dvc.yaml passes every path."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--experiment", required=True)
    parser.add_argument("--seed", type=int, default=None, help="one of `seeds` (default: the first)")
    parser.add_argument("--models", required=True, help="the train stages' folder (<experiment>/seed-<seed>)")
    parser.add_argument("--features", required=True)
    parser.add_argument("--corpus", required=True)
    parser.add_argument("--vocoder", required=True, help="the `vocoder` stage's output")
    parser.add_argument("--out", required=True, help="converted wavs go to <out>/<experiment>/seed-<seed>")
    return parser


if __name__ == "__main__":
    run(main, build_parser())
