"""Does Whisper transcribe as well from a window the length of the clip as from its 30 s window?

    python -m benchmarks.asr_window                       # after `make repro`: 1,000 and 1,500 frames
    python -m benchmarks.asr_window --frames 3000 1000    # 3,000 frames reproduces the pipeline's recipe

faster-whisper pads every clip's log-mel to Whisper's 30 s encoder window (3,000 frames of 10 ms); a 3 s
clip pays for ten times its length. CTranslate2's Whisper accepts a shorter encoder input. This re-transcribes
the committed run's converted wavs (the first seed of each experiment, and the baselines' and natural
recordings' wavs) with the reference decoding (bundled tiny.en, CTranslate2 int8 throughout, beam 5,
temperature 0, no timestamps, 0.3 s of silence padded at both ends) from a window of ``max(N, clip)`` frames,
the clip's log-mel padded with zeros as faster-whisper pads to 30 s, and faster-whisper's rule that drops a
likely silent, low-confidence segment; it prints, per system, the mean CER from the window against the mean
the pipeline scored (``scores.csv``, ``naturals.csv``; with ``evaluate.asr.encoder: ctranslate2``), how many
transcripts changed, and the seconds per utterance. One process, one thread. It reads outputs only; nothing
is written.
"""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from vc.evaluation.perceptual import intelligibility
from vc.evaluation.perceptual.common import MODEL_SAMPLE_RATE, prepare_audio
from vc.io import read_audio

log = logging.getLogger("benchmarks.asr_window")

#: faster-whisper's defaults for dropping a segment as silence (``transcribe``'s ``no_speech_threshold`` and
#: ``log_prob_threshold``), which the pipeline's transcripts went through.
NO_SPEECH_THRESHOLD, LOG_PROB_THRESHOLD = 0.6, -1.0


class WindowedWhisper:
    """The pipeline's Whisper decoding from an encoder window of ``frames`` (at least the clip's length).

    Args:
        frames: encoder window in 10 ms frames (3,000: the pipeline's 30 s).
        beam_size, pad_seconds: the pipeline's (``evaluate.asr.beam_size``, 0.3 s of silence at both ends).
        threads: CTranslate2 intra-op threads.
    """

    def __init__(self, frames: int, beam_size: int = 5, pad_seconds: float = 0.3, threads: int = 1) -> None:
        from faster_whisper.tokenizer import Tokenizer
        from faster_whisper.transcribe import get_suppressed_tokens

        self.asr = intelligibility.load_asr(None, "int8", threads, "ctranslate2")
        tokenizer = Tokenizer(self.asr.hf_tokenizer, False, task="transcribe", language="en")
        self.tokenizer = tokenizer
        self.prompt = [*tokenizer.sot_sequence, tokenizer.no_timestamps]
        self.suppress = get_suppressed_tokens(tokenizer, [-1])
        self.frames, self.beam_size = frames, beam_size
        self.pad = np.zeros(round(pad_seconds * MODEL_SAMPLE_RATE), dtype=np.float32)

    def log_mel(self, audio: np.ndarray) -> np.ndarray:
        """Log-mel ``(80, W)`` of 16 kHz audio ``(N,)``, zero-padded as faster-whisper pads to the window:
        ``W = max(frames, T)`` (T even: the encoder halves it)."""
        features = self.asr.feature_extractor(audio)[:, :-1]
        width = max(self.frames, features.shape[1] + features.shape[1] % 2)
        return np.pad(features, ((0, 0), (0, width - features.shape[1])))

    def __call__(self, wav16: np.ndarray) -> str:
        """Transcript of a checked 16 kHz waveform ``(N,)``."""
        features = self.log_mel(np.concatenate([self.pad, wav16, self.pad]))
        options = decoding_options(self.beam_size, self.suppress)
        result = self.asr.model.generate(self.asr.encode(features), [self.prompt], **options)[0]
        if dropped_as_silence(result):
            return ""
        return self.tokenizer.decode(result.sequences_ids[0]).strip()


def decoding_options(beam_size: int, suppress_tokens: list[int]) -> dict[str, Any]:
    """The keyword arguments faster-whisper's ``transcribe`` gives CTranslate2's ``generate`` with the
    pipeline's settings (beam search, temperature 0 without fallback, its default penalties)."""
    return {
        "beam_size": beam_size,
        "patience": 1,
        "length_penalty": 1,
        "repetition_penalty": 1,
        "no_repeat_ngram_size": 0,
        "max_length": 448,
        "suppress_blank": True,
        "suppress_tokens": suppress_tokens,
        "return_scores": True,
        "return_no_speech_prob": True,
    }


def dropped_as_silence(result: Any) -> bool:
    """faster-whisper's rule: a window likely silent and decoded with low confidence gives no text."""
    tokens = result.sequences_ids[0]
    avg_logprob = result.scores[0] * len(tokens) / (len(tokens) + 1)
    return result.no_speech_prob > NO_SPEECH_THRESHOLD and avg_logprob < LOG_PROB_THRESHOLD


def scored_systems(root: Path, column: str = "cer", only: list[str] | None = None) -> dict[str, pd.DataFrame]:
    """System name -> its scored items (``column``, ``asr_transcript``, ...) with ``text`` and the wav's
    ``path``: the natural recordings, the baselines with wavs of their own (each copy-synthesis wav once),
    each experiment's first seed (``only``: those named); a system that scored no ``column`` is left out.

    Raises:
        SystemExit: nothing scored ``column`` there (``make repro`` has not run).
    """
    if not (root / "data/corpus/manifest.csv").is_file():
        raise SystemExit(f"{root}: no data/corpus/manifest.csv (run `make repro` first, or give --root)")
    manifest = pd.read_csv(root / "data/corpus/manifest.csv")
    text = dict(zip(manifest["utt_id"], manifest["text"].fillna(""), strict=True))
    found: dict[str, tuple[Path, Path]] = {}
    naturals = root / "eval/references/perceptual/naturals.csv"
    if naturals.is_file():
        found["natural recordings"] = (naturals, root / "data/corpus/wav")
    for scores in sorted((root / "eval/baselines").glob("*/scores.csv")):
        found[scores.parent.name] = (scores, root / "converted/baselines" / scores.parent.name)
    for scores in sorted((root / "eval/experiments").glob("*/seed-0/scores.csv")):
        name = scores.parent.parent.name
        found[name] = (scores, root / "converted/experiments" / name / "seed-0")
    systems = {}
    for name, (scores, wavs) in found.items():
        rows = pd.read_csv(scores)
        if column not in rows or rows[column].isna().all():
            continue
        # natural recordings: <speaker>/<utt>.wav; conversions: <source>__<target>/<utt>.wav
        folders = rows["speaker"] if "speaker" in rows else rows["source"] + "__" + rows["target"]
        paths = [wavs / folder / f"{utt}.wav" for folder, utt in zip(folders, rows["utt_id"], strict=True)]
        if "target" in rows:  # copy synthesis: one wav per target and sentence, <target>/<utt>.wav
            pairs = zip(paths, rows["target"], rows["utt_id"], strict=True)
            paths = [path if path.is_file() else wavs / target / f"{utt}.wav" for path, target, utt in pairs]
        rows = rows.assign(path=paths, text=[text.get(u, "") for u in rows["utt_id"]])
        rows = rows[[path.is_file() for path in paths]]  # `source` has no wavs of its own
        rows = rows.drop_duplicates("path")  # a copy-synthesis wav stands in every pair with its target
        if len(rows) and (not only or name in only):
            systems[name] = rows
    if not systems:
        raise SystemExit(f"{root}: no scored {column} to compare (run `make repro` first)")
    return systems


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", default=".", help="a repository after `make repro`")
    parser.add_argument("--frames", type=int, nargs="+", default=[1000, 1500], help="encoder windows")
    parser.add_argument("--systems", nargs="*", default=None, help="only these systems (default: all)")
    args = parser.parse_args(argv)
    logging.basicConfig(level="INFO", format="%(message)s")
    systems = scored_systems(Path(args.root), "cer", args.systems)
    rows = []
    for frames in args.frames:
        whisper = WindowedWhisper(frames)
        for name, items in systems.items():
            cer, changed, seconds, old = [], 0, 0.0, []
            for path, reference, scored, transcript in zip(
                items["path"], items["text"], items["cer"], items["asr_transcript"].fillna(""), strict=True
            ):
                wav16, _ = prepare_audio(*read_audio(path), min_seconds=intelligibility.MIN_SECONDS)
                if wav16 is None or not np.isfinite(scored):
                    continue
                start = time.perf_counter()
                hypothesis = whisper(wav16)
                seconds += time.perf_counter() - start
                cer.append(intelligibility.error_rates(reference, hypothesis)["cer"])
                old.append(scored)
                norm = intelligibility.normalize_text
                changed += norm(hypothesis) != norm(transcript)
            row = {
                "frames": frames,
                "system": name,
                "n": len(cer),
                "CER, 30 s window": round(float(np.mean(old)), 4),
                "CER, this window": round(float(np.mean(cer)), 4),
                "change": round(float(np.mean(cer) - np.mean(old)), 4),
                "transcripts changed": changed,
                "s per utterance": round(seconds / max(len(cer), 1), 3),
            }
            log.info("%s", row)
            rows.append(row)
    table = pd.DataFrame(rows)
    log.info("\n%s", table.to_string(index=False))


if __name__ == "__main__":
    main()
