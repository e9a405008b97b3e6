"""A sweep's state on disk: ``<state_dir>/<sweep>/sweep.json`` (what was asked) and one file per point,
``points/<point_id>.json`` (its state, SLURM job id, log path, attempts), each written atomically by whoever
changes it (the submitting command, or the point's job on a node). Separate files mean parallel jobs never
write the same file.

States: ``queued`` (submitted, not started), ``running``, ``interrupted`` (stopped by a signal: requeued, or
cancelled by someone else), ``done``, ``failed``, ``cancelled``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vc.errors import InputError
from vc.io import write_json

__all__ = ["STATES", "SweepDir"]

STATES = ("queued", "running", "interrupted", "done", "failed", "cancelled")


@dataclass(frozen=True)
class SweepDir:
    """The state folder of one sweep."""

    path: Path

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def spec_file(self) -> Path:
        return self.path / "sweep.json"

    def point_file(self, point_id: str) -> Path:
        return self.path / "points" / f"{point_id}.json"

    def exists(self) -> bool:
        return self.spec_file.is_file()

    def write_spec(self, spec: Mapping[str, Any]) -> None:
        """Record the sweep (its points, executor, commit); points already recorded are kept."""
        (self.path / "points").mkdir(parents=True, exist_ok=True)
        write_json(self.spec_file, dict(spec))

    def read_spec(self) -> dict[str, Any]:
        if not self.spec_file.is_file():
            raise InputError(f"{self.spec_file}: no such sweep (submit it with `vc sweep run`)")
        return json.loads(self.spec_file.read_text(encoding="utf-8"))

    def read_point(self, point_id: str) -> dict[str, Any]:
        """The point's state record; ``{}`` before it was ever submitted."""
        path = self.point_file(point_id)
        if not path.is_file():
            return {}
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as err:
            raise InputError(f"{path}: not a point state file ({err})") from None

    def update_point(self, point_id: str, **changes: Any) -> dict[str, Any]:
        """Merge ``changes`` into the point's record (with the time), write it atomically, return it."""
        if "state" in changes and changes["state"] not in STATES:
            raise ValueError(f"unknown point state {changes['state']!r}")
        record = {**self.read_point(point_id), **changes, "updated": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
        self.point_file(point_id).parent.mkdir(parents=True, exist_ok=True)
        write_json(self.point_file(point_id), record)
        return record

    def points(self) -> list[dict[str, Any]]:
        """Every point of the sweep: its spec entry merged with its state record (state ``new`` if none)."""
        out = []
        for entry in self.read_spec()["points"]:
            record = self.read_point(entry["point_id"])
            out.append({**entry, "state": "new", **record})
        return out


def status_table(points: list[dict[str, Any]], live: Mapping[str, str] | None = None) -> str:
    """Lines of ``vc sweep status``: one per point, then the count per state.

    ``live`` maps SLURM job ids to the scheduler's state (PENDING, RUNNING): a point recorded as running or
    interrupted whose job is pending again shows as ``queued`` (requeued).
    """
    live = live or {}
    header = ("point", "exp", "state", "job", "attempts", "overrides", "log")
    rows = [header]
    counts: dict[str, int] = {}
    for p in points:
        state = p["state"]
        sched = live.get(str(p.get("job_id", "")), "")
        if state in ("running", "interrupted", "queued") and sched == "PENDING":
            state = "queued"
        elif state == "queued" and sched == "RUNNING":
            state = "running"
        counts[state] = counts.get(state, 0) + 1
        sets = " ".join(f"{k}={v}" for k, v in p["overrides"])
        rows.append(
            (
                p["point_id"],
                p["exp_name"],
                state,
                str(p.get("job_id", "-")),
                str(p.get("attempts", 0)),
                sets,
                str(p.get("log", "-")),
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(header) - 1)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r[:-1], widths, strict=True)) + "  " + r[-1] for r in rows]
    lines.append(", ".join(f"{n} {s}" for s, n in sorted(counts.items())))
    return "\n".join(line.rstrip() for line in lines) + "\n"
