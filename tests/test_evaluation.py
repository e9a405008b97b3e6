"""The evaluation recipe on wavs, the evaluation plan and summaries with CIs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import speaker_utterance, write_wav

from vc.config import EvaluateConfig, FeaturesConfig
from vc.corpus.selection import evaluation_plan, usable_utterances
from vc.evaluation.recipe import analyze_for_eval, score_pair, score_system
from vc.evaluation.summary import summarize

FS = 16000
FEATURES = FeaturesConfig()
CFG = EvaluateConfig(bootstrap=200)


def test_a_wav_against_itself_scores_perfectly() -> None:
    a = analyze_for_eval(speaker_utterance("spkA", 1, 0.8), FS, FEATURES)
    scores = score_pair(a, a, CFG)
    assert scores["mcd_db"] == pytest.approx(0.0, abs=1e-9)
    assert scores["log_f0_rmse"] == pytest.approx(0.0, abs=1e-9) and scores["f0_corr"] == pytest.approx(1.0)
    assert scores["msd_db"] == pytest.approx(0.0, abs=1e-9) and scores["vuv_error"] == 0.0


def test_silence_is_dropped_and_speakers_are_told_apart() -> None:
    wav = speaker_utterance("spkA", 1, 0.8)
    padded = np.concatenate([np.zeros(FS // 2), wav, np.zeros(FS // 2)]) + 1e-5 * np.random.default_rng(
        0
    ).standard_normal(2 * FS // 2 + len(wav))
    a, b = analyze_for_eval(wav, FS, FEATURES), analyze_for_eval(padded, FS, FEATURES)
    assert (b.power_db < CFG.power_threshold_db).sum() >= 150  # the half seconds of silence fall below
    same = score_pair(b, a, CFG)["mcd_db"]
    other = score_pair(analyze_for_eval(speaker_utterance("spkB", 1, 0.8), FS, FEATURES), a, CFG)["mcd_db"]
    assert same < 1.0 < 3.0 < other


def test_evaluation_plan_pairs_shared_eval_sentences() -> None:
    manifest = pd.DataFrame(
        [
            {"speaker": s, "utt_id": u, "split": "test", "status": "ok"}
            for s in ("a", "b", "c")
            for u in ("u1", "u2", "u3")
        ]
    )
    manifest["path"] = manifest["speaker"] + "/" + manifest["utt_id"] + ".wav"
    manifest.loc[(manifest["speaker"] == "c") & (manifest["utt_id"] == "u3"), "status"] = "skipped"
    index = manifest.drop(columns="path").copy()
    index.loc[(index["speaker"] == "a") & (index["utt_id"] == "u1"), "split"] = "validation"
    assert (
        len(usable_utterances(manifest, index, "test")) == 7
    )  # c/u3 skipped by the corpus, a/u1 other split
    index["split"] = "test"
    index.loc[(index["speaker"] == "b") & (index["utt_id"] == "u2"), "status"] = "skipped"  # by features
    usable = usable_utterances(manifest, index, "test")
    assert len(usable) == 7 and list(usable.columns) == ["speaker", "utt_id", "path"]
    plan = evaluation_plan(usable, ["a", "b", "c"])
    assert len(plan) == 2 * 2 + 2 * 2 + 2 * 1  # a<->b: u1, u3; a<->c: u1, u2; b<->c: u1
    manifest = usable
    assert not ((plan["source"] == plan["target"]).any())
    assert len(evaluation_plan(manifest, ["a", "b", "c"], max_utterances=1)) == 6
    assert evaluation_plan(manifest, ["a", "b", "c"], (("a", "b"),)).shape == (2, 3)
    with pytest.raises(ValueError, match="unknown speaker 'z'"):
        evaluation_plan(manifest, ["a", "b", "c"], (("a", "z"),))


def test_score_system_scores_wavs_and_unconverted_sources(tmp_path: Path) -> None:
    refs = tmp_path / "refs"
    for spk in ("spkA", "spkB"):
        analyze_for_eval(speaker_utterance(spk, 2, 0.6), FS, FEATURES).save(refs / spk / "u2.npz")
    wav = write_wav(tmp_path / "conv.wav", speaker_utterance("spkB", 2, 0.6))
    items = pd.DataFrame(
        [
            {"source": "spkA", "target": "spkB", "utt_id": "u2", "path": str(wav)},
            {"source": "spkA", "target": "spkB", "utt_id": "u2", "path": ""},
        ]
    )
    scores = score_system(items, refs, FEATURES, CFG, workers=1)
    assert scores.loc[0, "mcd_db"] < 0.5 < 3.0 < scores.loc[1, "mcd_db"]  # a perfect conversion vs none


def test_summaries_have_cluster_intervals() -> None:
    rng = np.random.default_rng(0)
    scores = pd.DataFrame(
        {
            "source": ["a", "b"] * 20,
            "target": ["b", "a"] * 20,
            "utt_id": [f"u{i // 2}" for i in range(40)],
            "mcd_db": rng.normal(6, 1, 40),
            "log_f0_rmse": rng.normal(0.2, 0.05, 40),
            "f0_corr": rng.normal(0.6, 0.1, 40),
            "msd_db": rng.normal(3, 0.5, 40),
        }
    )
    overall = summarize(scores, CFG).iloc[0]
    assert (overall["n"], overall["sentences"], overall["seeds"]) == (40, 20, 1)
    assert overall["mcd_db_ci_low"] < overall["mcd_db"] < overall["mcd_db_ci_high"]
    per_pair = summarize(scores, CFG, by=["source", "target"])
    assert len(per_pair) == 2 and (per_pair["n"] == 20).all()
    few = summarize(scores.head(8), CFG)  # 4 sentences, below evaluate.min_sentences (5): no interval
    assert few.iloc[0]["sentences"] == 4 and np.isnan(few.iloc[0]["mcd_db_ci_low"])


# ------------------------------------------------------------------------------- perceptual metrics
def test_an_empty_converted_wav_scores_nan_with_a_note(tmp_path: Path) -> None:
    import soundfile as sf

    refs = tmp_path / "refs"
    for spk in ("spkA", "spkB"):
        analyze_for_eval(speaker_utterance(spk, 2, 0.6), FS, FEATURES).save(refs / spk / "u2.npz")
    empty = tmp_path / "empty.wav"
    sf.write(empty, np.zeros(0), FS, subtype="PCM_16")
    items = pd.DataFrame([{"source": "spkA", "target": "spkB", "utt_id": "u2", "path": str(empty)}])
    scores = score_system(items, refs, FEATURES, CFG, workers=1)
    assert np.isnan(scores.loc[0, "mcd_db"]) and "empty audio" in scores.loc[0, "note"]


def test_a_no_conversion_system_counts_each_recording_once_for_its_own_metrics() -> None:
    """`source` holds both directions; MCD is per unordered pair, a CER per source recording, a similarity
    to the target per ordered pair."""
    from vc.evaluation.summary import metric_unit
    from vc.statistics import with_pair

    plan = pd.DataFrame(
        [
            {"source": s, "target": t, "utt_id": f"u{u}"}
            for s, t in (("a", "b"), ("b", "a"), ("a", "c"))
            for u in range(6)
        ]
    )
    rows = with_pair(plan).assign(
        mcd_db=np.where(plan["target"] == "c", 9.0, 6.0),  # a|b twice (6 dB), a|c once (9 dB)
        log_f0_rmse=0.2,
        f0_corr=0.5,
        msd_db=2.0,
        cer=np.where(plan["source"] == "a", 1.0, 0.0),  # a is a source twice per sentence, b once
        spk_sim_target=np.where(plan["target"] == "c", 0.3, 0.6),
    )
    overall = summarize(rows, CFG, unit="unordered_pair").iloc[0]
    assert overall["n"] == 12 and overall["mcd_db"] == pytest.approx(7.5)  # a|b and a|c, once each
    assert overall["cer"] == pytest.approx(0.5)  # recordings of a and of b, once each (rows: 2/3)
    assert overall["spk_sim_target"] == pytest.approx(0.5)  # all three ordered pairs
    assert metric_unit("unordered_pair", "cer") == "source_utterance"
    assert metric_unit("unordered_pair", "spk_sim_target") == "conversion"
    assert metric_unit("conversion", "cer") == "conversion" and metric_unit("target", "cer") == "target"
