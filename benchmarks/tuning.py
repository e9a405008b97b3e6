"""Tune on validation, never on test: train variants of one experiment and score them on the validation split.

    python -m benchmarks.tuning                                  # the README's tuning table
    python -m benchmarks.tuning --iterations 400 --variant 'lr-2e-4={"train": {"optimizer": {"lr_g": 2e-4}}}'

Reads the outputs of `dvc repro` up to `stats` (data/corpus, data/features, data/stats.json) and params.yaml.
Each variant is the experiment's resolved config with the given overrides (and ``--iterations``); it is
trained with the first seed, converts every validation sentence of every ordered pair, and is scored by the
report's recipe and statistics: MCD with a cluster-bootstrap interval, and the paired difference against the
mean-var baseline on the same validation items, and against the first variant on the same items (the same
seed: a paired ablation). Prints a Markdown table. The test sentences are never read.

    python -m benchmarks.tuning --seed 1 --variant ...           # another training seed (default: the first)
    python -m benchmarks.tuning --perceptual --variant ...       # and conversion accuracy and CER

``--perceptual`` adds the speaker and intelligibility metrics (the report's models and recipe): reference
material is built for the validation split (centroids from the training utterances, the validation
recordings' transcripts), and each row gets its conversion accuracy and CER, with CER's paired difference
against mean-var. A variant may also carry conversion settings, ``"convert": {"energy": "generator"}``
(``convert.energy``; the rest of ``convert`` comes from params.yaml).
"""

from __future__ import annotations

import argparse
import json
import logging
import tempfile
import time
from pathlib import Path

import pandas as pd

from pipeline.common import read_params
from vc.baselines import mean_var_convert
from vc.config import Energy, ExperimentConfig
from vc.configlib import build, deep_merge, to_dict
from vc.conversion import convert_features, vocode
from vc.corpus.build import read_manifest
from vc.corpus.selection import evaluation_plan, usable_utterances
from vc.evaluation.perceptual.material import build_reference_material
from vc.evaluation.perceptual.reference import ReferenceMaterial
from vc.evaluation.recipe import analyze_wav_for_eval, score_system
from vc.evaluation.score import score_perceptual
from vc.features.extract import load_corpus_features, read_index
from vc.features.stats import FeatureStats
from vc.features.world import load_features
from vc.io import write_wav
from vc.stargan.data import FeatureBank
from vc.stargan.store import TrainedModel
from vc.stargan.trainer import Trainer
from vc.statistics import estimate_metric, paired_difference, verdict

log = logging.getLogger("benchmarks.tuning")

# The README's tuning table: where the CPU default departs from the paper, one change at a time.
DEFAULT_VARIANTS = {
    "paper settings at CPU width (sum pooling, lr 2e-4/1e-4)": {
        "model": {"discriminator": {"pooling": "sum"}},
        "train": {"optimizer": {"lr_g": 2e-4, "lr_d": 1e-4}},
    },
    "mean pooling, lr 2e-4/1e-4": {"train": {"optimizer": {"lr_g": 2e-4, "lr_d": 1e-4}}},
    "mean pooling, lr 1e-3/5e-4 (the default)": {},
    "the default without the adversarial loss": {"train": {"lambdas": {"adv": 0.0}}},
}


def _convert_all(
    plan: pd.DataFrame,
    features: Path,
    stats: FeatureStats,
    out: Path,
    model: TrainedModel | None,
    energy: Energy = "mean-var",
) -> pd.DataFrame:
    """Wavs of ``model``'s conversions (None: the mean-var baseline); the plan with a ``path`` column."""
    paths = []
    for src, tgt, utt in zip(plan["source"], plan["target"], plan["utt_id"], strict=True):
        feats = load_features(features / src / f"{utt}.npz")
        converted = (
            mean_var_convert(stats, feats, src, tgt)
            if model is None
            else convert_features(model, feats, src, tgt, energy)
        )
        path = out / f"{src}__{tgt}" / f"{utt}.wav"
        write_wav(path, vocode(converted, stats), stats.codec.sample_rate)
        paths.append(str(path))
    return plan.assign(path=paths)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--experiment", default="stargan-vc2", help="the experiment the variants start from")
    parser.add_argument("--iterations", type=int, default=None, help="default: the experiment's")
    parser.add_argument(
        "--variant", action="append", default=[], help="NAME=JSON overrides of model/train (repeatable)"
    )
    parser.add_argument("--seed", type=int, default=None, help="training seed (default: the first of seeds)")
    parser.add_argument("--data", default="data", help="folder with corpus/, features/ and stats.json")
    parser.add_argument("--out", default=None, help="also write the table (Markdown) and JSON here")
    parser.add_argument(
        "--perceptual", action="store_true", help="also conversion accuracy and CER (speaker, ASR models)"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level="INFO", format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    params = read_params(args.params)
    variants = (
        dict(_parse_variant(v) for v in args.variant) if args.variant else dict.fromkeys(DEFAULT_VARIANTS)
    )
    data = Path(args.data)
    features = data / "features"
    stats = FeatureStats.load(data / "stats.json")
    usable = usable_utterances(
        read_manifest(data / "corpus/manifest.csv"), read_index(features), "validation"
    )
    plan = evaluation_plan(usable, stats.speakers, params.convert.pairs)
    base = params.experiment(args.experiment)
    log.info("validation: %d sentences, %d conversions per variant", plan["utt_id"].nunique(), len(plan))

    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        for spk, utt, path in zip(usable["speaker"], usable["utt_id"], usable["path"], strict=True):
            analyze_wav_for_eval(data / "corpus" / path, params.features).save(
                tmp / "refs" / spk / f"{utt}.npz"
            )

        material = _validation_material(usable, data, params) if args.perceptual else None

        def score(items: pd.DataFrame) -> pd.DataFrame:
            scores = score_system(items, tmp / "refs", params.features, params.evaluate)
            if material is None:
                return scores
            extra = score_perceptual(items, material, params.evaluate, desc="perceptual")
            return pd.concat([scores, extra], axis=1)

        mean_var = score(_convert_all(plan, features, stats, tmp / "mean-var", None))
        bank = FeatureBank.from_features(
            load_corpus_features(features, "train"), stats, base.train.crop_frames
        )
        e = params.evaluate
        stat = {"confidence": e.confidence, "n_resamples": e.bootstrap, "seed": e.seed, "min_clusters": 2}
        rows = [
            {
                "variant": "mean-var baseline",
                "MCD dB": _interval(estimate_metric(mean_var, "mcd_db", **stat)),
                **_perceptual_cells(mean_var, None, stat),
            }
        ]
        first: tuple[str, pd.DataFrame] | None = None
        for i, (name, text) in enumerate(variants.items()):
            overrides = DEFAULT_VARIANTS[name] if text is None else json.loads(text)
            convert = params.convert.model_copy(update=overrides.pop("convert", {}))
            cfg = deep_merge({"model": to_dict(base.model), "train": to_dict(base.train)}, overrides)
            if args.iterations:
                cfg["train"]["iterations"] = args.iterations
                cfg["train"]["optimizer"]["decay_start"] = args.iterations // 2
            if args.seed is not None:
                cfg["train"]["seed"] = args.seed
            exp = build(ExperimentConfig, {"name": base.name, **cfg})
            start = time.perf_counter()
            state = Trainer(exp, bank, tmp / f"ckpt{i}", progress=False).fit()
            seconds = time.perf_counter() - start
            model = TrainedModel(state.generator.eval(), stats, exp, params.features, {})
            scores = score(_convert_all(plan, features, stats, tmp / f"v{i}", model, convert.energy))
            diff = paired_difference(scores, mean_var, "mcd_db", "conversion")
            if first is None:
                first = (name, scores)
            else:
                ablation = paired_difference(scores, first[1], "mcd_db", "conversion")
                against_first = verdict(estimate_metric(ablation, "diff", **stat))
            rows.append(
                {
                    "variant": name,
                    "MCD dB": _interval(estimate_metric(scores, "mcd_db", **stat)),
                    "vs mean-var (paired)": verdict(estimate_metric(diff, "diff", **stat)),
                    "vs the first variant (paired)": "-" if first[1] is scores else against_first,
                    **_perceptual_cells(scores, mean_var, stat, first[1]),
                    "seed": exp.train.seed,
                    "iterations": exp.train.iterations,
                    "train s": round(seconds),
                }
            )
            log.info("%s: %s", name, rows[-1])
    table = pd.DataFrame(rows).astype(object).fillna("")
    markdown = _markdown(table)
    log.info("validation split, %d sentences:\n%s", plan["utt_id"].nunique(), markdown)
    if args.out:
        Path(args.out).mkdir(parents=True, exist_ok=True)
        (Path(args.out) / "tuning.md").write_text(markdown + "\n")
        table.to_json(Path(args.out) / "tuning.json", orient="records", indent=1)


def _validation_material(usable: pd.DataFrame, data: Path, params) -> ReferenceMaterial:
    """The speaker and intelligibility groups' reference material for the validation split: centroids from
    the training utterances, the validation recordings' own scores, texts from the manifest."""
    corpus = data / "corpus"
    manifest, index = read_manifest(corpus / "manifest.csv"), read_index(data / "features")
    train = usable_utterances(manifest, index, "train")
    texts = manifest.set_index(["speaker", "utt_id"])["text"].fillna("")
    naturals = usable.assign(
        path=[str(corpus / p) for p in usable["path"]],
        text=[texts.get((s, u), "") for s, u in zip(usable["speaker"], usable["utt_id"], strict=True)],
    )
    cfg = params.evaluate.model_copy(update={"perceptual": ("speaker", "intelligibility")})
    train = train.assign(path=[str(corpus / p) for p in train["path"]])
    material = build_reference_material(train, naturals, cfg)
    missing = {"speaker", "intelligibility"} - set(material.metrics)
    if missing:
        raise SystemExit(f"--perceptual: {sorted(missing)} cannot run: {material.skipped}")
    return material


def _perceptual_cells(
    scores: pd.DataFrame, mean_var: pd.DataFrame | None, stat: dict, first: pd.DataFrame | None = None
) -> dict[str, str]:
    """Conversion accuracy and CER with intervals, and CER's paired differences against mean-var and
    against the first variant (the same items)."""
    if "cer" not in scores:
        return {}
    cells = {
        "conversion accuracy": _interval(estimate_metric(scores, "spk_accuracy", **stat)),
        "CER": _interval(estimate_metric(scores, "cer", **stat)),
    }
    for label, other in (("mean-var's", mean_var), ("the first variant's", first)):
        if other is not None and other is not scores:
            est = estimate_metric(paired_difference(scores, other, "cer", "conversion"), "diff", **stat)
            cells[f"CER - {label}"] = f"{est.mean:+.3f} [{est.low:+.3f}, {est.high:+.3f}]"
    return cells


def _parse_variant(text: str) -> tuple[str, str]:
    """``NAME={...}`` -> ``(NAME, '{...}')``; the name may contain ``=``: the JSON starts at the first
    ``={``."""
    name, brace, overrides = text.partition("={")
    if not brace or not name:
        raise SystemExit(f"--variant {text!r}: expected NAME={{JSON overrides of model/train}}")
    try:
        json.loads("{" + overrides)
    except json.JSONDecodeError as err:
        raise SystemExit(f"--variant {name!r}: the overrides are not JSON ({err})") from None
    return name, "{" + overrides


def _interval(est) -> str:
    return f"{est.mean:.2f} [{est.low:.2f}, {est.high:.2f}]"


def _markdown(df: pd.DataFrame) -> str:
    cols = list(df.columns)
    lines = ["| " + " | ".join(cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    return "\n".join(
        lines + ["| " + " | ".join(str(v) for v in r) + " |" for r in df.itertuples(index=False)]
    )


if __name__ == "__main__":
    main()
