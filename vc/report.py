"""The generated report: Markdown, figures, DVC metrics and per-pair plots, from the evaluation folders.

Inputs (all written by earlier stages): ``eval/experiments/<name>/`` (summary.json, scores.csv, train.json,
losses.tsv, mcep.png), ``eval/baselines/<name>/`` (summary.json, scores.csv), the corpus and features
summaries. Outputs in the report folder: ``report.md``, ``metrics.json`` (DVC metrics),
``per_pair/<system>.csv`` and ``losses/<experiment>.tsv`` (DVC plots) and ``figures/``. Nothing in the report
depends on the clock or the machine.
"""

from __future__ import annotations

import json
import math
import shutil
import textwrap
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from vc.config import EvaluateConfig, ExperimentConfig, FeaturesConfig
from vc.configlib import flatten, to_dict
from vc.io import atomic_dir, write_json, write_text
from vc.plots import plot_loss_curves, plot_mcd_bars

__all__ = ["SystemResult", "build_report", "load_results", "recipe_markdown"]


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
        f"Per utterance; then the mean over utterances with a {e.confidence:.0%} percentile bootstrap "
        f"confidence interval ({e.bootstrap} resamples, seed {e.seed}), per speaker pair and overall.",
    ]
    return "\n".join(
        textwrap.fill(f"{i}. {step}", width=110, subsequent_indent="   ")
        for i, step in enumerate(steps, start=1)
    )


@dataclass
class SystemResult:
    name: str
    kind: str  # "experiment" | "baseline"
    summary: dict[str, Any]
    scores: pd.DataFrame
    train: dict[str, Any] | None = None
    losses: pd.DataFrame | None = None
    figure: Path | None = None


def load_results(eval_dir: str | Path, experiments: list[str], baselines: list[str]) -> list[SystemResult]:
    """Read every system's evaluation folder (experiments first, in params order)."""
    eval_dir = Path(eval_dir)
    out = []
    for name in experiments:
        d = eval_dir / "experiments" / name
        out.append(
            SystemResult(
                name,
                "experiment",
                json.loads((d / "summary.json").read_text()),
                pd.read_csv(d / "scores.csv"),
                json.loads((d / "train.json").read_text()),
                pd.read_csv(d / "losses.tsv", sep="\t"),
                d / "mcep.png",
            )
        )
    for name in baselines:
        d = eval_dir / "baselines" / name
        out.append(
            SystemResult(
                name, "baseline", json.loads((d / "summary.json").read_text()), pd.read_csv(d / "scores.csv")
            )
        )
    return out


def _fmt(x: float, digits: int = 2) -> str:
    return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{digits}f}"


def _ci(o: Mapping[str, Any], metric: str, digits: int = 2) -> str:
    low, high = _fmt(o[metric + "_ci_low"], digits), _fmt(o[metric + "_ci_high"], digits)
    return f"{_fmt(o[metric], digits)} [{low}, {high}]"


def _md_table(df: pd.DataFrame) -> str:
    cols = [str(c) for c in df.columns]
    lines = ["| " + " | ".join(cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    lines += ["| " + " | ".join(str(v) for v in row) + " |" for row in df.itertuples(index=False)]
    return "\n".join(lines)


def verdict(a: Mapping[str, Any], b: Mapping[str, Any]) -> str:
    """How system ``a``'s MCD compares with ``b``'s, judged by their confidence intervals."""
    if a["mcd_db_ci_high"] < b["mcd_db_ci_low"]:
        return "lower (CIs do not overlap)"
    if a["mcd_db_ci_low"] > b["mcd_db_ci_high"]:
        return "higher (CIs do not overlap)"
    return "not distinguishable (CIs overlap)"


def differing_params(experiments: Mapping[str, ExperimentConfig]) -> pd.DataFrame:
    """The resolved ``model.*``/``train.*`` params whose values differ between experiments."""
    flat = {
        name: flatten({"model": to_dict(e.model), "train": to_dict(e.train)})
        for name, e in experiments.items()
    }
    keys = sorted({k for f in flat.values() for k in f})
    rows = [
        {"param": k, **{n: f.get(k) for n, f in flat.items()}}
        for k in keys
        if len({json.dumps(f.get(k)) for f in flat.values()}) > 1
    ]
    return pd.DataFrame(rows)


def build_report(
    out_dir: str | Path,
    results: list[SystemResult],
    *,
    title: str,
    recipe: str,
    corpus_summary: dict,
    features_summary: dict,
    experiments: Mapping[str, ExperimentConfig],
    confidence: float,
) -> dict[str, Any]:
    """Write the report folder atomically; return the metrics written to ``metrics.json``."""
    with atomic_dir(out_dir) as tmp:
        (tmp / "figures").mkdir()
        (tmp / "per_pair").mkdir()
        (tmp / "losses").mkdir()
        table = pd.DataFrame([{"system": r.name, "kind": r.kind, **r.summary["overall"]} for r in results])
        plot_mcd_bars(table, tmp / "figures" / "mcd.png", confidence)
        curves = {r.name: r.losses for r in results if r.losses is not None}
        plot_loss_curves(curves, ["d/adv", "g/adv", "g/cyc", "g/id"], tmp / "figures" / "losses.png")
        for r in results:
            if r.figure is not None and r.figure.is_file():
                shutil.copyfile(r.figure, tmp / "figures" / f"mcep-{r.name}.png")
            pairs = pd.DataFrame(r.summary["pairs"])
            pairs.insert(0, "pair", pairs["source"] + " -> " + pairs["target"])
            pairs.round(4).to_csv(tmp / "per_pair" / f"{r.name}.csv", index=False)
            if r.losses is not None:
                r.losses.to_csv(tmp / "losses" / f"{r.name}.tsv", sep="\t", index=False)
        metrics = {r.name: {k: round(float(v), 4) for k, v in r.summary["overall"].items()} for r in results}
        write_json(tmp / "metrics.json", metrics)
        write_text(
            tmp / "report.md",
            _markdown(results, title, recipe, corpus_summary, features_summary, experiments, confidence),
        )
    return metrics


def _markdown(
    results: list[SystemResult],
    title: str,
    recipe: str,
    corpus: dict,
    features: dict,
    experiments: Mapping[str, ExperimentConfig],
    confidence: float,
) -> str:
    ci = f"{confidence:.0%} CI"
    parts = [
        f"# {title}",
        "",
        "Generated by `dvc repro` (stage `report`); every number below comes from the pipeline's outputs.",
        "",
    ]

    parts += ["## Corpus", ""]
    rows = [
        {
            "speaker": spk,
            "train utts": c["train"],
            "eval utts": c["eval"],
            "seconds": c["seconds"],
            "mean F0 (Hz)": features["speakers"].get(spk, {}).get("mean_f0_hz", "n/a"),
        }
        for spk, c in corpus["speakers"].items()
    ]
    parts += [
        _md_table(pd.DataFrame(rows)),
        "",
        f"{corpus['utterances']} utterances, {corpus['seconds']:.0f} s of prepared audio, "
        f"{corpus['skipped']} skipped. WORLD analysis real-time factor: {features['real_time_factor']}.",
        "",
    ]

    parts += [
        "## Results",
        "",
        f"Means over evaluation utterances with {ci}. Lower is better except F0 correlation.",
        "",
    ]
    rows = []
    for r in results:
        o = r.summary["overall"]
        rows.append(
            {
                "system": r.name,
                "kind": r.kind,
                f"MCD dB ({ci})": _ci(o, "mcd_db"),
                "log-F0 RMSE": _fmt(o["log_f0_rmse"], 3),
                "F0 corr": _fmt(o["f0_corr"], 3),
                "MSD dB": _fmt(o["msd_db"]),
                "n": int(o["n"]),
                "MLflow run": (r.train or {}).get("mlflow_run_id", "baseline run"),
            }
        )
    parts += [_md_table(pd.DataFrame(rows)), "", "![MCD with confidence intervals](figures/mcd.png)", ""]

    baselines = {r.name: r.summary["overall"] for r in results if r.kind == "baseline"}
    if baselines:
        parts += ["### Each experiment against the baselines", ""]
        rows = [
            {
                "experiment": r.name,
                **{f"vs {b}": verdict(r.summary["overall"], o) for b, o in baselines.items()},
            }
            for r in results
            if r.kind == "experiment"
        ]
        parts += [_md_table(pd.DataFrame(rows)), ""]

    parts += ["## MCD per speaker pair (dB)", ""]
    per_pair = {
        r.name: {f"{p['source']} -> {p['target']}": _fmt(p["mcd_db"]) for p in r.summary["pairs"]}
        for r in results
    }
    parts += [_md_table(pd.DataFrame(per_pair).rename_axis("pair").reset_index()), ""]

    parts += ["## Training", ""]
    rows = []
    for r in results:
        if r.train is None:
            continue
        final = r.train.get("final", {})
        rows.append(
            {
                "experiment": r.name,
                "iterations": r.train["iterations"],
                "wall s": r.train["wall_seconds"],
                "processes": r.train.get("processes", 1),
                **{k: _fmt(final.get(k, float("nan")), 3) for k in ("d/adv", "g/adv", "g/cyc", "g/id")},
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

    parts += ["## Mel-cepstrograms (source, converted, target)", ""]
    parts += [f"![{r.name}](figures/mcep-{r.name}.png)" for r in results if r.figure is not None]
    parts += ["", "## Recipe", "", recipe, ""]
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
            elif not all(math.isfinite(v) for k, v in values.items() if k in ("mcd_db", "msd_db", "n")):
                problems.append(f"metrics.json: non-finite values for '{system}': {values}")
    if problems:
        raise ValueError("report check failed:\n  " + "\n  ".join(problems))
