"""Real-corpus layouts, the split, preparation, and every bad-input case of the corpus stage."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from conftest import SPEAKER_VOICES, speaker_utterance, write_wav

from vc.audio import (
    MIN_SPECTRAL_CHANGE_DB,
    NoSpeechError,
    ShortAudioError,
    prepare,
    resample,
    spectral_change_db,
    trim_silence,
)
from vc.config import AudioConfig, CorpusConfig, SplitConfig, VoiceConfig
from vc.corpus.build import CorpusError, build_corpus, read_manifest
from vc.corpus.layouts import CorpusLayoutError, scan_corpus
from vc.corpus.split import SplitError, assign_splits

SHORT = {"min_train_frames": 128, "frame_period_ms": 5.0}


def directory_config(root: Path, **overrides) -> CorpusConfig:
    split = overrides.pop("split", SplitConfig(test_utterances=2, validation_utterances=0))
    return CorpusConfig(
        source="directory", root=str(root), split=split, min_train_utterances=2, workers=1, **overrides
    )


# ---------------------------------------------------------------------------------------------- layouts
def test_speaker_dirs_layout(speaker_dirs_corpus: Path) -> None:
    utts = scan_corpus(speaker_dirs_corpus, "speaker_dirs")
    assert {u.speaker for u in utts} == set(SPEAKER_VOICES)
    assert len(utts) == 24 and utts[0].utt_id == "utt00"
    chosen = scan_corpus(speaker_dirs_corpus, "speaker_dirs", ("spkB", "spkA"))
    assert [u.speaker for u in chosen[:1]] == ["spkB"] and {u.speaker for u in chosen} == {"spkA", "spkB"}


def test_original_arctic_layout(tmp_path: Path) -> None:
    for spk in ("slt", "bdl"):
        for i in range(3):
            write_wav(tmp_path / f"cmu_us_{spk}_arctic" / "wav" / f"arctic_a000{i}.wav", np.ones(100) * 0.1)
    utts = scan_corpus(tmp_path, "speaker_dirs")
    assert {u.speaker for u in utts} == {"slt", "bdl"}
    assert {u.utt_id for u in utts} == {"arctic_a0000", "arctic_a0001", "arctic_a0002"}


def test_vctk_080_layout_reads_texts(tmp_path: Path) -> None:
    for spk in ("p225", "p226"):
        for i, text in enumerate(["Please call Stella.", f"A sentence only {spk} reads."], start=1):
            write_wav(tmp_path / "wav48" / spk / f"{spk}_{i:03d}.wav", np.ones(100) * 0.1)
            (tmp_path / "txt" / spk).mkdir(parents=True, exist_ok=True)
            (tmp_path / "txt" / spk / f"{spk}_{i:03d}.txt").write_text(text + "\n")
    utts = scan_corpus(tmp_path, "vctk")
    assert {(u.speaker, u.utt_id) for u in utts} == {
        ("p225", "001"),
        ("p225", "002"),
        ("p226", "001"),
        ("p226", "002"),
    }
    assert next(u for u in utts if u.utt_id == "001").text == "Please call Stella."
    # id 002 differs in text between speakers, so only 001 is parallel
    splits = assign_splits(
        [(u.speaker, u.utt_id, u.text) for u in utts],
        ["p225", "p226"],
        SplitConfig(validation_utterances=0, test_ids=("001",)),
    )
    assert splits["p225", "001"] == "test" and splits["p225", "002"] == "train"
    with pytest.raises(SplitError, match="002 not spoken by every speaker"):
        assign_splits(
            [(u.speaker, u.utt_id, u.text) for u in utts],
            ["p225", "p226"],
            SplitConfig(validation_utterances=0, test_ids=("002",)),
        )


def test_vctk_092_layout_uses_mic1_flac(tmp_path: Path) -> None:
    for spk in ("p225", "p226"):
        for mic in ("mic1", "mic2"):
            path = tmp_path / "wav48_silence_trimmed" / spk / f"{spk}_001_{mic}.flac"
            path.parent.mkdir(parents=True, exist_ok=True)
            sf.write(path, np.ones(100) * 0.1, 48000, format="FLAC")
    utts = scan_corpus(tmp_path, "vctk")
    assert len(utts) == 2 and all(u.audio.name.endswith("_mic1.flac") and u.utt_id == "001" for u in utts)


def test_missing_folder_and_unknown_speaker_are_named(speaker_dirs_corpus: Path, tmp_path: Path) -> None:
    with pytest.raises(CorpusLayoutError, match=r"corpus\.root: folder .*nowhere does not exist"):
        scan_corpus(tmp_path / "nowhere", "speaker_dirs")
    with pytest.raises(CorpusLayoutError, match=r"unknown speaker.*spkZ.*found: spkA"):
        scan_corpus(speaker_dirs_corpus, "speaker_dirs", ("spkA", "spkZ"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(CorpusLayoutError, match="no speaker folders"):
        scan_corpus(tmp_path / "empty", "speaker_dirs")


# ------------------------------------------------------------------------------------------------ split
def _items(speakers: list[str], n: int) -> list[tuple[str, str, str]]:
    return [(s, f"u{i:02d}", "") for s in speakers for i in range(n)]


def test_eval_split_is_parallel_and_seeded() -> None:
    spk = ["a", "b", "c"]
    splits = assign_splits(
        _items(spk, 10), spk, SplitConfig(test_utterances=3, validation_utterances=0, seed=1)
    )
    eval_ids = {u for (s, u), v in splits.items() if v == "test" and s == "a"}
    assert len(eval_ids) == 3
    assert all({u for (s2, u), v in splits.items() if v == "test" and s2 == s} == eval_ids for s in spk)
    assert splits == assign_splits(
        _items(spk, 10), spk, SplitConfig(test_utterances=3, validation_utterances=0, seed=1)
    )
    assert splits != assign_splits(
        _items(spk, 10), spk, SplitConfig(test_utterances=3, validation_utterances=0, seed=2)
    )


def test_disjoint_training_sets_share_no_sentence() -> None:
    spk = ["a", "b", "c"]
    splits = assign_splits(
        _items(spk, 14),
        spk,
        SplitConfig(test_utterances=2, validation_utterances=0, train_sentences="disjoint"),
    )
    train = {s: {u for (s2, u), v in splits.items() if v == "train" and s2 == s} for s in spk}
    assert sum(len(v) for v in train.values()) == 12 and all(len(v) == 4 for v in train.values())
    assert not (train["a"] & train["b"]) and not (train["a"] & train["c"]) and not (train["b"] & train["c"])


def test_too_few_parallel_sentences_for_eval() -> None:
    with pytest.raises(SplitError, match="holds out 5 test and 0 validation sentence ids, but only 3"):
        assign_splits(
            _items(["a", "b"], 3), ["a", "b"], SplitConfig(test_utterances=5, validation_utterances=0)
        )
    with pytest.raises(SplitError, match="holds out 2 test and 1 validation"):
        assign_splits(
            _items(["a", "b"], 3), ["a", "b"], SplitConfig(test_utterances=2, validation_utterances=1)
        )


def test_validation_and_test_are_parallel_disjoint_and_test_ignores_validation() -> None:
    spk = ["a", "b", "c"]
    splits = assign_splits(_items(spk, 20), spk, SplitConfig(test_utterances=4, validation_utterances=3))

    def ids(split: str, speaker: str) -> set[str]:
        return {u for (s, u), v in splits.items() if v == split and s == speaker}

    for split, count in (("test", 4), ("validation", 3), ("train", 13)):
        assert len(ids(split, "a")) == count and all(ids(split, s) == ids(split, "a") for s in spk)
    assert not ids("test", "a") & ids("validation", "a")
    # more validation sentences never move a test sentence
    more = assign_splits(_items(spk, 20), spk, SplitConfig(test_utterances=4, validation_utterances=6))
    assert {u for (s, u), v in more.items() if v == "test"} == ids("test", "a")
    named = SplitConfig(test_ids=("u01",), validation_ids=("u02", "u03"))
    splits = assign_splits(_items(spk, 20), spk, named)
    assert ids("test", "b") == {"u01"} and ids("validation", "c") == {"u02", "u03"}
    with pytest.raises(SplitError, match="validation_ids: nope not spoken by every speaker"):
        assign_splits(_items(spk, 20), spk, SplitConfig(validation_ids=("nope",)))


# ---------------------------------------------------------------------------------------- preparation
def test_prepare_downmixes_resamples_trims_and_normalises(caplog: pytest.LogCaptureFixture) -> None:
    sr = 16000
    tone = speaker_utterance("spkA", 0, seconds=0.5, sample_rate=sr)
    padded = np.concatenate([np.zeros(sr // 2), tone, np.zeros(sr // 2)])
    stereo = np.stack([padded, 0.5 * padded], axis=1)
    with caplog.at_level(logging.WARNING):
        out = prepare(stereo, sr, AudioConfig(sample_rate=22050, peak_normalize=0.9), name="x.wav")
    assert "x.wav: multichannel audio downmixed to mono" in caplog.text
    assert out.sample_rate == 22050 and out.wav.ndim == 1
    assert 0.5 <= out.duration < 0.6  # the 0.5 s of silence on each side is gone
    assert np.max(np.abs(out.wav)) == pytest.approx(0.9)
    assert len(trim_silence(np.zeros(10), sr, 40.0)) == 10


def _tones(sample_rate: int, seconds: float = 2.0) -> dict[str, np.ndarray]:
    t = np.arange(int(seconds * sample_rate)) / sample_rate
    tones = {}
    for f0 in (50.0, 100.0, 220.0, 440.0, 1000.0, 3000.0):
        tones[f"square {f0:g} Hz"] = 0.5 * np.sign(np.sin(2 * np.pi * f0 * t + 0.1))
        tones[f"sine {f0:g} Hz"] = 0.5 * np.sin(2 * np.pi * f0 * t)
        tones[f"sawtooth {f0:g} Hz"] = 0.5 * ((f0 * t) % 1 * 2 - 1)
    fades = np.linspace(0.05, 1.0, len(t)) * tones["square 220 Hz"]
    beeps = (np.floor(t * 4) % 2 == 0) * tones["square 440 Hz"]  # 4 beeps a second: on and off
    return {**tones, "fading square": fades, "beeping square": beeps}


@pytest.mark.parametrize("sample_rate", [16000, 22050])
def test_a_steady_tone_is_no_speech_and_voices_and_noise_pass(sample_rate: int) -> None:
    """The voice-activity check refuses what never changes (tones, square waves, hum); the synthetic voices
    of these tests pass, and so does noise (the features stage refuses it: no voiced frames)."""
    cfg = AudioConfig(sample_rate=22050)
    for name, wav in _tones(sample_rate).items():
        with pytest.raises(NoSpeechError, match=r"x\.wav: no speech found"):
            prepare(wav, sample_rate, cfg, name="x.wav")
        assert spectral_change_db(resample(wav, sample_rate, 22050), 22050) < 2.0, name
    voices = [speaker_utterance(spk, i, sample_rate=sample_rate) for spk in SPEAKER_VOICES for i in range(4)]
    noise = np.random.default_rng(0).standard_normal(sample_rate) * 0.2
    for wav in [*voices, speaker_utterance("spkB", 5, seconds=0.3, sample_rate=sample_rate), noise]:
        prepared = prepare(wav, sample_rate, cfg)
        assert spectral_change_db(prepared.wav, 22050) > MIN_SPECTRAL_CHANGE_DB + 2


def test_the_embedded_voices_are_speech() -> None:
    pytest.importorskip("espeakng_loader")
    from vc.corpus import espeak
    from vc.corpus.embedded import EMBEDDED_SENTENCES, EMBEDDED_VOICES

    for voice in EMBEDDED_VOICES.values():
        for text in EMBEDDED_SENTENCES[:2]:
            wav = espeak.synthesize(text, VoiceConfig(**voice))
            prepared = prepare(wav, espeak.SAMPLE_RATE, AudioConfig())
            assert spectral_change_db(prepared.wav, prepared.sample_rate) > 9.0


def test_too_short_is_said_before_and_after_trimming() -> None:
    with pytest.raises(ShortAudioError, match=r"a\.wav: too short: 799 samples \(49.9 ms at 16000 Hz\)"):
        prepare(speaker_utterance("spkA", 0)[:799], 16000, AudioConfig(), name="a.wav")
    click = np.concatenate([np.zeros(16000), speaker_utterance("spkA", 0)[:200], np.zeros(16000)])
    with pytest.raises(ShortAudioError, match=r"too short after trimming silence: \d+ samples"):
        prepare(click, 16000, AudioConfig(), name="a.wav")


def test_build_corpus_writes_manifest_and_prepared_wavs(speaker_dirs_corpus: Path, tmp_path: Path) -> None:
    out = tmp_path / "prepared"
    rows = build_corpus(directory_config(speaker_dirs_corpus), AudioConfig(sample_rate=22050), out, **SHORT)
    manifest = read_manifest(out / "manifest.csv")
    assert list(manifest.columns[:6]) == ["speaker", "utt_id", "split", "path", "duration", "sample_rate"]
    assert len(manifest) == len(rows) == 24
    assert set(manifest["split"]) == {"train", "test"}
    assert (manifest["sample_rate"] == 22050).all() and (manifest["source_sample_rate"] == 16000).all()
    info = sf.info(out / manifest["path"].iloc[0])
    assert info.samplerate == 22050 and info.channels == 1
    assert manifest["source"].iloc[0].endswith("utt00.wav")


def test_build_is_deterministic(speaker_dirs_corpus: Path, tmp_path: Path) -> None:
    for name in ("one", "two"):
        build_corpus(directory_config(speaker_dirs_corpus), AudioConfig(), tmp_path / name, **SHORT)
    for wav in sorted((tmp_path / "one" / "wav").rglob("*.wav")):
        assert wav.read_bytes() == (tmp_path / "two" / wav.relative_to(tmp_path / "one")).read_bytes()
    assert (tmp_path / "one/manifest.csv").read_text().replace("one", "") == (
        tmp_path / "two/manifest.csv"
    ).read_text().replace("two", "")


# ----------------------------------------------------------------------------------------- bad input
def _corrupt(path: Path) -> None:
    path.write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunkjunkjunk")


def _empty(path: Path) -> None:
    sf.write(path, np.zeros(0), 16000)


def _silent(path: Path) -> None:
    sf.write(path, np.zeros(16000), 16000)


def _short(path: Path) -> None:
    sf.write(path, speaker_utterance("spkA", 1, seconds=0.3), 16000)  # 60 frames < 128


def _one_sample(path: Path) -> None:
    sf.write(path, np.zeros(1), 16000)


def _square_wave(path: Path) -> None:
    t = np.arange(2 * 16000) / 16000
    sf.write(path, 0.5 * np.sign(np.sin(2 * np.pi * 220 * t)), 16000)  # loud, periodic, no speech


@pytest.mark.parametrize(
    ("damage", "words"),
    [
        (_corrupt, "unreadable or corrupt"),
        (_empty, "empty audio"),
        (_silent, "all silent"),
        (_short, "shorter than the training crop"),
        (_one_sample, r"too short: 1 sample \(0.0625 ms at 16000 Hz\); the minimum is 0.1 s"),
        (_square_wave, "no speech found: the spectrum stays the same throughout, as in a steady tone"),
    ],
)
def test_bad_file_is_an_error_naming_it_or_skipped_with_a_note(
    speaker_dirs_corpus: Path, tmp_path: Path, damage, words: str, caplog: pytest.LogCaptureFixture
) -> None:
    bad = speaker_dirs_corpus / "spkA" / "utt03.wav"
    damage(bad)
    out = tmp_path / "prepared"
    split = SplitConfig(validation_utterances=0, test_ids=("utt00", "utt01"))  # keep utt03 in training
    with pytest.raises(CorpusError, match=rf"{bad}.*{words}.*on_bad_file: skip"):
        build_corpus(directory_config(speaker_dirs_corpus, split=split), AudioConfig(), out, **SHORT)
    assert not out.exists()  # nothing half-written
    assert not list(tmp_path.glob(".prepared*"))

    with caplog.at_level(logging.WARNING):
        rows = build_corpus(
            directory_config(speaker_dirs_corpus, split=split, on_bad_file="skip"),
            AudioConfig(),
            out,
            **SHORT,
        )
    assert f"skipping {bad}" in caplog.text
    row = rows[(rows["speaker"] == "spkA") & (rows["utt_id"] == "utt03")].iloc[0]
    assert row["status"] == "skipped" and re.search(words, row["note"]) and row["split"] == ""
    assert not row["note"].startswith(str(bad))  # the row names the file; its note is the reason
    assert not (out / "wav/spkA/utt03.wav").exists()
    assert (read_manifest(out / "manifest.csv")["status"] == "skipped").sum() == 1


def test_speaker_with_too_few_utterances(speaker_dirs_corpus: Path, tmp_path: Path) -> None:
    for i in range(2, 8):
        (speaker_dirs_corpus / "spkC" / f"utt{i:02d}.wav").unlink()
    cfg = directory_config(
        speaker_dirs_corpus, split=SplitConfig(validation_utterances=0, test_ids=("utt00",))
    )
    with pytest.raises(
        CorpusError, match=r"speaker 'spkC' has 1 usable training utterances.*min_train_utterances"
    ):
        build_corpus(cfg, AudioConfig(), tmp_path / "out", **SHORT)


def test_failed_rebuild_keeps_the_previous_corpus(speaker_dirs_corpus: Path, tmp_path: Path) -> None:
    out = tmp_path / "prepared"
    build_corpus(directory_config(speaker_dirs_corpus), AudioConfig(), out, **SHORT)
    before = (out / "manifest.csv").read_text()
    _corrupt(speaker_dirs_corpus / "spkB" / "utt05.wav")
    with pytest.raises(CorpusError):
        build_corpus(directory_config(speaker_dirs_corpus), AudioConfig(), out, **SHORT)
    assert (out / "manifest.csv").read_text() == before
