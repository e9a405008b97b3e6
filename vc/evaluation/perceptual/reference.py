"""The reference material every evaluation of one corpus and scored split shares, as data: what the
``references`` stage writes and every evaluation reads (built by :mod:`vc.evaluation.perceptual.material`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from vc.errors import InputError
from vc.io import save_npz, write_json

__all__ = ["NATURAL_KEYS", "NOTE", "MaterialError", "ReferenceMaterial"]

#: The natural recordings' key columns, and the note column that ends every row.
NATURAL_KEYS = ("speaker", "utt_id", "text")
NOTE = "perceptual_note"


class MaterialError(InputError):
    """Reference material is missing or a model cannot be set up; the message names the file or params key."""


@dataclass
class ReferenceMaterial:
    """What every evaluation of one corpus and split shares (written by the ``references`` stage).

    Attributes:
        metrics: the groups that ran (registered names of :mod:`vc.evaluation.perceptual.groups`).
        skipped: metric group -> why it did not run (switched off, or packages not installed).
        provenance: metric group -> package, version, model file and its SHA-256.
        centroids: speaker -> ``(256,)`` unit vector (empty without ``speaker``).
        centroid_utterances: speaker -> training utterances its centroid averages.
        naturals: one row per natural recording of the scored split: ``speaker``, ``utt_id``, ``text``, each
            group's natural columns, ``perceptual_note``.
        embeddings: ``(speaker, utt_id)`` -> ``(256,)`` d-vector of that recording (NaN if it had none).
        text_columns: the text columns the groups that ran added (the ASR transcript); the rest are numbers.
    """

    metrics: tuple[str, ...]
    skipped: dict[str, str]
    provenance: dict[str, dict[str, str]] = field(default_factory=dict)
    centroids: dict[str, np.ndarray] = field(default_factory=dict)
    centroid_utterances: dict[str, int] = field(default_factory=dict)
    naturals: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=[*NATURAL_KEYS, NOTE]))
    embeddings: dict[tuple[str, str], np.ndarray] = field(default_factory=dict)
    text_columns: tuple[str, ...] = ()

    @property
    def scores_text(self) -> bool:
        """Whether a group that ran compares a transcript with a reference text (CER/WER)."""
        return bool(self.text_columns)

    @property
    def asr_reference(self) -> str:
        """What CER/WER compare against: ``sentence text``, ``source transcript`` or ``mixed``."""
        with_text = int((self.naturals["text"].fillna("").str.strip() != "").sum())
        if with_text == len(self.naturals):
            return "sentence text"
        return "source transcript" if with_text == 0 else "mixed"

    def info(self) -> dict[str, Any]:
        """The JSON-ready description written to ``material.json`` and into every ``summary.json``."""
        return {
            "metrics": list(self.metrics),
            "skipped": self.skipped,
            "provenance": self.provenance,
            "asr_reference": self.asr_reference if self.scores_text else "",
            "centroid_utterances": self.centroid_utterances,
            "text_columns": list(self.text_columns),
        }

    def save(self, folder: str | Path) -> None:
        """``material.json``, ``naturals.csv``, ``centroids.npz`` and ``embeddings.npz`` in ``folder``."""
        folder = Path(folder)
        write_json(folder / "material.json", self.info())
        self.naturals.to_csv(folder / "naturals.csv", index=False)
        speakers = sorted(self.centroids)
        save_npz(
            folder / "centroids.npz",
            speakers=np.asarray(speakers, dtype=str),
            centroids=np.asarray([self.centroids[s] for s in speakers], np.float32).reshape(-1, 256),
        )
        keys = sorted(self.embeddings)
        save_npz(
            folder / "embeddings.npz",
            speaker=np.asarray([k[0] for k in keys], dtype=str),
            utt_id=np.asarray([k[1] for k in keys], dtype=str),
            embeddings=np.asarray([self.embeddings[k] for k in keys], np.float32).reshape(-1, 256),
        )

    @classmethod
    def load(cls, folder: str | Path) -> ReferenceMaterial:
        """Read what :meth:`save` wrote; :class:`MaterialError` naming the folder if it is incomplete."""
        folder = Path(folder)
        names = ("material.json", "naturals.csv", "centroids.npz", "embeddings.npz")
        missing = [n for n in names if not (folder / n).is_file()]
        if missing:
            raise MaterialError(
                f"{folder}: no perceptual reference material ({', '.join(missing)} missing); "
                "run the references stage first"
            )
        info = json.loads((folder / "material.json").read_text(encoding="utf-8"))
        text = dict.fromkeys((*NATURAL_KEYS, NOTE, *info.get("text_columns", ())), str)
        naturals = pd.read_csv(folder / "naturals.csv", dtype=text, keep_default_na=False)
        for column in set(naturals.columns) - set(text):
            naturals[column] = pd.to_numeric(naturals[column].replace("", None), errors="coerce")
        with np.load(folder / "centroids.npz") as z:
            centroids = dict(zip(z["speakers"].tolist(), z["centroids"], strict=True))
        with np.load(folder / "embeddings.npz") as z:
            keys = zip(z["speaker"].tolist(), z["utt_id"].tolist(), strict=True)
            embeddings = dict(zip(keys, z["embeddings"], strict=True))
        return cls(
            tuple(info["metrics"]),
            info["skipped"],
            info["provenance"],
            centroids,
            info["centroid_utterances"],
            naturals,
            embeddings,
            tuple(info.get("text_columns", ())),
        )
