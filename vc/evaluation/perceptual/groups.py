"""The registered perceptual metric groups, in the order every table lists them.

Each group is one module implementing :class:`vc.evaluation.perceptual.base.PerceptualMetric`; its score
columns are the rows of :data:`vc.evaluation.registry.METRICS` with its name as their group. To add a group:
a module, its registry rows, an entry here (or :func:`register` in a test), and its name in the config's
``PerceptualMetric`` Literal (a test keeps the two equal).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from vc.evaluation import registry
from vc.evaluation.perceptual import intelligibility, naturalness, speaker
from vc.evaluation.perceptual.base import PerceptualMetric

__all__ = ["GROUPS", "register"]

GROUPS: dict[str, PerceptualMetric] = {
    m.name: m for m in (speaker.METRIC, intelligibility.METRIC, naturalness.METRIC)
}


@contextmanager
def register(metric: PerceptualMetric, *specs: registry.MetricSpec) -> Iterator[None]:
    """Add a group and its metrics for the duration of a ``with`` block (tests, notebooks)."""
    if metric.name in GROUPS:
        raise ValueError(f"perceptual group '{metric.name}' is registered already")
    with registry.register(*specs):
        GROUPS[metric.name] = metric
        try:
            yield
        finally:
            GROUPS.pop(metric.name, None)
