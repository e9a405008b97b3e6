"""Every metric of the evaluation, declared once.

A :class:`MetricSpec` row says what a score column is: its group (``recipe``, the MCD recipe of
:mod:`vc.evaluation.recipe`; or a perceptual group, a value of ``evaluate.perceptual``), its direction, how
the report labels it and rounds it, which item a value of it belongs to in a system that does not convert,
and the natural recordings' column it is read against. Scoring, summaries, paired verdicts, the report's
tables and ``metrics.json``, MLflow keys and log lines loop over :data:`METRICS`; none of them names a
metric.

To add a metric: one row here (or :func:`register` from a test or a notebook), and, for a perceptual
group, one module implementing :class:`vc.evaluation.perceptual.base.PerceptualMetric` registered in
:data:`vc.evaluation.perceptual.groups.GROUPS`.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Literal

__all__ = [
    "METRICS",
    "ItemUnit",
    "MetricSpec",
    "compared",
    "group_columns",
    "headline",
    "higher_is_better",
    "in_words",
    "is_recipe",
    "natural_line",
    "register",
    "spec",
    "summarized",
    "summary_line",
]

#: Which item a value belongs to in a system that does not convert (``source``): ``pair``, a comparison of
#: two recordings (symmetric: the unordered pair); ``recording``, a value of the source recording alone;
#: ``conversion``, a value that depends on the target speaker too (the ordered pair). In every other system a
#: value belongs to the system's own unit.
ItemUnit = Literal["pair", "recording", "conversion"]


@dataclass(frozen=True)
class MetricSpec:
    """One score column.

    Attributes:
        name: the column of ``scores.csv`` and the key of summaries, ``metrics.json`` and MLflow.
        group: ``recipe`` or the perceptual group that writes it (``speaker``, ``intelligibility``, ...).
        higher_is_better: the direction every verdict and table respects.
        label: the report's column label; empty: kept in ``summary.json`` only.
        decimals: digits the report shows.
        item_unit: the item of a value in a non-converting system (:data:`ItemUnit`).
        natural_column: the natural recordings' column that stands for it (the floor or ceiling), or empty.
        summarized: averaged with an interval in ``summary.json`` (frame counts are not).
        compared: paired verdicts against the other systems.
        diff_in_metrics: those paired differences go to ``metrics.json`` (DVC metrics) too.
        in_words: named in the report's paragraph per experiment.
        verdict_unit: the unit a verdict's numbers are worded in (``dB``), or empty.
        prose: its name in running text where the label is terse (empty: the label); metrics that share
            one are named once.
    """

    name: str
    group: str
    higher_is_better: bool = False
    label: str = ""
    decimals: int = 2
    item_unit: ItemUnit = "recording"
    natural_column: str = ""
    summarized: bool = True
    compared: bool = False
    diff_in_metrics: bool = True
    in_words: bool = False
    verdict_unit: str = ""
    prose: str = ""


_RECIPE = "recipe"

#: Every metric, in the order every table lists them (the recipe's first, then the perceptual groups').
METRICS: dict[str, MetricSpec] = {
    m.name: m
    for m in (
        MetricSpec("mcd_db", _RECIPE, label="MCD dB", item_unit="pair", compared=True, verdict_unit="dB"),
        MetricSpec("log_f0_rmse", _RECIPE, label="log-F0 RMSE", decimals=3, item_unit="pair"),
        MetricSpec("f0_corr", _RECIPE, True, label="F0 corr", decimals=3, item_unit="pair"),
        MetricSpec(
            "msd_db",
            _RECIPE,
            label="MSD dB",
            item_unit="pair",
            compared=True,
            diff_in_metrics=False,
            verdict_unit="dB",
        ),
        # MCD from the converted utterance to the SOURCE speaker's recording of the sentence (same recipe): a
        # conversion that stays its input scores near 0 here (the record experiment's diagnosis)
        MetricSpec("mcd_to_source_db", _RECIPE, item_unit="pair"),
        MetricSpec("log_f0_rmse_cents", _RECIPE, item_unit="pair", summarized=False),
        MetricSpec("vuv_error", _RECIPE, item_unit="pair", summarized=False),
        MetricSpec("aligned_frames", _RECIPE, item_unit="pair", summarized=False),
        MetricSpec("voiced_frames", _RECIPE, item_unit="pair", summarized=False),
        # cosine of the d-vector to the target speaker's centroid
        MetricSpec(
            "spk_sim_target",
            "speaker",
            True,
            label="sim. to target",
            decimals=3,
            item_unit="conversion",
            natural_column="spk_sim_own",
            compared=True,
            in_words=True,
            prose="similarity to the target",
        ),
        # ... to the source speaker's centroid (a conversion should move away from it)
        MetricSpec(
            "spk_sim_source",
            "speaker",
            label="sim. to source",
            decimals=3,
            compared=True,
            prose="similarity to the source",
        ),
        # 1 when nearer the target's centroid than every other speaker's: its mean is the conversion accuracy
        MetricSpec(
            "spk_accuracy",
            "speaker",
            True,
            label="conversion accuracy",
            item_unit="conversion",
            natural_column="spk_accuracy_own",
            compared=True,
            in_words=True,
        ),
        # 1 when nearer the source's centroid than every other speaker's: the share that stayed the source
        MetricSpec("spk_nearest_source", "speaker", item_unit="conversion"),
        MetricSpec(
            "cer",
            "intelligibility",
            label="CER",
            decimals=3,
            natural_column="cer",
            compared=True,
            in_words=True,
        ),
        MetricSpec("wer", "intelligibility", label="WER", decimals=3, natural_column="wer", compared=True),
        MetricSpec(
            "dnsmos_ovrl",
            "naturalness",
            True,
            label="DNSMOS OVRL",
            natural_column="dnsmos_ovrl",
            compared=True,
            in_words=True,
            prose="DNSMOS",
        ),
        MetricSpec("dnsmos_sig", "naturalness", True),
        MetricSpec("dnsmos_bak", "naturalness", True),
        MetricSpec(
            "dnsmos_p808",
            "naturalness",
            True,
            label="DNSMOS P.808",
            natural_column="dnsmos_p808",
            compared=True,
            prose="DNSMOS",
        ),
    )
}


def spec(name: str) -> MetricSpec:
    """The row of metric ``name``; KeyError naming the known metrics if there is none."""
    try:
        return METRICS[name]
    except KeyError:
        raise KeyError(f"unknown metric '{name}' (known: {', '.join(METRICS)})") from None


def group_columns(group: str) -> tuple[str, ...]:
    """The score columns a group writes, in registry order."""
    return tuple(m.name for m in METRICS.values() if m.group == group)


def summarized(group: str | None = None) -> tuple[str, ...]:
    """The metrics summarised with an interval (of ``group`` only, if given)."""
    return tuple(m.name for m in METRICS.values() if m.summarized and group in (None, m.group))


def compared() -> tuple[str, ...]:
    """The metrics with paired verdicts, in table order."""
    return tuple(m.name for m in METRICS.values() if m.compared)


def headline() -> tuple[str, ...]:
    """The perceptual metrics with a column in the report's headline table."""
    return tuple(m.name for m in METRICS.values() if m.label and m.group != _RECIPE)


def in_words() -> tuple[str, ...]:
    """The metrics the report's paragraph per experiment compares in words."""
    return tuple(m.name for m in METRICS.values() if m.in_words)


def higher_is_better(name: str) -> bool:
    return spec(name).higher_is_better


def is_recipe(name: str) -> bool:
    """Whether the MCD recipe computes ``name`` (the columns every system has, perceptual metrics or not)."""
    return spec(name).group == _RECIPE


def summary_line(overall: Mapping[str, Any]) -> str:
    """One log line of a summary's overall means: every labelled metric it has, ``MCD dB 8.95 [8.80, 9.10]``
    with an interval where it has one, and ``n``."""
    parts = []
    for m in METRICS.values():
        if not m.label or m.name not in overall:
            continue
        text = f"{m.label} {overall[m.name]:.{m.decimals}f}"
        low, high = overall.get(f"{m.name}_ci_low"), overall.get(f"{m.name}_ci_high")
        if m.compared and m.group == _RECIPE and low is not None and high is not None:
            text += f" [{low:.{m.decimals}f}, {high:.{m.decimals}f}]"
        parts.append(text)
    n = overall.get("n")
    return ", ".join(parts) + (f" ({int(n)} items)" if n is not None else "")


def natural_line(naturals: Any) -> str:
    """One log line of the natural recordings' table (a DataFrame): the mean of each metric's natural
    column it has."""
    parts = [
        f"{m.label} {naturals[m.natural_column].mean():.{m.decimals}f}"
        for m in METRICS.values()
        if m.label and m.natural_column in naturals and naturals[m.natural_column].notna().any()
    ]
    return ", ".join(parts) or "no perceptual values"


@contextmanager
def register(*specs: MetricSpec) -> Iterator[None]:
    """Add metrics for the duration of a ``with`` block (tests, notebooks); removed again afterwards."""
    for s in specs:
        if s.name in METRICS:
            raise ValueError(f"metric '{s.name}' is registered already")
    METRICS.update({s.name: s for s in specs})
    try:
        yield
    finally:
        for s in specs:
            METRICS.pop(s.name, None)
