"""The reference material every evaluation of one corpus and scored split shares (the ``references`` stage).

- per perceptual group, what it prepares from the *training* split (speaker similarity: a centroid per
  speaker from its training utterances, never a sentence of the scored split);
- the **natural recordings** of the scored split, scored once by every group: the floor or ceiling a
  conversion is read against (their CER, their similarity to their own speaker), and the values the
  unconverted ``source`` system takes;
- which groups ran, which were skipped and why, and each model's provenance.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import pandas as pd

from vc.config import EvaluateConfig
from vc.errors import InputError
from vc.evaluation.perceptual import missing_packages
from vc.evaluation.perceptual.groups import GROUPS
from vc.evaluation.perceptual.offline import enable_offline
from vc.evaluation.perceptual.reference import NATURAL_KEYS, NOTE, MaterialError, ReferenceMaterial
from vc.evaluation.perceptual.scoring import WavJob, score_wavs

__all__ = [
    "MaterialError",
    "ReferenceMaterial",
    "build_reference_material",
    "check_models",
    "metric_status",
    "natural_columns",
]

log = logging.getLogger(__name__)


def natural_columns() -> tuple[str, ...]:
    """The natural recordings' table: keys, then every registered group's columns, then the note."""
    return (*NATURAL_KEYS, *(c for g in GROUPS.values() for c in g.natural_columns), NOTE)


def metric_status(requested: Sequence[str]) -> tuple[tuple[str, ...], dict[str, str]]:
    """``(groups that can run, {group: why skipped})`` for ``evaluate.perceptual``, in registry order.

    A group is skipped when it is not requested, or when a package it needs is not installed
    (:func:`vc.evaluation.perceptual.missing_packages`; nothing is imported).
    """
    missing = missing_packages()
    run, skipped = [], {}
    for name in GROUPS:
        if name not in requested:
            skipped[name] = "switched off (evaluate.perceptual)"
        elif missing[name]:
            skipped[name] = (
                f"not installed: {', '.join(missing[name])} (the optional extra vc[metrics]; "
                "`make repro` installs it)"
            )
        else:
            run.append(name)
    return tuple(run), skipped


def check_models(cfg: EvaluateConfig) -> tuple[tuple[str, ...], dict[str, str]]:
    """:func:`metric_status`, then every model of the groups that can run found (:class:`MaterialError`
    naming the params key if not): what ``python -m pipeline.check`` verifies before any stage runs."""
    metrics, skipped = metric_status(cfg.perceptual)
    _provenance(metrics, cfg)
    return metrics, skipped


def _provenance(metrics: Sequence[str], cfg: EvaluateConfig) -> dict[str, dict[str, str]]:
    """Each group's model provenance; also checks that every model exists before any work starts."""
    enable_offline()
    out: dict[str, dict[str, str]] = {}
    for name in metrics:
        group = GROUPS[name]
        try:
            out[name] = group.provenance(cfg)
        except (FileNotFoundError, RuntimeError, InputError) as err:  # InputError: a model file's content
            raise MaterialError(f"params key '{group.params_key}': {err}") from None
    return out


def _prepare(
    material: ReferenceMaterial, train: pd.DataFrame, naturals: pd.DataFrame, cfg: EvaluateConfig
) -> None:
    """Each group's preparation from the training split; a group that cannot run is skipped, saying why."""
    for name in material.metrics:
        why = GROUPS[name].prepare(material, train, naturals, cfg)
        if why:
            log.warning("perceptual metric %s skipped: %s", name, why)
            material.metrics = tuple(m for m in material.metrics if m != name)
            material.skipped[name] = why
            material.provenance.pop(name, None)


def build_reference_material(
    train: pd.DataFrame,
    naturals: pd.DataFrame,
    cfg: EvaluateConfig,
    *,
    workers: int = 0,
) -> ReferenceMaterial:
    """Prepared groups, natural recordings' scores, skipped groups and provenance (see the module docstring).

    Args:
        train: ``speaker, utt_id, path`` of every usable training utterance (paths readable from here).
        naturals: ``speaker, utt_id, path, text`` of every recording of the scored split.
        cfg: the ``evaluate`` section (``perceptual`` and each group's settings).
        workers: processes for the natural recordings (0: this job's share of the CPUs).

    A group that cannot prepare (speaker similarity: a speaker without a usable training utterance) is
    left out, with the reason in :attr:`ReferenceMaterial.skipped`.

    Raises:
        MaterialError: a model path does not exist, or a model name is not in the local cache.
    """
    metrics, skipped = metric_status(cfg.perceptual)
    for name, why in skipped.items():
        log.warning("perceptual metric %s skipped: %s", name, why)
    material = ReferenceMaterial(metrics, skipped)
    rows = naturals[list(NATURAL_KEYS)].fillna("").astype(str).reset_index(drop=True)
    material.naturals = rows.reindex(columns=natural_columns())
    if not metrics:
        return material
    material.provenance = _provenance(metrics, cfg)
    _prepare(material, train, rows, cfg)
    material.text_columns = tuple(c for m in material.metrics for c in GROUPS[m].extra_columns)
    jobs = [
        WavJob(str(p), t, material.metrics, cfg) for p, t in zip(naturals["path"], rows["text"], strict=True)
    ]
    results = score_wavs(jobs, workers, "perceptual: natural recordings")
    table = []
    for spk, utt, job in zip(rows["speaker"], rows["utt_id"], jobs, strict=True):
        result = results[job.path]
        row: dict[str, Any] = {"perceptual_note": result["perceptual_note"]}
        for name in material.metrics:
            row.update(GROUPS[name].natural_row(result.get(name, {}), spk, utt, material))
        table.append(row)
    material.naturals = pd.concat([rows, pd.DataFrame(table)], axis=1).reindex(columns=natural_columns())
    return material
