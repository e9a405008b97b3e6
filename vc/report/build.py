"""The generated report: Markdown, figures, DVC metrics and per-pair plots, from the evaluation folders.

:func:`build_report` summarises every system (:func:`vc.evaluation.summary.system_summary`), compares them
(:mod:`vc.report.compare`), and writes the report folder atomically: ``report.md`` assembled from the
sections of :mod:`vc.report.sections` in order, ``metrics.json`` (DVC metrics), ``per_pair/<system>.csv``
and ``losses/<experiment>-seed-<seed>.tsv`` (DVC plots) and ``figures/``. Nothing in the report depends on
the clock or the machine. :func:`check_report` is what CI asks of a regenerated report.
"""

from __future__ import annotations

import json
import math
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from vc.config import ConvertConfig, EvaluateConfig, ExperimentConfig
from vc.evaluation.perceptual.reference import ReferenceMaterial
from vc.evaluation.registry import compared, is_recipe
from vc.evaluation.summary import system_summary
from vc.io import atomic_dir, write_json, write_text
from vc.report.compare import compare, differing_params, metrics_json
from vc.report.perceptual import natural_estimates
from vc.report.plots import plot_loss_curves, plot_mcd_bars, plot_validation_curves
from vc.report.results import SystemResult
from vc.report.sections import LOSS_KEYS, SECTIONS, ReportData, validation_curves

__all__ = ["build_report", "check_report", "markdown"]


def markdown(data: ReportData) -> str:
    """``report.md``: the sections in order."""
    return "\n".join(line for section in SECTIONS for line in section(data))


def _perceptual_notes(results: list[SystemResult]) -> dict[str, list[str]]:
    """Each system's ``perceptual_note`` column (bad audio), where it has one."""
    return {
        r.name: r.scores["perceptual_note"].fillna("").astype(str).tolist()
        for r in results
        if "perceptual_note" in r.scores
    }


def _pairs_table(r: SystemResult, summary: Mapping[str, Any]) -> pd.DataFrame:
    pairs = pd.DataFrame(summary["pairs"])
    if r.unit == "conversion":
        label = pairs["source"] + " -> " + pairs["target"]
    elif r.unit == "target":
        label = "* -> " + pairs["target"]
    else:
        label = pairs["pair"].str.replace("|", " <-> ", regex=False)
    if "pair" in pairs:
        pairs["pair"] = label
    else:
        pairs.insert(0, "pair", label)
    return pairs


def _write_plots(folder: Path, data: ReportData) -> None:
    """Figures, per-pair tables and loss curves (DVC plots) into the report folder."""
    for name in ("figures", "per_pair", "losses"):
        (folder / name).mkdir()
    table = pd.DataFrame(
        [{"system": r.name, "kind": r.kind, **data.summaries[r.name]["overall"]} for r in data.results]
    )
    plot_mcd_bars(table, folder / "figures" / "mcd.png", data.evaluate.confidence)
    curves = {f"{r.name}/seed-{s}": df for r in data.results for s, df in r.losses.items()}
    plot_loss_curves(curves, list(LOSS_KEYS), folder / "figures" / "losses.png")
    validation = validation_curves(data.results)
    if validation:
        best = {
            r.name: {t["seed"]: t["validation"]["best_step"] for t in r.trains if t.get("validation")}
            for r in data.results
        }
        plot_validation_curves(validation, folder / "figures" / "validation.png", best)
    for r in data.results:
        if r.figure is not None and r.figure.is_file():
            shutil.copyfile(r.figure, folder / "figures" / f"mcep-{r.name}.png")
        _pairs_table(r, data.summaries[r.name]).round(4).to_csv(
            folder / "per_pair" / f"{r.name}.csv", index=False
        )
        for seed, losses in r.losses.items():
            losses.to_csv(folder / "losses" / f"{r.name}-seed-{seed}.tsv", sep="\t", index=False)


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
    cost: str = "",
    ratings: Mapping[str, Any] | None = None,
    diagnosis: Mapping[str, Any] | None = None,
    contrast: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Write the report folder atomically; return the metrics written to ``metrics.json``.

    ``perceptual``: the references stage's perceptual material (natural recordings, skipped metrics,
    provenance); None leaves the perceptual section out. ``vocoder``: the ``vocoder`` stage's manifest
    (``models/vocoder/vocoder.json``: pretrained or fine-tuned HiFi-GAN), stated under the main table.
    ``ratings``: the ``ratings`` stage's ``ratings.json`` (the listening test's section).
    ``diagnosis``: the ``diagnosis`` stage's ``diagnosis.json`` (the "Diagnosis" section); ``contrast``: the
    ``contrast`` stage's ``contrast.json`` (the "Contrast" section).
    ``cost``: the cost table (:func:`vc.cost_table.cost_markdown`), a section of its own when not empty."""
    summaries = {r.name: system_summary(r.name, r.kind, r.scores, evaluate, r.unit) for r in results}
    comparisons = compare(results, reference, evaluate)
    data = ReportData(
        results=results,
        summaries=summaries,
        comparisons=comparisons,
        natural=natural_estimates(perceptual, evaluate) if perceptual is not None else {},
        notes=_perceptual_notes(results),
        differing=differing_params(experiments),
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
        cost=cost,
        ratings=ratings,
        diagnosis=diagnosis,
        contrast=contrast,
    )
    metrics = metrics_json(results, summaries, comparisons)
    with atomic_dir(out_dir) as tmp:
        _write_plots(tmp, data)
        write_json(tmp / "metrics.json", metrics)
        write_text(tmp / "report.md", markdown(data))
    return metrics


def check_report(report_dir: str | Path, systems: list[str]) -> None:
    """Raise ValueError unless the report names every system and metrics.json has finite numbers for it."""
    report_dir = Path(report_dir)
    problems = []
    for name in ("report.md", "metrics.json", "figures/mcd.png", "figures/losses.png"):
        if not (report_dir / name).is_file():
            problems.append(f"missing {report_dir / name}")
    finite = [*(m for m in compared() if is_recipe(m)), "n"]  # MCD, MSD: what every system has
    if not problems:
        text = (report_dir / "report.md").read_text(encoding="utf-8")
        metrics = json.loads((report_dir / "metrics.json").read_text(encoding="utf-8"))
        for system in systems:
            if f"| {system} |" not in text:
                problems.append(f"report.md has no row for '{system}'")
            values = metrics.get(system)
            if not values:
                problems.append(f"metrics.json has no entry for '{system}'")
            elif not all(math.isfinite(values[k]) for k in finite if k in values):
                problems.append(f"metrics.json: non-finite values for '{system}': {values}")
            elif values.get("n", 0) < 1:
                problems.append(f"metrics.json: no scored items for '{system}'")
    if problems:
        raise ValueError("report check failed:\n  " + "\n  ".join(problems))
