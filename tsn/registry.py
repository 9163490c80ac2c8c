"""One small registry class, used once per kind of thing (models, datasets,
task codes, weightings, ...), so that every name a config can hold is looked
up the same way and a wrong name lists what is valid. Each registry checks
the names and options it is given when it builds (``tsn.config`` knows none
of them); :func:`keyword_options` checks a builder's options against its
signature."""

from __future__ import annotations

import copy
import dataclasses
import inspect
from collections.abc import Callable, Iterator
from typing import Any, Generic, TypeVar, get_type_hints

from tsn.errors import ConfigError
from tsn.schema import check_ranges, coerce

T = TypeVar("T")


class Registry(Generic[T]):
    """Maps names to builders; ``get`` fails with the list of valid names."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._items: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        def deco(obj: T) -> T:
            if name in self._items:
                raise ValueError(f"{self.kind} {name!r} is registered twice")
            self._items[name] = obj
            return obj

        return deco

    def get(self, name: str, key: str | None = None) -> T:
        """The builder called ``name``; ``key`` (e.g. ``model.name``) starts the error line."""
        try:
            return self._items[name]
        except (KeyError, TypeError):
            where = f"{key}: " if key else ""
            raise ConfigError(
                f"{where}unknown {self.kind} {name!r}; valid: {', '.join(sorted(self._items))}"
            ) from None

    def names(self) -> list[str]:
        return sorted(self._items)

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())


def keyword_options(fn: Callable, given: dict[str, Any] | None, where: str, typed: bool = True,
                    owner: str = "this builder") -> dict[str, Any]:
    """``given`` checked against the keyword-only parameters of ``fn``: unknown
    names are refused listing the valid ones; with ``typed`` each value is
    coerced to its annotation (dataclasses included, ranges checked) and
    missing ones get their default, so the result can be passed as ``**kwargs``."""
    given = dict(given or {})
    params = {p.name: p for p in inspect.signature(fn).parameters.values() if p.kind is inspect.Parameter.KEYWORD_ONLY}
    unknown = sorted(set(given) - set(params))
    if unknown:
        raise ConfigError(f"{where}.{unknown[0]}: not an option of {owner}; valid: {', '.join(params) or 'none'}")
    if not typed:
        return given
    hints = get_type_hints(fn)
    out: dict[str, Any] = {}
    for name, p in params.items():
        tp = hints.get(name, Any)
        if name in given:
            value = coerce(tp, given[name], f"{where}.{name}")
        elif p.default is not inspect.Parameter.empty:
            value = copy.deepcopy(p.default)
        else:
            raise ConfigError(f"{where}.{name} must be given")
        if dataclasses.is_dataclass(value):
            check_ranges(value, f"{where}.{name}.")
        out[name] = value
    return out
