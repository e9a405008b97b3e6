"""The perceptual metrics in the generated report: the headline table's cells, the natural recordings' row,
the paired verdicts, a paragraph per experiment written from the numbers, and the recipe.

Which metrics are shown, their labels, decimals, directions and natural-recording columns come from the
registry (:data:`vc.evaluation.registry.METRICS`); the recipe's steps from each group's module.
"""

from __future__ import annotations

import textwrap
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import pandas as pd

from vc.baselines import BASELINES
from vc.config import EvaluateConfig
from vc.evaluation.perceptual.groups import GROUPS
from vc.evaluation.perceptual.reference import ReferenceMaterial
from vc.evaluation.registry import headline, higher_is_better, in_words, spec
from vc.report.compare import Comparison
from vc.report.markdown import fmt, interval, md_table
from vc.statistics import Estimate, estimate_metric

__all__ = [
    "NATURAL_ROW",
    "headline_cells",
    "natural_cells",
    "natural_estimates",
    "perceptual_recipe_markdown",
    "perceptual_section",
    "shown_metrics",
]

NATURAL_ROW = "natural recordings"


def _label(metric: str) -> str:
    return spec(metric).label


def _better(metric: str) -> str:
    return "higher" if higher_is_better(metric) else "lower"


def shown_metrics(summaries: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """The headline metrics (:func:`vc.evaluation.registry.headline`) at least one system's overall summary
    has."""
    return [m for m in headline() if any(m in s["overall"] for s in summaries.values())]


def headline_cells(overall: Mapping[str, Any], metrics: Sequence[str]) -> dict[str, str]:
    """``{column label: "mean [low, high]"}`` of one system; ``-`` where it has no value (copy-synthesis
    has no source speaker)."""
    return {
        f"{_label(m)} ({_better(m)} better)": interval(overall, m, spec(m).decimals) if m in overall else "-"
        for m in metrics
    }


def natural_estimates(material: ReferenceMaterial, cfg: EvaluateConfig) -> dict[str, Estimate]:
    """The natural recordings of the scored split by each metric, with cluster-bootstrap intervals.

    Similarity is to the recording's own speaker's centroid and accuracy is whether that centroid is the
    nearest: the ceiling a conversion's similarity to its target is read against; CER/WER are the floor.
    """
    naturals = material.naturals
    out = {}
    for metric in headline():
        column = spec(metric).natural_column
        if column and column in naturals and naturals[column].notna().any():
            out[metric] = estimate_metric(
                naturals.rename(columns={column: "value"}),
                "value",
                confidence=cfg.confidence,
                n_resamples=cfg.bootstrap,
                seed=cfg.seed,
                min_clusters=cfg.min_sentences,
            )
    return out


def natural_cells(estimates: Mapping[str, Estimate], metrics: Sequence[str]) -> dict[str, str]:
    """The natural recordings' row of the headline table (same columns as :func:`headline_cells`)."""
    overall: dict[str, Any] = {}
    for metric, est in estimates.items():
        overall.update(est.as_dict(metric), sentences=est.sentences)
    return headline_cells(overall, metrics)


def _verdict_table(
    experiments: Sequence[str], comparisons: Sequence[Comparison], metrics: Sequence[str]
) -> str:
    others = list(dict.fromkeys(c.other for c in comparisons if c.metric in metrics))
    cells = {(c.system, c.other, c.metric): c.verdict for c in comparisons}
    rows = [
        {
            "experiment": name,
            "metric": f"{_label(m)} ({_better(m)} better)",
            **{f"vs {o}": cells.get((name, o, m), "-") for o in others},
        }
        for name in experiments
        for m in metrics
        if any((name, o, m) in cells for o in others)
    ]
    return md_table(pd.DataFrame(rows)) if rows else "No paired comparisons."


def _similarity(overall: Mapping[str, Any], natural: Mapping[str, Estimate], **_: Any) -> str:
    """Similarity to the target, against the source and the natural recordings' own-speaker ceiling."""
    target = overall["spk_sim_target"]
    text, notes = f"speaker similarity to the target {fmt(target, 3)}", []
    if "spk_sim_source" in overall:
        source = overall["spk_sim_source"]
        text += f" vs to the source {fmt(source, 3)}"
        notes.append("on average nearer the target" if target > source else "still nearer the source")
    if "spk_sim_target" in natural:
        notes.append(f"natural recordings {fmt(natural['spk_sim_target'].mean, 3)} to their own speaker")
    return text + (f" ({'; '.join(notes)})" if notes else "")


def _accuracy(overall: Mapping[str, Any], baselines: Mapping[str, Mapping[str, Any]], **_: Any) -> str:
    """The conversion accuracy as a share, beside every baseline's."""
    refs = [f"{b} {fmt(100 * o['spk_accuracy'], 0)}%" for b, o in baselines.items() if "spk_accuracy" in o]
    return (
        f"{fmt(100 * overall['spk_accuracy'], 0)}% of its conversions are nearer the target than every "
        "other speaker" + (f" ({', '.join(refs)})" if refs else "")
    )


def _cer(overall: Mapping[str, Any], natural: Mapping[str, Estimate], **_: Any) -> str:
    """CER with WER beside it, against the natural recordings' floor."""
    floor = f" against {fmt(natural['cer'].mean, 3)} for the natural recordings" if "cer" in natural else ""
    return f"CER {fmt(overall['cer'], 3)} (WER {fmt(overall.get('wer'), 3)}){floor}"


#: The metrics whose clause in the paragraph is worded for them; any other is ``label value (natural x)``.
_CLAUSES: dict[str, Callable[..., str]] = {
    "spk_sim_target": _similarity,
    "spk_accuracy": _accuracy,
    "cer": _cer,
}


def _clause(
    metric: str,
    overall: Mapping[str, Any],
    baselines: Mapping[str, Mapping[str, Any]],
    natural: Mapping[str, Estimate],
) -> str:
    if metric in _CLAUSES:
        return _CLAUSES[metric](overall=overall, baselines=baselines, natural=natural)
    m = spec(metric)
    ref = f" (natural {fmt(natural[metric].mean, m.decimals)})" if metric in natural else ""
    return f"{m.label or metric} {fmt(overall[metric], m.decimals)}{ref}"


def _paragraph(
    name: str,
    overall: Mapping[str, Any],
    baselines: Mapping[str, Mapping[str, Any]],
    natural: Mapping[str, Estimate],
    verdicts: Mapping[tuple[str, str], str],
    against: Sequence[str],
) -> str:
    """What the perceptual metrics show for one experiment, in words generated from its numbers: the
    metrics the registry names for words (:func:`vc.evaluation.registry.in_words`), or, where it has none
    of them, every headline metric it has."""
    words = [m for m in in_words() if m in overall] or [m for m in headline() if m in overall]
    said = [_clause(m, overall, baselines, natural) for m in words]
    text = f"**`{name}`**: " + "; ".join(said) + "."
    for other in against:
        found = [
            f"{_label(m)} {verdicts[other, m].replace('; ', ', ')}" for m in words if (other, m) in verdicts
        ]
        if found:
            text += f" Against `{other}`: " + "; ".join(found) + "."
    return textwrap.fill(text, width=110)


def _conversion_baseline(summaries: Mapping[str, Mapping[str, Any]]) -> str | None:
    """The baseline each experiment's paragraph is read against beside the reference experiment: the first
    in the report that converts (made from the source recording through a vocoder; ``mean-var``)."""
    converts = [n for n, b in BASELINES.items() if b.made_from == "source" and b.vocoder]
    return next((n for n, s in summaries.items() if s["kind"] == "baseline" and n in converts), None)


def _direction_words(metrics: Sequence[str]) -> str:
    """``higher is better for A, B and C; lower for D and E`` over ``metrics``, each named once."""

    def join(names: list[str]) -> str:
        return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]

    def names(higher: bool) -> list[str]:
        return list(
            dict.fromkeys(spec(m).prose or _label(m) for m in metrics if higher_is_better(m) == higher)
        )

    higher, lower = names(True), names(False)
    parts = ([f"higher is better for {join(higher)}"] if higher else []) + (
        [f"lower for {join(lower)}"] if lower else []
    )
    return "; ".join(parts)


def _skipped_lines(material: ReferenceMaterial) -> list[str]:
    if not material.skipped:
        return []
    lines = ["Skipped perceptual metrics:", ""]
    lines += [f"- {metric}: {why}" for metric, why in material.skipped.items()]
    return [*lines, ""]


def _note_lines(notes: Mapping[str, Sequence[str]]) -> list[str]:
    """Per system, how many utterances have a perceptual note (bad audio, a failed ASR decode), with the first
    reason."""
    found = {name: [n for n in ns if n] for name, ns in notes.items()}
    found = {name: ns for name, ns in found.items() if ns}
    if not found:
        return []
    lines = [
        "Utterances with a note (NaN where a metric could not score them, left out of the means; "
        "CER = WER = 1 where the ASR's decode failed):",
        "",
    ]
    lines += [f"- `{name}`: {len(ns)}, e.g. {ns[0]}" for name, ns in found.items()]
    return [*lines, ""]


def _provenance_table(material: ReferenceMaterial) -> str:
    rows = [
        {
            "metric": metric,
            "package": f"{p.get('package', '')} {p.get('version', '')}".strip(),
            "model": p.get("model", "") or p.get("file", "").split(",")[0].rsplit("/", 1)[-1],
            "SHA-256": ", ".join(h[:12] for h in p.get("sha256", "").split(", ") if h),
        }
        for metric, p in material.provenance.items()
    ]
    return md_table(pd.DataFrame(rows))


#: What CER and WER are scored against, by :attr:`ReferenceMaterial.asr_reference`.
_ASR_REFERENCE = {
    "sentence text": "the sentence text",
    "source transcript": "the ASR transcript of the recording each utterance was made from (no texts)",
    "mixed": "the sentence text where the corpus has one, else the source recording's ASR transcript",
}


def perceptual_section(
    material: ReferenceMaterial,
    summaries: Mapping[str, Mapping[str, Any]],
    comparisons: Sequence[Comparison],
    natural: Mapping[str, Estimate],
    reference: str | None,
    notes: Mapping[str, Sequence[str]] | None = None,
) -> list[str]:
    """The report's "Perceptual metrics" section as Markdown lines: models, skipped metrics, utterances with
    a note (bad audio: ``notes`` by system), verdicts and a paragraph per experiment. ``natural``: the
    natural recordings' estimates (:func:`natural_estimates`)."""
    parts = ["## Perceptual metrics", ""]
    if not material.metrics:
        return [*parts, "None ran.", "", *_skipped_lines(material)]
    metrics = shown_metrics(summaries)
    experiments = [n for n, s in summaries.items() if s["kind"] == "experiment"]
    baselines = {n: s["overall"] for n, s in summaries.items() if s["kind"] == "baseline"}
    asr = _ASR_REFERENCE.get(material.asr_reference, "")
    parts += [
        "Speaker similarity, intelligibility and predicted MOS of every converted and baseline utterance "
        "(recipe below); means and intervals are in the results table. "
        + (f"CER and WER are scored against {asr}. " if material.scores_text else "")
        + "Models:",
        "",
        _provenance_table(material),
        "",
        *_skipped_lines(material),
        *_note_lines(notes or {}),
        f"Paired differences on the same items, as for MCD ({_direction_words(metrics)}):",
        "",
        _verdict_table(experiments, comparisons, metrics),
        "",
        "What the metrics show, per experiment:",
        "",
    ]
    baseline = _conversion_baseline(summaries)
    for name in experiments:
        verdicts = {(c.other, c.metric): c.verdict for c in comparisons if c.system == name}
        against = [o for o in (reference, baseline) if o and o != name and o in summaries]
        overall = summaries[name]["overall"]
        parts += [_paragraph(name, overall, baselines, natural, verdicts, against), ""]
    return parts


def perceptual_recipe_markdown(cfg: EvaluateConfig) -> str:
    """The perceptual metrics' recipe as every report states it, with these params: each registered group's
    own step (its module's ``recipe``), then the statistics."""
    steps = [group.recipe(cfg) for group in GROUPS.values()]
    steps.append(
        "Statistics as for MCD: one value per distinct item (the unconverted source's CER, MOS and "
        "similarity to its own speaker once per source recording), means with cluster-bootstrap intervals, "
        "paired differences on the same items. Empty, unreadable, silent (peak below -60 dBFS) or too short "
        "audio (speech under 0.3 s after VAD, 0.2 s for ASR, 0.5 s for DNSMOS) gets NaN and a note in "
        "`perceptual_note`, and is left out of the means."
    )
    return "\n".join(
        textwrap.fill(f"{i}. {step}", width=110, subsequent_indent="   ")
        for i, step in enumerate(steps, start=1)
    )
