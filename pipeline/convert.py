"""Stage `convert@<experiment>`: convert every evaluation utterance for every speaker pair to wav."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from tqdm import tqdm

from pipeline.common import read_params, run
from vc.conversion import convert_features, vocode
from vc.corpus.build import read_manifest
from vc.evaluation import evaluation_plan
from vc.features.world import load_features
from vc.io import atomic_dir, write_wav
from vc.model_store import load_model

log = logging.getLogger("pipeline.convert")


def main(args: argparse.Namespace) -> None:
    params = read_params(args.params)
    params.experiment(args.experiment)  # an unknown name is an error naming the defined ones
    model = load_model(Path(args.models) / args.experiment / "model")
    features = Path(args.features)
    plan = evaluation_plan(
        read_manifest(Path(args.corpus) / "manifest.csv"),
        model.speakers,
        params.convert.pairs,
        params.convert.max_utterances,
    )
    out = Path(args.out) / args.experiment
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
        "converted %d utterances (%d pairs) with %s",
        len(plan),
        plan.groupby(["source", "target"]).ngroups,
        args.experiment,
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--experiment", required=True)
    parser.add_argument("--models", default="models")
    parser.add_argument("--features", default="data/features")
    parser.add_argument("--corpus", default="data/corpus")
    parser.add_argument("--out", default="converted/experiments")
    run(main, parser)
