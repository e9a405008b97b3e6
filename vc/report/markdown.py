"""Markdown pieces of the generated report: numbers, intervals and tables, formatted one way everywhere."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import pandas as pd

__all__ = ["fmt", "interval", "md_table"]


def fmt(x: float | None, digits: int = 2) -> str:
    """``x`` with ``digits`` decimals; ``n/a`` for None or NaN."""
    return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{digits}f}"


def interval(o: Mapping[str, Any], metric: str, digits: int = 2) -> str:
    """``"mean [low, high]"`` from a summary row's ``<metric>``, ``<metric>_ci_low``, ``<metric>_ci_high``;
    the number of sentences instead of an interval when there is none."""
    if math.isnan(o[metric + "_ci_low"]):
        return f"{fmt(o[metric], digits)} (no interval: {o.get('sentences', '?')} sentences)"
    low, high = fmt(o[metric + "_ci_low"], digits), fmt(o[metric + "_ci_high"], digits)
    return f"{fmt(o[metric], digits)} [{low}, {high}]"


def md_table(df: pd.DataFrame) -> str:
    """A pipe table with every column and row of ``df``."""
    cols = [str(c) for c in df.columns]
    lines = ["| " + " | ".join(cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    lines += ["| " + " | ".join(str(v) for v in row) + " |" for row in df.itertuples(index=False)]
    return "\n".join(lines)
