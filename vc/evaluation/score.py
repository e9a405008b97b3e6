"""The one entry that scores a system with every metric: the MCD recipe's columns beside the perceptual ones.

Both the ``evaluate`` stage (an experiment's conversions) and the ``baselines`` stage call
:func:`score_every_metric`; neither names a metric.

Perceptual columns (:func:`score_perceptual`), for every row ``(source, target, utt_id, path)``: each group
that ran (:attr:`ReferenceMaterial.metrics`) scores the row's wav once and gives its columns (the registry
rows of its group, :data:`vc.evaluation.registry.METRICS`), plus its text columns (the ASR transcript) and
``perceptual_note``. CER/WER are scored against the sentence text or, for a corpus without texts, against the
ASR transcript of the recording the wav was made from. A row with an empty ``path`` is the unconverted source:
its values are the natural recording's, computed once by the ``references`` stage.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from vc.config import EvaluateConfig, FeaturesConfig
from vc.evaluation.perceptual.base import MadeFrom, RowContext
from vc.evaluation.perceptual.groups import GROUPS
from vc.evaluation.perceptual.reference import MaterialError, ReferenceMaterial
from vc.evaluation.perceptual.scoring import WavJob, score_wavs
from vc.evaluation.recipe import score_system
from vc.evaluation.registry import group_columns

__all__ = ["score_every_metric", "score_perceptual"]


class _Naturals:
    """The natural recordings' rows by ``(speaker, utt_id)``, with what CER/WER compare against."""

    def __init__(self, material: ReferenceMaterial) -> None:
        self.table = material.naturals.set_index(["speaker", "utt_id"])

    def row(self, spk: str, utt: str) -> pd.Series:
        try:
            return self.table.loc[(spk, utt)]
        except KeyError:
            raise MaterialError(f"no natural recording {spk}/{utt} in the reference material") from None

    def reference_text(self, spk: str, utt: str) -> str:
        row = self.row(spk, utt)
        return str(row["text"]).strip() or str(row.get("asr_transcript", "")).strip()


def _columns(metrics: tuple[str, ...]) -> list[str]:
    scores = [c for m in metrics for c in group_columns(m)]
    extra = [c for m in metrics for c in GROUPS[m].extra_columns]
    return [*scores, *extra, "perceptual_note"]


def score_perceptual(
    items: pd.DataFrame,
    material: ReferenceMaterial,
    cfg: EvaluateConfig,
    *,
    workers: int = 0,
    desc: str = "perceptual",
    made_from: MadeFrom = "source",
) -> pd.DataFrame:
    """The perceptual columns for every row of ``items``, in its order (no columns if no group ran).

    Args:
        items: ``source, target, utt_id, path`` (a wav, or ``""`` for the unconverted source recording).
        material: :class:`ReferenceMaterial` of the same corpus and split; its ``metrics`` are scored.
        cfg: the ``evaluate`` section (model settings; must match the material's).
        workers: processes (each wav once).
        desc: progress-bar label.
        made_from: the recording each wav was made from: ``source`` (conversions) or ``target``
            (copy-synthesis, whose similarity to a source speaker is then NaN).
    """
    metrics = material.metrics
    if not metrics:
        return pd.DataFrame(index=range(len(items)))
    naturals = _Naturals(material)
    keys = list(zip(items["source"], items["target"], items["utt_id"], strict=True))
    paths = [str(p) if isinstance(p, str | Path) else "" for p in items["path"]]
    jobs = {
        path: WavJob(path, naturals.reference_text(src if made_from == "source" else tgt, utt), metrics, cfg)
        for (src, tgt, utt), path in zip(keys, paths, strict=True)
        if path
    }
    results = score_wavs(list(jobs.values()), workers, desc) if jobs else {}
    rows = []
    for (src, tgt, utt), path in zip(keys, paths, strict=True):
        ctx = RowContext(src, tgt, made_from)
        if path:
            result = results[path]
            raws = {m: result.get(m, {}) for m in metrics}
            note = result["perceptual_note"]
        else:
            natural = naturals.row(src, utt).to_dict()
            raws = {m: GROUPS[m].natural_raw(natural, src, utt, material) for m in metrics}
            note = natural.get("perceptual_note", "")
        row: dict[str, Any] = {}
        for m in metrics:
            row.update(GROUPS[m].row(raws[m], ctx, material))
        row["perceptual_note"] = note or ""
        rows.append(row)
    return pd.DataFrame(rows).reindex(columns=_columns(metrics))


def score_every_metric(
    items: pd.DataFrame,
    references: str | Path,
    material: ReferenceMaterial,
    features: FeaturesConfig,
    cfg: EvaluateConfig,
    *,
    workers: int = 0,
    label: str = "",
    made_from: MadeFrom = "source",
) -> pd.DataFrame:
    """One system's rows: the MCD recipe's columns (:func:`vc.evaluation.recipe.score_system`) beside the
    perceptual ones (:func:`score_perceptual`), in the order of ``items``; ``label`` names the progress
    bars."""
    suffix = f" {label}" if label else ""
    return pd.concat(
        [
            score_system(items, references, features, cfg, workers=workers, desc=f"evaluate{suffix}"),
            score_perceptual(
                items, material, cfg, workers=workers, desc=f"perceptual{suffix}", made_from=made_from
            ),
        ],
        axis=1,
    )
