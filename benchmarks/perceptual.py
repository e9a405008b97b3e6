"""Seconds per utterance of each perceptual metric (speaker similarity, ASR CER/WER, DNSMOS) on this machine.

    python -m benchmarks.perceptual                          # the prepared corpus in data/corpus/wav
    python -m benchmarks.perceptual --wav-dir ../shared/data/arctic --limit 40
    python -m benchmarks.perceptual --espeak 16              # no corpus yet: synthesize 16 sentences

Loads each model once (timed separately), then scores every file with each metric in this process, as the
evaluation does, and prints the model load time, then (after one warm-up call each) the seconds per
utterance and the real-time factor (seconds / seconds of audio). DNSMOS is timed with every 9.01 s window
(the reference recipe) and with one window, on ``--dnsmos-runtime`` (default: the pipeline's). ASR is timed
with each ``--asr-encoder`` given (default: CTranslate2's encoder, then the pipeline's PyTorch bfloat16 one),
in the same process, and the transcripts of the first are compared with each other's.
"""

from __future__ import annotations

import argparse
import functools
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import get_args

import numpy as np

from vc.config import AsrEncoder
from vc.io import read_audio

log = logging.getLogger("benchmarks.perceptual")


def _espeak_corpus(count: int) -> tuple[list[np.ndarray], int]:
    """``count`` sentences of the default corpus spoken by its speakers in turn (eSpeak NG)."""
    import yaml

    from vc.config import VoiceConfig
    from vc.corpus.espeak import SAMPLE_RATE, synthesize_many

    params = yaml.safe_load(Path("params.yaml").read_text())["corpus"]["embedded"]
    voices = [VoiceConfig(**voice) for voice in params["speakers"].values()]
    sentences = params["sentences"]
    jobs = [(sentences[i % len(sentences)], voices[i % len(voices)]) for i in range(count)]
    return synthesize_many(jobs, workers=1, progress=False), SAMPLE_RATE


def _load_wavs(wav_dir: str, limit: int) -> tuple[list[np.ndarray], int]:
    paths = sorted(Path(wav_dir).rglob("*.wav"))[: limit or None]
    if not paths:
        raise SystemExit(f"{wav_dir}: no .wav files (run `dvc repro corpus`; or --wav-dir, --espeak N)")
    loaded = [read_audio(path) for path in paths]
    rates = {sr for _, sr in loaded}
    if len(rates) != 1:
        raise SystemExit(f"{wav_dir}: files at several sample rates {sorted(rates)}; give one corpus")
    return [wav for wav, _ in loaded], rates.pop()


def _timed(name: str, fn: Callable[[], object], utterances: int, audio_seconds: float) -> None:
    start = time.perf_counter()
    fn()
    wall = time.perf_counter() - start
    log.info(
        "%-28s %7.3f s/utterance  real-time factor %.3f  (%.1f s for %d)",
        name,
        wall / utterances,
        wall / audio_seconds,
        wall,
        utterances,
    )


def _load_asr(args: argparse.Namespace, encoder: str) -> object:
    from vc.evaluation.perceptual import intelligibility

    return intelligibility.load_asr(args.asr_model, args.compute_type, args.threads, encoder)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--wav-dir", default="data/corpus/wav", help="folder searched for .wav files")
    parser.add_argument("--limit", type=int, default=16, help="use the first N files (0: all)")
    parser.add_argument("--espeak", type=int, default=0, help="synthesize N sentences, read no files")
    parser.add_argument("--threads", type=int, default=1, help="threads per model (torch, CTranslate2, ONNX)")
    parser.add_argument("--asr-model", default=None, help="folder or faster-whisper name (default: bundled)")
    parser.add_argument("--compute-type", default="int8", help="CTranslate2 compute type for the ASR model")
    parser.add_argument(
        "--asr-encoder",
        nargs="+",
        default=["ctranslate2", "torch-bf16"],
        choices=get_args(AsrEncoder),
        help="what runs Whisper's encoder pass (evaluate.asr.encoder); each is timed",
    )
    parser.add_argument(
        "--dnsmos-runtime",
        default="openvino-bf16",
        choices=("onnxruntime", "openvino-bf16", "openvino-f32"),
        help="what runs DNSMOS's P.835 model (evaluate.dnsmos.runtime)",
    )
    parser.add_argument("--log-level", default="INFO")
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level, format="%(message)s")

    import torch

    from vc.evaluation.perceptual import intelligibility, naturalness, speaker

    torch.set_num_threads(args.threads)
    wavs, sr = _espeak_corpus(args.espeak) if args.espeak else _load_wavs(args.wav_dir, args.limit)
    audio = sum(len(w) for w in wavs) / sr
    n = len(wavs)
    log.info("%d utterances, %.1f s of audio at %d Hz; %d thread(s) per model", n, audio, sr, args.threads)

    for name, load in (
        ("speaker encoder", speaker.load_encoder),
        *((f"ASR ({encoder})", functools.partial(_load_asr, args, encoder)) for encoder in args.asr_encoder),
        ("DNSMOS", lambda: naturalness.load_dnsmos(None, args.threads, args.dnsmos_runtime)),
    ):
        start = time.perf_counter()
        load()
        log.info("load %-23s %7.3f s", name, time.perf_counter() - start)

    # first calls build caches (mel filter banks, LSTM and ONNX kernels): keep them out of the timings
    speaker.embed_utterance(wavs[0], sr)
    asr = {"model": args.asr_model, "compute_type": args.compute_type, "cpu_threads": args.threads}
    for encoder in args.asr_encoder:
        intelligibility.transcribe(wavs[0], sr, encoder=encoder, **asr)
    dnsmos = {"num_threads": args.threads, "runtime": args.dnsmos_runtime}
    naturalness.dnsmos(wavs[0], sr, max_windows=1, **dnsmos)

    _timed("speaker (batched)", lambda: speaker.embed_utterances(wavs, sr), n, audio)
    _timed("speaker (one at a time)", lambda: [speaker.embed_utterance(w, sr) for w in wavs], n, audio)
    transcripts = {}
    for encoder in args.asr_encoder:
        texts = transcripts[encoder] = []
        run = functools.partial(intelligibility.transcribe, sample_rate=sr, encoder=encoder, **asr)
        _timed(f"ASR ({encoder})", lambda run=run, texts=texts: texts.extend(run(w) for w in wavs), n, audio)
    first, *others = args.asr_encoder
    for encoder in others:
        same = sum(a == b for a, b in zip(transcripts[first], transcripts[encoder], strict=True))
        log.info("ASR transcripts: %s equals %s on %d of %d utterances", encoder, first, same, n)
    _timed("DNSMOS (all windows)", lambda: naturalness.dnsmos_many(wavs, sr, **dnsmos), n, audio)
    one_window = {"max_windows": 1, **dnsmos}
    _timed("DNSMOS (max_windows=1)", lambda: naturalness.dnsmos_many(wavs, sr, **one_window), n, audio)


if __name__ == "__main__":
    main()
