"""Does DNSMOS score the same, and how much faster, on another inference runtime or in bfloat16?

    python -m benchmarks.dnsmos_backend                   # after `make repro`
    python -m benchmarks.dnsmos_backend --threads 2 --limit 64

DNSMOS's cost is its P.835 model (``sig_bak_ovr.onnx``): 99% of it is nine 3x3 convolutions over a
900 x 161 spectrogram, about 40 GFLOP per 9.01 s window, which onnxruntime runs in float32. This scores
the first window of every clip of the committed run (as the pipeline does with ``evaluate.dnsmos.max_windows:
1``: the first seed of each experiment, the baselines' and the natural recordings' wavs) with every
``evaluate.dnsmos.runtime``: onnxruntime float32 (the reference), OpenVINO bfloat16 (the default: its CPU
plugin runs bfloat16 on AMX tiles where the CPU has them, AVX-512 BF16 otherwise) and OpenVINO float32, and
prints, per runtime and system, the mean OVRL, SIG and BAK, their change from onnxruntime's, the largest
change of one clip, and the milliseconds per window at ``--threads``. The P.808 model and the log-mel it
reads (about 12 ms a window together) are left as they are. It reads outputs only; nothing is written.
"""

from __future__ import annotations

import argparse
import logging
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from benchmarks.asr_window import scored_systems
from vc.evaluation.perceptual import naturalness
from vc.evaluation.perceptual.common import prepare_audio
from vc.io import read_audio

log = logging.getLogger("benchmarks.dnsmos_backend")

Runner = Callable[[np.ndarray], np.ndarray]  # (1, 144160) window -> (3,) raw SIG, BAK, OVRL


def _runner(runtime: str, threads: int) -> Runner:
    """The pipeline's own loader (``evaluate.dnsmos.runtime``): the numbers are the evaluation's."""
    primary = naturalness.load_dnsmos(None, threads, runtime).primary
    return lambda window: primary(window)[0]


def _mos(raw: np.ndarray) -> dict[str, np.ndarray]:
    """Raw model outputs ``(N, 3)`` -> per-clip OVRL, SIG and BAK on the MOS scale (DNSMOS's polynomials)."""
    sig, bak, ovr = raw.T
    return {
        "ovrl": naturalness._POLY_OVR(ovr),
        "sig": naturalness._POLY_SIG(sig),
        "bak": naturalness._POLY_BAK(bak),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", default=".", help="a repository after `make repro`")
    parser.add_argument("--threads", type=int, default=1, help="intra-op threads of every runtime")
    parser.add_argument("--limit", type=int, default=0, help="clips per system (0: all)")
    parser.add_argument("--systems", nargs="*", default=None, help="only these systems (default: all)")
    args = parser.parse_args(argv)
    logging.basicConfig(level="INFO", format="%(message)s")
    systems = scored_systems(Path(args.root), "dnsmos_ovrl", args.systems)
    windows: dict[str, np.ndarray] = {}
    for name, items in systems.items():
        clips = []
        for path in items["path"][: args.limit or None]:
            wav16, _ = prepare_audio(*read_audio(path), min_seconds=naturalness.MIN_SECONDS)
            if wav16 is not None:
                clips.append(naturalness._windows(wav16, max_windows=1))
        windows[name] = np.stack(clips)  # (clips, 1, 144160)
    runtimes = {name: _runner(name, args.threads) for name in naturalness.RUNTIMES}
    reference: dict[str, dict[str, np.ndarray]] = {}
    rows = []
    for runtime, run in runtimes.items():
        run(next(iter(windows.values()))[0])  # warm-up: kernels compiled out of the timings
        for name, clips in windows.items():
            start = time.perf_counter()
            mos = _mos(np.stack([run(window) for window in clips]))
            ms = 1000 * (time.perf_counter() - start) / len(clips)
            base = reference.setdefault(name, mos)
            row: dict[str, object] = {"runtime": runtime, "system": name, "n": len(clips)}
            for key in ("ovrl", "sig", "bak"):
                row[key.upper()] = round(float(mos[key].mean()), 4)
                row[f"{key.upper()} change"] = round(float(mos[key].mean() - base[key].mean()), 4)
            row["largest OVRL change, one clip"] = round(float(np.abs(mos["ovrl"] - base["ovrl"]).max()), 4)
            row["ms per window"] = round(ms, 1)
            log.info("%s", row)
            rows.append(row)
    log.info("\n%s", pd.DataFrame(rows).to_string(index=False))


if __name__ == "__main__":
    main()
