"""eSpeak NG synthesis of the embedded corpus: determinism, voices and their validation, prosody settings."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("espeakng_loader")

import pyworld

from vc.config import VoiceConfig
from vc.corpus import espeak
from vc.corpus.espeak import SAMPLE_RATE, EspeakError

TEXT = "The quick brown fox jumps over the lazy dog."
OTHER = "She sells sea shells by the sea shore, twice."


def make_voice(**overrides: object) -> VoiceConfig:
    # model_copy does not validate: the synthesizer's own range checks stay testable
    return VoiceConfig(voice="en-us+m3", pitch=50, range=50, rate=175).model_copy(update=overrides)


def median_f0(wav: np.ndarray) -> float:
    f0, _ = pyworld.harvest(wav.astype(np.float64), SAMPLE_RATE, f0_floor=60.0, f0_ceil=500.0)
    return float(np.median(f0[f0 > 0]))


def test_output_is_float32_mono_in_range() -> None:
    wav = espeak.synthesize(TEXT, make_voice())
    assert SAMPLE_RATE == 22050
    assert wav.dtype == np.float32
    assert wav.ndim == 1
    assert 1.0 * SAMPLE_RATE < len(wav) < 6.0 * SAMPLE_RATE  # about 2.5 s of speech
    assert np.abs(wav).max() <= 1.0
    assert np.abs(wav).max() > 0.1  # speech, not silence


def test_repeated_calls_are_byte_identical() -> None:
    voice = make_voice(voice="en-us+f5")  # breath noise and flutter: state a reused library would carry
    first = espeak.synthesize(TEXT, voice)
    espeak.synthesize(OTHER, make_voice(voice="en-gb+m1", pitch=80, rate=250))
    second = espeak.synthesize(TEXT, voice)
    assert first.tobytes() == second.tobytes()


@pytest.mark.parametrize("workers", [1, 2])
def test_synthesize_many_matches_synthesize_in_order(workers: int) -> None:
    jobs = [
        (TEXT, make_voice()),
        (OTHER, make_voice(voice="en-us+f2", pitch=70)),
        (TEXT, make_voice(voice="en-gb", rate=220)),
        (OTHER, make_voice()),
    ]
    many = espeak.synthesize_many(jobs, workers=workers, progress=False)
    assert len(many) == len(jobs)
    for (text, voice), wav in zip(jobs, many, strict=True):
        assert wav.dtype == np.float32
        assert wav.tobytes() == espeak.synthesize(text, voice).tobytes()


def test_synthesize_many_of_nothing() -> None:
    assert espeak.synthesize_many([], workers=2, progress=False) == []


def test_available_voices_and_variants() -> None:
    voices = espeak.available_voices()
    assert {"en-us", "en-gb", "en"} <= set(voices)
    variants = espeak.available_variants()
    assert {f"m{i}" for i in range(1, 8)} | {f"f{i}" for i in range(1, 6)} | {"klatt", "whisper"} <= set(
        variants
    )


@pytest.mark.parametrize("name", ["en-us", "en-gb", "en-us+m3", "en-us+f2", "en-gb+m2", "en-us+klatt"])
def test_valid_voices_pass(name: str) -> None:
    espeak.validate_voice(name)


def test_unknown_language_is_named_with_suggestions() -> None:
    with pytest.raises(EspeakError, match=r"unknown eSpeak NG language 'en-uk'.*en-us"):
        espeak.validate_voice("en-uk+m3")


def test_unknown_variant_is_named_with_suggestions() -> None:
    with pytest.raises(EspeakError, match=r"unknown eSpeak NG variant 'm33'.*m3"):
        espeak.validate_voice("en-us+m33")


@pytest.mark.parametrize("variant", ["whisper", "whisperf"])
def test_whisper_variants_are_rejected(variant: str) -> None:
    with pytest.raises(EspeakError, match=rf"'{variant}'.*WORLD F0"):
        espeak.validate_voice(f"en-us+{variant}")


def test_mostly_unvoiced_variant_is_rejected() -> None:
    with pytest.raises(EspeakError, match=r"'caleb' is mostly unvoiced.*WORLD F0"):
        espeak.validate_voice("en-us+caleb")  # breath noise instead of voicing, under another name


def test_synthesize_rejects_bad_voice_before_synthesis() -> None:
    with pytest.raises(EspeakError, match="nosuch"):
        espeak.synthesize(TEXT, make_voice(voice="en-us+nosuch"))
    with pytest.raises(EspeakError, match="whisper"):
        espeak.synthesize_many([(TEXT, make_voice()), (TEXT, make_voice(voice="en-us+whisper"))], workers=2)


@pytest.mark.parametrize("text", ["", "   \n"])
def test_empty_text_is_an_error(text: str) -> None:
    with pytest.raises(EspeakError, match="empty text"):
        espeak.synthesize(text, make_voice())
    with pytest.raises(EspeakError, match="empty text"):
        espeak.synthesize_many([(TEXT, make_voice()), (text, make_voice())], progress=False)


def test_out_of_range_prosody_is_an_error() -> None:
    with pytest.raises(EspeakError, match="rate must be in"):
        espeak.synthesize(TEXT, make_voice(rate=20))


def test_higher_pitch_raises_f0() -> None:
    low = median_f0(espeak.synthesize(TEXT, make_voice(pitch=20)))
    high = median_f0(espeak.synthesize(TEXT, make_voice(pitch=80)))
    assert high > 1.3 * low  # measured: about 83 Hz and 143 Hz


def test_variant_takes_effect() -> None:
    male = median_f0(espeak.synthesize(TEXT, make_voice(voice="en-us+m3")))
    female = median_f0(espeak.synthesize(TEXT, make_voice(voice="en-us+f2")))
    assert female > 1.5 * male  # eSpeak would silently fall back to the base voice for an ignored variant


def test_higher_rate_shortens_speech() -> None:
    slow = espeak.synthesize(TEXT, make_voice(rate=120))
    fast = espeak.synthesize(TEXT, make_voice(rate=300))
    assert len(fast) < 0.7 * len(slow)
