"""vc.statistics against hand-computed cases: distinct items, cluster bootstrap, paired differences."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from vc.statistics import (
    Estimate,
    cluster_bootstrap_mean,
    distinct_items,
    paired_difference,
    seed_spread,
    verdict,
)


def _plan(speakers=("a", "b", "c"), utts=("u1", "u2")) -> pd.DataFrame:
    rows = [
        {"source": s, "target": t, "utt_id": u} for s in speakers for t in speakers if s != t for u in utts
    ]
    return pd.DataFrame(rows)


def test_distinct_items_count_each_value_once() -> None:
    plan = _plan()  # 3 speakers: 6 ordered pairs x 2 sentences = 12 conversions
    assert len(distinct_items(plan, "conversion")) == 12
    copy = distinct_items(plan, "target")  # one per (target, sentence): 3 x 2
    assert len(copy) == 6 and set(zip(copy["target"], copy["utt_id"], strict=True)) == {
        (t, u) for t in "abc" for u in ("u1", "u2")
    }
    source = distinct_items(plan, "unordered_pair")  # one per unordered pair and sentence: 3 x 2
    assert len(source) == 6 and set(source["pair"]) == {"a|b", "a|c", "b|c"}
    assert (source["source"] < source["target"]).all()  # the kept direction is the sorted one
    seeded = pd.concat([plan.assign(seed=0), plan.assign(seed=1)])
    assert len(distinct_items(seeded, "conversion")) == 24


def test_cluster_bootstrap_resamples_sentences_not_rows() -> None:
    # Two sentences; every row of a sentence has the same value, so the only variation is between sentences.
    # Resampling sentences can give means 1, 2 or 3 only; resampling 200 rows independently would give an
    # interval near the mean 2 (a row bootstrap would call this precise; it rests on two sentences).
    values = np.r_[np.full(100, 1.0), np.full(100, 3.0)]
    sentences = np.r_[np.full(100, "s1"), np.full(100, "s2")]
    est = cluster_bootstrap_mean(values, sentences, n_resamples=2000, seed=0)
    assert (est.mean, est.n, est.sentences, est.seeds) == (2.0, 200, 2, 1)
    assert est.low == pytest.approx(1.0) and est.high == pytest.approx(3.0)


def test_cluster_bootstrap_includes_seed_variance() -> None:
    # 8 sentences with identical scores per seed; the seeds differ by 2 dB: the interval must span them.
    sentences = np.tile(np.arange(8), 2)
    seeds = np.repeat([0, 1], 8)
    values = np.where(seeds == 0, 5.0, 7.0) + 0.01 * sentences
    est = cluster_bootstrap_mean(values, sentences, seeds, n_resamples=2000, seed=0)
    assert est.seeds == 2 and est.mean == pytest.approx(6.035)
    assert est.low < 5.2 and est.high > 6.9
    no_seed = cluster_bootstrap_mean(values, sentences, None, n_resamples=2000, seed=0)
    assert no_seed.high - no_seed.low < 0.1  # ignoring seeds hides the 2 dB between runs


def test_cluster_bootstrap_matches_the_mean_and_is_reproducible() -> None:
    rng = np.random.default_rng(3)
    values = rng.normal(6.0, 1.0, 60)
    sentences = np.repeat(np.arange(20), 3)
    a = cluster_bootstrap_mean(values, sentences, seed=1)
    assert a.mean == pytest.approx(values.mean()) and a.low < a.mean < a.high
    assert cluster_bootstrap_mean(values, sentences, seed=1) == a
    assert cluster_bootstrap_mean(values, sentences, seed=2) != a


def test_cluster_bootstrap_edge_cases() -> None:
    few = cluster_bootstrap_mean([1.0, 2.0, float("nan")], ["s1", "s2", "s3"], min_clusters=3)
    assert (few.mean, few.n, few.sentences) == (1.5, 2, 2) and not few.has_interval
    empty = cluster_bootstrap_mean([float("nan")], ["s1"])
    assert empty.n == 0 and math.isnan(empty.mean)
    with pytest.raises(ValueError, match="one length"):
        cluster_bootstrap_mean([1.0, 2.0], ["s1"])


def test_paired_difference_joins_by_each_baselines_unit() -> None:
    plan = _plan(("a", "b"), ("u1", "u2"))  # a->b, b->a x u1, u2
    system = plan.assign(seed=0, mcd_db=[5.0, 6.0, 7.0, 8.0])
    copy = distinct_items(plan, "target").assign(mcd_db=lambda d: np.where(d["target"] == "a", 1.0, 2.0))
    diff = paired_difference(system, copy, "mcd_db", "target")
    # a->b rows (5, 6) minus copy-synthesis of b (2); b->a rows (7, 8) minus copy-synthesis of a (1)
    assert sorted(diff["diff"]) == [3.0, 4.0, 6.0, 7.0] and "seed" in diff
    source = distinct_items(plan, "unordered_pair").assign(mcd_db=[10.0, 20.0])  # (a|b, u1), (a|b, u2)
    diff = paired_difference(system, source, "mcd_db", "unordered_pair").sort_values(["source", "utt_id"])
    assert list(diff["diff"]) == [-5.0, -14.0, -3.0, -12.0]  # both directions paired with the same wav pair
    other = pd.concat([plan.assign(seed=0, mcd_db=4.0), plan.assign(seed=1, mcd_db=0.0)])
    diff = paired_difference(system, other, "mcd_db", "conversion")  # experiments pair by seed too
    assert list(diff["diff"]) == [1.0, 2.0, 3.0, 4.0]


def test_verdicts_are_worded_from_the_paired_interval() -> None:
    def est(mean: float, low: float, high: float, sentences: int = 8) -> Estimate:
        return Estimate(mean, low, high, 16, sentences, 1)

    assert verdict(est(-0.8, -1.1, -0.5)) == "better by 0.80 dB [0.50, 1.10]"
    assert verdict(est(0.8, 0.5, 1.1)) == "worse by 0.80 dB [0.50, 1.10]"
    assert verdict(est(0.1, -0.2, 0.4)) == "no detectable difference (+0.10 dB [-0.20, 0.40])"
    assert verdict(est(0.1, math.nan, math.nan, 2)) == "+0.10 dB; too few sentences (2) for an interval"
    assert verdict(est(0.3, 0.1, 0.5), lower_is_better=False, unit="") == "better by 0.30 [0.10, 0.50]"


def test_seed_spread() -> None:
    rows = pd.DataFrame({"seed": [0, 0, 1, 1], "mcd_db": [5.0, 7.0, 8.0, 8.0]})
    spread = seed_spread(rows, "mcd_db")
    assert spread["per_seed"] == {"0": 6.0, "1": 8.0} and (spread["min"], spread["max"]) == (6.0, 8.0)
    assert spread["sd"] == pytest.approx(math.sqrt(2.0))
    assert math.isnan(seed_spread(rows.drop(columns="seed"), "mcd_db")["sd"])
