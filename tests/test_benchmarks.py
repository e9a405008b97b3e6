"""The benchmarks' own logic: asr_batch's packing gives timestamped segments back to the clips they were
spoken in; asr_window finds every system's wavs; train_step --set changes the experiment it times and names a
key it does not know."""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd
import pytest
from conftest import ROOT

sys.path.insert(0, str(ROOT))
from benchmarks.asr_batch import BatchedWhisper, _nearest
from benchmarks.asr_window import scored_systems
from benchmarks.train_step import build_experiment, parse_args
from vc.configlib import ConfigError

BEGIN = 1000  # the fake tokenizer's first timestamp token: token BEGIN + k is k x 20 ms


class _Tokenizer:
    timestamp_begin = BEGIN

    @staticmethod
    def decode(tokens: list[int]) -> str:
        return " ".join(f"w{t}" for t in tokens)


def _whisper() -> BatchedWhisper:
    whisper = BatchedWhisper.__new__(BatchedWhisper)  # no model: only the token bookkeeping is tested
    whisper.tokenizer = _Tokenizer()
    return whisper


def ts(seconds: float) -> int:
    return BEGIN + round(seconds / 0.02)


def test_each_segment_goes_to_the_clip_it_falls_in() -> None:
    spans = [(0.0, 2.0), (3.0, 5.0), (6.0, 8.0)]
    texts: dict[int, list[str]] = {7: [], 8: [], 9: []}
    tokens = [ts(0.1), 1, 2, ts(1.9), ts(3.1), 3, ts(4.8), ts(6.2), 4, 5, ts(7.5)]
    reached = _whisper()._assign(tokens, spans, [7, 8, 9], texts)
    assert texts == {7: ["w1 w2"], 8: ["w3"], 9: ["w4 w5"]}
    assert reached == 3


def test_a_decode_that_stops_early_reports_the_clips_it_did_not_reach() -> None:
    spans = [(0.0, 2.0), (3.0, 5.0), (6.0, 8.0)]
    texts: dict[int, list[str]] = {0: [], 1: [], 2: []}
    # two timestamps at the end: a segment was opened and not finished, so the last clip was never heard
    tokens = [ts(0.1), 1, ts(1.9), ts(3.1), 2, ts(4.8), ts(5.0)]
    reached = _whisper()._assign(tokens, spans, [0, 1, 2], texts)
    assert texts == {0: ["w1"], 1: ["w2"], 2: []}
    assert reached == 2


def test_a_segment_in_the_silence_between_clips_goes_to_the_nearest() -> None:
    spans = [(0.0, 2.0), (3.0, 5.0)]
    assert _nearest(spans, 2.2) == 0
    assert _nearest(spans, 2.9) == 1
    assert _nearest(spans, 4.0) == 1


def test_train_step_set_merges_an_override_over_the_preset() -> None:
    params = str(ROOT / "params.yaml")
    args = parse_args(
        ["--params", params, "--preset", "paper", "--set", '{"model": {"generator": {"channels": 64}}}']
    )
    exp = build_experiment(args)
    assert exp.model.generator.channels == 64  # the override
    assert exp.model.generator.res_blocks == 9  # the rest of the paper preset stays
    assert exp.train.iterations == 10**9  # the benchmark's never-ending training still wins
    plain = build_experiment(parse_args(["--params", params, "--preset", "paper"]))
    assert plain.model.generator.channels == 128


def test_train_step_set_names_an_unknown_key() -> None:
    args = parse_args(
        ["--params", str(ROOT / "params.yaml"), "--set", '{"model": {"generator": {"chanels": 8}}}']
    )
    with pytest.raises(ConfigError, match=r"'model\.generator\.chanels'"):
        build_experiment(args)


def test_scored_systems_finds_each_wav_once(tmp_path: Path) -> None:
    """Conversions under ``<source>__<target>/``, copy synthesis once per target and sentence under
    ``<target>/``, natural recordings under ``<speaker>/``; a system without wavs (``source``) is left out."""
    (tmp_path / "data/corpus").mkdir(parents=True)
    pd.DataFrame({"utt_id": ["s1", "s2"], "text": ["one", "two"]}).to_csv(
        tmp_path / "data/corpus/manifest.csv", index=False
    )
    pairs = pd.DataFrame(
        {"source": ["a", "c", "a"], "target": ["b", "b", "b"], "utt_id": ["s1", "s1", "s2"], "cer": 0.1}
    )
    naturals = pd.DataFrame({"speaker": ["b"], "utt_id": ["s1"], "cer": 0.0})
    scores = {
        "eval/baselines/copy-synthesis/scores.csv": pairs,
        "eval/baselines/mean-var/scores.csv": pairs,
        "eval/baselines/source/scores.csv": pairs,
        "eval/experiments/x/seed-0/scores.csv": pairs,
        "eval/references/perceptual/naturals.csv": naturals,
    }
    for path, table in scores.items():
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        table.to_csv(tmp_path / path, index=False)
    wavs = [
        "converted/baselines/copy-synthesis/b/s1.wav",
        "converted/baselines/copy-synthesis/b/s2.wav",
        *(f"converted/baselines/mean-var/{p}" for p in ("a__b/s1.wav", "c__b/s1.wav", "a__b/s2.wav")),
        *(f"converted/experiments/x/seed-0/{p}" for p in ("a__b/s1.wav", "c__b/s1.wav", "a__b/s2.wav")),
        "data/corpus/wav/b/s1.wav",
    ]
    for wav in wavs:
        (tmp_path / wav).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / wav).touch()
    systems = scored_systems(tmp_path)
    assert sorted(systems) == ["copy-synthesis", "mean-var", "natural recordings", "x"]
    found = {name: sorted(str(p.relative_to(tmp_path)) for p in t["path"]) for name, t in systems.items()}
    assert found["copy-synthesis"] == wavs[:2]
    assert found["mean-var"] == sorted(wavs[2:5]) and found["x"] == sorted(wavs[5:8])
    assert found["natural recordings"] == [wavs[8]]
    assert systems["copy-synthesis"]["text"].tolist() == ["one", "two"]


def test_stage_overhead_times_a_stage_import_and_both_exits(tmp_path: Path) -> None:
    from benchmarks.stage_overhead import stage_modules, stage_rows, yaml_seconds

    modules = stage_modules()  # read from dvc.yaml: every stage module, once
    assert {"train", "evaluate", "report"} <= set(modules) and len(modules) == len(set(modules))
    assert all((ROOT / "pipeline" / f"{m}.py").is_file() for m in modules)
    [(stage, imported, normal, fast)] = stage_rows(["ratings"], repeats=1)
    assert stage == "ratings" and imported > 0 and normal >= 0 and fast >= 0
    lock = tmp_path / "dvc.lock"
    lock.write_text("schema: '2.0'\nstages:\n  a:\n    cmd: true\n")
    parser, seconds = yaml_seconds(lock, repeats=2)
    assert parser in ("C (ruamel.yaml.clib)", "pure Python") and seconds > 0
