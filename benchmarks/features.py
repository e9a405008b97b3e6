"""Real-time factor of the features stage's WORLD analysis with 1 and with 2 (or more) worker processes.

    python -m benchmarks.features                        # the prepared corpus in data/corpus
    python -m benchmarks.features --wav-dir ../shared/data/arctic --limit 40

Runs the same per-file analysis the stage runs (read, Harvest, CheapTrick, D4C, sp2mc, coded aperiodicity,
write) over the same files with each worker count, and prints wall seconds, the real-time factor (wall
seconds / seconds of audio) and the speed-up over one worker.
"""

from __future__ import annotations

import argparse
import logging
import tempfile
import time
from pathlib import Path

import soundfile as sf

from vc.config import FeaturesConfig
from vc.features.extract import AnalysisJob, analyze_file
from vc.parallel import parallel_map

log = logging.getLogger("benchmarks.features")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--wav-dir", default="data/corpus/wav", help="folder searched for .wav files")
    parser.add_argument("--limit", type=int, default=0, help="use the first N files (0: all)")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    args = parser.parse_args(argv)
    logging.basicConfig(level="INFO", format="%(message)s")
    wavs = sorted(Path(args.wav_dir).rglob("*.wav"))[: args.limit or None]
    if not wavs:
        raise SystemExit(f"{args.wav_dir}: no .wav files (run `dvc repro corpus` first, or give --wav-dir)")
    audio = sum(sf.info(w).duration for w in wavs)
    cfg = FeaturesConfig()
    log.info(
        "%d files, %.1f s of audio; analysis: %s F0, %s features",
        len(wavs),
        audio,
        cfg.f0_method,
        cfg.spectral,
    )
    base = None
    with tempfile.TemporaryDirectory() as tmp:
        for n in args.workers:
            jobs = [AnalysisJob(w, Path(tmp) / f"{n}" / f"{i}.npz", cfg) for i, w in enumerate(wavs)]
            start = time.perf_counter()
            parallel_map(analyze_file, jobs, workers=n, progress=False)
            wall = time.perf_counter() - start
            base = base or wall
            log.info(
                "workers=%d: %.1f s wall, real-time factor %.4f, speed-up %.2fx",
                n,
                wall,
                wall / audio,
                base / wall,
            )


if __name__ == "__main__":
    main()
