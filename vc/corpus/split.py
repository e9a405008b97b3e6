"""Train/validation/test split driven by :class:`vc.config.SplitConfig`.

Validation and test are parallel: the same sentence ids are held out for every speaker, so every converted
utterance has a reference utterance of the same sentence by the target speaker (MCD needs it). Tuning reads
validation only; the report scores test. Training may be
parallel (``shared``: every speaker keeps all its other sentences) or non-parallel (``disjoint``: each
remaining sentence id is given to exactly one speaker, as StarGAN-VC assumes).
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable

import numpy as np

from vc.config import SplitConfig
from vc.errors import InputError

__all__ = ["SplitError", "assign_splits", "parallel_ids"]


class SplitError(InputError):
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


def _held_out(common: list[str], ids: tuple[str, ...], count: int, key: str, pool: list[str]) -> set[str]:
    """Explicit ``ids`` (each spoken by every speaker) or the first ``count`` of the shuffled ``pool``."""
    if ids:
        bad = [u for u in ids if u not in common]
        if bad:
            raise SplitError(
                f"corpus.split.{key}_ids: {', '.join(bad)} not spoken by every speaker "
                f"({len(common)} ids are, e.g. {', '.join(common[:5])})"
            )
        return set(ids)
    return set(pool[:count])


def assign_splits(
    items: list[tuple[str, str, str]], speakers: list[str], cfg: SplitConfig
) -> dict[tuple[str, str], str]:
    """Map every ``(speaker, utt_id)`` to ``"train"``, ``"validation"``, ``"test"`` or ``"unused"``.

    Test ids are drawn first from the parallel ids shuffled by ``cfg.seed``, validation ids next from the
    rest, so adding validation sentences never changes the test set.
    """
    common = parallel_ids(items, speakers)
    rng = np.random.default_rng(cfg.seed)
    shuffled = [common[i] for i in rng.permutation(len(common))]
    test_ids = _held_out(common, cfg.test_ids, cfg.test_utterances, "test", shuffled)
    rest = [u for u in shuffled if u not in test_ids and u not in cfg.validation_ids]
    validation_ids = _held_out(common, cfg.validation_ids, cfg.validation_utterances, "validation", rest)
    if test_ids & validation_ids:
        both = ", ".join(sorted(test_ids & validation_ids))
        raise SplitError(f"corpus.split: {both} in both test_ids and validation_ids")
    wanted = (0 if cfg.test_ids else cfg.test_utterances) + (
        0 if cfg.validation_ids else cfg.validation_utterances
    )
    remaining = {u for _, u, _ in items} - test_ids - validation_ids
    if len(test_ids) + len(validation_ids) < wanted or not remaining:
        raise SplitError(
            f"corpus.split holds out {cfg.test_utterances} test and {cfg.validation_utterances} validation "
            f"sentence ids, but only {len(common)} ids are spoken by every speaker and some must remain for "
            "training (lower corpus.split.test_utterances or validation_utterances)"
        )
    held_out = {**dict.fromkeys(test_ids, "test"), **dict.fromkeys(validation_ids, "validation")}

    splits: dict[tuple[str, str], str] = {}
    owners: dict[str, list[str]] = defaultdict(list)
    for spk, utt, _ in items:
        if utt in held_out:
            splits[spk, utt] = held_out[utt]
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
