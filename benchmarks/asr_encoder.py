"""Does the ASR score the same with Whisper's encoder pass in PyTorch bfloat16 as in CTranslate2?

    python -m benchmarks.asr_encoder                      # after `make repro`: every encoder
    python -m benchmarks.asr_encoder --encoders ctranslate2 torch-bf16 --systems mean-var stargan-vc2

Re-transcribes the committed run's wavs (the natural recordings, the baselines with wavs of their own and
the first seed of each experiment, as ``benchmarks.asr_window`` picks them) with the pipeline's decoding
(bundled tiny.en, beam 5, temperature 0, 0.3 s of silence at both ends) once per ``evaluate.asr.encoder``
value, in one process on one thread (the models loaded first), and prints per system and encoder: the mean
CER, its change from the first encoder given, how many transcripts differ from the first encoder's, how many
decodes failed (a repetition loop, scored CER 1 by ``--max-compression-ratio``), and the seconds per
utterance; then each system's mean CER minus ``--reference``'s on the same sentences (what the
report's comparisons rest on) per encoder. ``torch-f32`` is the model's own float32 arithmetic: the
yardstick for the others. It reads outputs only; nothing is written.
"""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

import numpy as np
import pandas as pd

from benchmarks.asr_window import scored_systems
from vc.evaluation.perceptual import intelligibility
from vc.evaluation.perceptual.common import prepare_audio
from vc.io import read_audio

log = logging.getLogger("benchmarks.asr_encoder")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", default=".", help="a repository after `make repro`")
    parser.add_argument(
        "--encoders",
        nargs="+",
        default=["ctranslate2", "torch-f32", "torch-bf16"],
        choices=intelligibility.ENCODERS,
        help="evaluate.asr.encoder values; the first is the one the others are compared with",
    )
    parser.add_argument("--systems", nargs="*", default=None, help="only these systems (default: all)")
    parser.add_argument("--reference", default="stargan-vc2", help="the system the differences are taken to")
    parser.add_argument("--limit", type=int, default=0, help="the first N wavs of each system (0: all)")
    parser.add_argument(
        "--max-compression-ratio",
        type=float,
        default=intelligibility.MAX_COMPRESSION_RATIO,
        help="evaluate.asr.max_compression_ratio; 0: score every transcript as written",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level="INFO", format="%(message)s")
    logging.getLogger("faster_whisper").setLevel(logging.WARNING)
    import torch

    torch.set_num_threads(1)
    for encoder in args.encoders:  # loading is not transcribing: keep it out of the timings
        intelligibility.load_asr(None, "int8", 1, encoder)
    systems = {
        name: items.head(args.limit or None)
        for name, items in scored_systems(Path(args.root), "cer", args.systems).items()
    }
    minimum = intelligibility.MIN_SECONDS
    audio = {
        name: [prepare_audio(*read_audio(path), min_seconds=minimum)[0] for path in items["path"]]
        for name, items in systems.items()
    }
    cer: dict[tuple[str, str], pd.Series] = {}
    rows = []
    first = args.encoders[0]
    transcripts: dict[tuple[str, str], list[str]] = {}
    for encoder in args.encoders:
        for name, items in systems.items():
            texts, rates, failed, seconds = [], [], 0, 0.0
            for wav16, reference in zip(audio[name], items["text"], strict=True):
                start = time.perf_counter()
                text = "" if wav16 is None else intelligibility.transcribe(wav16, 16000, encoder=encoder)
                seconds += time.perf_counter() - start
                texts.append(intelligibility.normalize_text(text))
                scored = intelligibility.error_rates(reference, text, args.max_compression_ratio or None)
                failed += scored["note"].startswith("failed ASR decode")
                rates.append(np.nan if wav16 is None else scored["cer"])
            transcripts[encoder, name] = texts
            keys = [f"{path.parent.name}/{path.stem}" for path in items["path"]]  # <source>__<target>/<utt>
            cer[encoder, name] = pd.Series(rates, index=keys)
            changed = sum(a != b for a, b in zip(texts, transcripts[first, name], strict=True))
            row = {
                "system": name,
                "encoder": encoder,
                "n": int(np.isfinite(rates).sum()),
                "CER": round(float(np.nanmean(rates)), 4),
                f"change from {first}": round(float(np.nanmean(rates) - np.nanmean(cer[first, name])), 4),
                "transcripts changed": changed,
                "failed decodes": failed,
                "s per utterance": round(seconds / len(rates), 3),
            }
            log.info("%s", row)
            rows.append(row)
    log.info("\n%s", pd.DataFrame(rows).to_string(index=False))
    if args.reference not in systems:
        return
    gaps = []
    for name in systems:
        if name == args.reference:
            continue
        row: dict[str, object] = {"system": name}
        for encoder in args.encoders:
            mine, theirs = cer[encoder, name], cer[encoder, args.reference]
            shared = mine.index.intersection(theirs.index)  # the same sentence, source and target: paired
            if shared.empty:  # the natural recordings
                break
            row[f"{encoder}: n"] = len(shared)
            gap = (mine[shared] - theirs[shared]).mean()
            row[f"{encoder}: minus {args.reference}"] = round(float(gap), 4)
        if len(row) > 1:
            gaps.append(row)
    table = pd.DataFrame(gaps).to_string(index=False)
    log.info("\nmean CER minus %s's on the same sentences, per encoder:\n%s", args.reference, table)


if __name__ == "__main__":
    main()
