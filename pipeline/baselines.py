"""Stage `baselines`: the floor and ceiling every experiment is framed by (:data:`vc.baselines.BASELINES`),
made and scored by the same recipe on the same held-out sentences, each distinct item once. ``source``
takes the natural recordings' perceptual values from the references stage. Wavs are written at the corpus's
sample rate.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import pandas as pd
from tqdm import tqdm

from pipeline.common import read_params, run
from vc import cost
from vc.audio import resample
from vc.baselines import Baseline, BaselineInputs, baseline, wav_relpath
from vc.config import Params
from vc.corpus.build import read_manifest
from vc.corpus.selection import evaluation_plan, usable_utterances
from vc.evaluation.perceptual.reference import ReferenceMaterial
from vc.evaluation.registry import summary_line
from vc.evaluation.score import score_every_metric
from vc.evaluation.summary import system_summary, write_system_results
from vc.features.extract import read_index
from vc.features.stats import FeatureStats
from vc.io import atomic_dir, write_wav
from vc.layout import perceptual_dir
from vc.statistics import distinct_items, with_pair
from vc.tracking import RunTracker, log_evaluation
from vc.vocoders.store import resolve_vocoder

log = logging.getLogger("pipeline.baselines")


def synthesize_baseline(
    entry: Baseline, plan: pd.DataFrame, inputs: BaselineInputs, sample_rate: int, folder: Path
) -> pd.DataFrame:
    """Write the baseline's wavs under ``folder`` at ``sample_rate``; return the plan with a ``path`` column
    ('' where the baseline makes no wav: the recordings themselves are scored).

    ``plan`` holds the baseline's items: ``source, target, utt_id`` (for ``source`` every ordered pair,
    with ``pair``).
    """
    if entry.make_wav is None:
        return plan.assign(path="")
    paths = []
    rows = zip(plan["source"], plan["target"], plan["utt_id"], strict=True)
    for src, tgt, utt in tqdm(rows, total=len(plan), desc=entry.name, leave=False):
        rel = wav_relpath(entry, src, tgt, utt)
        wav, rate = entry.make_wav(inputs, src, tgt, utt)
        write_wav(folder / rel, resample(wav, rate, sample_rate), sample_rate)
        paths.append(str(folder / rel))
    return plan.assign(path=paths)


def _items(entry: Baseline, plan: pd.DataFrame) -> pd.DataFrame:
    """The baseline's distinct items; a symmetric unit keeps both directions of each pair (a perceptual
    metric of A's recording, its similarity to B, is not symmetric), with the ``pair`` key."""
    return with_pair(plan) if entry.unit == "unordered_pair" else distinct_items(plan, entry.unit)


def _log_runs(params: Params, params_path: Path, out: Path, summaries: dict[str, dict]) -> None:
    """One MLflow run per baseline, grouped with the experiments' runs of these params."""
    for name, summary in summaries.items():
        tracker = RunTracker.for_stage(
            params,
            "baselines",
            f"baseline:{name}",
            params_path,
            kind="baseline",
            system=name,
            run_params={"baseline": name},
            system_metrics=False,
        )
        with tracker.terminate_on_exit():
            log_evaluation(
                tracker, summary, [(out / name / f, "eval") for f in ("scores.csv", "summary.json")]
            )
        log.info("baseline %s: %s", name, summary_line(summary["overall"]))


def main(args: argparse.Namespace) -> None:
    params = read_params(args.params)
    stats = FeatureStats.load(args.stats)
    inputs = BaselineInputs(
        Path(args.features),
        stats,
        FeatureStats.load(args.mel_stats),
        resolve_vocoder(params.vocoder_config(), args.vocoder),
    )
    usable = usable_utterances(
        read_manifest(Path(args.corpus) / "manifest.csv"), read_index(args.features), params.convert.split
    )
    plan = evaluation_plan(usable, stats.speakers, params.convert.pairs, params.convert.max_utterances)
    material = ReferenceMaterial.load(perceptual_dir(args.references))
    with atomic_dir(args.converted) as wavs:
        results = {}
        for name in params.baselines:
            entry = baseline(name)
            items = _items(entry, plan)
            with cost.phase(name), cost.phase("synthesis", len(items) * bool(entry.make_wav), "utterance"):
                items = synthesize_baseline(entry, items, inputs, params.data.sample_rate, wavs / name)
            with cost.phase(name):
                scores = score_every_metric(
                    items,
                    args.references,
                    material,
                    params.features,
                    params.evaluate,
                    workers=params.evaluate.workers,
                    label=name,
                    made_from=entry.made_from,
                )
            summary = system_summary(name, "baseline", scores, params.evaluate, entry.unit)
            results[name] = (scores, {**summary, "perceptual": material.info()})
    with atomic_dir(args.out) as out:
        for name, (scores, summary) in results.items():
            write_system_results(out / name, summary, scores)
    with cost.phase("mlflow"):
        _log_runs(params, Path(args.params), Path(args.out), {n: s for n, (_, s) in results.items()})


def build_parser() -> argparse.ArgumentParser:
    """The stage's arguments; dvc.yaml passes every path."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    for name in ("features", "stats", "mel-stats", "corpus", "references", "converted", "out"):
        parser.add_argument(f"--{name}", required=True)
    parser.add_argument("--vocoder", required=True, help="the `vocoder` stage's output")
    return parser


if __name__ == "__main__":
    run(main, build_parser())
