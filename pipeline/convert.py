"""Stage `convert@<experiment>-<seed>`: convert every held-out sentence (``convert.split``: test unless
tuning) of every speaker pair to wav with one trained run."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from tqdm import tqdm

from pipeline.common import read_params, run, run_dir
from vc.conversion import convert_features, vocode
from vc.corpus.build import read_manifest
from vc.evaluation import evaluation_plan, usable_utterances
from vc.features.extract import read_index
from vc.features.world import load_features
from vc.io import atomic_dir, write_wav
from vc.model_store import load_model

log = logging.getLogger("pipeline.convert")


def main(args: argparse.Namespace) -> None:
    params = read_params(args.params)
    exp = params.experiment(args.experiment, args.seed)  # unknown names are errors naming the defined ones
    model = load_model(run_dir(args.models, exp.name, exp.train.seed) / "model")
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
    with atomic_dir(out) as tmp:
        paths = []
        for src, tgt, utt in tqdm(plan.itertuples(index=False), total=len(plan), desc="convert", leave=False):
            converted = convert_features(model, load_features(features / src / f"{utt}.npz"), src, tgt)
            rel = Path(f"{src}__{tgt}") / f"{utt}.wav"
            write_wav(
                tmp / rel,
                vocode(converted, model.stats, params.convert.vocoder),
                model.stats.codec.sample_rate,
            )
            paths.append(str(rel))
        plan.assign(path=paths).to_csv(tmp / "index.csv", index=False)
    log.info(
        "converted %d %s sentences (%d pairs) with %s, seed %d",
        len(plan),
        params.convert.split,
        plan.groupby(["source", "target"]).ngroups,
        exp.name,
        exp.train.seed,
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--experiment", required=True)
    parser.add_argument("--seed", type=int, default=None, help="one of `seeds` (default: the first)")
    parser.add_argument("--models", default="models")
    parser.add_argument("--features", default="data/features")
    parser.add_argument("--corpus", default="data/corpus")
    parser.add_argument("--out", default="converted/experiments")
    run(main, parser)
