"""WORLD analysis and synthesis, mel-cepstra against pysptk's estimator, the features stage (WORLD features
and HiFi-GAN log-mels), the scalers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pysptk
import pytest
import pyworld as pw
from conftest import voiced_signal, write_wav

from vc import cost
from vc.config import AudioConfig, FeaturesConfig, SplitConfig
from vc.corpus.build import build_corpus
from vc.features import mcep
from vc.features.extract import (
    FeatureError,
    analyze_corpus,
    load_corpus_features,
    load_training_matrices,
    log_mel_features,
    read_index,
)
from vc.features.stats import FeatureStats, StatsError, fit_mel_stats, fit_stats
from vc.features.world import SpectralCodec, WorldFeatures, analyze, synthesize

FS = 16000


@pytest.mark.parametrize("method", ["harvest", "dio"])
def test_f0_of_a_synthetic_voiced_signal_is_within_2_percent(method: str) -> None:
    t = np.arange(FS) / FS
    contour = 140.0 * (1 + 0.1 * np.sin(2 * np.pi * 1.5 * t))  # 126..154 Hz glide
    feats = analyze(voiced_signal(contour, 1.0, FS), FS, FeaturesConfig(f0_method=method))
    frames = np.arange(len(feats.f0)) * feats.frame_period / 1000
    truth = 140.0 * (1 + 0.1 * np.sin(2 * np.pi * 1.5 * frames))
    inner = slice(10, -10)  # ignore the edges, where the analysis window leaves the signal
    voiced = feats.voiced[inner]
    assert voiced.mean() > 0.95
    rel = np.abs(feats.f0[inner][voiced] - truth[inner][voiced]) / truth[inner][voiced]
    assert np.median(rel) < 0.02 and np.percentile(rel, 95) < 0.02


def test_analysis_synthesis_round_trip_keeps_f0_and_envelope() -> None:
    cfg = FeaturesConfig()
    wav = voiced_signal(180.0, 1.0, FS)
    feats = analyze(wav, FS, cfg)
    assert feats.spectral.shape == (len(feats.f0), 35) and feats.frame_period == 5.0
    codec = SpectralCodec.from_config(cfg, FS)
    resynth = synthesize(feats.f0, feats.spectral, feats.coded_ap, codec, cfg.frame_period)
    again = analyze(resynth, FS, cfg)
    both = feats.voiced & again.voiced[: len(feats.f0)]
    assert np.median(np.abs(again.f0[: len(feats.f0)][both] / feats.f0[both] - 1)) < 0.02
    # mel-cepstral distance of the round trip (c1.., frames 10..-10) stays small
    diff = again.spectral[10:-10, 1:] - feats.spectral[10 : len(again.f0) - 10, 1:]
    assert 10 / np.log(10) * np.sqrt(2 * (diff**2).sum(axis=1)).mean() < 1.5


def test_sp2mc_agrees_with_pysptk_mcep_on_the_same_frames() -> None:
    """Our features (sp2mc on the CheapTrick envelope) against pysptk's iterative mel-cepstral analysis.

    Both estimate the mel-cepstrum of one power spectrum; on smooth envelopes they must agree closely.
    """
    cfg = FeaturesConfig(mcep_order=24)
    feats = analyze(voiced_signal(150.0, 0.5, FS), FS, cfg)
    codec = SpectralCodec.from_config(cfg, FS)
    sp = codec.decode(feats.spectral)[20:30]  # smooth envelopes of order 24
    ours = pysptk.sp2mc(sp, order=24, alpha=codec.alpha)
    for frame_sp, frame_mc in zip(sp, ours, strict=True):
        theirs = pysptk.mcep(frame_sp, order=24, alpha=codec.alpha, itype=4, eps=0.0, etype=1, min_det=0.0)
        # c0 differs by the estimators' gain conventions; the shape c1.. must agree
        assert np.max(np.abs(frame_mc[1:] - theirs[1:])) < 0.05
        assert np.corrcoef(frame_mc[1:], theirs[1:])[0, 1] > 0.99


@pytest.mark.parametrize(("fs", "order"), [(FS, 24), (22050, 34), (24000, 24)])
def test_matrix_mcep_transforms_equal_pysptk_frame_by_frame(fs: int, order: int) -> None:
    """vc.features.mcep's matrix products against pysptk's own per-frame sp2mc and mc2sp (the parity that
    lets the features, the conversion, the validation curve and the MCD recipe use them), on real
    CheapTrick envelopes, voiced and silent frames, and one frame alone."""
    cfg = FeaturesConfig(mcep_order=order)
    codec = SpectralCodec.from_config(cfg, fs)
    wav = np.concatenate([voiced_signal(140.0, 0.4, fs), np.zeros(fs // 10), voiced_signal(210.0, 0.3, fs)])
    wav = wav + 1e-4 * np.random.default_rng(0).standard_normal(len(wav))
    f0, t = pw.harvest(wav, fs, f0_floor=cfg.f0_floor, f0_ceil=cfg.f0_ceil, frame_period=cfg.frame_period)
    sp = pw.cheaptrick(wav, f0, t, fs, f0_floor=cfg.f0_floor, fft_size=codec.fft_size)
    assert sp.shape[1] == codec.fft_size // 2 + 1

    theirs = pysptk.sp2mc(sp, order=order, alpha=codec.alpha)
    ours = mcep.sp2mc(sp, order=order, alpha=codec.alpha)
    assert ours.shape == theirs.shape == (len(sp), order + 1)
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-10)
    np.testing.assert_allclose(mcep.sp2mc(sp[7], order, codec.alpha), theirs[7], rtol=0, atol=1e-10)

    back_theirs = pysptk.mc2sp(theirs, alpha=codec.alpha, fftlen=codec.fft_size)
    back_ours = mcep.mc2sp(theirs, alpha=codec.alpha, fftlen=codec.fft_size)
    assert back_ours.shape == back_theirs.shape == sp.shape
    np.testing.assert_allclose(back_ours, back_theirs, rtol=1e-10, atol=0)
    # the codec (features stage, conversion) goes through them
    np.testing.assert_allclose(codec.encode(sp), theirs, rtol=0, atol=1e-10)
    np.testing.assert_allclose(codec.decode(theirs), back_theirs, rtol=1e-10, atol=0)
    # a different all-pass constant is a different matrix, not a stale cached one
    other = pysptk.sp2mc(sp[:3], order=order, alpha=0.3)
    np.testing.assert_allclose(mcep.sp2mc(sp[:3], order=order, alpha=0.3), other, rtol=0, atol=1e-10)
    # the all-pass constant: features.mcep_alpha where set, else pysptk's for the sample rate
    assert codec.alpha == mcep.mcep_alpha(None, fs) == pysptk.util.mcepalpha(fs)
    fixed = SpectralCodec.from_config(FeaturesConfig(mcep_alpha=0.3), fs)
    assert fixed.alpha == mcep.mcep_alpha(0.3, fs) == 0.3


def test_coded_sp_dimension_and_round_trip() -> None:
    cfg = FeaturesConfig(spectral="coded_sp", coded_sp_dim=36)
    feats = analyze(voiced_signal(120.0, 0.5, FS), FS, cfg)
    assert feats.spectral.shape[1] == 36 == cfg.dim
    codec = SpectralCodec.from_config(cfg, FS)
    assert codec.decode(feats.spectral).shape == (len(feats.f0), codec.fft_size // 2 + 1)


def _prepared_corpus(root: Path, tmp_path: Path) -> Path:
    from vc.config import CorpusConfig

    out = tmp_path / "prepared"
    cfg = CorpusConfig(
        source="directory",
        root=str(root),
        split=SplitConfig(test_utterances=2, validation_utterances=0),
        min_train_utterances=2,
        workers=1,
    )
    build_corpus(cfg, AudioConfig(sample_rate=FS), out, min_train_frames=128, frame_period_ms=5.0)
    return out


def test_features_stage_writes_index_and_summary(speaker_dirs_corpus: Path, tmp_path: Path) -> None:
    from vc.corpus.build import read_manifest

    corpus = _prepared_corpus(speaker_dirs_corpus, tmp_path)
    out = tmp_path / "features"
    index = analyze_corpus(read_manifest(corpus / "manifest.csv"), corpus, out, FeaturesConfig(workers=2))
    assert (index["status"] == "ok").all() and len(index) == 24
    assert read_index(out)["frames"].min() > 150
    train = load_corpus_features(out, "train")
    assert set(train) == {"spkA", "spkB", "spkC"} and len(train["spkA"]) == 6
    # beside each WORLD file, the log-mel of the same wav resampled to the vocoder's 22,050 Hz, hop 256
    from vc.io import read_audio

    mels = load_training_matrices(out, "train", "mel")
    assert {k: len(v) for k, v in mels.items()} == {k: len(v) for k, v in train.items()}
    row = read_index(out).iloc[0]
    wav, fs = read_audio(corpus / "wav" / row["speaker"] / f"{row['utt_id']}.wav")
    expected = log_mel_features(wav, fs)
    stored = np.load(out / row["path"].replace(".npz", ".mel.npy"))
    assert stored.dtype == np.float32 and stored.shape == expected.shape == (row["mel_frames"], 80)
    np.testing.assert_array_equal(stored, expected)
    assert abs(len(expected) - len(wav) * 22050 / fs / 256) <= 1  # 11.6 ms frames
    world = load_training_matrices(out, "train", "world")
    np.testing.assert_array_equal(world["spkA"][0], train["spkA"][0].spectral)
    import json

    summary = json.loads((out / "summary.json").read_text())
    assert summary["speakers"]["spkA"]["mean_f0_hz"] == pytest.approx(110, rel=0.05)
    assert summary["speakers"]["spkB"]["mean_f0_hz"] == pytest.approx(210, rel=0.05)

    # the same inputs give the same bytes (DVC sees a re-run as unchanged); timings go to the cost file
    again = tmp_path / "features-again"
    with cost.record("features", tmp_path / "cost.json"):
        analyze_corpus(read_manifest(corpus / "manifest.csv"), corpus, again, FeaturesConfig(workers=0))
    files = sorted(p.relative_to(out) for p in out.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(again) for p in again.rglob("*") if p.is_file())
    assert all((out / f).read_bytes() == (again / f).read_bytes() for f in files)
    phases = {p["name"]: p for p in json.loads((tmp_path / "cost.json").read_text())["phases"]}
    assert phases["world analysis"]["count"] == len(index) and phases["world analysis"]["wall_s"] > 0


def test_file_with_no_voiced_frames(speaker_dirs_corpus: Path, tmp_path: Path) -> None:
    from vc.corpus.build import read_manifest

    noise = np.random.default_rng(0).standard_normal(FS) * 0.3  # loud, but no periodicity at all
    noise = np.convolve(noise, np.ones(2) / 2, mode="same")
    write_wav(speaker_dirs_corpus / "spkA" / "utt04.wav", noise)
    corpus = _prepared_corpus(speaker_dirs_corpus, tmp_path)
    manifest = read_manifest(corpus / "manifest.csv")
    cfg = FeaturesConfig(f0_method="dio", f0_floor=400.0, f0_ceil=480.0, workers=1)  # no F0 in that range
    noise_only = manifest[(manifest["speaker"] == "spkA") & (manifest["utt_id"] == "utt04")]
    with pytest.raises(FeatureError, match=r"utt04\.wav: no voiced frames"):
        analyze_corpus(noise_only, corpus, tmp_path / "features", cfg)
    assert not (tmp_path / "features").exists()
    index = analyze_corpus(noise_only, corpus, tmp_path / "features", cfg, on_bad_file="skip")
    assert index["status"].tolist() == ["skipped"] and "no voiced frames" in index["note"].iloc[0]


# ------------------------------------------------------------------------------------------------ stats
def _fake(rng: np.random.Generator, offset: float, f0: float, frames: int = 50) -> WorldFeatures:
    f0s = np.where(rng.random(frames) < 0.8, f0 * np.exp(0.1 * rng.standard_normal(frames)), 0.0)
    return WorldFeatures(f0s, offset + rng.standard_normal((frames, 35)), np.zeros((frames, 2)), FS, 5.0)


@pytest.mark.parametrize("scaler", ["global", "per_speaker"])
def test_scaler_statistics_match_numpy(scaler: str, tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    train = {"a": [_fake(rng, 0.0, 100.0) for _ in range(3)], "b": [_fake(rng, 3.0, 200.0) for _ in range(4)]}
    stats = fit_stats(train, FeaturesConfig(), scaler)
    all_a = np.concatenate([f.spectral for f in train["a"]])
    all_b = np.concatenate([f.spectral for f in train["b"]])
    if scaler == "global":
        both = np.concatenate([all_a, all_b])
        np.testing.assert_allclose(stats.mean[0], both.mean(0), atol=1e-10)
        np.testing.assert_allclose(stats.scale[0], both.std(0), atol=1e-10)
    else:
        np.testing.assert_allclose(stats.mean[1], all_b.mean(0), atol=1e-10)
        z = stats.normalize(all_b, "b")
        np.testing.assert_allclose(z.mean(0), 0, atol=1e-10)
        np.testing.assert_allclose(z.std(0), 1, atol=1e-10)
    np.testing.assert_allclose(stats.spectral_mean[0], all_a.mean(0), atol=1e-10)
    logf0_b = np.log(np.concatenate([f.f0[f.f0 > 0] for f in train["b"]]))
    assert stats.logf0_mean[1] == pytest.approx(logf0_b.mean())
    assert stats.logf0_std[1] == pytest.approx(logf0_b.std())
    assert stats.train_frames == {"a": 150, "b": 200}
    np.testing.assert_allclose(stats.denormalize(stats.normalize(all_a, "a"), "a"), all_a, atol=1e-10)

    stats.save(tmp_path / "stats.json")
    loaded = FeatureStats.load(tmp_path / "stats.json")
    assert loaded.speakers == ["a", "b"] and loaded.codec == stats.codec
    np.testing.assert_array_equal(loaded.scale, stats.scale)


def test_features_without_log_mels_are_a_clear_error(tmp_path: Path) -> None:
    from conftest import write_tiny_features

    features, _ = write_tiny_features(tmp_path)
    assert load_training_matrices(features, "train", "mel")["spk1"][0].shape[1] == 80
    (features / "spk1" / "u2.mel.npy").unlink()  # written by a version before log-mels
    with pytest.raises(FeatureError, match=r"u2\.mel\.npy: no log-mel file .*run `dvc repro features`"):
        load_training_matrices(features, "train", "mel")


def test_mel_statistics_share_the_speaker_codes_and_scaler_kind(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    train = {"a": [_fake(rng, 0.0, 100.0) for _ in range(2)], "b": [_fake(rng, 3.0, 200.0) for _ in range(2)]}
    world = fit_stats(train, FeaturesConfig(), "per_speaker")
    mels = {"b": [rng.standard_normal((40, 80)) - 2.0], "a": [rng.standard_normal((30, 80)) - 6.0]}
    stats = fit_mel_stats(mels, world)
    assert stats.speakers == ["a", "b"] and stats.scaler == "per_speaker" and stats.dim == 80
    np.testing.assert_allclose(stats.mean[0], mels["a"][0].mean(0), atol=1e-10)  # code 0 is still 'a'
    np.testing.assert_allclose(stats.spectral_std[1], mels["b"][0].std(0), atol=1e-10)
    np.testing.assert_array_equal(stats.logf0_mean, world.logf0_mean)
    assert stats.codec.kind == "mel" and stats.codec.sample_rate == 22050
    assert stats.frame_period == pytest.approx(1000 * 256 / 22050)
    assert stats.train_frames == {"a": 30, "b": 40}
    stats.save(tmp_path / "mel.json")
    assert FeatureStats.load(tmp_path / "mel.json").codec == stats.codec
    with pytest.raises(ValueError, match="no WORLD envelope"):
        stats.codec.decode(mels["a"][0])
    with pytest.raises(StatsError, match="no training log-mels for speaker"):
        fit_mel_stats({"a": mels["a"]}, world)
    with pytest.raises(StatsError, match="log-mels of dim 40, expected 80"):
        fit_mel_stats({"a": mels["a"], "b": [np.zeros((5, 40))]}, world)


def test_f0_transform_maps_source_statistics_to_target() -> None:
    rng = np.random.default_rng(1)
    train = {"a": [_fake(rng, 0.0, 100.0, 400)], "b": [_fake(rng, 0.0, 220.0, 400)]}
    stats = fit_stats(train, FeaturesConfig(), "global")
    f0 = train["a"][0].f0
    out = stats.convert_f0(f0, "a", "b")
    assert ((out > 0) == (f0 > 0)).all()
    assert np.log(out[out > 0]).mean() == pytest.approx(stats.logf0_mean[1])
    assert np.log(out[out > 0]).std() == pytest.approx(stats.logf0_std[1])
    with pytest.raises(StatsError, match="unknown speaker 'c'; known speakers: a, b"):
        stats.convert_f0(f0, "a", "c")


def test_stats_file_errors(tmp_path: Path) -> None:
    with pytest.raises(StatsError, match="no statistics file"):
        FeatureStats.load(tmp_path / "missing.json")
    (tmp_path / "bad.json").write_text('{"speakers": []}')
    with pytest.raises(StatsError, match="not a valid statistics file"):
        FeatureStats.load(tmp_path / "bad.json")
