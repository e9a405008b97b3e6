"""Can Whisper transcribe several clips per call as well as one clip per 30 s window, and how much faster?

    python -m benchmarks.asr_batch                          # after `make repro`: every route below
    python -m benchmarks.asr_batch --routes batch-8 pack-8  # a few of them
    python -m benchmarks.asr_batch --threads 2              # one process, two threads

The pipeline's recipe (``vc.evaluation.perceptual.intelligibility``) transcribes one clip per call, its
log-mel padded to Whisper's 30 s encoder window: a 2-3 s clip pays for 10-15 times its length. Two routes
keep that window and spread its cost over several clips:

``batch-N``
    N clips per ``generate`` call, each in its own 30 s window, decoded exactly as the pipeline decodes
    (bundled tiny.en, int8, beam 5, temperature 0, no timestamps, 0.3 s of silence at both ends,
    faster-whisper's rule that drops a likely silent, low-confidence segment). The arithmetic per clip is
    the same; only the matrices are larger, so the transcripts should not change.
``pack-N``
    up to N clips, each with its 0.3 s of silence at both ends and ``--gap`` seconds of silence between
    them, laid end to end in one 30 s window and decoded once with timestamps; each timestamped segment goes
    to the clip its midpoint falls in. Clips the decoder did not reach (it stopped early) are packed again
    into the next call. Less encoder work per clip, but Whisper hears its neighbours: the transcripts may
    change, and the means say whether they change the science.

It re-transcribes the committed run's wavs (as ``benchmarks.asr_window`` does: the first seed of each
experiment, the baselines' and the natural recordings' wavs) and prints, per route and system, the mean CER
against the mean the pipeline scored, how many transcripts changed and the seconds per utterance (model
loading excluded). It reads outputs only; nothing is written.
"""

from __future__ import annotations

import argparse
import logging
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from benchmarks.asr_window import WindowedWhisper, decoding_options, dropped_as_silence, scored_systems
from vc.evaluation.perceptual import intelligibility
from vc.evaluation.perceptual.common import MODEL_SAMPLE_RATE, prepare_audio
from vc.io import read_audio

log = logging.getLogger("benchmarks.asr_batch")

WINDOW_FRAMES = 3000  # Whisper's 30 s encoder input, 10 ms frames
TIME_PRECISION = 0.02  # seconds per timestamp token


class BatchedWhisper(WindowedWhisper):
    """The pipeline's Whisper decoding (30 s windows), several clips per ``generate`` call.

    Args:
        threads: CTranslate2 intra-op threads.
    """

    def __init__(self, threads: int = 1) -> None:
        super().__init__(WINDOW_FRAMES, threads=threads)

    def _features(self, audio: np.ndarray) -> np.ndarray:
        """Log-mel ``(80, 3000)`` of at most 30 s of 16 kHz audio."""
        features = self.log_mel(audio)
        if features.shape[1] > WINDOW_FRAMES:
            raise ValueError(f"{features.shape[1]} frames do not fit one {WINDOW_FRAMES}-frame window")
        return features

    def _generate(self, features: Sequence[np.ndarray], timestamps: bool) -> list:
        """CTranslate2 results, one per ``(80, 3000)`` window, with the pipeline's decoding options."""
        prompt = self.prompt if not timestamps else list(self.tokenizer.sot_sequence)
        options = decoding_options(self.beam_size, self.suppress)
        return self.asr.model.generate(
            self.asr.encode(np.stack(features)), [prompt] * len(features), **options
        )

    def batch(self, clips: Sequence[np.ndarray]) -> list[str]:
        """Transcripts of checked 16 kHz clips ``(N_i,)``, each in its own window, one call for all."""
        results = self._generate(
            [self._features(np.concatenate([self.pad, c, self.pad])) for c in clips], False
        )
        texts = []
        for result in results:
            text = self.tokenizer.decode(result.sequences_ids[0]).strip()
            texts.append("" if dropped_as_silence(result) else text)
        return texts

    def pack(self, clips: Sequence[np.ndarray], per_window: int, gap_seconds: float) -> list[str]:
        """Transcripts of checked 16 kHz clips, up to ``per_window`` of them laid end to end per window."""
        gap = np.zeros(round(gap_seconds * MODEL_SAMPLE_RATE), dtype=np.float32)
        # samples of one window, keeping clear of the feature extractor's last frame
        limit = WINDOW_FRAMES * 160 - len(self.pad)
        texts: dict[int, list[str]] = {i: [] for i in range(len(clips))}
        todo = list(range(len(clips)))
        while todo:
            parts, spans, used, position = [], [], [], 0
            for i in todo[:per_window]:
                piece = np.concatenate([self.pad, clips[i], self.pad])
                lead = len(gap) if parts else 0
                if position + lead + len(piece) > limit and parts:
                    break
                if parts:
                    parts.append(gap)
                start = position + lead
                parts.append(piece)
                spans.append((start / MODEL_SAMPLE_RATE, (start + len(piece)) / MODEL_SAMPLE_RATE))
                used.append(i)
                position = start + len(piece)
            result = self._generate([self._features(np.concatenate(parts))], True)[0]
            tokens = result.sequences_ids[0]
            reached = self._assign(tokens, spans, used, texts)
            done = used[: max(reached, 1)]  # always progress: a clip the decoder skipped stays empty
            todo = [i for i in todo if i not in done]
        return [" ".join(texts[i]).strip() for i in range(len(clips))]

    def _assign(
        self, tokens: Sequence[int], spans: Sequence[tuple[float, float]], used: Sequence[int], texts: dict
    ) -> int:
        """Give each timestamped segment of ``tokens`` to the clip its midpoint falls in; return how many
        of the packed clips the decoder reached (those that start before its last timestamp)."""
        begin = self.tokenizer.timestamp_begin
        segment: list[int] = []
        start: float | None = None
        last = 0.0
        for token in tokens:
            if token < begin:
                segment.append(token)
                continue
            time_s = (token - begin) * TIME_PRECISION
            last = max(last, time_s)
            if start is None or not segment:
                start = time_s
                continue
            texts[used[_nearest(spans, (start + time_s) / 2)]].append(self.tokenizer.decode(segment).strip())
            segment, start = [], None
        if segment:  # text after the last timestamp: an unfinished segment, given to the clip it starts in
            k = max([j for j, span in enumerate(spans) if span[0] <= (start or 0.0)] or [0])
            texts[used[k]].append(self.tokenizer.decode(segment).strip())
        reached = sum(span[0] < last for span in spans)
        ended = len(tokens) >= 1 and tokens[-1] >= begin and (len(tokens) < 2 or tokens[-2] < begin)
        return len(spans) if ended or reached == len(spans) else reached


def _nearest(spans: Sequence[tuple[float, float]], t: float) -> int:
    """Index of the span holding time ``t``, or of the nearest one (a segment in a gap)."""
    return min(range(len(spans)), key=lambda j: max(spans[j][0] - t, t - spans[j][1], 0.0))


def _route(whisper: BatchedWhisper, name: str, gap: float) -> Callable[[Sequence[np.ndarray]], list[str]]:
    kind, _, size = name.partition("-")
    n = int(size or 1)
    if kind == "batch":
        return lambda clips: [t for k in range(0, len(clips), n) for t in whisper.batch(clips[k : k + n])]
    if kind == "pack":
        return lambda clips: whisper.pack(clips, n, gap)
    raise SystemExit(f"--routes: unknown route {name!r} (batch-N or pack-N)")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", default=".", help="a repository after `make repro`")
    parser.add_argument(
        "--routes", nargs="+", default=["batch-1", "batch-8", "pack-4", "pack-8"], help="batch-N, pack-N"
    )
    parser.add_argument("--gap", type=float, default=1.0, help="seconds of silence between packed clips")
    parser.add_argument("--threads", type=int, default=1, help="CTranslate2 threads")
    parser.add_argument("--systems", nargs="*", default=None, help="only these systems (default: all)")
    args = parser.parse_args(argv)
    logging.basicConfig(level="INFO", format="%(message)s")
    systems = scored_systems(Path(args.root), "cer", args.systems)
    whisper = BatchedWhisper(args.threads)
    loaded = {}
    for name, items in systems.items():
        keep = []
        for path, scored in zip(items["path"], items["cer"], strict=True):
            wav16, _ = prepare_audio(*read_audio(path), min_seconds=intelligibility.MIN_SECONDS)
            keep.append(wav16 if wav16 is not None and np.isfinite(scored) else None)
        mask = [w is not None for w in keep]
        loaded[name] = (items[mask], [w for w in keep if w is not None])
    whisper.batch([next(iter(loaded.values()))[1][0]])  # warm-up: kernels and caches out of the timings
    rows = []
    norm = intelligibility.normalize_text
    for route in args.routes:
        transcribe = _route(whisper, route, args.gap)
        for name, (items, clips) in loaded.items():
            start = time.perf_counter()
            hypotheses = transcribe(clips)
            seconds = time.perf_counter() - start
            pairs = list(zip(items["text"], hypotheses, items["asr_transcript"].fillna(""), strict=True))
            cer = [intelligibility.error_rates(text, h)["cer"] for text, h, _ in pairs]
            row = {
                "route": route,
                "system": name,
                "n": len(clips),
                "CER, pipeline": round(float(items["cer"].mean()), 4),
                "CER, this route": round(float(np.mean(cer)), 4),
                "change": round(float(np.mean(cer) - items["cer"].mean()), 4),
                "transcripts changed": sum(norm(h) != norm(old) for _, h, old in pairs),
                "s per utterance": round(seconds / len(clips), 3),
            }
            log.info("%s", row)
            rows.append(row)
    log.info("\n%s", pd.DataFrame(rows).to_string(index=False))


if __name__ == "__main__":
    main()
