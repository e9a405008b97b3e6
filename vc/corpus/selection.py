"""Which utterances every stage may use, and which conversions an evaluation scores.

Shared by the conversion, references, baselines and vocoder stages, so a file the corpus or features stage
skipped is left out everywhere alike.
"""

from __future__ import annotations

import pandas as pd

__all__ = ["check_pairs", "evaluation_plan", "usable_utterances"]


def check_pairs(pairs: tuple[tuple[str, str], ...], speakers: list[str], key: str = "convert.pairs") -> None:
    """ValueError naming ``key`` when a pair names a speaker the corpus does not have, or a speaker twice."""
    for src, tgt in pairs:
        for who in (src, tgt):
            if who not in speakers:
                raise ValueError(f"{key}: unknown speaker '{who}' (speakers: {', '.join(speakers)})")
        if src == tgt:
            raise ValueError(f"{key}: the pair ({src}, {tgt}) converts a speaker to itself")


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
    check_pairs(pairs, speakers)
    chosen = pairs or tuple((s, t) for s in speakers for t in speakers if s != t)
    rows = []
    for src, tgt in chosen:
        shared = sorted(ids.get(src, set()) & ids.get(tgt, set()))[:max_utterances]
        rows += [{"source": src, "target": tgt, "utt_id": u} for u in shared]
    if not rows:
        raise ValueError("no held-out sentences are shared by any speaker pair (see corpus.split)")
    return pd.DataFrame(rows)
