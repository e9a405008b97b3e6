"""Strict construction of typed dataclass configs from plain mappings (parsed YAML).

A typo in params.yaml must be an error, not a silent default: :func:`build` rejects unknown keys, wrong types
and out-of-range numbers, always naming the dotted key (``train.optimizer.lr_g``) and, for a misspelling, the
closest known key.

Fields declare bounds through :func:`param`::

    @dataclass(frozen=True)
    class OptimizerConfig:
        lr_g: float = param(2e-4, gt=0)

A dataclass may also define ``check(self) -> list[tuple[str, str]]`` for constraints across fields; it returns
``(field, message)`` pairs that :func:`build` reports with the full key.
"""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from collections.abc import Mapping
from typing import Any, Literal, TypeVar, get_args, get_origin, get_type_hints

from vc.errors import InputError

T = TypeVar("T")

__all__ = ["ConfigError", "build", "check_overrides", "deep_merge", "param", "to_dict"]


class ConfigError(InputError):
    """A params key or value is invalid. ``key`` is the dotted path of the offending entry."""

    def __init__(self, key: str, message: str, source: str | None = None) -> None:
        self.key = key
        self.message = message
        text = f"params key '{key}': {message}" if key else message
        super().__init__(f"{source}: {text}" if source else text)


def param(
    default: Any = dataclasses.MISSING,
    *,
    ge: float | None = None,
    gt: float | None = None,
    le: float | None = None,
    lt: float | None = None,
    factory: Any = None,
) -> Any:
    """A dataclass field with numeric bounds checked by :func:`build`."""
    meta = {k: v for k, v in {"ge": ge, "gt": gt, "le": le, "lt": lt}.items() if v is not None}
    if factory is not None:
        return dataclasses.field(default_factory=factory, metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


def _join(prefix: str, key: str) -> str:
    return f"{prefix}.{key}" if prefix else key


def _type_name(tp: Any) -> str:
    origin = get_origin(tp)
    if origin is Literal:
        return " | ".join(repr(a) for a in get_args(tp))
    if origin in (typing.Union, types.UnionType):
        return " | ".join(_type_name(a) for a in get_args(tp))
    if tp is type(None):
        return "null"
    if origin is not None:
        return getattr(origin, "__name__", str(origin))
    return getattr(tp, "__name__", str(tp))


def _coerce(tp: Any, value: Any, key: str) -> Any:
    """Check ``value`` against type ``tp``; return it in canonical form (tuples for lists, dataclasses)."""
    origin = get_origin(tp)
    if tp is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        errors = []
        for alt in get_args(tp):
            try:
                return _coerce(alt, value, key)
            except ConfigError as err:
                errors.append(err)
        # A nested error (deeper key) is more useful than "expected X | Y".
        deeper = [e for e in errors if e.key != key]
        if deeper:
            raise deeper[0]
        raise ConfigError(key, f"expected {_type_name(tp)}, got {value!r}")
    if tp is type(None):
        if value is None:
            return None
        raise ConfigError(key, f"expected null, got {value!r}")
    if origin is Literal:
        if value in get_args(tp):
            return value
        choices = ", ".join(repr(a) for a in get_args(tp))
        raise ConfigError(key, f"{value!r} is not one of {choices}")
    if dataclasses.is_dataclass(tp):
        return build(tp, value, key)
    if origin in (list, tuple):
        if not isinstance(value, list | tuple):
            raise ConfigError(key, f"expected a list, got {value!r}")
        args = get_args(tp)
        if origin is tuple and args and args[-1] is not Ellipsis:
            if len(value) != len(args):
                raise ConfigError(key, f"expected {len(args)} items, got {len(value)}")
            return tuple(
                _coerce(a, v, f"{key}[{i}]") for i, (a, v) in enumerate(zip(args, value, strict=True))
            )
        item = args[0] if args else Any
        return tuple(_coerce(item, v, f"{key}[{i}]") for i, v in enumerate(value))
    if origin in (dict, Mapping):
        if not isinstance(value, Mapping):
            raise ConfigError(key, f"expected a mapping, got {value!r}")
        _, val_t = get_args(tp) or (str, Any)
        out = {}
        for k, v in value.items():
            if not isinstance(k, str):
                raise ConfigError(key, f"keys must be strings, got {k!r}")
            out[k] = _coerce(val_t, v, _join(key, k))
        return out
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(key, f"expected true or false, got {value!r}")
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise ConfigError(key, f"expected an integer, got {value!r}")
    if tp is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):  # YAML 1.1 reads "1e-4" (no dot) as a string
            try:
                return float(value)
            except ValueError:
                pass
        raise ConfigError(key, f"expected a number, got {value!r}")
    if tp is str:
        if isinstance(value, str):
            return value
        raise ConfigError(key, f"expected a string, got {value!r}")
    raise TypeError(f"unsupported config type {tp!r} at {key}")


def _check_bounds(field: dataclasses.Field, value: Any, key: str) -> None:
    if not isinstance(value, int | float) or isinstance(value, bool):
        return
    meta = field.metadata
    if "gt" in meta and not value > meta["gt"]:
        raise ConfigError(key, f"must be > {meta['gt']}, got {value}")
    if "ge" in meta and not value >= meta["ge"]:
        raise ConfigError(key, f"must be >= {meta['ge']}, got {value}")
    if "lt" in meta and not value < meta["lt"]:
        raise ConfigError(key, f"must be < {meta['lt']}, got {value}")
    if "le" in meta and not value <= meta["le"]:
        raise ConfigError(key, f"must be <= {meta['le']}, got {value}")


def _unknown_key_error(cls: type, key: str, prefix: str) -> ConfigError:
    known = [f.name for f in dataclasses.fields(cls)]
    close = difflib.get_close_matches(key, known, n=1)
    hint = f"; did you mean '{close[0]}'?" if close else f"; known keys: {', '.join(known)}"
    return ConfigError(_join(prefix, key), f"unknown key{hint}")


def build(cls: type[T], data: Mapping[str, Any] | None, prefix: str = "") -> T:
    """Build dataclass ``cls`` from ``data``, strictly. Missing keys take the field defaults."""
    if isinstance(data, cls):
        return data
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        raise ConfigError(prefix, f"expected a mapping, got {data!r}")
    hints = get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    for key in data:
        if key not in fields:
            raise _unknown_key_error(cls, str(key), prefix)
    kwargs = {}
    for name, field in fields.items():
        key = _join(prefix, name)
        if name in data:
            value = _coerce(hints[name], data[name], key)
            _check_bounds(field, value, key)
            kwargs[name] = value
        elif field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING:
            raise ConfigError(key, "required key is missing")
    obj = cls(**kwargs)
    check = getattr(obj, "check", None)
    if callable(check):
        for name, message in check():
            raise ConfigError(_join(prefix, name), message)
    return obj


def check_overrides(cls: type, data: Any, prefix: str) -> None:
    """Validate a partial mapping of overrides against ``cls``'s schema (keys and types, not completeness)."""
    if not isinstance(data, Mapping):
        raise ConfigError(prefix, f"expected a mapping, got {data!r}")
    hints = get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    for key, value in data.items():
        if key not in fields:
            raise _unknown_key_error(cls, str(key), prefix)
        tp = hints[key]
        if dataclasses.is_dataclass(tp) and isinstance(value, Mapping):
            check_overrides(tp, value, _join(prefix, key))
        else:
            coerced = _coerce(tp, value, _join(prefix, key))
            _check_bounds(fields[key], coerced, _join(prefix, key))


def deep_merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """Recursively merge ``override`` into a copy of ``base`` (mappings merge, everything else replaces)."""
    out = dict(base)
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def to_dict(obj: Any) -> Any:
    """A dataclass config as plain YAML/JSON-ready data (tuples become lists)."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_dict(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, Mapping):
        return {k: to_dict(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [to_dict(v) for v in obj]
    return obj


def flatten(data: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": 1}}`` -> ``{"a.b": 1}``: the form MLflow params and DVC ``-S`` use."""
    out: dict[str, Any] = {}
    for key, value in data.items():
        full = _join(prefix, key)
        if isinstance(value, Mapping) and value:
            out.update(flatten(value, full))
        else:
            out[full] = value
    return out
