"""The report's sections, one function each: every one takes the :class:`ReportData` it is given and returns
its Markdown lines; none computes a statistic (summaries and comparisons are made before, in
:mod:`vc.report.build`). :data:`SECTIONS` is their order."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from vc.baselines import BASELINES
from vc.config import ConvertConfig, EvaluateConfig, ExperimentConfig
from vc.evaluation.perceptual.reference import ReferenceMaterial
from vc.report.compare import Comparison
from vc.report.diagnosis import contrast_section, diagnosis_section
from vc.report.markdown import fmt, interval, md_table
from vc.report.perceptual import (
    NATURAL_ROW,
    headline_cells,
    natural_cells,
    perceptual_recipe_markdown,
    perceptual_section,
    shown_metrics,
)
from vc.report.ratings import ratings_section
from vc.report.results import SystemResult, f0_source, system_vocoder, vocoder_name
from vc.statistics import Estimate, Unit

__all__ = ["LOSS_KEYS", "SECTIONS", "ReportData", "hifigan_note"]

#: The training losses the report tabulates and plots.
LOSS_KEYS = ("d/adv", "g/adv", "g/cyc", "g/id")
#: The results table's mark for a system's F0 source (footnotes below the table).
_F0_MARKS = {"transform": " ‡", "mel": " §", "recording": ""}


@dataclass
class ReportData:
    """Everything the sections are written from: the inputs of :func:`vc.report.build.build_report` and
    what it computed from them (summaries, comparisons, the natural recordings' estimates, the perceptual
    notes, the differing params)."""

    results: list[SystemResult]
    summaries: Mapping[str, dict]
    comparisons: list[Comparison]
    natural: Mapping[str, Estimate]
    notes: Mapping[str, list[str]]
    differing: pd.DataFrame
    title: str
    recipe: str
    corpus: dict
    features: dict
    experiments: Mapping[str, ExperimentConfig]
    evaluate: EvaluateConfig
    convert: ConvertConfig
    reference: str | None
    perceptual: ReferenceMaterial | None
    hifigan: Mapping[str, Any] | None
    cost: str = ""  # the cost table (vc.cost_table.cost_markdown); machine-dependent, never a metric
    ratings: Mapping[str, Any] | None = None  # the ratings stage's ratings.json (listening test)
    diagnosis: Mapping[str, Any] | None = None  # the diagnosis stage's diagnosis.json
    contrast: Mapping[str, Any] | None = None  # the contrast stage's contrast.json

    @property
    def ci(self) -> str:
        return f"{self.evaluate.confidence:.0%} CI"

    @property
    def first(self) -> SystemResult:
        return next(r for r in self.results if r.kind == "experiment")

    @property
    def shown(self) -> list[str]:
        return shown_metrics(self.summaries)

    def baselines_of(self, unit: Unit) -> list[str]:
        """The report's baselines whose items are of ``unit``, in report order."""
        return [r.name for r in self.results if r.kind == "baseline" and r.unit == unit]


def hifigan_note(manifest: Mapping[str, Any], floors: Sequence[str] = ()) -> str:
    """One sentence on the HiFi-GAN behind the log-mel rows, from the ``vocoder`` stage's manifest;
    ``floors``: the baselines that resynthesise the target through it (named when it is fine-tuned)."""
    base = manifest.get("base", {})
    origin = f"{base.get('source', '?')}, SHA-256 {str(base.get('sha256', '?'))[:12]}"
    generator = str(manifest.get("generator", "?")).upper()
    if not manifest.get("finetuned"):
        return f"HiFi-GAN: the pretrained {generator} generator ({origin}), not fine-tuned."
    same = f"; {_names(floors)} {'uses' if len(floors) == 1 else 'use'} the same generator" if floors else ""
    return (
        f"HiFi-GAN: the {generator} generator ({origin}) fine-tuned for {manifest.get('iterations')} "
        "iterations on the training split's audio (stage `vocoder`, MLflow run "
        f"`{manifest.get('mlflow_run_id')}`){same}."
    )


def _names(names: Sequence[str]) -> str:
    """Names as Markdown code, joined as in a sentence: `a`; `a` and `b`; `a`, `b` and `c`."""
    quoted = [f"`{n}`" for n in names]
    return quoted[0] if len(quoted) == 1 else ", ".join(quoted[:-1]) + " and " + quoted[-1]


def header(d: ReportData) -> list[str]:
    """Title, provenance and the scope: split, sentences, pairs, seeds, cap."""
    first = d.first
    seeds = sorted(first.scores["seed"].unique().tolist()) if "seed" in first.scores else [0]
    sentences = first.scores["utt_id"].nunique()
    pairs = first.scores.groupby(["source", "target"]).ngroups
    scope = (
        f"Scored on the **{d.convert.split}** split: {sentences} sentences x {pairs} ordered speaker pairs, "
        f"every experiment trained with {len(seeds)} seed(s) ({', '.join(map(str, seeds))})."
    )
    if d.convert.split == "validation":
        scope += " **Validation is for tuning: these are not test results.**"
    if d.convert.max_utterances is not None:
        scope += f" Capped at `convert.max_utterances: {d.convert.max_utterances}` sentences per pair."
    else:
        scope += " Every held-out sentence of every pair is converted (no cap)."
    return [
        f"# {d.title}",
        "",
        "Generated by `dvc repro` (stage `report`); every number below comes from the pipeline's outputs.",
        "To hear the systems side by side, open the listening page `listen/index.html` that the same "
        "`dvc repro` writes (stage `listen_page`; [link](../listen/index.html), outside git).",
        "",
        scope,
        "",
    ]


def corpus(d: ReportData) -> list[str]:
    """Speakers, utterances per split, seconds, mean F0; skipped files with the reason."""
    rows = [
        {
            "speaker": spk,
            "train utts": c["train"],
            "validation utts": c.get("validation", 0),
            "test utts": c.get("test", 0),
            "seconds": c["seconds"],
            "mean F0 (Hz)": d.features["speakers"].get(spk, {}).get("mean_f0_hz", "n/a"),
        }
        for spk, c in d.corpus["speakers"].items()
    ]
    skipped = [*d.corpus.get("skipped_files", []), *d.features.get("skipped_files", [])]
    lines = [
        "## Corpus",
        "",
        md_table(pd.DataFrame(rows)),
        "",
        f"{d.corpus['utterances']} utterances, {d.corpus['seconds']:.0f} s of prepared audio, "
        f"{len(skipped)} skipped.",
        "",
    ]
    if skipped:
        lines += ["Skipped files (`corpus.on_bad_file: skip`):", ""]
        lines += [f"- `{s['file']}`: {s['reason']}" for s in skipped] + [""]
    return lines


def _system_row(d: ReportData, r: SystemResult) -> dict[str, Any]:
    o = d.summaries[r.name]["overall"]
    spread = d.summaries[r.name]["seed_spread"]
    mark = _F0_MARKS[f0_source(r, d.experiments)]
    return {
        "system": r.name,
        "kind": r.kind,
        "vocoder": system_vocoder(r, d.experiments),
        f"MCD dB ({d.ci})": interval(o, "mcd_db"),
        "seed spread": (
            f"{fmt(spread['sd'])} ({fmt(spread['min'])}-{fmt(spread['max'])})"
            if r.kind == "experiment" and spread["seeds"] > 1
            else "-"
        ),
        "MSD dB": interval(o, "msd_db"),
        "log-F0 RMSE": fmt(o["log_f0_rmse"], 3) + mark,
        "F0 corr": fmt(o["f0_corr"], 3) + mark,
        **headline_cells(o, d.shown),
        "n": int(o["n"]),
        "sentences": int(o["sentences"]),
        "seeds": int(o["seeds"]),
    }


def _natural_row(d: ReportData, material: ReferenceMaterial) -> dict[str, Any]:
    dash = dict.fromkeys(("seed spread", "MSD dB", "log-F0 RMSE", "F0 corr"), "-")
    return {
        "system": NATURAL_ROW,
        "kind": "reference",
        "vocoder": "-",
        f"MCD dB ({d.ci})": "-",
        **dash,
        **natural_cells(d.natural, d.shown),
        "n": len(material.naturals),
        "sentences": material.naturals["utt_id"].nunique(),
        "seeds": "-",
    }


def _footnotes(d: ReportData) -> list[str]:
    """What the F0 marks and the vocoder column mean for the systems in the table."""
    sources = {f0_source(r, d.experiments) for r in d.results}
    hifigan = [r for r in d.results if vocoder_name(r, d.experiments) == "hifigan"]
    lines = []
    if "transform" in sources:
        lines.append(
            "‡ These systems convert F0 with the same log-Gaussian normalised transform of the source's F0 "
            "(`vc/conversion.py`), so their log-F0 RMSE and F0 correlation measure that transform, not the "
            "model: they cannot tell the experiments apart. A trained system's c0 (each frame's energy) is "
            + (
                "mean-var's conversion of the source's, the generator's c1..cD beside it"
                if d.convert.energy == "mean-var"
                else "the generator's"
            )
            + ' (`convert.energy`, README "Energy").'
        )
    if "mel" in sources or hifigan:
        lines.append(
            "§ Log-mel systems have no F0 transform: the pitch is whatever the converted (or matched) "
            "log-mel carries and HiFi-GAN renders, so their F0 metrics do measure the system."
        )
    if hifigan and d.hifigan is not None:
        floors = [r.name for r in hifigan if r.kind == "baseline" and BASELINES[r.name].made_from == "target"]
        lines.append(hifigan_note(d.hifigan, floors))
    return lines


def _items_note(d: ReportData, with_naturals: bool) -> str:
    """What ``n`` counts, by each baseline unit in the table (the first baseline of each unit named)."""
    text = "n counts the distinct items scored: a trained system's conversions of every seed"
    target, pair = d.baselines_of("target"), d.baselines_of("unordered_pair")
    if target:
        text += f"; `{target[0]}` once per target speaker and sentence"
    if pair:
        text += f"; `{pair[0]}` (no conversion) once per unordered pair and sentence"
        if with_naturals:
            text += " (its CER, MOS and similarity to the source speaker: once per source recording)"
    if not with_naturals:
        return text + "."
    return (
        f"{text}. `{NATURAL_ROW}`: the scored split's natural recordings, similarity and accuracy with "
        "respect to their own speaker (the ceiling), CER (the floor)."
    )


def results_table(d: ReportData) -> list[str]:
    """Every system's means with intervals, the natural recordings' row, footnotes and the MCD figure."""
    rows = [_system_row(d, r) for r in d.results]
    with_naturals = d.perceptual is not None and bool(d.shown)
    if with_naturals:
        rows.append(_natural_row(d, d.perceptual))
    return [
        "## Results",
        "",
        f"Means over distinct items with {d.ci} (cluster bootstrap over sentences and seeds). Lower is "
        "better except F0 correlation (and where a perceptual column says otherwise). Seed spread: the SD "
        "(min to max) of the per-seed mean MCD.",
        "",
        md_table(pd.DataFrame(rows)),
        "",
        *_footnotes(d),
        "",
        _items_note(d, with_naturals),
        "",
        "![MCD with confidence intervals](figures/mcd.png)",
        "",
    ]


def _verdict_table(d: ReportData, metric: str) -> str:
    """One row per experiment, one column per system compared with, the verdict of ``metric`` in cells."""
    others = list(dict.fromkeys(c.other for c in d.comparisons))
    verdicts = {(c.system, c.other): c.verdict for c in d.comparisons if c.metric == metric}
    rows = [
        {"experiment": r.name, **{f"vs {o}": verdicts.get((r.name, o), "-") for o in others}}
        for r in d.results
        if r.kind == "experiment"
    ]
    return md_table(pd.DataFrame(rows))


def paired_differences(d: ReportData) -> list[str]:
    """The MCD and MSD verdicts of every experiment against every other system compared."""
    if not d.comparisons:
        return []
    return [
        "### Paired differences",
        "",
        f"MCD of each experiment minus the other system's on the same items ({d.ci} of the mean "
        "difference, cluster bootstrap over sentences and seeds); the verdict is worded from that "
        "interval. " + (f"`{d.reference}` is the reference experiment." if d.reference else ""),
        "",
        _verdict_table(d, "mcd_db"),
        "",
        "Modulation spectrum distance (MSD dB), the same way:",
        "",
        _verdict_table(d, "msd_db"),
        "",
    ]


def perceptual(d: ReportData) -> list[str]:
    """The perceptual metrics' section (:func:`vc.report.perceptual.perceptual_section`)."""
    if d.perceptual is None:
        return []
    return perceptual_section(d.perceptual, d.summaries, d.comparisons, d.natural, d.reference, d.notes)


def _pair_cell(r: SystemResult, summary: Mapping[str, Any], src: str, tgt: str) -> str:
    for p in summary["pairs"]:
        match = {
            "conversion": p.get("source") == src and p.get("target") == tgt,
            "target": p.get("target") == tgt,
            "unordered_pair": p.get("pair") == "|".join(sorted((src, tgt))),
        }[r.unit]
        if match:
            return interval(p, "mcd_db")
    return "n/a"


def _pair_units_note(d: ReportData) -> str:
    """Which baselines a pair's cell depends on less than the ordered pair (the first of each unit)."""
    target, pair = d.baselines_of("target"), d.baselines_of("unordered_pair")
    clauses = [f"`{target[0]}` depends on the target only"] if target else []
    if pair:
        clauses.append(f"`{pair[0]}` {'on' if clauses else 'depends on'} the unordered pair")
    return f" {', '.join(clauses)}." if clauses else ""


def per_pair(d: ReportData) -> list[str]:
    """MCD per ordered speaker pair, every system side by side."""
    ordered = d.first.scores.drop_duplicates(["source", "target"])[["source", "target"]]
    table = {
        f"{src} -> {tgt}": {r.name: _pair_cell(r, d.summaries[r.name], src, tgt) for r in d.results}
        for src, tgt in ordered.itertuples(index=False)
    }
    return [
        "## MCD per speaker pair (dB)",
        "",
        f"Mean [{d.ci}] per ordered pair, over sentences (and seeds); no interval below "
        f"{d.evaluate.min_sentences} sentences." + _pair_units_note(d),
        "",
        md_table(pd.DataFrame(table).T.rename_axis("pair").reset_index()),
        "",
    ]


def validation_curves(results: Sequence[SystemResult]) -> dict[str, dict[int, pd.DataFrame]]:
    """Every experiment's validation curves by seed (rows ``step``, ``val/mcd_db``, the baselines'
    levels), from each run's ``train.json``; experiments without one (log-mel, curve off) are left out."""
    out: dict[str, dict[int, pd.DataFrame]] = {}
    for r in results:
        for t in r.trains:
            curve = (t.get("validation") or {}).get("curve") or []
            if curve:
                out.setdefault(r.name, {})[int(t.get("seed", 0))] = pd.DataFrame(curve)
    return out


def _validation_cells(t: Mapping[str, Any]) -> dict[str, str]:
    v = t.get("validation") or {}
    curve = v.get("curve") or []
    if not curve:
        return {"best it.": "-", "val MCD best": "-", "val MCD last": "-"}
    return {
        "best it.": str(v["best_step"]),
        "val MCD best": fmt(v["best"], 2),
        "val MCD last": fmt(curve[-1]["val/mcd_db"], 2),
    }


def _validation_note(d: ReportData) -> list[str]:
    curves = validation_curves(d.results)
    if not curves:
        return []
    first = next(iter(next(iter(curves.values())).values()))
    every = {t["validation"]["every"] for r in d.results for t in r.trains if t.get("validation")} - {0}
    sentences = {
        t["validation"]["sentences_per_pair"] for r in d.results for t in r.trains if t.get("validation")
    }
    chosen = d.convert.checkpoint
    return [
        "Validation curves: every "
        + "/".join(str(e) for e in sorted(every))
        + " iterations and at the last, each run's generator converts "
        + "/".join("all" if s is None else str(s) for s in sorted(sentences, key=str))
        + " validation sentences of every speaker pair (never a test sentence), scored by MCD on the"
        ' converted mel-cepstra without synthesis (README: "Validation curve"); mean-var scores '
        f"{first['val/mcd_db_mean_var'].iloc[0]:.2f} dB and the unconverted source "
        f"{first['val/mcd_db_source'].iloc[0]:.2f} dB on the same items. A dot marks each run's best "
        f"iteration; this report converts with the **{chosen}** generator (`convert.checkpoint`).",
        "",
        "![Validation curves](figures/validation.png)",
        "",
    ]


def training(d: ReportData) -> list[str]:
    """Each training run: iterations, processes, final losses, its validation curve's best and last score,
    its MLflow run; the loss and validation figures. (Wall time is the cost section's: no timing is read
    from a DVC output.)"""
    rows = []
    for r in d.results:
        for t in r.trains:
            final = t.get("final", {})
            rows.append(
                {
                    "experiment": r.name,
                    "seed": t.get("seed", 0),
                    "iterations": t["iterations"],
                    "processes": t.get("processes", 1),
                    **{k: fmt(final.get(k, float("nan")), 3) for k in LOSS_KEYS},
                    **_validation_cells(t),
                    "MLflow run": t.get("mlflow_run_id", ""),
                }
            )
    return [
        "## Training",
        "",
        md_table(pd.DataFrame(rows)),
        "",
        "Final losses are means over the last logging interval.",
        "",
        "![Loss curves](figures/losses.png)",
        "",
        *_validation_note(d),
    ]


def diagnosis(d: ReportData) -> list[str]:
    """The diagnosed experiment: collapse to the input on the test sentences, the switch ablation."""
    return diagnosis_section(d.diagnosis, d.summaries, d.reference, d.ci)


def contrast(d: ReportData) -> list[str]:
    """Which difference between two experiments decides their order (validation sentences)."""
    return contrast_section(d.contrast, d.summaries)


def listening_test(d: ReportData) -> list[str]:
    """The listening test's ratings per system, or a plain statement that there are none yet."""
    return ratings_section(d.ratings, d.ci)


def cost(d: ReportData) -> list[str]:
    """What the last run of each stage cost (absent when no stage recorded its cost)."""
    return [d.cost] if d.cost else []


def differences(d: ReportData) -> list[str]:
    """The resolved params in which the experiments differ."""
    table = (
        md_table(d.differing)
        if len(d.differing)
        else "Nothing: every experiment has the same resolved params."
    )
    return ["## What the experiments differ in", "", table, ""]


def mcep_figures(d: ReportData) -> list[str]:
    """Each experiment's mel-cepstrogram figure (first seed)."""
    lines = ["## Mel-cepstrograms (source, converted, target; first seed)", ""]
    return [*lines, *(f"![{r.name}](figures/mcep-{r.name}.png)" for r in d.results if r.figure is not None)]


def recipe(d: ReportData) -> list[str]:
    """The MCD recipe and, where they ran, the perceptual metrics' recipe, with the params in force."""
    lines = ["", "## Recipe", "", d.recipe, ""]
    if d.perceptual is not None and d.perceptual.metrics:
        lines += ["### Perceptual metrics", "", perceptual_recipe_markdown(d.evaluate), ""]
    return lines


#: The report, in order.
SECTIONS: tuple[Callable[[ReportData], list[str]], ...] = (
    header,
    corpus,
    results_table,
    paired_differences,
    perceptual,
    listening_test,
    per_pair,
    training,
    contrast,
    diagnosis,
    cost,
    differences,
    mcep_figures,
    recipe,
)
