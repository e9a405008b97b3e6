"""Stage `evaluate@<experiment>-<seed>`: score one run's converted wavs by the recipe; log into its MLflow
training run. ``scores.csv`` has one row per conversion, with the run's ``seed``."""

from __future__ import annotations

import argparse
import json
import logging
import shutil
from pathlib import Path

import pandas as pd

from pipeline.common import read_params, repo_root, run
from vc import cost
from vc.evaluation.perceptual.reference import ReferenceMaterial
from vc.evaluation.recipe import RecipeAnalysis, analyze_wav_for_eval
from vc.evaluation.registry import summary_line
from vc.evaluation.score import score_every_metric
from vc.evaluation.summary import system_summary, write_system_results
from vc.layout import perceptual_dir, run_dir
from vc.report.plots import plot_mcep_panels
from vc.tracking import RunTracker, log_evaluation

log = logging.getLogger("pipeline.evaluate")


def mcep_figure(
    first: pd.Series, converted_wav: Path, references: Path, features, title: str, out: Path
) -> None:
    """Source, converted and target mel-cepstrograms (c1..cD) of one utterance."""
    panels = {
        f"source ({first['source']})": RecipeAnalysis.load(
            references / first["source"] / f"{first['utt_id']}.npz"
        ),
        "converted": analyze_wav_for_eval(converted_wav, features),
        f"target ({first['target']})": RecipeAnalysis.load(
            references / first["target"] / f"{first['utt_id']}.npz"
        ),
    }
    plot_mcep_panels({k: v.mcep[:, 1:] for k, v in panels.items()}, title, out)


def sample_files(items: pd.DataFrame, converted: Path, corpus: Path, n: int) -> list[tuple[Path, str]]:
    """The first ``n`` conversions with their source and target wavs, as ``(path, artifact folder)``."""
    manifest = pd.read_csv(corpus / "manifest.csv", dtype=str, keep_default_na=False).set_index(
        ["speaker", "utt_id"]
    )
    files = []
    for row in items.head(n).itertuples(index=False):
        folder = f"samples/{row.source}__{row.target}/{row.utt_id}"
        files += [
            (converted / row.path, f"{folder}/converted"),
            (corpus / manifest.loc[(row.source, row.utt_id), "path"], f"{folder}/source"),
            (corpus / manifest.loc[(row.target, row.utt_id), "path"], f"{folder}/target"),
        ]
    return files


def main(args: argparse.Namespace) -> None:
    params = read_params(args.params)
    exp = params.experiment(args.experiment, args.seed)
    seed = exp.train.seed
    converted = run_dir(args.converted, exp.name, seed)
    items = pd.read_csv(converted / "index.csv", dtype=str, keep_default_na=False)
    wavs = items.assign(path=[str(converted / p) for p in items["path"]])
    material = ReferenceMaterial.load(perceptual_dir(args.references))
    scores = score_every_metric(
        wavs, args.references, material, params.features, params.evaluate, workers=params.evaluate.workers
    )
    scores.insert(3, "seed", seed)
    summary = system_summary(exp.name, "experiment", scores, params.evaluate)
    summary["perceptual"] = material.info()
    out = run_dir(args.out, exp.name, seed)
    write_system_results(out, summary, scores)
    figure = out / "mcep.png"
    readable = items[scores["note"].eq("").to_numpy()]  # the first conversion the recipe could analyse
    if len(readable):
        first = readable.iloc[0]
        mcep_figure(
            first,
            converted / first["path"],
            Path(args.references),
            params.features,
            f"{exp.name} (seed {seed}): {first['source']} -> {first['target']}",
            figure,
        )

    model_dir = run_dir(args.models, exp.name, seed)
    for name in ("train.json", "losses.tsv"):  # the report reads everything of an experiment from here
        shutil.copyfile(model_dir / name, out / name)
    train = json.loads((model_dir / "train.json").read_text())
    tracker = RunTracker.resume(train["mlflow_run_id"], repo_root())
    with tracker.terminate_on_exit(), cost.phase("mlflow"):
        files = [(out / "scores.csv", "eval"), (out / "summary.json", "eval")]
        files += [(figure, "eval")] if figure.is_file() else []
        files += sample_files(items, converted, Path(args.corpus), params.evaluate.samples_to_log)
        log_evaluation(tracker, summary, files)
    log.info("%s seed %d: %s", exp.name, seed, summary_line(summary["overall"]))


def build_parser() -> argparse.ArgumentParser:
    """The stage's arguments; dvc.yaml passes every path."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--experiment", required=True)
    parser.add_argument("--seed", type=int, default=None, help="one of `seeds` (default: the first)")
    for name in ("converted", "references", "models", "corpus", "out"):
        parser.add_argument(f"--{name}", required=True)
    return parser


if __name__ == "__main__":
    run(main, build_parser())
