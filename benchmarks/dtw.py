"""Time `vc.evaluation.metrics.dtw_path` and `vc.evaluation.metrics.mcd` on utterance-sized random frames.

Run as ``python -m benchmarks.dtw``. The first call of each size is a warm-up (numba JIT and cache load) and
is not counted.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from collections.abc import Callable, Sequence

import numpy as np

from vc.evaluation.metrics import dtw_path, mcd

logger = logging.getLogger("benchmarks.dtw")


def time_ms(fn: Callable[[], object], repeats: int) -> tuple[float, float]:
    """Median and minimum wall time of ``fn()`` in milliseconds over ``repeats`` calls, after one warm-up."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1e3)
    return float(np.median(times)), float(np.min(times))


def parse_size(text: str) -> tuple[int, int]:
    """``"500x600"`` -> ``(500, 600)``: frames of the two sequences."""
    tx, _, ty = text.partition("x")
    return int(tx), int(ty)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--sizes",
        nargs="+",
        type=parse_size,
        default=[(500, 500), (500, 600)],
        help="frame counts of the two sequences, e.g. 500x600",
    )
    parser.add_argument("--dims", type=int, default=34, help="coefficients per frame, c0 excluded")
    parser.add_argument("--repeats", type=int, default=50)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--log-level", default="INFO")
    args = parser.parse_args(argv)
    logging.basicConfig(stream=sys.stdout, level=args.log_level, format="%(message)s")

    rng = np.random.default_rng(args.seed)
    for tx, ty in args.sizes:
        # Mel-cepstra with c0 in column 0, as mcd() expects; dtw_path sees c1..cD.
        a = rng.standard_normal((tx, args.dims + 1))
        b = rng.standard_normal((ty, args.dims + 1))
        med, best = time_ms(lambda a=a, b=b: dtw_path(a[:, 1:], b[:, 1:]), args.repeats)
        logger.info(
            "dtw_path %dx%d vs %dx%d: median %.2f ms, min %.2f ms (%d runs)",
            tx,
            args.dims,
            ty,
            args.dims,
            med,
            best,
            args.repeats,
        )
        med, best = time_ms(lambda a=a, b=b: mcd(a, b), args.repeats)
        logger.info(
            "mcd      %dx%d vs %dx%d: median %.2f ms, min %.2f ms (%d runs)",
            tx,
            args.dims + 1,
            ty,
            args.dims + 1,
            med,
            best,
            args.repeats,
        )


if __name__ == "__main__":
    main()
