"""The evaluation recipe: every system (experiment or baseline) is scored by exactly this code.

Per pair of wavs (a converted or baseline utterance, and the target speaker's utterance of that sentence):

1. analyse both with Harvest F0 and CheapTrick (``features.f0_floor``/``f0_ceil``, 5 ms frames);
2. mel-cepstrum by ``pysptk.sp2mc``'s transform (one matrix product, :mod:`vc.features.mcep`) with the
   order and all-pass constant of the features config (34 and 0.455 at 22.05 kHz), whatever
   ``features.spectral`` the model used;
3. drop silent frames on each side: frame power ``10 log10(mean_k |H_t(k)|^2)`` of the CheapTrick envelope,
   relative to the utterance's mean power (in the linear domain); frames below
   ``evaluate.power_threshold_db`` (default -20 dB) are dropped;
4. exclude c0; exact DTW (:func:`vc.evaluation.metrics.dtw_path`) on c1..cD with Euclidean distance;
5. MCD = 10/ln10 * sqrt(2 * sum_d (c_d - c'_d)^2), averaged over the aligned path;
6. log-F0 RMSE (and in cents) and F0 correlation (Pearson, Hz) over aligned frames voiced in both;
7. MSD: RMSE between the log modulation spectra of c1..cD trajectories of the whole (unmasked)
   utterances, ``evaluate.msd_fft``-frame segments (:mod:`vc.evaluation.metrics.msd`);
8. ``mcd_to_source_db``: steps 3-5 against the source speaker's recording of the sentence instead of the
   target's (0 for the unconverted source): how much of its input a conversion kept.

Scores are per utterance (the ``recipe`` group of :data:`vc.evaluation.registry.METRICS`); summaries
(:mod:`vc.evaluation.summary`) are means over distinct items with a cluster-bootstrap interval. The same
steps, with this configuration's values, are written into every report by :func:`recipe_markdown`.
"""

from __future__ import annotations

import logging
import textwrap
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyworld as pw

from vc import cost
from vc.config import EvaluateConfig, FeaturesConfig
from vc.evaluation.metrics import f0_metrics, mcd, msd
from vc.evaluation.registry import group_columns
from vc.features.mcep import mcep_alpha, sp2mc
from vc.features.world import extract_f0
from vc.io import AudioReadError, read_audio, save_npz
from vc.parallel import parallel_map

__all__ = [
    "RecipeAnalysis",
    "analyze_for_eval",
    "analyze_recordings",
    "analyze_wav_for_eval",
    "recipe_markdown",
    "score_mcd",
    "score_pair",
    "score_system",
]

log = logging.getLogger(__name__)


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
    mcep = sp2mc(sp, order=features.mcep_order, alpha=mcep_alpha(features.mcep_alpha, fs))
    power = np.maximum(sp.mean(axis=1), 1e-20)
    power_db = 10 * np.log10(power / power.mean())
    return RecipeAnalysis(mcep=mcep, f0=f0, power_db=power_db)


def analyze_wav_for_eval(path: str | Path, features: FeaturesConfig) -> RecipeAnalysis:
    wav, fs = read_audio(path)
    if wav.ndim > 1:
        wav = wav.mean(axis=1)
    return analyze_for_eval(wav, fs, features)


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


def score_mcd(converted: RecipeAnalysis, reference: RecipeAnalysis, cfg: EvaluateConfig) -> float:
    """Steps 3-5 only: the MCD (dB) between two analyses."""
    mask_c = converted.power_db > cfg.power_threshold_db
    mask_r = reference.power_db > cfg.power_threshold_db
    return mcd(converted.mcep, reference.mcep, converted_mask=mask_c, target_mask=mask_r).mcd_db


def _analyze_to(job: tuple[Path, Path, FeaturesConfig]) -> None:
    wav, out, features = job
    analyze_wav_for_eval(wav, features).save(out)


def analyze_recordings(
    rows: pd.DataFrame,
    corpus: str | Path,
    out: str | Path,
    features: FeaturesConfig,
    *,
    workers: int = 0,
    desc: str = "reference analysis",
) -> None:
    """Steps 1-3's analysis of recordings, saved as ``<out>/<speaker>/<utt>.npz`` (the references stage's
    held-out recordings, the validation stage's): ``rows`` has ``speaker, utt_id`` and ``path`` relative to
    the ``corpus`` folder; ``workers`` processes; recorded as the cost phase ``mcd analysis``."""
    corpus, out = Path(corpus), Path(out)
    jobs = [
        (corpus / p, out / s / f"{u}.npz", features)
        for s, u, p in zip(rows["speaker"], rows["utt_id"], rows["path"], strict=True)
    ]
    with cost.phase("mcd analysis", count=len(jobs), unit="utterance"):
        parallel_map(_analyze_to, jobs, workers=workers, desc=desc)


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
    references = Path(references)
    paths = [str(p) if isinstance(p, str | Path) else "" for p in items["path"]]
    unique = sorted({p for p in paths if p})
    with cost.phase("mcd analysis", count=len(unique), unit="utterance"):
        jobs = [(Path(p), features) for p in unique]
        analyzed = parallel_map(_analyze_job, jobs, workers=workers, desc=desc)
        analyses = dict(zip(unique, analyzed, strict=True))
    with cost.phase("mcd alignment", count=len(paths), unit="utterance"):
        return _score_rows(items, paths, analyses, references, cfg)


def _score_rows(
    items: pd.DataFrame,
    paths: list[str],
    analyses: dict[str, RecipeAnalysis | str],
    references: Path,
    cfg: EvaluateConfig,
) -> pd.DataFrame:
    """:func:`score_system`'s table from the analysed wavs (DTW and scoring, in this process)."""
    rows = []
    for src, tgt, utt, path in zip(items["source"], items["target"], items["utt_id"], paths, strict=True):
        converted = analyses[path] if path else RecipeAnalysis.load(references / src / f"{utt}.npz")
        if isinstance(converted, str):
            log.warning("%s", converted)
            rows.append({"note": converted})
            continue
        scores = score_pair(converted, RecipeAnalysis.load(references / tgt / f"{utt}.npz"), cfg)
        source = RecipeAnalysis.load(references / src / f"{utt}.npz")
        scores["mcd_to_source_db"] = score_mcd(converted, source, cfg) if path else 0.0
        rows.append({**scores, "note": ""})
    keys = items.drop(columns="path").reset_index(drop=True)
    table = pd.DataFrame(rows).reindex(columns=[*group_columns("recipe"), "note"])
    return pd.concat([keys, table.assign(note=table["note"].fillna(""))], axis=1)


def recipe_markdown(features: FeaturesConfig, evaluate: EvaluateConfig, sample_rate: int) -> str:
    """The MCD recipe as every report states it, with this configuration's values."""
    alpha = mcep_alpha(features.mcep_alpha, sample_rate)
    f, e = features, evaluate
    steps = [
        "Analyse the converted wav and the target speaker's wav of the same sentence with WORLD: Harvest F0 "
        f"({f.f0_floor:g}-{f.f0_ceil:g} Hz) and CheapTrick, {f.frame_period:g} ms frames.",
        f"Mel-cepstrum by `pysptk.sp2mc`'s transform (applied as one matrix product), order {f.mcep_order}, "
        f"all-pass constant {alpha:.3f} "
        f"(`pysptk.util.mcepalpha({sample_rate})` unless `features.mcep_alpha` is set).",
        "Drop silent frames of each utterance: frame power 10 log10(mean_k |H_t(k)|^2) of the CheapTrick "
        f"envelope, relative to the utterance's mean power; frames below {e.power_threshold_db:g} dB are "
        "dropped.",
        "Exclude c0; align c1..cD by exact DTW (`librosa.sequence.dtw` on a Euclidean `cdist` cost matrix, "
        "steps (1,1), (1,0), (0,1)).",
        "MCD = 10/ln10 * sqrt(2 * sum_d (c_d - c'_d)^2) dB per aligned frame pair, averaged over the path.",
        "log-F0 RMSE (natural log; also in cents) and Pearson F0 correlation (Hz) over aligned frames "
        "voiced in both; the V/UV error over all aligned frames.",
        "MSD: RMSE (dB) between log modulation spectra of the c1..cD trajectories of the whole utterances "
        f"({e.msd_fft}-frame Hann segments, hop {e.msd_fft // 2}), averaged over coefficients.",
        "MCD to source: steps 3-5 against the source speaker's recording of the same sentence (0 for the "
        "unconverted source): how much of its input a conversion kept.",
        "Per utterance, each distinct item once (copy-synthesis per target and sentence; no conversion per "
        "unordered pair and sentence); the mean over items with a "
        f"{e.confidence:.0%} percentile interval from a cluster bootstrap ({e.bootstrap} resamples, seed "
        f"{e.seed}) that resamples sentences (all pairs of a sentence together) and training seeds, per "
        f"speaker pair and overall; no interval below {e.min_sentences} sentences. Comparisons are paired "
        "differences on the same items, bootstrapped the same way.",
    ]
    return "\n".join(
        textwrap.fill(f"{i}. {step}", width=110, subsequent_indent="   ")
        for i, step in enumerate(steps, start=1)
    )
