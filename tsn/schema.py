"""The option schema: typed dataclass fields with numeric ranges, and reading mappings into them.

A leaf of the project (it imports nothing of it but its errors), so that the config
(:mod:`tsn.config`), the registries (:mod:`tsn.registry`) and every builder that checks its own
options read values the same way without importing one another: ``option`` declares a field with
a range, ``coerce`` reads a value as a type (dataclasses, unions, literals, lists, dicts,
scalars; a float may be any string Python reads), ``from_dict`` builds a dataclass from a mapping
(unknown keys refused, renamed keys moved by the class's ``ALIASES``), ``check_ranges`` checks
every number. Every failure is one :class:`~tsn.errors.ConfigError` line naming the key.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import types
from dataclasses import dataclass, field
from typing import Any, Literal, Union, get_args, get_origin, get_type_hints

from tsn.errors import ConfigError

REPLACE = "_replace_"  # a mapping holding `_replace_: true` replaces the one below it instead of merging


@dataclass(frozen=True)
class Range:
    """A closed or open interval a number (or every number in a list/mapping) must lie in."""

    lo: float | None = None
    hi: float | None = None
    lo_open: bool = False
    hi_open: bool = False

    def contains(self, x: float) -> bool:
        if self.lo is not None and (x <= self.lo if self.lo_open else x < self.lo):
            return False
        if self.hi is not None and (x >= self.hi if self.hi_open else x > self.hi):
            return False
        return True

    def __str__(self) -> str:
        if self.lo is not None and self.hi is not None:
            return f"in {'(' if self.lo_open else '['}{self.lo:g}, {self.hi:g}{')' if self.hi_open else ']'}"
        if self.lo is not None:
            return f"{'>' if self.lo_open else '>='} {self.lo:g}"
        return f"{'<' if self.hi_open else '<='} {self.hi:g}"


def option(default: Any = dataclasses.MISSING, *, factory: Any = dataclasses.MISSING, ge: float | None = None,
           gt: float | None = None, le: float | None = None, lt: float | None = None) -> Any:
    """A dataclass field with a numeric range (checked by :func:`check_ranges`)."""
    rng = Range(ge if gt is None else gt, le if lt is None else lt, gt is not None, lt is not None)
    if factory is not dataclasses.MISSING:
        return field(default_factory=factory, metadata={"range": rng})
    return field(default=default, metadata={"range": rng})


POSITIVE = {"ge": 1}  # counts and widths


def _type_name(tp: Any) -> str:
    origin = get_origin(tp)
    if origin in (Union, types.UnionType):
        return " or ".join(_type_name(a) for a in get_args(tp))
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in get_args(tp))
    if origin in (list, dict):
        return f"{origin.__name__}[{', '.join(_type_name(a) for a in get_args(tp))}]"
    if tp is type(None):
        return "null"
    if tp is Any:
        return "any"
    return getattr(tp, "__name__", str(tp))


def coerce(tp: Any, value: Any, key: str) -> Any:
    """``value`` as type ``tp`` (dataclasses, unions, literals, lists, dicts,
    scalars); a float may be given as any string Python's ``float`` reads."""
    origin = get_origin(tp)
    if tp is Any:
        return value
    if dataclasses.is_dataclass(tp):
        return from_dict(tp, value, key + ".")
    if origin in (Union, types.UnionType):
        for arg in get_args(tp):
            try:
                return coerce(arg, value, key)
            except ConfigError:
                continue
        raise ConfigError(f"{key}: expected {_type_name(tp)}, got {value!r}")
    if origin is Literal:
        if value in get_args(tp):
            return value
        raise ConfigError(f"{key}: {value!r} is not valid; valid: {', '.join(map(str, get_args(tp)))}")
    if origin is list:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{key}: expected a list, got {value!r}")
        (arg,) = get_args(tp)
        return [coerce(arg, v, f"{key}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{key}: expected a mapping, got {value!r}")
        _, arg = get_args(tp)
        return {str(k): coerce(arg, v, f"{key}.{k}") for k, v in value.items()}
    if tp is type(None):
        if value is None:
            return None
    elif tp is bool:
        if isinstance(value, bool):
            return value
    elif tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                pass
    elif tp is str:
        if isinstance(value, str):
            return value
    raise ConfigError(f"{key}: expected {_type_name(tp)}, got {value!r}")


def _move_alias(data: dict, old: str, new: str, where: str) -> None:
    """``data[old]`` to the path ``new``; an error if that path holds a value already
    (mappings merge when they share no key)."""
    value, node, path = data.pop(old), data, new.split(".")
    for k in path[:-1]:
        nxt = node.get(k)
        if not isinstance(nxt, dict):
            nxt = node[k] = {}
        node = nxt
    there = node.get(path[-1])
    if there is not None:
        if not (isinstance(there, dict) and isinstance(value, dict) and not set(there) & set(value)):
            raise ConfigError(f"{where}{old} and {where}{new} both given; {where}{old} is the old name of "
                              f"{where}{new}: keep only {where}{new}")
        value = merge(there, value)
    node[path[-1]] = value


def migrate(cls: type, data: Any, prefix: str = "") -> Any:
    """Move old keys (a dataclass's ``ALIASES``, at any depth) to their new place."""
    if not isinstance(data, dict) or not dataclasses.is_dataclass(cls):
        return data
    out = copy.deepcopy(data)
    for old, new in getattr(cls, "ALIASES", {}).items():
        if old in out:
            _move_alias(out, old, new, prefix)
    hints = get_type_hints(cls)
    for f in dataclasses.fields(cls):
        if f.name in out and dataclasses.is_dataclass(hints[f.name]):
            out[f.name] = migrate(hints[f.name], out[f.name], f"{prefix}{f.name}.")
    return out


def from_dict(cls: type, data: Any, prefix: str = "") -> Any:
    """Build dataclass ``cls`` from a mapping, rejecting unknown keys and wrong types."""
    where = prefix.rstrip(".") or "config"
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a mapping, got {data!r}")
    data = migrate(cls, data)
    hints = get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    kwargs = {}
    for key, value in data.items():
        if key not in names:
            raise ConfigError(f"unknown config key {prefix}{key}; valid keys here: {', '.join(names)}")
        kwargs[key] = coerce(hints[key], value, prefix + key)
    return cls(**kwargs)


def strip_markers(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: strip_markers(v) for k, v in value.items() if k != REPLACE}
    return value


def merge(base: Any, over: Any) -> Any:
    """``over`` on top of ``base``: mappings merge key by key unless ``over`` says ``_replace_: true``."""
    if not isinstance(over, dict):
        return over
    replace = over.get(REPLACE, False)
    if replace not in (True, False):
        raise ConfigError(f"{REPLACE} must be true or false, got {replace!r}")
    if replace or not isinstance(base, dict):
        return strip_markers(over)
    out = dict(base)
    for k, v in over.items():
        if k != REPLACE:
            out[k] = merge(out.get(k), v)
    return out


def check_ranges(obj: Any, prefix: str = "") -> None:
    """Every number of dataclass ``obj`` (nested dataclasses included) finite and in its field's range."""
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        key = prefix + f.name
        if dataclasses.is_dataclass(value):
            check_ranges(value, key + ".")
            continue
        _check_value(value, key, f.metadata.get("range"))


def _check_value(value: Any, key: str, rng: Range | None) -> None:
    if isinstance(value, dict):
        for k, v in value.items():
            _check_value(v, f"{key}.{k}", rng)
    elif isinstance(value, list):
        for i, v in enumerate(value):
            _check_value(v, f"{key}[{i}]", rng)
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        if isinstance(value, float) and not math.isfinite(value):
            raise ConfigError(f"{key} must be a finite number, got {value}")
        if rng is not None and not rng.contains(value):
            raise ConfigError(f"{key} must be {rng}, got {value:g}")
