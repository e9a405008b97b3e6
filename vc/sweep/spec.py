"""A sweep's points: the ``-S key=v1,v2`` grid syntax of ``dvc exp run`` or a YAML file of points, checked
against the params schema before anything is submitted.

Several ``-S`` options give the cartesian product of their values (``-S train.optimizer.lr_g=1e-3,5e-4
-S seeds=[0],[1]`` is four points). Values are YAML scalars or flow collections; commas inside brackets or
quotes do not split. A points file is a YAML list of ``{dotted.key: value}`` mappings (or a mapping with a
``points:`` list). Each point is applied to the repository's params.yaml and validated by
:func:`vc.config.load_params`: an unknown key, an empty grid or a value the schema rejects is refused with the
key's name.
"""

from __future__ import annotations

import copy
import hashlib
import itertools
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from vc.config import load_params
from vc.configlib import ConfigError
from vc.errors import InputError
from vc.sweep.config import split_params

__all__ = ["Point", "SweepSpecError", "build_points", "parse_sets", "read_points_file", "validate_points"]

NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*(\.[A-Za-z0-9_-]+)*$")


class SweepSpecError(InputError):
    """A sweep spec that cannot run; the message names the key (or the file)."""


@dataclass(frozen=True)
class Point:
    """One point of a sweep: its index, its overrides (dotted key -> value) and what identifies it."""

    index: int
    overrides: tuple[tuple[str, Any], ...]

    @property
    def fingerprint(self) -> str:
        """SHA-256 (first 12 hex digits) of the overrides: the same point in any sweep has the same one."""
        text = json.dumps(sorted(self.overrides), sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:12]

    @property
    def point_id(self) -> str:
        """``p<index>-<fingerprint>``: the point's file names."""
        return f"p{self.index}-{self.fingerprint[:8]}"

    def exp_name(self, sweep: str) -> str:
        """The DVC experiment name: ``<sweep>-<point_id>`` (unique even when a sweep's grid changes)."""
        return f"{sweep}-{self.point_id}"

    def set_args(self) -> list[str]:
        """``-S ++key=value`` arguments of ``dvc exp run``: ``++`` (add or override) because a valid key
        need not be written in params.yaml (``experiments.<name>.train.*`` of an experiment whose overrides
        are ``{}``), and DVC refuses a plain ``-S`` for a key the file lacks."""
        out: list[str] = []
        for key, value in self.overrides:
            out += ["-S", f"++{key}={format_value(value)}"]
        return out


def format_value(value: Any) -> str:
    """A value as ``dvc exp run -S`` parses it back (YAML flow style)."""
    if isinstance(value, str):
        return value if yaml.safe_load(value) == value and "," not in value else json.dumps(value)
    return json.dumps(value)


def check_name(name: str) -> str:
    """A sweep name: lowercase letters, digits, - and _ (it names git refs and folders)."""
    if not NAME.match(name):
        raise SweepSpecError(f"sweep name '{name}': use lowercase letters, digits, - and _ (64 at most)")
    return name


def _split_values(text: str) -> list[str]:
    """Split ``v1,v2`` at commas outside brackets and quotes."""
    parts, depth, quote, cur = [], 0, "", ""
    for ch in text:
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch in "[{(":
            depth += 1
        elif ch in "]})":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
            continue
        cur += ch
    parts.append(cur)
    return [p.strip() for p in parts]


def _parse_value(key: str, text: str) -> Any:
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise SweepSpecError(f"-S {key}: value {text!r} is not valid YAML ({err})") from None
    if isinstance(value, str) and text == value:
        try:  # YAML 1.2 (DVC's parser) reads 1e-3 as a number; PyYAML's 1.1 as a string
            return float(value)
        except ValueError:
            return value
    return value


def parse_sets(sets: Sequence[str]) -> list[dict[str, Any]]:
    """``-S key=v1,v2`` options as the grid's points (cartesian product, first key varying slowest)."""
    axes: list[tuple[str, list[Any]]] = []
    for item in sets:
        if "=" not in item:
            raise SweepSpecError(f"-S {item!r}: expected key=value[,value...]")
        key, _, text = item.partition("=")
        key = key.strip().removeprefix("++").removeprefix("+")  # DVC's add/override prefixes: always ++
        if ":" in key:
            raise SweepSpecError(f"-S {key}: only params.yaml keys can be swept (no file prefix)")
        if not KEY.match(key):
            raise SweepSpecError(f"-S {key!r}: not a dotted params key")
        values = [_parse_value(key, v) for v in _split_values(text) if v != ""]
        if not values:
            raise SweepSpecError(f"params key '{key}': empty grid (no value after '=')")
        if any(k == key for k, _ in axes):
            raise SweepSpecError(f"params key '{key}': given in two -S options")
        axes.append((key, values))
    keys = [k for k, _ in axes]
    return [dict(zip(keys, combo, strict=True)) for combo in itertools.product(*(v for _, v in axes))]


def read_points_file(path: str | Path) -> list[dict[str, Any]]:
    """A YAML file of points: a list of ``{dotted.key: value}`` mappings, or ``{points: [...]}``."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as err:
        raise SweepSpecError(f"{path}: cannot read a points file ({err})") from None
    if isinstance(data, Mapping) and set(data) == {"points"}:
        data = data["points"]
    if not isinstance(data, list) or not data:
        raise SweepSpecError(f"{path}: expected a non-empty list of points ({{key: value}} mappings)")
    points = []
    for i, item in enumerate(data):
        if not isinstance(item, Mapping) or not item:
            raise SweepSpecError(f"{path}: point {i} is not a non-empty mapping of params keys to values")
        for key in item:
            if not isinstance(key, str) or not KEY.match(key):
                raise SweepSpecError(f"{path}: point {i}: {key!r} is not a dotted params key")
        points.append(dict(item))
    return points


def build_points(sets: Sequence[str] = (), points_file: str | Path | None = None) -> list[Point]:
    """The sweep's points from ``-S`` options or a points file (not both)."""
    if sets and points_file:
        raise SweepSpecError("give -S options or a points file, not both")
    raw = read_points_file(points_file) if points_file else parse_sets(sets)
    if not raw:
        raise SweepSpecError("empty sweep: give -S key=v1,v2 options or a points file")
    points = [Point(i, tuple(p.items())) for i, p in enumerate(raw)]
    seen: dict[str, int] = {}
    for p in points:
        if p.fingerprint in seen:
            raise SweepSpecError(f"point {p.index} repeats point {seen[p.fingerprint]}: {dict(p.overrides)}")
        seen[p.fingerprint] = p.index
    return points


def apply_overrides(data: Mapping[str, Any], overrides: Sequence[tuple[str, Any]]) -> dict[str, Any]:
    """A copy of params ``data`` with dotted ``overrides`` set (as ``dvc exp run -S`` sets them)."""
    out = copy.deepcopy(dict(data))
    for key, value in overrides:
        node = out
        parts = key.split(".")
        for i, part in enumerate(parts[:-1]):
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            if not isinstance(child, dict):
                raise SweepSpecError(f"params key '{key}': '{'.'.join(parts[: i + 1])}' is not a section")
            node = child
        node[parts[-1]] = value
    return out


def validate_points(points: Sequence[Point], params_path: str | Path) -> None:
    """Apply each point to ``params_path`` and validate the result; the first refusal names its key."""
    path = Path(params_path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) if path.is_file() else {}
    except yaml.YAMLError as err:
        raise SweepSpecError(f"{path}: not valid YAML ({err})") from None
    science, _ = split_params(data)
    for point in points:
        for key, _ in point.overrides:
            if key == "sweep" or key.startswith("sweep."):
                raise SweepSpecError(f"params key '{key}': the sweep section is not a science param")
        try:
            load_params(apply_overrides(science, point.overrides))
        except ConfigError as err:
            sets = ", ".join(f"{k}={format_value(v)}" for k, v in point.overrides)
            raise SweepSpecError(
                f"params key '{err.key}': {err.message} (sweep point {point.index}: {sets})"
            ) from None
