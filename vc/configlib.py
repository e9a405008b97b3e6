"""What pydantic does not do for the typed config (:mod:`vc.config`): messages that name the params key.

Validation itself (types, bounds, choices, unknown keys, cross-field checks) is pydantic's. This module turns
its :class:`~pydantic.ValidationError` into a :class:`ConfigError` whose message names the dotted key
(``train.optimizer.lr_g``), the bad value and, for a misspelled key, the closest known key; and it holds the
small mapping helpers the pipeline uses to merge overrides and to log params.
"""

from __future__ import annotations

import difflib
import functools
import sys
import types
import typing
from collections.abc import Mapping
from typing import Annotated, Any, Literal, NoReturn, TypeVar, get_args, get_origin

from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model
from pydantic.json_schema import SkipJsonSchema
from pydantic_core import ErrorDetails, PydanticCustomError

from vc.errors import InputError

M = TypeVar("M", bound=BaseModel)

__all__ = ["ConfigError", "build", "deep_merge", "flatten", "invalid", "overrides_of", "to_dict"]

# Error type of :func:`invalid`: a cross-field check's finding, with the key (relative to the model) it names.
INVALID = "config"


class ConfigError(InputError):
    """A params key or value is invalid. ``key`` is the dotted path of the offending entry.

    An :class:`InputError`, so a stage stops with this one line (exit 2) instead of pydantic's traceback.
    """

    def __init__(self, key: str, message: str, source: str | None = None) -> None:
        self.key = key
        self.message = message
        text = f"params key '{key}': {message}" if key else message
        super().__init__(f"{source}: {text}" if source else text)


def invalid(key: str, message: str) -> NoReturn:
    """Fail a model validator on field ``key`` (relative to the model, e.g. ``optimizer.decay_start``).

    A plain ``ValueError`` would be reported at the model; this error carries the field's key.
    """
    raise PydanticCustomError(INVALID, "{message}", {"key": key, "message": message})


def build(cls: type[M], data: Any, prefix: str = "") -> M:
    """Validate ``data`` (a mapping; None: all defaults) into model ``cls``, raising :class:`ConfigError`.

    ``prefix`` is the dotted key of ``data`` in the whole params document, for the messages.
    """
    if isinstance(data, cls):
        return data
    try:
        return cls.model_validate({} if data is None else data)
    except ValidationError as err:
        raise config_error(err, cls, prefix) from None


def config_error(err: ValidationError, cls: type[BaseModel], prefix: str = "") -> ConfigError:
    """The first of pydantic's errors as a :class:`ConfigError`; the others are named after it."""
    found = [_describe(e, cls, prefix) for e in err.errors()]
    key, message = found[0]
    if len(found) > 1:
        others = "; ".join(f"'{k}': {m}" for k, m in found[1:4])
        more = f" and {len(found) - 4} more" if len(found) > 4 else ""
        message = f"{message} (also {others}{more})"
    return ConfigError(key, message)


def _join(prefix: str, key: str) -> str:
    if not prefix:
        return key
    if not key:
        return prefix
    return f"{prefix}{key}" if key.startswith("[") else f"{prefix}.{key}"


def _loc_key(loc: tuple[int | str, ...]) -> str:
    key = ""
    for part in loc:
        key = _join(key, f"[{part}]" if isinstance(part, int) else str(part))
    return key


def _show(value: Any) -> str:
    """A bound or value as a user wrote it: 0.0 as 0, strings quoted."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return repr(value) if not isinstance(value, int | float) or isinstance(value, bool) else str(value)


def _type_at(cls: type[BaseModel], loc: tuple[int | str, ...]) -> Any:
    """The annotation found at ``loc`` below model ``cls`` (None where the path leaves the models).

    pydantic's errors give a location only; the choices of a Literal and the known keys need the type.
    """
    tp: Any = cls
    for part in loc:
        tp = _unwrap(tp)
        if isinstance(tp, type) and issubclass(tp, BaseModel):
            field = tp.model_fields.get(str(part))
            if field is None:
                return None
            tp = field.annotation
        elif get_origin(tp) is dict:
            tp = get_args(tp)[1]
        elif get_origin(tp) is tuple:
            args = get_args(tp)
            if len(args) == 2 and args[1] is Ellipsis:
                tp = args[0]
            elif isinstance(part, int) and part < len(args):
                tp = args[part]
            else:
                return None
        else:
            return None
    return _unwrap(tp)


def _unwrap(tp: Any) -> Any:
    """``X | None`` and ``Annotated[X, ...]`` -> ``X``."""
    while True:
        origin = get_origin(tp)
        if origin is Annotated:
            tp = get_args(tp)[0]
        elif origin in (typing.Union, types.UnionType):
            args = [a for a in get_args(tp) if a is not type(None)]
            if len(args) != 1:
                return tp
            tp = args[0]
        else:
            return tp


def _unknown_key(parent: Any, key: str) -> str:
    if not (isinstance(parent, type) and issubclass(parent, BaseModel)):
        return "unknown key"
    hint = getattr(parent, "unknown_key_hint", None)
    if hint:
        return f"unknown key; {hint}"
    # keys set by code, not params.yaml (train.seed), are hidden from the schema and from the suggestions
    known = [
        name
        for name, info in parent.model_fields.items()
        if not any(isinstance(m, SkipJsonSchema) for m in info.metadata)
    ]
    close = difflib.get_close_matches(key, known, n=1)
    return (
        f"unknown key; did you mean '{close[0]}'?"
        if close
        else f"unknown key; known keys: {', '.join(known)}"
    )


_BOUNDS = {"greater_than": ">", "greater_than_equal": ">=", "less_than": "<", "less_than_equal": "<="}
_EXPECTED = {
    "int": "an integer",
    "float": "a number",
    "bool": "true or false",
    "string": "a string",
    "list": "a list",
    "tuple": "a list",
    "dict": "a mapping",
    "model": "a mapping",
}


def _describe(e: ErrorDetails, cls: type[BaseModel], prefix: str) -> tuple[str, str]:
    """``(dotted key, message)`` for one of pydantic's errors."""
    loc, kind, ctx, value = tuple(e["loc"]), e["type"], e.get("ctx") or {}, e["input"]
    key = _join(prefix, _loc_key(loc))
    if kind == INVALID:
        return _join(key, ctx["key"]), ctx["message"]
    if kind == "extra_forbidden":
        return key, _unknown_key(_type_at(cls, loc[:-1]), str(loc[-1]))
    if kind == "missing":
        return key, "missing item (too few items)" if loc and isinstance(
            loc[-1], int
        ) else "required key is missing"
    if kind in _BOUNDS:
        bound = next(iter(ctx.values()))
        return key, f"must be {_BOUNDS[kind]} {_show(bound)}, got {_show(value)}"
    if kind in ("literal_error", "enum"):
        choices = get_args(_type_at(cls, loc)) if get_origin(_type_at(cls, loc)) is Literal else ()
        listed = ", ".join(repr(c) for c in choices) if choices else ctx.get("expected", "")
        return key, f"{value!r} is not one of {listed}"
    if kind == "too_long":
        return key, f"expected at most {ctx.get('max_length')} items, got {ctx.get('actual_length')}"
    if kind == "model_attributes_type":
        kind = "model_type"
    base = kind.split("_")[0]
    if kind.endswith(("_type", "_parsing", "_from_float")) and base in _EXPECTED:
        return key, f"expected {_EXPECTED[base]}, got {value!r}"
    return key, f"{e['msg']}, got {value!r}"


def _drop_defaults(schema: dict[str, Any]) -> None:
    """An override's default is the base section's value, not a constant: the schema states none."""
    for prop in schema.get("properties", {}).values():
        prop.pop("default", None)


class _Overrides(BaseModel):
    """Base of the partial sections: unknown keys are errors; no checks across keys (run once merged)."""

    model_config = ConfigDict(extra="forbid", frozen=True, json_schema_extra=lambda s, _: _drop_defaults(s))


@functools.cache
def overrides_of(cls: type[BaseModel], exclude: tuple[str, ...] = ()) -> type[BaseModel]:
    """Model ``cls`` with every key optional and no validators: what a preset or an experiment may set.

    Bounds, choices and descriptions are kept; nested models become partial too. Unset keys keep the base
    section's value (dump with ``exclude_unset=True``); ``exclude`` names keys that may not be overridden.
    """
    fields: dict[str, Any] = {}
    for name, info in cls.model_fields.items():
        if name in exclude:
            continue
        ann = info.annotation
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            sub = overrides_of(ann)
            fields[name] = (sub, Field(default_factory=sub, description=info.description))
        else:
            typed = Annotated[(ann, *info.metadata)] if info.metadata else ann
            fields[name] = (typed, Field(None, description=info.description))
    name, doc = f"{cls.__name__}Overrides", f"Overrides of {cls.__name__}: any subset of its keys."
    model = create_model(name, __base__=_Overrides, __doc__=doc, __module__=cls.__module__, **fields)
    setattr(sys.modules[cls.__module__], name, model)  # importable by name, so params pickle (workers)
    return model


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
    """A config model as plain YAML/JSON-ready data (tuples become lists): pydantic's JSON-mode dump.

    Kept as one name for checkpoints, model folders, fingerprints and MLflow params; mappings and lists of
    models are dumped item by item.
    """
    if isinstance(obj, BaseModel):
        return obj.model_dump(mode="json")
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
