"""Train/eval split driven by :class:`vc.config.SplitConfig`.

Evaluation is parallel: the same sentence ids are held out for every speaker, so every converted utterance
has a reference utterance of the same sentence by the target speaker (MCD needs it). Training may be
parallel (``shared``: every speaker keeps all its other sentences) or non-parallel (``disjoint``: each
remaining sentence id is given to exactly one speaker, as StarGAN-VC assumes).
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable

import numpy as np

from vc.config import SplitConfig

__all__ = ["SplitError", "assign_splits", "parallel_ids"]


class SplitError(ValueError):
    """The split cannot be made as configured; the message names the params key."""


def _norm_text(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", " ", text.lower()).strip()


def parallel_ids(items: Iterable[tuple[str, str, str]], speakers: Iterable[str]) -> list[str]:
    """Sentence ids that every speaker has, from ``(speaker, utt_id, text)`` triples, sorted.

    Where every speaker's copy of an id has a text, the texts must agree too (VCTK numbers differ in text).
    """
    speakers = list(speakers)
    by_id: dict[str, dict[str, str]] = defaultdict(dict)
    for spk, utt, text in items:
        by_id[utt][spk] = text
    out = []
    for utt, texts in by_id.items():
        if any(s not in texts for s in speakers):
            continue
        norm = {_norm_text(texts[s]) for s in speakers}
        if all(texts[s] for s in speakers) and len(norm) > 1:
            continue
        out.append(utt)
    return sorted(out)


def assign_splits(
    items: list[tuple[str, str, str]], speakers: list[str], cfg: SplitConfig
) -> dict[tuple[str, str], str]:
    """Map every ``(speaker, utt_id)`` to ``"train"``, ``"eval"`` or ``"unused"``."""
    common = parallel_ids(items, speakers)
    rng = np.random.default_rng(cfg.seed)
    if cfg.eval_ids:
        bad = [u for u in cfg.eval_ids if u not in common]
        if bad:
            raise SplitError(
                f"corpus.split.eval_ids: {', '.join(bad)} not spoken by every speaker "
                f"({len(common)} ids are, e.g. {', '.join(common[:5])})"
            )
        eval_ids = set(cfg.eval_ids)
    else:
        if len(common) <= cfg.eval_utterances:
            raise SplitError(
                f"corpus.split.eval_utterances = {cfg.eval_utterances}, but only {len(common)} sentence ids "
                "are spoken by every speaker and some must remain for training"
            )
        eval_ids = {common[i] for i in rng.permutation(len(common))[: cfg.eval_utterances]}

    splits: dict[tuple[str, str], str] = {}
    owners: dict[str, list[str]] = defaultdict(list)
    for spk, utt, _ in items:
        if utt in eval_ids:
            splits[spk, utt] = "eval"
        else:
            owners[utt].append(spk)
    if cfg.train_sentences == "shared":
        for utt, spks in owners.items():
            for spk in spks:
                splits[spk, utt] = "train"
        return splits
    # disjoint: give each remaining id to one of its speakers, the one with the fewest so far
    counts = dict.fromkeys(speakers, 0)
    ids = sorted(owners)
    for i in rng.permutation(len(ids)):
        utt = ids[i]
        spks = sorted(owners[utt])
        keep = min(spks, key=lambda s: (counts[s], speakers.index(s)))
        counts[keep] += 1
        for spk in spks:
            splits[spk, utt] = "train" if spk == keep else "unused"
    return splits
