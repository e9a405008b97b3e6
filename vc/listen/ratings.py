"""Listening-test ratings -> per-system naturalness MOS and similarity, with intervals and paired differences.

A pure analysis (it reads the rating files and, to detect stale ratings, the stimuli; it writes nothing):

- **Ratings used.** Exported files (:func:`vc.listen.store.export_ratings`, CSV or JSONL) are read and
  joined to the *current* test definition by item id. The same answer found in several exports counts once.
  A rating whose stimulus or reference sha256 differs from the current file's (the conversion was re-run
  since it was heard) is *stale* and left out; one whose item the test no longer has is *unknown*, left
  out too. Both are counted.
- **Post-screening** (as the Voice Conversion Challenges do it): a rater whose mean naturalness score of
  the hidden natural reference is below ``natural_threshold`` is reported, and excluded when
  ``exclude_low_raters`` is set.
- **Scores.** Naturalness: the mean opinion score (1-5). Similarity: the share of "same speaker" answers
  (sure or not sure). Each with a percentile interval from a two-way cluster bootstrap that resamples
  raters and sentences independently: :func:`vc.statistics.cluster_bootstrap_mean`, the same routine as the
  objective metrics, with raters in the place of training seeds.
- **Paired differences.** Per rater and sentence, the mean of one system's ratings minus another's; the
  cells both have are bootstrapped the same way and worded by :func:`vc.statistics.verdict` (higher is
  better for both scores). Every system is compared with ``reference`` (e.g. ``mean-var``) and the
  experiments with each other.
"""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from vc.errors import InputError
from vc.listen.protocol import NATURALNESS_CHOICES, SIMILARITY_CHOICES, TestDefinition, file_sha256
from vc.statistics import Estimate, cluster_bootstrap_mean, verdict

__all__ = [
    "Difference",
    "RaterScreening",
    "RatingsAnalysis",
    "Score",
    "SystemRatings",
    "analyse_ratings",
    "read_ratings",
]

REQUIRED_COLUMNS = ("rater", "item_id", "task", "answer", "audio_sha256", "reference_sha256", "answered_at")
TASKS = ("naturalness", "similarity")


@dataclass(frozen=True)
class Score:
    """A mean with its cluster-bootstrap interval (NaN bounds with too few sentences)."""

    mean: float
    low: float
    high: float
    n: int  # ratings (or rater x sentence cells, for a difference)
    sentences: int
    raters: int

    @classmethod
    def of(cls, e: Estimate) -> Score:
        return cls(e.mean, e.low, e.high, e.n, e.sentences, e.seeds)


@dataclass(frozen=True)
class SystemRatings:
    """One system's scores; ``name`` is the real name (the analysis is unblinded)."""

    system_id: str
    name: str
    kind: str
    naturalness: Score
    similarity: Score


@dataclass(frozen=True)
class Difference:
    """``system - other`` on ``task`` (higher is better), with the verdict's words."""

    task: str
    system: str
    other: str
    diff: Score
    verdict: str


@dataclass(frozen=True)
class RaterScreening:
    """A rater's mean naturalness score of the hidden natural reference (NaN when they rated none)."""

    rater: str
    natural_mos: float
    n_natural: int
    low: bool
    excluded: bool


@dataclass(frozen=True)
class RatingsAnalysis:
    """The whole analysis: counts of what was left out and why, screening, scores, differences."""

    systems: tuple[SystemRatings, ...]
    differences: tuple[Difference, ...]
    raters: tuple[RaterScreening, ...]
    n_used: int
    n_stale: int
    n_unknown: int
    n_duplicate: int
    n_excluded: int
    natural_threshold: float
    reference: str


def _check_answers(df: pd.DataFrame, path: Path) -> None:
    """Every row is a task and an answer the app could have stored; an error names the file and line."""
    nat = df["task"] == "naturalness"
    ok = (nat & df["answer"].isin([str(c) for c in NATURALNESS_CHOICES])) | (
        (df["task"] == "similarity") & df["answer"].isin(SIMILARITY_CHOICES)
    )
    if not ok.all():
        row = int(np.flatnonzero(~ok.to_numpy())[0])
        bad = df.iloc[row]
        raise InputError(f"{path}: rating {row + 1} has task '{bad['task']}' and answer '{bad['answer']}'")


def read_ratings(paths: Sequence[str | Path]) -> pd.DataFrame:
    """The rows of exported ratings files (``.csv`` or ``.jsonl``), with a ``file`` column, all as text."""
    frames = []
    for path in map(Path, paths):
        if not path.is_file():
            raise InputError(f"{path}: no such ratings file")
        try:
            if path.suffix == ".jsonl":
                lines = path.read_text(encoding="utf-8").splitlines()
                df = pd.DataFrame([json.loads(x) for x in lines if x.strip()], columns=None)
            else:
                df = pd.read_csv(path, dtype=str, keep_default_na=False)
        except (json.JSONDecodeError, pd.errors.ParserError, UnicodeDecodeError) as err:
            raise InputError(f"{path}: not a ratings file ({err})") from None
        missing = [c for c in REQUIRED_COLUMNS if c not in df.columns]
        if len(df) and missing:
            raise InputError(f"{path}: ratings file lacks the columns {', '.join(missing)}")
        df = df.reindex(columns=list(REQUIRED_COLUMNS)).fillna("").astype(str)
        _check_answers(df, path)
        frames.append(df.assign(file=str(path)))
    if not frames:
        return pd.DataFrame(columns=[*REQUIRED_COLUMNS, "file"])
    return pd.concat(frames, ignore_index=True)


def _current_hashes(definition: TestDefinition, verify_files: bool) -> dict[str, tuple[str, str]]:
    """item id -> (stimulus sha256, reference sha256) of the files as they are now ('' when missing)."""
    if not verify_files:
        return {i.id: (i.stimulus_sha256, i.reference_sha256) for i in definition.items}
    cache: dict[str, str] = {}

    def sha(path: str) -> str:
        if path not in cache:
            cache[path] = file_sha256(path) if path and Path(path).is_file() else ""
        return cache[path]

    return {i.id: (sha(i.stimulus), sha(i.reference) if i.reference else "") for i in definition.items}


def _join(
    rows: pd.DataFrame, definition: TestDefinition, verify_files: bool
) -> tuple[pd.DataFrame, int, int, int]:
    """Ratings joined to the items, with numeric ``value``: ``(used, n_stale, n_unknown, n_duplicate)``."""
    key = ["rater", "item_id", "audio_sha256", "reference_sha256"]
    unique = rows.drop_duplicates(subset=key)
    n_duplicate = len(rows) - len(unique)
    unique = unique.drop_duplicates(subset=["rater", "item_id", "audio_sha256"])  # answers are final
    hashes = _current_hashes(definition, verify_files)
    known = unique["item_id"].isin(list(hashes))
    now = [hashes.get(i, ("", "")) for i in unique["item_id"]]
    fresh = known & pd.Series(
        [
            (a, r) == h
            for a, r, h in zip(unique["audio_sha256"], unique["reference_sha256"], now, strict=True)
        ],
        index=unique.index,
    )
    used = unique[fresh].copy()
    items = [definition.item(i) for i in used["item_id"]]
    used["system"] = [definition.system(i.system).name for i in items]
    used["utt_id"] = [i.utt_id for i in items]
    same = used["answer"].isin(SIMILARITY_CHOICES[:2]).astype(float)
    used["value"] = np.where(
        used["task"] == "naturalness", pd.to_numeric(used["answer"], errors="coerce"), same
    )
    return used, int((known & ~fresh).sum()), int((~known).sum()), n_duplicate


def _screen(
    used: pd.DataFrame, definition: TestDefinition, threshold: float, exclude: bool
) -> list[RaterScreening]:
    """Each rater's mean naturalness of the hidden natural reference against ``threshold``."""
    natural = {s.name for s in definition.systems if s.kind == "natural"}
    nat = used[(used["task"] == "naturalness") & used["system"].isin(natural)]
    out = []
    for rater in sorted(used["rater"].unique()):
        values = nat.loc[nat["rater"] == rater, "value"]
        mean = float(values.mean()) if len(values) else math.nan
        low = bool(len(values)) and mean < threshold
        out.append(RaterScreening(rater, mean, len(values), low, low and exclude))
    return out


def _cells(used: pd.DataFrame, task: str, system: str) -> pd.Series:
    """Mean rating per (rater, sentence) of one system on one task."""
    rows = used[(used["task"] == task) & (used["system"] == system)]
    return rows.groupby(["rater", "utt_id"])["value"].mean()


def _difference(used: pd.DataFrame, task: str, a: str, b: str, boot: dict) -> Difference:
    """``a - b`` over the (rater, sentence) cells both systems have."""
    joined = pd.concat([_cells(used, task, a), _cells(used, task, b)], axis=1, join="inner").dropna()
    diff = (joined.iloc[:, 0] - joined.iloc[:, 1]).to_numpy()
    raters, sentences = joined.index.get_level_values(0), joined.index.get_level_values(1)
    e = cluster_bootstrap_mean(diff, sentences.to_numpy(), raters.to_numpy(), **boot)
    return Difference(task, a, b, Score.of(e), verdict(e, lower_is_better=False, unit="", digits=2))


def _differences(
    used: pd.DataFrame, definition: TestDefinition, reference: str, boot: dict
) -> list[Difference]:
    """Every system against ``reference``, and every two experiments against each other, on both tasks."""
    names = [s.name for s in definition.systems]
    if reference not in names:
        raise InputError(f"reference system '{reference}' is not in the test (systems: {', '.join(names)})")
    experiments = [s.name for s in definition.systems if s.kind == "experiment"]
    pairs = [(n, reference) for n in names if n != reference]
    pairs += [p for p in itertools.combinations(experiments, 2) if reference not in p]
    out = []
    for task in TASKS:
        present = set(used.loc[used["task"] == task, "system"])
        out += [_difference(used, task, a, b, boot) for a, b in pairs if a in present and b in present]
    return out


def analyse_ratings(
    ratings: Sequence[str | Path] | pd.DataFrame,
    definition: TestDefinition,
    *,
    reference: str = "mean-var",
    natural_threshold: float = 3.0,
    exclude_low_raters: bool = False,
    verify_files: bool = True,
    confidence: float = 0.95,
    n_resamples: int = 1000,
    seed: int = 0,
    min_clusters: int = 2,
) -> RatingsAnalysis:
    """Scores per system and paired differences from exported ratings (files, or :func:`read_ratings`'s
    table) and the current ``definition``; see the module docstring. ``verify_files`` hashes the stimuli
    as they are now (else the definition's hashes stand for them)."""
    rows = ratings if isinstance(ratings, pd.DataFrame) else read_ratings(ratings)
    used, n_stale, n_unknown, n_duplicate = _join(rows, definition, verify_files)
    screening = _screen(used, definition, natural_threshold, exclude_low_raters)
    excluded = {r.rater for r in screening if r.excluded}
    n_excluded = int(used["rater"].isin(excluded).sum())
    used = used[~used["rater"].isin(excluded)]
    boot = {"confidence": confidence, "n_resamples": n_resamples, "seed": seed, "min_clusters": min_clusters}
    systems = []
    for s in definition.systems:
        scores = []
        for task in TASKS:
            rows_ = used[(used["task"] == task) & (used["system"] == s.name)]
            est = cluster_bootstrap_mean(rows_["value"].to_numpy(float), rows_["utt_id"].to_numpy(),
                                         rows_["rater"].to_numpy(), **boot)  # fmt: skip
            scores.append(Score.of(est))
        systems.append(SystemRatings(s.id, s.name, s.kind, *scores))
    return RatingsAnalysis(
        systems=tuple(systems),
        differences=tuple(_differences(used, definition, reference, boot)),
        raters=tuple(screening),
        n_used=len(used),
        n_stale=n_stale,
        n_unknown=n_unknown,
        n_duplicate=n_duplicate,
        n_excluded=n_excluded,
        natural_threshold=natural_threshold,
        reference=reference,
    )
