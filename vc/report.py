"""The generated report: Markdown, figures, DVC metrics and per-pair plots, from the evaluation folders.

Inputs (all written by earlier stages): ``eval/experiments/<name>/`` (summary.json, scores.csv, train.json,
losses.tsv, mcep.png), ``eval/baselines/<name>/`` (summary.json, scores.csv), the perceptual metrics'
reference material (``eval/references/perceptual/``; its sections are in :mod:`vc.perceptual.report`), the
corpus and features summaries. Outputs in the report folder: ``report.md``, ``metrics.json`` (DVC metrics),
``per_pair/<system>.csv`` and ``losses/<experiment>.tsv`` (DVC plots) and ``figures/``. Nothing in the report
depends on the clock or the machine.
"""

from __future__ import annotations

import json
import math
import shutil
import textwrap
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from vc.config import MEL_BASELINES, ConvertConfig, EvaluateConfig, ExperimentConfig, FeaturesConfig
from vc.configlib import flatten, to_dict
from vc.evaluation import HIGHER_IS_BETTER, metric_unit, system_summary
from vc.io import atomic_dir, write_json, write_text
from vc.markdown import fmt as _fmt
from vc.markdown import interval as _ci
from vc.markdown import md_table as _md_table
from vc.perceptual.report import LABELS as PERCEPTUAL_LABELS
from vc.perceptual.report import (
    NATURAL_ROW,
    headline_cells,
    natural_cells,
    natural_estimates,
    perceptual_recipe_markdown,
    perceptual_section,
    shown_metrics,
)
from vc.perceptual.scoring import ReferenceMaterial
from vc.plots import plot_loss_curves, plot_mcd_bars
from vc.statistics import UNITS, Estimate, Unit, estimate_metric, paired_difference, verdict

__all__ = [
    "Comparison",
    "SystemResult",
    "build_report",
    "check_report",
    "compare",
    "load_results",
    "recipe_markdown",
]


def recipe_markdown(features: FeaturesConfig, evaluate: EvaluateConfig, sample_rate: int) -> str:
    """The MCD recipe as the README and every report state it, with this configuration's values."""
    import pysptk

    alpha = features.mcep_alpha if features.mcep_alpha is not None else pysptk.util.mcepalpha(sample_rate)
    f, e = features, evaluate
    steps = [
        "Analyse the converted wav and the target speaker's wav of the same sentence with WORLD: Harvest F0 "
        f"({f.f0_floor:g}-{f.f0_ceil:g} Hz) and CheapTrick, {f.frame_period:g} ms frames.",
        f"Mel-cepstrum by `pysptk.sp2mc`, order {f.mcep_order}, all-pass constant {alpha:.3f} "
        f"(`pysptk.util.mcepalpha({sample_rate})` unless `features.mcep_alpha` is set).",
        "Drop silent frames of each utterance: frame power 10 log10(mean_k |H_t(k)|^2) of the CheapTrick "
        f"envelope, relative to the utterance's mean power; frames below {e.power_threshold_db:g} dB are "
        "dropped.",
        "Exclude c0; align c1..cD by exact DTW (`librosa.sequence.dtw` on a Euclidean `cdist` cost matrix, "
        "steps (1,1), (1,0), (0,1)).",
        "MCD = 10/ln10 * sqrt(2 * sum_d (c_d - c'_d)^2) dB per aligned frame pair, averaged over the path.",
        "log-F0 RMSE (natural log; also in cents) and Pearson F0 correlation (Hz) over aligned frames "
        "voiced in both; the V/UV error over all aligned frames.",
        "MSD: RMSE (dB) between log modulation spectra of the c1..cD trajectories of the whole utterances "
        f"({e.msd_fft}-frame Hann segments, hop {e.msd_fft // 2}), averaged over coefficients.",
        "Per utterance, each distinct item once (copy-synthesis per target and sentence; no conversion per "
        "unordered pair and sentence); the mean over items with a "
        f"{e.confidence:.0%} percentile interval from a cluster bootstrap ({e.bootstrap} resamples, seed "
        f"{e.seed}) that resamples sentences (all pairs of a sentence together) and training seeds, per "
        f"speaker pair and overall; no interval below {e.min_sentences} sentences. Comparisons are paired "
        "differences on the same items, bootstrapped the same way.",
    ]
    return "\n".join(
        textwrap.fill(f"{i}. {step}", width=110, subsequent_indent="   ")
        for i, step in enumerate(steps, start=1)
    )


@dataclass
class SystemResult:
    """One system's scores (one row per distinct item; experiments: every seed) and training records.

    Attributes:
        name: experiment or baseline name.
        kind: ``"experiment"`` or ``"baseline"``.
        unit: the item unit of its rows (:data:`vc.statistics.UNITS`).
        scores: per-item scores with ``source, target, utt_id`` (``seed`` for experiments, ``pair`` for
            ``source``) and the :data:`vc.evaluation.METRICS` columns.
        trains: ``train.json`` of each seed's run (experiments only).
        losses: each seed's loss curves by seed (experiments only).
        figure: a mel-cepstrogram figure (experiments only).
    """

    name: str
    kind: str
    unit: Unit
    scores: pd.DataFrame
    trains: list[dict[str, Any]] = field(default_factory=list)
    losses: dict[int, pd.DataFrame] = field(default_factory=dict)
    figure: Path | None = None


def _read_scores(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, dtype={"source": str, "target": str, "utt_id": str, "pair": str})


def load_results(
    eval_dir: str | Path, experiments: list[str], seeds: list[int], baselines: list[str]
) -> list[SystemResult]:
    """Read every system's evaluation folders (experiments first, in params order, every seed)."""
    eval_dir = Path(eval_dir)
    out = []
    for name in experiments:
        folders = [eval_dir / "experiments" / name / f"seed-{seed}" for seed in seeds]
        out.append(
            SystemResult(
                name,
                "experiment",
                "conversion",
                pd.concat([_read_scores(d / "scores.csv") for d in folders], ignore_index=True),
                [json.loads((d / "train.json").read_text()) for d in folders],
                {
                    seed: pd.read_csv(d / "losses.tsv", sep="\t")
                    for seed, d in zip(seeds, folders, strict=True)
                },
                folders[0] / "mcep.png",
            )
        )
    for name in baselines:
        scores = _read_scores(eval_dir / "baselines" / name / "scores.csv")
        out.append(SystemResult(name, "baseline", UNITS[name], scores))
    return out


def differing_params(experiments: Mapping[str, ExperimentConfig]) -> pd.DataFrame:
    """The resolved ``model.*``/``train.*`` params whose values differ between experiments (seed aside)."""
    flat = {
        name: flatten({"model": to_dict(e.model), "train": to_dict(e.train)})
        for name, e in experiments.items()
    }
    keys = sorted({k for f in flat.values() for k in f} - {"train.seed"})
    rows = [
        {"param": k, **{n: f.get(k) for n, f in flat.items()}}
        for k in keys
        if len({json.dumps(f.get(k)) for f in flat.values()}) > 1
    ]
    return pd.DataFrame(rows)


@dataclass
class Comparison:
    """A paired difference ``system - other`` of one metric on the same items, and its verdict."""

    system: str
    other: str
    metric: str
    estimate: Estimate
    verdict: str


def _has_values(scores: pd.DataFrame, metric: str) -> bool:
    return metric in scores.columns and bool(scores[metric].notna().any())


def compare(results: list[SystemResult], reference: str | None, cfg: EvaluateConfig) -> list[Comparison]:
    """Each experiment against each baseline and against the ``reference`` experiment, by MCD, MSD and
    the perceptual metrics both systems have (:data:`vc.perceptual.report.LABELS`), each item paired by its
    unit in the other system (:func:`vc.evaluation.metric_unit`); verdicts respect each metric's direction."""
    by_name = {r.name: r for r in results}
    out = []
    for r in results:
        if r.kind != "experiment":
            continue
        others = [b for b in results if b.kind == "baseline"]
        if reference is not None and r.name != reference and reference in by_name:
            others.insert(0, by_name[reference])
        for other in others:
            for metric in ("mcd_db", "msd_db", *PERCEPTUAL_LABELS):
                if not (_has_values(r.scores, metric) and _has_values(other.scores, metric)):
                    continue
                diff = paired_difference(r.scores, other.scores, metric, metric_unit(other.unit, metric))
                est = estimate_metric(
                    diff,
                    "diff",
                    confidence=cfg.confidence,
                    n_resamples=cfg.bootstrap,
                    seed=cfg.seed,
                    min_clusters=cfg.min_sentences,
                )
                words = (
                    verdict(est)
                    if metric in ("mcd_db", "msd_db")
                    else verdict(
                        est,
                        lower_is_better=metric not in HIGHER_IS_BETTER,
                        unit="",
                        digits=PERCEPTUAL_LABELS[metric][1],
                    )
                )
                out.append(Comparison(r.name, other.name, metric, est, words))
    return out


def build_report(
    out_dir: str | Path,
    results: list[SystemResult],
    *,
    title: str,
    recipe: str,
    corpus_summary: dict,
    features_summary: dict,
    experiments: Mapping[str, ExperimentConfig],
    evaluate: EvaluateConfig,
    convert: ConvertConfig,
    reference: str | None,
    perceptual: ReferenceMaterial | None = None,
    vocoder: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Write the report folder atomically; return the metrics written to ``metrics.json``.

    ``perceptual``: the references stage's perceptual material (natural recordings, skipped metrics,
    provenance); None leaves the perceptual section out. ``vocoder``: the ``vocoder`` stage's manifest
    (``models/vocoder/vocoder.json``: pretrained or fine-tuned HiFi-GAN), stated under the main table."""
    summaries = {r.name: system_summary(r.name, r.kind, r.scores, evaluate, r.unit) for r in results}
    comparisons = compare(results, reference, evaluate)
    with atomic_dir(out_dir) as tmp:
        (tmp / "figures").mkdir()
        (tmp / "per_pair").mkdir()
        (tmp / "losses").mkdir()
        table = pd.DataFrame(
            [{"system": r.name, "kind": r.kind, **summaries[r.name]["overall"]} for r in results]
        )
        plot_mcd_bars(table, tmp / "figures" / "mcd.png", evaluate.confidence)
        curves = {f"{r.name}/seed-{s}": df for r in results for s, df in r.losses.items()}
        plot_loss_curves(curves, ["d/adv", "g/adv", "g/cyc", "g/id"], tmp / "figures" / "losses.png")
        for r in results:
            if r.figure is not None and r.figure.is_file():
                shutil.copyfile(r.figure, tmp / "figures" / f"mcep-{r.name}.png")
            pairs = _pairs_table(r, summaries[r.name])
            pairs.round(4).to_csv(tmp / "per_pair" / f"{r.name}.csv", index=False)
            for seed, losses in r.losses.items():
                losses.to_csv(tmp / "losses" / f"{r.name}-seed-{seed}.tsv", sep="\t", index=False)
        metrics = _metrics(results, summaries, comparisons)
        write_json(tmp / "metrics.json", metrics)
        write_text(
            tmp / "report.md",
            _markdown(
                results,
                summaries,
                comparisons,
                title=title,
                recipe=recipe,
                corpus=corpus_summary,
                features=features_summary,
                experiments=experiments,
                evaluate=evaluate,
                convert=convert,
                reference=reference,
                perceptual=perceptual,
                hifigan=vocoder,
            ),
        )
    return metrics


def _metrics(
    results: list[SystemResult], summaries: Mapping[str, dict], comparisons: list[Comparison]
) -> dict[str, Any]:
    """``metrics.json``: per system its overall numbers, seed spread and paired differences (MCD and the
    perceptual metrics)."""
    out: dict[str, Any] = {}
    for r in results:
        o = summaries[r.name]["overall"]
        entry: dict[str, Any] = {k: round(float(v), 4) for k, v in o.items() if isinstance(v, int | float)}
        if r.kind == "experiment":
            spread = summaries[r.name]["seed_spread"]
            entry["mcd_db_seed_sd"] = round(spread["sd"], 4)
        for c in comparisons:
            if c.system == r.name and c.metric != "msd_db":
                e = c.estimate
                entry[f"{c.metric}_minus_{c.other}"] = {
                    "diff": round(e.mean, 4),
                    "ci_low": round(e.low, 4),
                    "ci_high": round(e.high, 4),
                }
        out[r.name] = entry
    return out


def _pairs_table(r: SystemResult, summary: Mapping[str, Any]) -> pd.DataFrame:
    pairs = pd.DataFrame(summary["pairs"])
    if r.unit == "conversion":
        label = pairs["source"] + " -> " + pairs["target"]
    elif r.unit == "target":
        label = "* -> " + pairs["target"]
    else:
        label = pairs["pair"].str.replace("|", " <-> ", regex=False)
    pairs.insert(0, "pair", label) if "pair" not in pairs else pairs.__setitem__("pair", label)
    return pairs


def _pair_cell(r: SystemResult, summary: Mapping[str, Any], src: str, tgt: str) -> str:
    for p in summary["pairs"]:
        match = {
            "conversion": p.get("source") == src and p.get("target") == tgt,
            "target": p.get("target") == tgt,
            "unordered_pair": p.get("pair") == "|".join(sorted((src, tgt))),
        }[r.unit]
        if match:
            return _ci(p, "mcd_db")
    return "n/a"


def _verdict_table(results: list[SystemResult], comparisons: list[Comparison], metric: str) -> str:
    """One row per experiment, one column per system compared with, the verdict of ``metric`` in cells."""
    others = list(dict.fromkeys(c.other for c in comparisons))
    verdicts = {(c.system, c.other): c.verdict for c in comparisons if c.metric == metric}
    rows = [
        {"experiment": r.name, **{f"vs {o}": verdicts.get((r.name, o), "-") for o in others}}
        for r in results
        if r.kind == "experiment"
    ]
    return _md_table(pd.DataFrame(rows))


def system_vocoder(result: SystemResult, experiments: Mapping[str, ExperimentConfig]) -> str:
    """The vocoder that made a system's wavs: ``WORLD``, ``HiFi-GAN``, or ``-`` (``source``: recordings)."""
    if result.kind == "experiment":
        return "HiFi-GAN" if experiments[result.name].model.features == "mel" else "WORLD"
    if result.name == "source":
        return "-"
    return "HiFi-GAN" if result.name in MEL_BASELINES else "WORLD"


def hifigan_note(manifest: Mapping[str, Any]) -> str:
    """One sentence on the HiFi-GAN behind the log-mel rows, from the ``vocoder`` stage's manifest."""
    base = manifest.get("base", {})
    origin = f"{base.get('source', '?')}, SHA-256 {str(base.get('sha256', '?'))[:12]}"
    generator = str(manifest.get("generator", "?")).upper()
    if not manifest.get("finetuned"):
        return f"HiFi-GAN: the pretrained {generator} generator ({origin}), not fine-tuned."
    return (
        f"HiFi-GAN: the {generator} generator ({origin}) fine-tuned for {manifest.get('iterations')} "
        "iterations on the training split's audio (stage `vocoder`, MLflow run "
        f"`{manifest.get('mlflow_run_id')}`); `copy-synthesis-hifigan` uses the same generator."
    )


def _markdown(
    results: list[SystemResult],
    summaries: Mapping[str, dict],
    comparisons: list[Comparison],
    *,
    title: str,
    recipe: str,
    corpus: dict,
    features: dict,
    experiments: Mapping[str, ExperimentConfig],
    evaluate: EvaluateConfig,
    convert: ConvertConfig,
    reference: str | None,
    perceptual: ReferenceMaterial | None,
    hifigan: Mapping[str, Any] | None = None,
) -> str:
    ci = f"{evaluate.confidence:.0%} CI"
    parts = [
        f"# {title}",
        "",
        "Generated by `dvc repro` (stage `report`); every number below comes from the pipeline's outputs.",
        "",
    ]
    first = next(r for r in results if r.kind == "experiment")
    seeds = sorted(first.scores["seed"].unique().tolist()) if "seed" in first.scores else [0]
    sentences = first.scores["utt_id"].nunique()
    pairs = first.scores.groupby(["source", "target"]).ngroups
    split = convert.split
    scope = (
        f"Scored on the **{split}** split: {sentences} sentences x {pairs} ordered speaker pairs, "
        f"every experiment trained with {len(seeds)} seed(s) ({', '.join(map(str, seeds))})."
    )
    if split == "validation":
        scope += " **Validation is for tuning: these are not test results.**"
    if convert.max_utterances is not None:
        scope += f" Capped at `convert.max_utterances: {convert.max_utterances}` sentences per pair."
    else:
        scope += " Every held-out sentence of every pair is converted (no cap)."
    parts += [scope, ""]

    parts += ["## Corpus", ""]
    rows = [
        {
            "speaker": spk,
            "train utts": c["train"],
            "validation utts": c.get("validation", 0),
            "test utts": c.get("test", 0),
            "seconds": c["seconds"],
            "mean F0 (Hz)": features["speakers"].get(spk, {}).get("mean_f0_hz", "n/a"),
        }
        for spk, c in corpus["speakers"].items()
    ]
    skipped = [*corpus.get("skipped_files", []), *features.get("skipped_files", [])]
    parts += [
        _md_table(pd.DataFrame(rows)),
        "",
        f"{corpus['utterances']} utterances, {corpus['seconds']:.0f} s of prepared audio, "
        f"{len(skipped)} skipped. WORLD analysis real-time factor: {features['real_time_factor']}.",
        "",
    ]
    if skipped:
        parts += ["Skipped files (`corpus.on_bad_file: skip`):", ""]
        parts += [f"- `{s['file']}`: {s['reason']}" for s in skipped] + [""]

    parts += [
        "## Results",
        "",
        f"Means over distinct items with {ci} (cluster bootstrap over sentences and seeds). Lower is better "
        "except F0 correlation (and where a perceptual column says otherwise). Seed spread: the SD (min to "
        "max) of the per-seed mean MCD.",
        "",
    ]
    shown = shown_metrics(summaries)
    rows = []
    for r in results:
        o = summaries[r.name]["overall"]
        spread = summaries[r.name]["seed_spread"]
        vocoder = system_vocoder(r, experiments)
        shared_f0 = r.name == "mean-var" or (r.kind == "experiment" and vocoder == "WORLD")
        mark = " ‡" if shared_f0 else " §" if r.kind == "experiment" or r.name == "mean-var-mel" else ""
        rows.append(
            {
                "system": r.name,
                "kind": r.kind,
                "vocoder": vocoder,
                f"MCD dB ({ci})": _ci(o, "mcd_db"),
                "seed spread": (
                    f"{_fmt(spread['sd'])} ({_fmt(spread['min'])}-{_fmt(spread['max'])})"
                    if r.kind == "experiment" and spread["seeds"] > 1
                    else "-"
                ),
                "MSD dB": _ci(o, "msd_db"),
                "log-F0 RMSE": _fmt(o["log_f0_rmse"], 3) + mark,
                "F0 corr": _fmt(o["f0_corr"], 3) + mark,
                **headline_cells(o, shown),
                "n": int(o["n"]),
                "sentences": int(o["sentences"]),
                "seeds": int(o["seeds"]),
            }
        )
    if perceptual is not None and shown:
        dash = dict.fromkeys(("seed spread", "MSD dB", "log-F0 RMSE", "F0 corr"), "-")
        rows.append(
            {
                "system": NATURAL_ROW,
                "kind": "reference",
                "vocoder": "-",
                f"MCD dB ({ci})": "-",
                **dash,
                **natural_cells(natural_estimates(perceptual, evaluate), shown),
                "n": len(perceptual.naturals),
                "sentences": perceptual.naturals["utt_id"].nunique(),
                "seeds": "-",
            }
        )
    parts += [
        _md_table(pd.DataFrame(rows)),
        "",
        "‡ These systems convert F0 with the same log-Gaussian normalised transform of the source's F0 "
        "(`vc/conversion.py`), so their log-F0 RMSE and F0 correlation measure that transform, not the "
        "model: they cannot tell the experiments apart.",
        *(
            [
                "§ Log-mel systems have no F0 transform: the pitch is whatever the converted (or matched) "
                "log-mel carries and HiFi-GAN renders, so their F0 metrics do measure the system.",
                *([hifigan_note(hifigan)] if hifigan is not None else []),
            ]
            if any(system_vocoder(r, experiments) == "HiFi-GAN" for r in results)
            else []
        ),
        "",
        "n counts the distinct items scored: a trained system's conversions of every seed; "
        "`copy-synthesis` once per target speaker and sentence; `source` (no conversion) once per "
        "unordered pair and sentence"
        + (
            " (its CER, MOS and similarity to the source speaker: once per source recording). "
            f"`{NATURAL_ROW}`: the scored split's natural recordings, similarity and accuracy with respect "
            "to their own speaker (the ceiling), CER (the floor)."
            if perceptual is not None and shown
            else "."
        ),
        "",
        "![MCD with confidence intervals](figures/mcd.png)",
        "",
    ]

    if comparisons:
        parts += [
            "### Paired differences",
            "",
            f"MCD of each experiment minus the other system's on the same items ({ci} of the mean "
            "difference, cluster bootstrap over sentences and seeds); the verdict is worded from that "
            "interval. " + (f"`{reference}` is the reference experiment." if reference else ""),
            "",
        ]
        parts += [_verdict_table(results, comparisons, "mcd_db"), ""]
        parts += ["Modulation spectrum distance (MSD dB), the same way:", ""]
        parts += [_verdict_table(results, comparisons, "msd_db"), ""]

    if perceptual is not None:
        notes = {
            r.name: r.scores["perceptual_note"].fillna("").astype(str).tolist()
            for r in results
            if "perceptual_note" in r.scores
        }
        parts += perceptual_section(perceptual, summaries, comparisons, evaluate, reference, notes)

    parts += [
        "## MCD per speaker pair (dB)",
        "",
        f"Mean [{ci}] per ordered pair, over sentences (and seeds); no interval below "
        f"{evaluate.min_sentences} sentences. `copy-synthesis` depends on the target only, `source` on the "
        "unordered pair.",
        "",
    ]
    ordered = first.scores.drop_duplicates(["source", "target"])[["source", "target"]].itertuples(index=False)
    table = {
        f"{src} -> {tgt}": {r.name: _pair_cell(r, summaries[r.name], src, tgt) for r in results}
        for src, tgt in ordered
    }
    parts += [_md_table(pd.DataFrame(table).T.rename_axis("pair").reset_index()), ""]

    parts += ["## Training", ""]
    rows = []
    for r in results:
        for t in r.trains:
            final = t.get("final", {})
            rows.append(
                {
                    "experiment": r.name,
                    "seed": t.get("seed", 0),
                    "iterations": t["iterations"],
                    "wall s": t["wall_seconds"],
                    "processes": t.get("processes", 1),
                    **{k: _fmt(final.get(k, float("nan")), 3) for k in ("d/adv", "g/adv", "g/cyc", "g/id")},
                    "MLflow run": t.get("mlflow_run_id", ""),
                }
            )
    parts += [
        _md_table(pd.DataFrame(rows)),
        "",
        "Final losses are means over the last logging interval.",
        "",
        "![Loss curves](figures/losses.png)",
        "",
    ]

    diff = differing_params(experiments)
    parts += ["## What the experiments differ in", ""]
    parts += [_md_table(diff) if len(diff) else "Nothing: every experiment has the same resolved params.", ""]

    parts += ["## Mel-cepstrograms (source, converted, target; first seed)", ""]
    parts += [f"![{r.name}](figures/mcep-{r.name}.png)" for r in results if r.figure is not None]
    parts += ["", "## Recipe", "", recipe, ""]
    if perceptual is not None and perceptual.metrics:
        parts += ["### Perceptual metrics", "", perceptual_recipe_markdown(evaluate), ""]
    return "\n".join(parts)


def check_report(report_dir: str | Path, systems: list[str]) -> None:
    """Raise ValueError unless the report names every system and metrics.json has finite numbers for it."""
    report_dir = Path(report_dir)
    problems = []
    for name in ("report.md", "metrics.json", "figures/mcd.png", "figures/losses.png"):
        if not (report_dir / name).is_file():
            problems.append(f"missing {report_dir / name}")
    if not problems:
        text = (report_dir / "report.md").read_text(encoding="utf-8")
        metrics = json.loads((report_dir / "metrics.json").read_text(encoding="utf-8"))
        for system in systems:
            if f"| {system} |" not in text:
                problems.append(f"report.md has no row for '{system}'")
            values = metrics.get(system)
            if not values:
                problems.append(f"metrics.json has no entry for '{system}'")
            elif not all(math.isfinite(values[k]) for k in ("mcd_db", "msd_db", "n") if k in values):
                problems.append(f"metrics.json: non-finite values for '{system}': {values}")
            elif values.get("n", 0) < 1:
                problems.append(f"metrics.json: no scored items for '{system}'")
    if problems:
        raise ValueError("report check failed:\n  " + "\n  ".join(problems))
