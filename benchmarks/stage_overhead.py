"""What a DVC stage pays outside its science: the stage process's imports and exit, and DVC's reading of
the pipeline's YAML files.

    .venv/bin/python -m benchmarks.stage_overhead [--repeats 3] [--stages train convert ...]

For each stage module that dvc.yaml runs, in fresh processes (the best of ``--repeats``):

- ``import``: ``python -c "import pipeline.<stage>"``, interpreter start included;
- ``exit``: from the end of that import to the end of the process, with Python's normal exit (the
  teardown of every imported module) and with :func:`pipeline.common.exit_process`, which a finished stage
  takes.

Then the seconds DVC's YAML loader (ruamel.yaml, with its C parser when ``ruamel.yaml.clib`` is installed)
takes to read this checkout's ``dvc.lock``, which ``dvc repro`` reads several times per stage, and the wall
of ``dvc status``. Run it in two checkouts (``git worktree add``) with the same venv to compare commits.
"""

from __future__ import annotations

import argparse
import logging
import re
import subprocess
import sys
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]

log = logging.getLogger("benchmarks.stage_overhead")


def stage_modules() -> list[str]:
    """The stage modules dvc.yaml runs (``python -m pipeline.<name>``), in its order, each once."""
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"].values()
    found = (re.search(r"python -m pipeline\.(\w+)", str(stage["cmd"])) for stage in stages)
    return list(dict.fromkeys(m.group(1) for m in found if m))


# Prints the clock time when the import is done, then exits one way or the other.
_PROBE = """
import sys, time
import pipeline.{stage}
sys.stdout.write(f"{{time.time():.6f}}\\n")
sys.stdout.flush()
if {fast}:
    try:
        from pipeline.common import exit_process
    except ImportError:  # a commit before it: no figure
        sys.exit(3)
    exit_process(0)
"""


def _run(code: str) -> tuple[float, float]:
    """(seconds to the probe's mark, seconds from the mark to the process's end)."""
    start = time.time()
    res = subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=False, capture_output=True, text=True)
    end = time.time()
    if res.returncode not in (0, 3):
        raise RuntimeError(f"the probe failed:\n{res.stderr}")
    mark = float(res.stdout.strip().splitlines()[-1])
    return mark - start, (end - mark) if res.returncode == 0 else float("nan")


def stage_rows(stages: list[str], repeats: int) -> list[tuple[str, float, float, float]]:
    """Per stage: (name, import s, normal exit s, exit_process s), each the best of ``repeats``."""
    rows = []
    for stage in stages:
        normal = [_run(_PROBE.format(stage=stage, fast=False)) for _ in range(repeats)]
        fast = [_run(_PROBE.format(stage=stage, fast=True)) for _ in range(repeats)]
        rows.append(
            (
                stage,
                min(t for t, _ in normal + fast),
                min(e for _, e in normal),
                min((e for _, e in fast), default=float("nan")),
            )
        )
        log.info("%s done", stage)
    return rows


def yaml_seconds(path: Path, repeats: int) -> tuple[str, float]:
    """(which parser, best seconds) of DVC's safe load of ``path``."""
    from ruamel.yaml import YAML

    yaml = YAML(typ="safe")
    text = path.read_text()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        yaml.load(text)
        best = min(best, time.perf_counter() - start)
    parser = "C (ruamel.yaml.clib)" if "CParser" in yaml.Parser.__name__ else "pure Python"
    return parser, best


def dvc_status_seconds(repeats: int) -> float:
    dvc = Path(sys.executable).parent / "dvc"
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run([str(dvc), "status", "-q"], cwd=ROOT, check=False, capture_output=True)
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    modules = stage_modules()
    parser.add_argument("--stages", nargs="+", default=modules, choices=modules)
    args = parser.parse_args()
    logging.basicConfig(level="INFO", format="%(levelname)s %(name)s: %(message)s")
    rows = stage_rows(args.stages, args.repeats)
    lines = [
        "| stage | import, s | exit, s | exit_process, s |",
        "|---|---:|---:|---:|",
        *(f"| {s} | {i:.2f} | {n:.2f} | {f:.2f} |" for s, i, n, f in rows),
        f"| total | {sum(r[1] for r in rows):.2f} | {sum(r[2] for r in rows):.2f} | "
        f"{sum(r[3] for r in rows):.2f} |",
    ]
    which, seconds = yaml_seconds(ROOT / "dvc.lock", args.repeats)
    lines += [
        "",
        f"dvc.lock ({len((ROOT / 'dvc.lock').read_text().splitlines()):,} lines), DVC's safe YAML load: "
        f"{seconds:.2f} s ({which})",
        f"dvc status: {dvc_status_seconds(args.repeats):.2f} s",
    ]
    sys.stdout.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
