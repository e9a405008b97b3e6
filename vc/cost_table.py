"""The cost table: what the last run of each stage cost, from the files :mod:`vc.cost` writes.

``vc cost`` prints it; the report has it as a section. Every figure comes from the cost files, nothing is
typed by hand: time per stage and its share of the whole, time per phase, the seconds per utterance of each
perceptual metric and of conversion (measured inside the worker processes, model loading counted apart),
and the seconds per iteration of each training.
"""

from __future__ import annotations

import json
import logging
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from vc.cost import EXPERIMENTS_DIR, VERSION, cost_path

__all__ = ["cost_markdown", "load_costs", "run_costs"]

log = logging.getLogger(__name__)


def load_costs(folder: str | Path) -> list[dict[str, Any]]:
    """Every readable cost file in ``folder`` (``*.json``), by stage name; unreadable ones are logged."""
    costs = []
    for path in sorted(Path(folder).glob("*.json")):
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError) as err:
            log.warning("%s: not a cost file (%s); skipped", path, err)
            continue
        if not isinstance(data, dict) or data.get("version") != VERSION:
            log.warning("%s: cost file of another version; skipped", path)
            continue
        costs.append(data)
    return sorted(costs, key=lambda c: c["stage"])


def run_costs() -> tuple[Path, str | None] | None:
    """Where the stages of the DVC run this process belongs to write their cost files, and the experiment's
    name when DVC runs them in a copy of the workspace (``dvc exp run --temp``, the queue): the workspace's
    ``costs/``, or its ``costs/exps/<name>/``. ``None`` outside DVC."""
    path = cost_path()
    if path is None:
        return None
    folder = path.parent
    return folder, folder.name if folder.parent.name == EXPERIMENTS_DIR else None


def _stage_kind(stage: str) -> str:
    """``train@stargan-vc2-0`` -> ``train``."""
    return stage.split("@", 1)[0]


def _seconds(value: float) -> str:
    return f"{value:,.1f}"


def _share(part: float, whole: float) -> str:
    return f"{part / whole:.0%}" if whole > 0 else "-"


def _stage_rows(costs: list[dict[str, Any]], total: float) -> list[str]:
    by_kind: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for c in costs:
        by_kind[_stage_kind(c["stage"])].append(c)
    rows = [
        "| stage | runs | wall s | share | CPU s | peak MB |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for kind, group in sorted(by_kind.items(), key=lambda kv: -sum(c["wall_s"] for c in kv[1])):
        wall = sum(c["wall_s"] for c in group)
        cpu = sum(c["cpu_s"] for c in group)
        peak = max(c["peak_mb"] for c in group)
        share = _share(wall, total)
        rows.append(f"| {kind} | {len(group)} | {_seconds(wall)} | {share} | {_seconds(cpu)} | {peak:,.0f} |")
    cpu_total = sum(c["cpu_s"] for c in costs)
    rows.append(f"| **all** | {len(costs)} | **{_seconds(total)}** | 100% | {_seconds(cpu_total)} | |")
    return rows


def _phase_rows(costs: list[dict[str, Any]]) -> list[str]:
    """Phases summed over the runs of each kind of stage (``train`` over every experiment and seed)."""
    sums: dict[tuple[str, str], dict[str, Any]] = {}
    stage_wall: dict[str, float] = defaultdict(float)
    for c in costs:
        kind = _stage_kind(c["stage"])
        stage_wall[kind] += c["wall_s"]
        for p in c["phases"]:
            entry = sums.setdefault((kind, p["name"]), {"wall_s": 0.0, "count": 0, "unit": p["unit"]})
            entry["wall_s"] += p["wall_s"]
            entry["count"] += p["count"]
    if not sums:
        return []
    rows = [
        "| stage | phase | wall s | share of stage | items | s per item |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for (kind, name), e in sorted(sums.items(), key=lambda kv: (kv[0][0], -kv[1]["wall_s"])):
        per = f"{e['wall_s'] / e['count']:.3f} s/{e['unit']}" if e["count"] else "-"
        items = f"{e['count']:,} {e['unit']}s" if e["count"] else "-"
        rows.append(
            f"| {kind} | {name} | {_seconds(e['wall_s'])} | {_share(e['wall_s'], stage_wall[kind])} | "
            f"{items} | {per} |"
        )
    return rows


def _work_rows(costs: Iterable[dict[str, Any]]) -> list[str]:
    """Per-item work measured inside worker processes, over every stage: seconds per item, and loading."""
    sums: dict[str, dict[str, Any]] = {}
    for c in costs:
        for w in c["work"]:
            entry = sums.setdefault(w["name"], {"seconds": 0.0, "count": 0, "calls": 0, "unit": w["unit"]})
            entry["seconds"] += w["wall_s"]
            entry["count"] += w["count"]
            entry["calls"] += w["calls"]
    if not sums:
        return []
    rows = ["| work | process seconds | items | s per item |", "|---|---:|---:|---:|"]
    for name, e in sorted(sums.items()):
        if e["count"]:
            per, items = f"{e['seconds'] / e['count']:.3f}", f"{e['count']:,} {e['unit']}s"
        else:  # no items (a model load): seconds per call; a cached load is a call that costs nothing
            per, items = f"{e['seconds'] / max(e['calls'], 1):.2f} per call", f"{e['calls']:,} calls"
        rows.append(f"| {name} | {_seconds(e['seconds'])} | {items} | {per} |")
    return rows


def _training_rows(costs: Iterable[dict[str, Any]]) -> list[str]:
    rows = ["| training | iterations | fit s | s per iteration | stage wall s |", "|---|---:|---:|---:|---:|"]
    for c in costs:
        fit = next((p for p in c["phases"] if p["name"] == "fit" and p["count"]), None)
        if fit is None:
            continue
        rows.append(
            f"| {c['stage']} | {fit['count']:,} | {_seconds(fit['wall_s'])} | "
            f"{fit['wall_s'] / fit['count']:.3f} | {_seconds(c['wall_s'])} |"
        )
    return rows if len(rows) > 2 else []


def _hosts(costs: Iterable[dict[str, Any]]) -> str:
    hosts = sorted({(c["host"]["cpu"], c["host"]["amx"], c["host"]["cores"]) for c in costs})
    said = [f"{cpu}, {'with' if amx else 'without'} AMX tiles, {cores} cores" for cpu, amx, cores in hosts]
    if len(said) > 1:
        return "Measured on several machines (figures do not add up across them): " + "; ".join(said) + "."
    return f"Measured on {said[0]}." if said else ""


def cost_markdown(costs: list[dict[str, Any]], heading: str = "##", experiment: str | None = None) -> str:
    """The cost table as Markdown (empty when there are no cost files).

    ``experiment``: the files are those of an experiment DVC ran in a copy of the workspace (only the stages
    it ran; the others kept the workspace's outputs, and their cost is the workspace's table).
    """
    if not costs:
        return ""
    total = sum(c["wall_s"] for c in costs)
    first = min(c["started"] for c in costs)
    common = "CPU seconds include worker processes."
    if experiment is None:
        title = "Cost of the last run of each stage"
        scope = (
            f"Wall seconds of each stage's last run in this workspace (the earliest started {first}), summed "
            f"over its runs; {common} A stage that DVC skipped or restored from its cache keeps the cost of "
            "the run that made its outputs here (a fresh clone has none for it). Cost files live in `costs/` "
            "(not DVC outputs: they never make a stage look changed); `vc cost` prints this table."
        )
    else:
        title = f"Cost of experiment {experiment}"
        scope = (
            f"Wall seconds of the stages DVC ran for experiment `{experiment}` (the earliest started "
            f"{first}), summed over their runs; {common} The stages it skipped or restored from the cache "
            f"are not here: their cost is the workspace's (`vc cost`). Cost files live in the workspace's "
            f"`costs/{EXPERIMENTS_DIR}/{experiment}/` (not DVC outputs); `vc cost --exp {experiment}` prints "
            "this table."
        )
    lines = [f"{heading} {title}", "", f"{_hosts(costs)} {scope}", "", *_stage_rows(costs, total)]
    for title, rows in (
        ("Phases (summed over the stage's runs)", _phase_rows(costs)),
        (
            "Work per item, measured inside the worker processes (several workers share the cores, so these "
            "add up to more than the wall time); `(load)`: a perceptual model's first call in each worker "
            "process; `convert/load`: every call, the model being loaded on a process's first",
            _work_rows(costs),
        ),
        ("Training", _training_rows(costs)),
    ):
        if rows:
            lines += ["", f"{title}:", "", *rows]
    return "\n".join(lines) + "\n"
