"""How far a rerun moves the numbers: retrain, convert and evaluate runs again under other settings (another
math backend, thread count, machine) and compare every summarised metric with the original and its interval.

    python -m benchmarks.rerun_drift stargan-vc2-0 stargan-vc-0 --env ONEDNN_MAX_CPU_ISA=AVX512_CORE_BF16
    python -m benchmarks.rerun_drift stargan-vc2-0 --env OMP_NUM_THREADS=1

Run it in a workspace after `make repro` (it reads the runs' outputs there and never changes them). It copies
the workspace without checkpoints, MLflow store or virtual environment to a temporary folder, forces
``train@<run>``, ``convert@<run>`` and ``evaluate@<run>`` to run again there (``dvc repro -f -s``, MLflow
into the copy) with the ``--env`` settings, and prints, per run and metric: the original per-seed mean with
its interval, the rerun's mean, the difference, and the difference as a share of the interval's half-width
(over 1: the rerun lands outside the original's own interval); also whether the generator's weights came out
bit-identical. ``ONEDNN_MAX_CPU_ISA=AVX512_CORE_BF16`` keeps oneDNN off the AMX tiles: the arithmetic of a
CPU with AVX-512 BF16 and no AMX, on one that has both.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from vc.evaluation.registry import METRICS

log = logging.getLogger("benchmarks.rerun_drift")

SKIPPED = {".venv", "checkpoints", "mlflow.db", "mlartifacts", "mlruns", "sweeps", "listen"}


def _ignore(folder: str, names: list[str]) -> set[str]:
    """What the copy leaves out: environments, checkpoints, MLflow stores, DVC's cache and temporary files."""
    skipped = {n for n in names if n in SKIPPED or n.startswith("mlflow.db")}
    return skipped | ({"cache", "tmp"} & set(names) if Path(folder).name == ".dvc" else set())


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", help="<experiment>-<seed>, as in train@<experiment>-<seed>")
    parser.add_argument("--env", action="append", default=[], help="NAME=VALUE for the rerun (repeatable)")
    parser.add_argument("--root", default=".", help="the workspace after `make repro`")
    parser.add_argument("--keep", default=None, help="keep the rerun's copy in this folder")
    return parser.parse_args(argv)


def _split(run: str) -> tuple[str, str]:
    name, _, seed = run.rpartition("-")
    if not name or not seed.isdigit():
        raise SystemExit(f"run '{run}': expected <experiment>-<seed>, e.g. stargan-vc2-0")
    return name, seed


def _rows(original: dict, rerun: dict) -> list[str]:
    rows = []
    for name, spec in METRICS.items():
        if not spec.summarized or name not in original or name not in rerun:
            continue
        before, after = float(original[name]), float(rerun[name])
        low, high = original.get(f"{name}_ci_low", math.nan), original.get(f"{name}_ci_high", math.nan)
        half = (high - low) / 2
        share = abs(after - before) / half if half > 0 else math.nan
        rows.append(
            f"| {name} | {before:.4f} [{low:.4f}, {high:.4f}] | {after:.4f} | {after - before:+.4f} | "
            f"{share:.2f} |"
        )
    return rows


def main(argv: list[str] | None = None) -> None:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    args = parse_args(argv)
    root = Path(args.root).resolve()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DVC_", "MLFLOW_"))}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    for item in args.env:
        key, _, value = item.partition("=")
        env[key] = value
    runs = [_split(run) for run in args.runs]
    with tempfile.TemporaryDirectory(prefix="rerun-drift-") as tmp:
        copy = Path(args.keep or tmp) / "workspace"
        shutil.copytree(root, copy, ignore=_ignore)
        env["MLFLOW_TRACKING_URI"] = f"sqlite:///{copy / 'mlflow.db'}"
        stages = [f"{s}@{name}-{seed}" for name, seed in runs for s in ("train", "convert", "evaluate")]
        subprocess.run(["dvc", "repro", "-f", "-s", *stages], cwd=copy, env=env, check=True)
        lines = [f"rerun with {' '.join(args.env) or 'the same settings'}"]
        for name, seed in runs:
            folder = Path("eval/experiments") / name / f"seed-{seed}"
            original = json.loads((root / folder / "summary.json").read_text())["overall"]
            rerun = json.loads((copy / folder / "summary.json").read_text())["overall"]
            weights = Path("models") / name / f"seed-{seed}" / "model" / "generator.pt"
            same = (root / weights).read_bytes() == (copy / weights).read_bytes()
            lines += [
                "",
                f"{name}, seed {seed}: generator weights {'bit-identical' if same else 'differ'}",
                "| metric | original [interval] | rerun | difference | share of the half-width |",
                "|---|---|---:|---:|---:|",
                *_rows(original, rerun),
            ]
        log.info("%s", "\n".join(lines))


if __name__ == "__main__":
    main()
