"""The one small protocol every perceptual metric group implements, and the context it scores in.

A group (a value of ``evaluate.perceptual``) scores a wav once into *raw* values (an embedding, a transcript
and its error rates, predicted MOS), then turns raw values into the score columns of one row, which may
depend on the row's speakers and on the reference material (speaker similarity needs the centroids). The
natural recordings of the scored split are scored the same way once, by the ``references`` stage, and stand
for the unconverted source. :mod:`vc.evaluation.perceptual.material` and :mod:`vc.evaluation.score` loop over
the registered groups (:mod:`vc.evaluation.perceptual.groups`) and name none.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

import numpy as np
import pandas as pd

from vc.config import EvaluateConfig
from vc.evaluation.perceptual.reference import ReferenceMaterial
from vc.evaluation.registry import group_columns

__all__ = ["MadeFrom", "PerceptualMetric", "RowContext", "SimpleMetric", "join_notes"]

#: The recording a wav was made from: ``source`` (conversions) or ``target`` (copy-synthesis).
MadeFrom = Literal["source", "target"]


@dataclass(frozen=True)
class RowContext:
    """One scored row: its speakers and the recording its wav was made from."""

    source: str
    target: str
    made_from: MadeFrom = "source"


class PerceptualMetric(Protocol):
    """A perceptual metric group.

    Attributes:
        name: the group's name (``evaluate.perceptual``); its score columns are the registry rows
            (:data:`vc.evaluation.registry.METRICS`) of this group.
        packages: ``(import name, PyPI package)`` of everything it needs (optional extras).
        params_key: the params key named when its model cannot be set up.
        extra_columns: text columns it adds to every row besides its metrics (a transcript).
        natural_columns: the columns it adds to the natural recordings' table.
    """

    name: str
    packages: tuple[tuple[str, str], ...]
    params_key: str
    extra_columns: tuple[str, ...]
    natural_columns: tuple[str, ...]

    def recipe(self, cfg: EvaluateConfig) -> str:
        """The group's step of the recipe every report states, with these params (one paragraph)."""
        ...

    def provenance(self, cfg: EvaluateConfig) -> dict[str, str]:
        """Package, version, model file and SHA-256; raises FileNotFoundError or RuntimeError when the
        model cannot be found (checked before any stage runs)."""
        ...

    def prepare(
        self, material: ReferenceMaterial, train: pd.DataFrame, naturals: pd.DataFrame, cfg: EvaluateConfig
    ) -> str:
        """Build what scoring needs from the training split into ``material`` (speaker centroids); return
        why the group cannot run (``""``: it can)."""
        ...

    def score_wav(
        self, wav: np.ndarray, sample_rate: int, reference_text: str, cfg: EvaluateConfig
    ) -> tuple[dict[str, Any], str]:
        """Raw values of one mono wav ``(N,)`` and a note (``""``, or why a value is NaN or set by a rule)."""
        ...

    def row(self, raw: Mapping[str, Any], ctx: RowContext, material: ReferenceMaterial) -> dict[str, Any]:
        """The group's score columns (and :attr:`extra_columns`) of one row from its wav's raw values."""
        ...

    def natural_row(
        self, raw: Mapping[str, Any], speaker: str, utt_id: str, material: ReferenceMaterial
    ) -> dict[str, Any]:
        """The group's :attr:`natural_columns` of one natural recording (``material`` may keep more)."""
        ...

    def natural_raw(
        self, natural: Mapping[str, Any], speaker: str, utt_id: str, material: ReferenceMaterial
    ) -> dict[str, Any]:
        """The raw values of a natural recording, from its row of the natural recordings' table: what the
        unconverted source scores."""
        ...


class SimpleMetric:
    """A group whose raw values are its score columns, whatever the row's speakers (intelligibility,
    naturalness): subclasses give :meth:`provenance` and :meth:`score_wav`, and the rest follows."""

    name: str = ""
    packages: tuple[tuple[str, str], ...] = ()
    params_key: str = ""
    extra_columns: tuple[str, ...] = ()

    @property
    def natural_columns(self) -> tuple[str, ...]:
        return (*self.extra_columns, *group_columns(self.name))

    def prepare(
        self, material: ReferenceMaterial, train: pd.DataFrame, naturals: pd.DataFrame, cfg: EvaluateConfig
    ) -> str:
        return ""

    def row(self, raw: Mapping[str, Any], ctx: RowContext, material: ReferenceMaterial) -> dict[str, Any]:
        out: dict[str, Any] = {c: raw.get(c, np.nan) for c in group_columns(self.name)}
        return {**out, **{c: raw.get(c, "") for c in self.extra_columns}}

    def natural_row(
        self, raw: Mapping[str, Any], speaker: str, utt_id: str, material: ReferenceMaterial
    ) -> dict[str, Any]:
        return {c: raw.get(c) for c in self.natural_columns}

    def natural_raw(
        self, natural: Mapping[str, Any], speaker: str, utt_id: str, material: ReferenceMaterial
    ) -> dict[str, Any]:
        return {c: natural.get(c) for c in self.natural_columns}


def join_notes(notes: Sequence[tuple[str, str]]) -> str:
    """``[(group, note), ...]`` -> ``"note (group, group); other note (group)"``."""
    by_note: dict[str, list[str]] = {}
    for group, note in notes:
        if note:
            by_note.setdefault(note, []).append(group)
    return "; ".join(f"{note} ({', '.join(groups)})" for note, groups in by_note.items())
