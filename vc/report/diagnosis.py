"""The report's "Diagnosis" section: does the diagnosed experiment (``diagnosis.experiment``, the source
notes' record) collapse to its input, and which switch decides its result.

Two tables, each followed by a sentence written from its numbers:

1. on the test sentences (every seed, from the evaluation): MCD to the target against MCD to the source
   recording (``mcd_to_source_db``), speaker similarity to the target against the source, and the shares of
   conversions whose d-vector is nearest the target (``spk_accuracy``) and nearest the source
   (``spk_nearest_source``), beside the reference experiment, mean-var and the unconverted source;
2. the ``diagnosis`` stage's runs (validation sentences only, one seed): a working experiment unchanged, with
   one switch of the diagnosed experiment added per run, and the diagnosed experiment itself; each run's
   final validation MCD to the target and to its input.

The "Contrast" section (:func:`contrast_section`) reads the ``contrast`` stage's walk the same way: the
worse of two experiments unchanged, with one difference of the better one added per run, and the better
one; a sentence says how much of the gap each difference closes.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from vc.report.markdown import fmt, md_table

__all__ = [
    "COLLAPSE_COLUMNS",
    "collapse_verdict",
    "contrast_section",
    "contrast_verdict",
    "diagnosis_section",
    "switch_verdict",
]

#: Test-set columns of the collapse table: summary key -> label.
COLLAPSE_COLUMNS = {
    "mcd_db": "MCD to target dB",
    "mcd_to_source_db": "MCD to source dB",
    "spk_sim_target": "sim. to target",
    "spk_sim_source": "sim. to source",
    "spk_accuracy": "nearest is target",
    "spk_nearest_source": "nearest is source",
}


def _mean(overall: Mapping[str, Any], key: str) -> float:
    value = overall.get(key, float("nan"))
    return float(value) if isinstance(value, int | float) else float("nan")


def collapse_verdict(name: str, overall: Mapping[str, Any], source_mcd: float) -> str:
    """Sentences from the diagnosed experiment's test means (``overall``) and the unconverted source's MCD to
    the target (``source_mcd``): collapsed to its input, distorted away from both, or converting."""
    to_target, to_source = _mean(overall, "mcd_db"), _mean(overall, "mcd_to_source_db")
    near_source, near_target = _mean(overall, "spk_nearest_source"), _mean(overall, "spk_accuracy")
    cer = _mean(overall, "cer")
    if not (math.isfinite(to_target) and math.isfinite(to_source)):
        return f"`{name}` has no MCD to compare."
    numbers = f"MCD {to_target:.2f} dB to the target and {to_source:.2f} dB to its own input"
    speaker = (
        f"; the speaker encoder places {near_source:.0%} of its conversions nearest the source speaker and "
        f"{near_target:.0%} nearest the target"
        if math.isfinite(near_source) and math.isfinite(near_target)
        else ""
    )
    words = f"; CER {cer:.2f}" if math.isfinite(cer) else ""
    if to_source < to_target:
        return (
            f"**Yes, `{name}` collapses to its input**: {numbers}{speaker}{words}. Its output is nearer the "
            "recording it was given than the speaker it was asked for."
        )
    if to_target >= source_mcd:
        pitch = (
            " The speaker encoder's verdict rests on pitch, which the shared F0 transform moves to the "
            "target's whatever the generator does."
            if math.isfinite(near_target) and near_target >= 0.5
            else ""
        )
        return (
            f"**No collapse to the input, and no conversion either**: {numbers}{speaker}{words}. Its "
            f"spectrum is further from its input than the target's recording is, and further from the "
            f"target than the unconverted source ({source_mcd:.2f} dB): the generator distorts rather than "
            f"converts.{pitch}"
        )
    return f"**No collapse to the input**: {numbers}{speaker}{words}."


def switch_verdict(result: Mapping[str, Any]) -> str:
    """Sentences from the ablation: which switch, added alone to the working experiment, hurts most (in dB of
    validation MCD), which hardly matter, and where the diagnosed experiment itself lands."""
    runs = {r["run"]: r for r in result["runs"]}
    start, name = result["start"], result["experiment"]
    base = runs.get(start)
    added = [r for r in result["runs"] if r["run"].startswith("+")]
    if base is None or not added:
        return "No switch was tried (`diagnosis.switches` is empty)."
    changes = sorted(((r["val_mcd_db"] - base["val_mcd_db"], r["run"]) for r in added), reverse=True)
    worst, worst_run = changes[0]
    mean_var, source = result["mcd_db_mean_var"], result["mcd_db_source"]
    text = (
        f"`{start}` reaches {base['val_mcd_db']:.2f} dB here (mean-var {mean_var:.2f}, unconverted source "
        f"{source:.2f}). "
    )
    if worst <= 0:
        text += "No single switch of the diagnosed experiment makes it worse."
    else:
        text += (
            f"Added alone, **{worst_run[1:]}** hurts most: {runs[worst_run]['val_mcd_db']:.2f} dB "
            f"({worst:+.2f} dB)"
        )
        others = [f"{run[1:]} {change:+.2f}" for change, run in changes[1:]]
        text += f"; the others: {', '.join(others)} dB." if others else "."
    if name in runs and name != start:
        diagnosed = runs[name]
        text += (
            f" All of them together (`{name}` itself) score {diagnosed['val_mcd_db']:.2f} dB, "
            f"{diagnosed['val_mcd_db_to_source']:.2f} dB from their own input."
        )
    return text


def _compact(overrides: Mapping[str, Any], prefix: str = "") -> str:
    parts = []
    for key, value in overrides.items():
        if isinstance(value, Mapping):
            parts.append(_compact(value, f"{prefix}{key}."))
        else:
            parts.append(f"`{prefix}{key}={value}`")
    return ", ".join(p for p in parts if p) or "-"


def _collapse_table(
    systems: Sequence[str], summaries: Mapping[str, dict], decimals: Mapping[str, int]
) -> str:
    rows = []
    for name in systems:
        overall = summaries[name]["overall"]
        cells = {}
        for key, label in COLLAPSE_COLUMNS.items():
            value = _mean(overall, key)
            share = key in ("spk_accuracy", "spk_nearest_source")
            cells[label] = (
                "-" if math.isnan(value) else (f"{value:.0%}" if share else fmt(value, decimals[key]))
            )
        rows.append({"system": name, **cells})
    return md_table(pd.DataFrame(rows))


def diagnosis_section(
    result: Mapping[str, Any] | None,
    summaries: Mapping[str, dict],
    reference: str | None,
    ci: str,
) -> list[str]:
    """The section's lines, or none when nothing was diagnosed (``diagnosis.enabled: false``)."""
    if not result or result.get("experiment") is None:
        return []
    name = result["experiment"]
    lines = [f"## Diagnosis: `{name}`", ""]
    start = result.get("start")
    systems = list(dict.fromkeys(s for s in (name, start, reference, "mean-var", "source") if s in summaries))
    if name in summaries:
        lines += [
            "Does the output collapse to the input? Test sentences, every seed (means; intervals in "
            f"`summary.json`, {ci}). *MCD to source*: the conversion against the source speaker's "
            "recording of the same sentence (the recipe, step 8); *nearest is source*: the share of "
            "conversions whose d-vector is nearer the source speaker's centroid than every other.",
            "",
            _collapse_table(systems, summaries, {k: 2 if "mcd" in k else 3 for k in COLLAPSE_COLUMNS}),
            "",
            collapse_verdict(
                name,
                summaries[name]["overall"],
                _mean(summaries.get("source", {}).get("overall", {}), "mcd_db"),
            ),
            "",
        ]
    runs = pd.DataFrame(
        [
            {
                "run": r["run"],
                "switch": _compact(r["switch"]),
                "val MCD to target dB": fmt(r["val_mcd_db"], 2),
                "val MCD to source dB": fmt(r["val_mcd_db_to_source"], 2),
                "best iteration": r["best_step"],
            }
            for r in result["runs"]
        ]
    )
    lines += [
        f"Which switch causes it? The `diagnosis` stage trains `{result['start']}` (which works) for "
        f"{result['iterations']} iterations (seed {result['seed']}) unchanged, then with one switch of "
        f"`{name}` added per run (`+name`), then `{name}` itself, and scores each last generator on all "
        f'{result["validation_items"]} validation conversions (never a test sentence; README: "Validation '
        'curve"). *val MCD to source*: the same distance from each conversion to its own input (near 0: '
        "a copy). One seed per run: read differences of a few tenths of a dB as noise.",
        "",
        md_table(runs),
        "",
        switch_verdict(result),
        "",
    ]
    return lines


def contrast_verdict(result: Mapping[str, Any]) -> str:
    """Sentences from the contrast walk: the gap between the two experiments on the validation sentences,
    and how much of it each difference, added alone to the worse one, closes (in dB and as a share)."""
    runs = {r["run"]: r for r in result["runs"]}
    worse, better = result["worse"], result["better"]
    base, top = runs.get(worse), runs.get(better)
    added = [r for r in result["runs"] if "+" in r["run"]]
    if base is None or top is None or not added:
        return "Nothing to compare (`contrast.switches` is empty, or both names are one experiment)."
    gap = base["val_mcd_db"] - top["val_mcd_db"]
    text = (
        f"On the validation sentences `{better}` reaches {top['val_mcd_db']:.2f} dB and `{worse}` "
        f"{base['val_mcd_db']:.2f} dB ({-gap:+.2f} dB). "
    )
    changes = sorted((r["val_mcd_db"] - base["val_mcd_db"], r["run"].split("+", 1)[1]) for r in added)
    each = ", ".join(f"{name} {change:+.2f} dB" for change, name in changes)
    if gap <= 0:
        return text + (
            f"At this budget the ordering does not show here, so the walk explains nothing; added alone to "
            f"`{worse}`: {each}."
        )
    best_change, best_name = changes[0]
    share = -best_change / gap
    text += f"Added alone to `{worse}`: {each}. "
    if share >= 0.5:
        text += (
            f"**{best_name}** alone closes {share:.0%} of the gap: it is the difference that decides the "
            "order here."
        )
    elif best_change < 0:
        text += (
            f"No difference alone closes half of the gap (the largest, {best_name}, {share:.0%}): the "
            "order comes from the differences together."
        )
    else:
        text += "No difference alone helps: the order comes from the differences together."
    return text


def contrast_section(result: Mapping[str, Any] | None, summaries: Mapping[str, dict]) -> list[str]:
    """The "Contrast" section's lines, or none when the ``contrast`` stage is off."""
    if not result or result.get("better") is None:
        return []
    worse, better = result["worse"], result["better"]
    base = next((r["val_mcd_db"] for r in result["runs"] if r["run"] == worse), float("nan"))
    runs = pd.DataFrame(
        [
            {
                "run": r["run"],
                "difference added": _compact(r["switch"]),
                "val MCD to target dB": fmt(r["val_mcd_db"], 2),
                f"change from {worse} dB": fmt(r["val_mcd_db"] - base, 2) if r["run"] != worse else "-",
                "val MCD to source dB": fmt(r["val_mcd_db_to_source"], 2),
            }
            for r in result["runs"]
        ]
    )
    test = {
        name: _mean(summaries[name]["overall"], "mcd_db") for name in (better, worse) if name in summaries
    }
    on_test = (
        f"On the test sentences `{better}` scores {test[better]:.2f} dB and `{worse}` {test[worse]:.2f} dB "
        "(every seed; the paired difference is in the tables above). "
        if len(test) == 2 and all(math.isfinite(v) for v in test.values())
        else ""
    )
    return [
        f"## Contrast: `{better}` against `{worse}`",
        "",
        f"{on_test}Which of their differences decides the order? The `contrast` stage trains `{worse}` for "
        f"{result['iterations']} iterations (seed {result['seed']}) unchanged, then with one difference of "
        f"`{better}` added per run (`{worse}+name`), then `{better}` itself, and scores each last generator "
        f"on all {result['validation_items']} validation conversions (never a test sentence; mean-var "
        f"{result['mcd_db_mean_var']:.2f} dB, unconverted source {result['mcd_db_source']:.2f} dB). One seed "
        "per run: read differences of a few tenths of a dB as noise.",
        "",
        md_table(runs),
        "",
        contrast_verdict(result),
        "",
    ]
