"""The evaluation recipe: every system (experiment or baseline) is scored by exactly this code.

Per pair of wavs (a converted or baseline utterance, and the target speaker's utterance of that sentence):

1. analyse both with Harvest F0 and CheapTrick (``features.f0_floor``/``f0_ceil``, 5 ms frames);
2. mel-cepstrum by ``pysptk.sp2mc`` with the order and all-pass constant of the features config
   (34 and 0.455 at 22.05 kHz), whatever ``features.spectral`` the model used;
3. drop silent frames on each side: frame power ``10 log10(mean_k |H_t(k)|^2)`` of the CheapTrick envelope,
   relative to the utterance's mean power (in the linear domain); frames below
   ``evaluate.power_threshold_db`` (default -20 dB) are dropped;
4. exclude c0; exact DTW (:func:`vc.metrics.dtw_path`) on c1..cD with Euclidean distance;
5. MCD = 10/ln10 * sqrt(2 * sum_d (c_d - c'_d)^2), averaged over the aligned path;
6. log-F0 RMSE (and in cents) and F0 correlation (Pearson, Hz) over aligned frames voiced in both;
7. MSD: RMSE between the log modulation spectra of c1..cD trajectories of the whole (unmasked)
   utterances, ``evaluate.msd_fft``-frame segments (:mod:`vc.metrics.msd`).

Scores are per utterance; summaries (:mod:`vc.statistics`) are means over distinct items with a cluster-
bootstrap interval that resamples sentences (and training seeds), per speaker pair and overall. The
perceptual metrics (:data:`PERCEPTUAL_METRICS`, computed by :mod:`vc.perceptual.scoring`) are extra columns
of the same rows, summarised the same way.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pysptk
import pyworld as pw

from vc.config import EvaluateConfig, FeaturesConfig
from vc.features.world import extract_f0
from vc.io import AudioReadError, read_audio, save_npz
from vc.metrics import f0_metrics, mcd, msd
from vc.statistics import Unit, distinct_items, estimate_metric, seed_spread

__all__ = [
    "HIGHER_IS_BETTER",
    "METRICS",
    "PERCEPTUAL_METRICS",
    "RecipeAnalysis",
    "analyze_for_eval",
    "evaluation_plan",
    "metric_unit",
    "score_pair",
    "summarize",
    "summarized_metrics",
    "usable_utterances",
]

log = logging.getLogger(__name__)

METRICS = ("mcd_db", "log_f0_rmse", "f0_corr", "msd_db")  # the columns every system is compared on
#: Columns of :mod:`vc.perceptual.scoring`, when the perceptual metrics ran (each is summarised if present).
PERCEPTUAL_METRICS = (
    "spk_sim_target",  # cosine of the d-vector to the target speaker's centroid
    "spk_sim_source",  # ... to the source speaker's centroid (a conversion should move away from it)
    "spk_accuracy",  # 1 when nearer the target's centroid than every other speaker's: conversion accuracy
    "cer",
    "wer",
    "dnsmos_ovrl",
    "dnsmos_sig",
    "dnsmos_bak",
    "dnsmos_p808",
)
HIGHER_IS_BETTER = frozenset(
    {"f0_corr", "spk_sim_target", "spk_accuracy", "dnsmos_ovrl", "dnsmos_sig", "dnsmos_bak", "dnsmos_p808"}
)
_TARGET_DEPENDENT = frozenset({"spk_sim_target", "spk_accuracy"})


def metric_unit(unit: Unit, metric: str) -> Unit:
    """The item one value of ``metric`` belongs to, in a system whose rows are of ``unit``.

    Only a system that does not convert (``unordered_pair``: ``source``) differs: MCD and the other recipe
    metrics compare two recordings (symmetric: the unordered pair), a perceptual metric of the source's
    recording alone (CER, MOS, similarity to its own speaker) belongs to ``(source, utt_id)``, and its
    similarity to the target speaker to the ordered pair.
    """
    if unit != "unordered_pair" or metric not in PERCEPTUAL_METRICS:
        return unit
    return "conversion" if metric in _TARGET_DEPENDENT else "source_utterance"


@dataclass
class RecipeAnalysis:
    """What the recipe needs of one wav: mel-cepstrum ``(T, D+1)`` with c0, F0 ``(T,)``, power ``(T,)``."""

    mcep: np.ndarray
    f0: np.ndarray
    power_db: np.ndarray  # frame power relative to the utterance mean, dB

    def save(self, path: str | Path) -> None:
        save_npz(path, mcep=self.mcep, f0=self.f0, power_db=self.power_db)

    @classmethod
    def load(cls, path: str | Path) -> RecipeAnalysis:
        with np.load(path) as z:
            return cls(z["mcep"], z["f0"], z["power_db"])


def analyze_for_eval(wav: np.ndarray, fs: int, features: FeaturesConfig) -> RecipeAnalysis:
    """Steps 1-2 and the frame power of step 3 for a mono waveform ``(N,)``."""
    wav = np.ascontiguousarray(wav, dtype=np.float64)
    f0, t = extract_f0(
        wav,
        fs,
        FeaturesConfig(
            f0_method="harvest",
            f0_floor=features.f0_floor,
            f0_ceil=features.f0_ceil,
            frame_period=features.frame_period,
        ),
    )
    sp = pw.cheaptrick(wav, f0, t, fs, f0_floor=features.f0_floor)
    alpha = features.mcep_alpha if features.mcep_alpha is not None else pysptk.util.mcepalpha(fs)
    mcep = pysptk.sp2mc(sp, order=features.mcep_order, alpha=alpha)
    power = np.maximum(sp.mean(axis=1), 1e-20)
    power_db = 10 * np.log10(power / power.mean())
    return RecipeAnalysis(mcep=mcep, f0=f0, power_db=power_db)


def analyze_wav_for_eval(path: str | Path, features: FeaturesConfig) -> RecipeAnalysis:
    wav, fs = read_audio(path)
    if wav.ndim > 1:
        wav = wav.mean(axis=1)
    return analyze_for_eval(wav, fs, features)


_SCORE_COLUMNS = (
    "mcd_db",
    "log_f0_rmse",
    "log_f0_rmse_cents",
    "f0_corr",
    "vuv_error",
    "msd_db",
    "aligned_frames",
    "voiced_frames",
)


def score_pair(converted: RecipeAnalysis, target: RecipeAnalysis, cfg: EvaluateConfig) -> dict[str, float]:
    """Steps 3-7 for one utterance pair: ``mcd_db``, ``log_f0_rmse``, ``log_f0_rmse_cents``, ``f0_corr``,
    ``vuv_error``, ``msd_db`` and frame counts."""
    mask_c = converted.power_db > cfg.power_threshold_db
    mask_t = target.power_db > cfg.power_threshold_db
    result = mcd(converted.mcep, target.mcep, converted_mask=mask_c, target_mask=mask_t)
    f0 = f0_metrics(converted.f0, target.f0, result.path)
    return {
        "mcd_db": result.mcd_db,
        "log_f0_rmse": f0.log_f0_rmse,
        "log_f0_rmse_cents": f0.log_f0_rmse_cents,
        "f0_corr": f0.f0_corr,
        "vuv_error": f0.vuv_error,
        "msd_db": msd(converted.mcep[:, 1:], target.mcep[:, 1:], fft_size=cfg.msd_fft),
        "aligned_frames": result.frames,
        "voiced_frames": f0.voiced_frames,
    }


def summarized_metrics(scores: pd.DataFrame) -> list[str]:
    """:data:`METRICS`, then the :data:`PERCEPTUAL_METRICS` that ``scores`` has a finite value of."""
    perceptual = [
        m for m in PERCEPTUAL_METRICS if m in scores.columns and np.isfinite(scores[m].astype(float)).any()
    ]
    return [*METRICS, *perceptual]


def summarize(
    scores: pd.DataFrame, cfg: EvaluateConfig, by: list[str] | None = None, unit: Unit = "conversion"
) -> pd.DataFrame:
    """Mean and cluster-bootstrap interval of every metric of :func:`summarized_metrics`, overall or
    grouped ``by``.

    ``scores`` holds the rows of one system, keyed by ``unit``, with ``utt_id`` and optionally ``seed``;
    each metric is averaged over the distinct items of :func:`metric_unit` (see
    :func:`vc.statistics.distinct_items`). Columns: ``<metric>``, ``<metric>_ci_low``, ``<metric>_ci_high``
    (NaN with fewer than ``evaluate.min_sentences`` sentences), ``n`` (items with a finite MCD),
    ``sentences``, ``seeds``.
    """
    metrics = summarized_metrics(scores)
    groups = [((), scores)] if not by else list(scores.groupby(by, sort=True))
    rows = []
    for key, group in groups:
        row: dict[str, object] = dict(zip(by or [], key if isinstance(key, tuple) else (key,), strict=False))
        for metric in metrics:
            est = estimate_metric(
                distinct_items(group, metric_unit(unit, metric)),
                metric,
                confidence=cfg.confidence,
                n_resamples=cfg.bootstrap,
                seed=cfg.seed,
                min_clusters=cfg.min_sentences,
            )
            row.update(est.as_dict(metric))
            if metric == "mcd_db":
                row["n"], row["sentences"], row["seeds"] = est.n, est.sentences, est.seeds
        rows.append(row)
    return pd.DataFrame(rows)


# ------------------------------------------------------------------------------------------ systems
def usable_utterances(manifest: pd.DataFrame, index: pd.DataFrame, split: str) -> pd.DataFrame:
    """``speaker, utt_id, path`` of the ``split`` utterances usable by every stage: prepared by the corpus
    stage (``manifest``) and analysed by the features stage (feature ``index``); files either skipped are
    left out."""
    ok = manifest[(manifest["status"] == "ok") & (manifest["split"] == split)]
    analysed = index[(index["status"] == "ok") & (index["split"] == split)][["speaker", "utt_id"]]
    return ok.merge(analysed, on=["speaker", "utt_id"])[["speaker", "utt_id", "path"]].reset_index(drop=True)


def evaluation_plan(
    usable: pd.DataFrame,
    speakers: list[str],
    pairs: tuple[tuple[str, str], ...] = (),
    max_utterances: int | None = None,
) -> pd.DataFrame:
    """``(source, target, utt_id)`` rows: every ordered pair (or ``pairs``) x the sentences both speakers
    have among the ``usable`` rows (:func:`usable_utterances`), the first ``max_utterances`` if set."""
    ids = {spk: set(g["utt_id"]) for spk, g in usable.groupby("speaker")}
    for who in {s for pair in pairs for s in pair}:
        if who not in speakers:
            raise ValueError(f"convert.pairs: unknown speaker '{who}' (speakers: {', '.join(speakers)})")
    chosen = pairs or tuple((s, t) for s in speakers for t in speakers if s != t)
    rows = []
    for src, tgt in chosen:
        shared = sorted(ids.get(src, set()) & ids.get(tgt, set()))[:max_utterances]
        rows += [{"source": src, "target": tgt, "utt_id": u} for u in shared]
    if not rows:
        raise ValueError("no held-out sentences are shared by any speaker pair (see corpus.split)")
    return pd.DataFrame(rows)


def _analyze_job(job: tuple[Path, FeaturesConfig]) -> RecipeAnalysis | str:
    """The analysis of one converted wav, or why it has none (an empty or unreadable file: a note)."""
    try:
        return analyze_wav_for_eval(*job)
    except AudioReadError as err:
        return str(err)


def score_system(
    items: pd.DataFrame,
    references: str | Path,
    features: FeaturesConfig,
    cfg: EvaluateConfig,
    *,
    workers: int = 0,
    desc: str = "evaluate",
) -> pd.DataFrame:
    """Score every row of ``items`` (``source, target, utt_id`` and ``path``: a wav, or empty for the
    unconverted source) against the target's reference analysis in ``references/<speaker>/<utt>.npz``.

    Each distinct wav is analysed once, in ``workers`` processes; alignment and scoring follow in this one.
    A converted wav that is empty or unreadable scores NaN, with the reason in the ``note`` column.
    """
    from vc.parallel import parallel_map

    references = Path(references)
    paths = [str(p) if isinstance(p, str | Path) else "" for p in items["path"]]
    unique = sorted({p for p in paths if p})
    analyses = dict(
        zip(
            unique,
            parallel_map(_analyze_job, [(Path(p), features) for p in unique], workers=workers, desc=desc),
            strict=True,
        )
    )
    rows = []
    for src, tgt, utt, path in zip(items["source"], items["target"], items["utt_id"], paths, strict=True):
        converted = analyses[path] if path else RecipeAnalysis.load(references / src / f"{utt}.npz")
        if isinstance(converted, str):
            log.warning("%s", converted)
            rows.append({"note": converted})
            continue
        scores = score_pair(converted, RecipeAnalysis.load(references / tgt / f"{utt}.npz"), cfg)
        rows.append({**scores, "note": ""})
    keys = items.drop(columns="path").reset_index(drop=True)
    table = pd.DataFrame(rows).reindex(columns=[*_SCORE_COLUMNS, "note"])
    return pd.concat([keys, table.assign(note=table["note"].fillna(""))], axis=1)


PAIR_GROUPS: dict[Unit, list[str]] = {
    "conversion": ["source", "target"],
    "target": ["target"],
    "unordered_pair": ["pair"],
}


def system_summary(
    name: str, kind: str, scores: pd.DataFrame, cfg: EvaluateConfig, unit: Unit = "conversion"
) -> dict:
    """The summary written to ``summary.json``: overall and per-pair means with intervals, and the spread
    of the MCD between training seeds. ``scores`` holds the rows of ``unit`` (``source``: both directions of
    each pair, for the perceptual metrics); per pair they are grouped by :data:`PAIR_GROUPS`
    (``copy-synthesis``: per target; ``source``: per unordered pair).
    """
    overall = summarize(scores, cfg, unit=unit).iloc[0].to_dict()
    pairs = summarize(scores, cfg, by=PAIR_GROUPS[unit], unit=unit).to_dict(orient="records")
    return {
        "system": name,
        "kind": kind,
        "confidence": cfg.confidence,
        "overall": overall,
        "pairs": pairs,
        "unit": unit,
        "seed_spread": seed_spread(distinct_items(scores, unit), "mcd_db"),
    }


def write_system_results(folder: str | Path, summary: dict, scores: pd.DataFrame) -> None:
    """``folder/scores.csv`` (per utterance) and ``folder/summary.json``, written atomically."""
    from vc.io import atomic_path, write_json

    folder = Path(folder)
    with atomic_path(folder / "scores.csv") as tmp:
        scores.to_csv(tmp, index=False)
    write_json(folder / "summary.json", summary)
