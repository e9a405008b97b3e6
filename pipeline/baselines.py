"""Stage `baselines`: the floor and ceiling every experiment is framed by, scored by the same recipe on the
same held-out sentences, each distinct item once (:data:`vc.statistics.UNITS`):

- ``source``: no conversion (the source's utterance against the target's utterance of the same sentence),
  counted once per unordered speaker pair and sentence (A->B and B->A compare the same two wavs); its rows
  hold both directions, since a perceptual metric of A's recording (similarity to B) is not symmetric;
- ``mean-var``: per-speaker mel-cepstral mean/variance matching plus the log-Gaussian F0 transform, per
  ordered pair and sentence; ``mean-var-mel``: the same matching of the log-mel bins, through HiFi-GAN;
- ``copy-synthesis``: the target analysed and resynthesised by WORLD (the vocoder's floor), once per target
  speaker and sentence; ``copy-synthesis-hifigan``: the target's log-mel through HiFi-GAN (the neural floor).

The perceptual metrics score each baseline's wavs too (:mod:`vc.perceptual.scoring`); ``source`` takes the
natural recordings' values from the references stage. Wavs are written at the corpus's sample rate.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm import tqdm

from pipeline.common import read_params, repo_root, run
from vc.audio import resample
from vc.config import VocoderConfig
from vc.conversion import mean_var_convert, mean_var_mel, vocode
from vc.corpus.build import read_manifest
from vc.evaluation import (
    evaluation_plan,
    system_summary,
    usable_utterances,
    write_system_results,
)
from vc.features.extract import mel_path, read_index
from vc.features.stats import FeatureStats
from vc.features.world import load_features
from vc.io import atomic_dir, write_wav
from vc.perceptual.scoring import ReferenceMaterial, score_every_metric
from vc.statistics import UNITS, distinct_items, with_pair
from vc.tracking import RunTracker, git_commit, group_tag, log_evaluation
from vc.vocoders.store import resolve_vocoder

log = logging.getLogger("pipeline.baselines")


def _baseline_wav(
    name: str,
    src: str,
    tgt: str,
    utt: str,
    features: Path,
    stats: FeatureStats,
    mel_stats: FeatureStats,
    vocoder: VocoderConfig,
) -> tuple[np.ndarray, int]:
    """One baseline waveform and its sample rate."""
    if name == "copy-synthesis":
        return vocode(load_features(features / tgt / f"{utt}.npz"), stats), stats.codec.sample_rate
    if name == "mean-var":
        feats = mean_var_convert(stats, load_features(features / src / f"{utt}.npz"), src, tgt)
        return vocode(feats, stats), stats.codec.sample_rate
    if name == "copy-synthesis-hifigan":
        mel = np.load(mel_path(features / tgt / f"{utt}.npz"))
    else:  # mean-var-mel
        mel = mean_var_mel(mel_stats, np.load(mel_path(features / src / f"{utt}.npz")), src, tgt)
    return vocode(mel, mel_stats, "hifigan", vocoder), mel_stats.codec.sample_rate


def synthesize_baseline(
    name: str,
    plan: pd.DataFrame,
    features: Path,
    stats: FeatureStats,
    mel_stats: FeatureStats,
    vocoder: VocoderConfig,
    sample_rate: int,
    folder: Path,
) -> pd.DataFrame:
    """Write the baseline's wavs under ``folder`` at ``sample_rate``; return the plan with a ``path`` column
    ('' for source).

    ``plan`` holds the baseline's items: ``source, target, utt_id`` (for ``source`` every ordered pair,
    with ``pair``).
    """
    if name == "source":
        return plan.assign(path="")
    paths = []
    rows = zip(plan["source"], plan["target"], plan["utt_id"], strict=True)
    for src, tgt, utt in tqdm(rows, total=len(plan), desc=name, leave=False):
        rel = Path(tgt) / f"{utt}.wav" if UNITS[name] == "target" else Path(f"{src}__{tgt}") / f"{utt}.wav"
        wav, rate = _baseline_wav(name, src, tgt, utt, features, stats, mel_stats, vocoder)
        write_wav(folder / rel, resample(wav, rate, sample_rate), sample_rate)
        paths.append(str(folder / rel))
    return plan.assign(path=paths)


def main(args: argparse.Namespace) -> None:
    params = read_params(args.params)
    stats = FeatureStats.load(args.stats)
    mel_stats = FeatureStats.load(args.mel_stats)
    vocoder = resolve_vocoder(params.vocoder_config(), args.vocoder)
    usable = usable_utterances(
        read_manifest(Path(args.corpus) / "manifest.csv"), read_index(args.features), params.convert.split
    )
    plan = evaluation_plan(
        usable,
        stats.speakers,
        params.convert.pairs,
        params.convert.max_utterances,
    )
    commit = git_commit()
    group = group_tag(Path(args.params).read_text(), commit)
    material = ReferenceMaterial.load(Path(args.references) / "perceptual")
    with atomic_dir(args.converted) as wavs:
        results = {}
        for name in params.baselines:
            unit = UNITS[name]
            items = synthesize_baseline(
                name,
                with_pair(plan) if name == "source" else distinct_items(plan, unit),
                Path(args.features),
                stats,
                mel_stats,
                vocoder,
                params.data.sample_rate,
                wavs / name,
            )
            scores = score_every_metric(
                items,
                args.references,
                material,
                params.features,
                params.evaluate,
                workers=params.evaluate.workers,
                label=name,
                made_from="target" if unit == "target" else "source",
            )
            summary = system_summary(name, "baseline", scores, params.evaluate, unit)
            results[name] = (scores, {**summary, "perceptual": material.info()})
    with atomic_dir(args.out) as out:
        for name, (scores, summary) in results.items():
            write_system_results(out / name, summary, scores)
    for name, (_, summary) in results.items():
        tracker = RunTracker.start(
            params.tracking.experiment,
            f"baseline:{name}",
            root=repo_root(),
            tags={
                "vc.experiment": name,
                "vc.stage": "baselines",
                "vc.kind": "baseline",
                "mlflow.source.git.commit": commit or "",
            },
            params={"baseline": name},
            parent_group=group,
            system_metrics=False,
        )
        with tracker.terminate_on_exit():
            log_evaluation(
                tracker,
                summary,
                [
                    (Path(args.out) / name / "scores.csv", "eval"),
                    (Path(args.out) / name / "summary.json", "eval"),
                ],
            )
        o = summary["overall"]
        log.info(
            "baseline %s: MCD %.2f dB [%.2f, %.2f]",
            name,
            o["mcd_db"],
            o["mcd_db_ci_low"],
            o["mcd_db_ci_high"],
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--features", default="data/features")
    parser.add_argument("--stats", default="data/stats.json")
    parser.add_argument("--mel-stats", default="data/stats-mel.json")
    parser.add_argument("--corpus", default="data/corpus")
    parser.add_argument("--references", default="eval/references")
    parser.add_argument("--converted", default="converted/baselines")
    parser.add_argument("--vocoder", default="models/vocoder", help="the `vocoder` stage's output")
    parser.add_argument("--out", default="eval/baselines")
    run(main, parser)
