"""The report's listening-test section, from the ``ratings`` stage's ``ratings.json``
(:mod:`pipeline.ratings`, :func:`vc.listen.ratings.analyse_ratings`).

Naturalness is the mean opinion score (1-5), similarity the share of "same speaker" answers; both with
cluster-bootstrap intervals over raters and sentences, and paired differences in the objective metrics'
wording (higher is better for both). Rater tokens are credentials: the report names raters by a short hash.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping
from typing import Any

__all__ = ["ratings_section"]

TASKS = {"naturalness": ("naturalness MOS (1-5)", 2), "similarity": ('similarity (share "same")', 2)}


def _score(score: Mapping[str, Any], digits: int) -> str:
    mean, low, high = score["mean"], score["low"], score["high"]
    if not score["n"] or not math.isfinite(mean):
        return "-"
    if not (math.isfinite(low) and math.isfinite(high)):
        return f"{mean:.{digits}f} (too few sentences for an interval)"
    return f"{mean:.{digits}f} [{low:.{digits}f}, {high:.{digits}f}]"


def _rater(token: str) -> str:
    return "rater " + hashlib.sha256(token.encode()).hexdigest()[:8]


def _systems_table(result: Mapping[str, Any], ci: str) -> list[str]:
    head = " | ".join(f"{label}, {ci}" for label, _ in TASKS.values())
    lines = [f"| system | kind | {head} | ratings | raters | sentences |", "|---|---|---|---|---:|---:|---:|"]
    for s in result["systems"]:
        cells = [_score(s[task], digits) for task, (_, digits) in TASKS.items()]
        counted = [s[task] for task in TASKS if s[task]["n"]]
        n = sum(c["n"] for c in counted)
        raters = max((c["raters"] for c in counted), default=0)
        sentences = max((c["sentences"] for c in counted), default=0)
        lines.append(f"| {s['name']} | {s['kind']} | {' | '.join(cells)} | {n} | {raters} | {sentences} |")
    return lines


def _differences_table(result: Mapping[str, Any]) -> list[str]:
    by_pair: dict[tuple[str, str], dict[str, str]] = {}
    for d in result["differences"]:
        by_pair.setdefault((d["system"], d["other"]), {})[d["task"]] = d["verdict"]
    if not by_pair:
        return ["No paired differences: too few systems or cells rated by the same rater and sentence."]
    lines = ["| system | compared with | naturalness | similarity |", "|---|---|---|---|"]
    for (system, other), verdicts in by_pair.items():
        lines.append(
            f"| {system} | {other} | {verdicts.get('naturalness', '-')} | {verdicts.get('similarity', '-')} |"
        )
    return lines


def _screening(result: Mapping[str, Any]) -> list[str]:
    low = [r for r in result["raters"] if r["low"]]
    threshold = result["natural_threshold"]
    if not low:
        return [
            f"Post-screening: no rater scored the hidden natural reference below {threshold:g} on average."
        ]
    named = ", ".join(
        f"{_rater(r['rater'])} ({r['natural_mos']:.2f} over {r['n_natural']}"
        f"{', excluded' if r['excluded'] else ''})"
        for r in low
    )
    action = "left out" if any(r["excluded"] for r in low) else "kept (`ratings.exclude_low_raters: false`)"
    return [
        f"Post-screening: {len(low)} rater(s) scored the hidden natural reference below {threshold:g} on "
        f"average, {action}: {named}."
    ]


def ratings_section(result: Mapping[str, Any] | None, ci: str) -> list[str]:
    """The section's lines; ``result`` is ``ratings.json`` (None: the ratings stage did not run)."""
    lines = ["## Listening test", ""]
    if result is None or result.get("status") != "rated":
        reason = result.get("reason", "no reason given") if result else "the ratings stage did not run"
        return [
            *lines,
            f"No listening-test ratings yet: {reason}. Every number above is an objective proxy; README "
            '"Listen and rate" says how to run the test (`make listen`), and the `ratings` stage adds the '
            "results here.",
            "",
        ]
    counts = (
        f"{result['n_used']} ratings used from {len(result['exports'])} export(s); left out: "
        f"{result['n_stale']} stale (the audio changed since it was rated), {result['n_unknown']} of items "
        f"no longer in the test, {result['n_duplicate']} repeated across exports, {result['n_excluded']} by "
        "post-screening."
    )
    return [
        *lines,
        'Voice Conversion Challenge protocol (README "Listen and rate"): naturalness rated 1-5 with the '
        'natural recordings as a hidden reference; similarity as "same speaker" or not against the target '
        f"speaker's natural voice. Intervals: {ci}, cluster bootstrap resampling raters and sentences. "
        + counts,
        "",
        *_systems_table(result, ci),
        "",
        f"Paired differences (by rater and sentence; higher is better), against {result['reference']} and "
        "between experiments:",
        "",
        *_differences_table(result),
        "",
        *_screening(result),
        "",
    ]
