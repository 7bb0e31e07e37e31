"""Build dataclasses from loosely typed mappings (YAML files, JSON bodies).

The config file, the catalogue's `behaviour` blocks, run-time behaviour patches and
fault definitions all arrive as plain mappings; one checker turns them into typed
values so each caller gets the same messages for a wrong key or a wrong type.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")

_TYPE_NAMES = {bool: "a boolean", int: "an integer", float: "a number", str: "a string"}


def coerce_fields(
    cls: type[Any],
    changes: Mapping[str, object],
    *,
    where: str,
    error: type[Exception],
    base_dir: Path | None = None,
) -> dict[str, Any]:
    """Check `changes` against the dataclass `cls`'s init fields and convert the values.

    `where` names the source in messages (e.g. "config file sim.yaml"); relative paths
    are resolved against `base_dir` when given.
    """
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls) if f.init]
    unknown = sorted(str(key) for key in changes if key not in names)
    if unknown:
        raise error(
            f"{where}: unknown key(s) {', '.join(unknown)}; valid keys are {', '.join(names)}"
        )
    return {
        name: _coerce(value, hints[name], f"{where}: {name}", error, base_dir)
        for name, value in changes.items()
    }


def replace_from_mapping(
    instance: T,
    changes: Mapping[str, object],
    *,
    where: str,
    error: type[Exception],
    base_dir: Path | None = None,
) -> T:
    """Return `instance` with `changes` applied, each checked as `coerce_fields` does."""
    converted = coerce_fields(type(instance), changes, where=where, error=error, base_dir=base_dir)
    return dataclasses.replace(instance, **converted)  # type: ignore[type-var]


def _coerce(
    value: object, hint: Any, where: str, error: type[Exception], base: Path | None
) -> object:
    origin = typing.get_origin(hint)
    if origin in (types.UnionType, typing.Union):
        options = typing.get_args(hint)
        if value is None and type(None) in options:
            return None
        (real,) = [option for option in options if option is not type(None)]
        return _coerce(value, real, where, error, base)
    if hint is Path:
        if not isinstance(value, str | Path):
            raise error(f"{where} must be a file path, got {value!r}")
        path = Path(value)
        return path if base is None or path.is_absolute() else base / path
    if origin is frozenset:
        if not isinstance(value, list | tuple | set | frozenset) or not all(
            isinstance(item, str) for item in value
        ):
            raise error(f"{where} must be a list of strings, got {value!r}")
        return frozenset(value)
    if origin in (dict, Mapping) or hint in (dict, Mapping):
        if not isinstance(value, Mapping):
            raise error(f"{where} must be a mapping, got {value!r}")
        return dict(value)
    return _coerce_scalar(value, hint, where, error)


def _coerce_scalar(value: object, hint: Any, where: str, error: type[Exception]) -> object:
    if hint is float and isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if hint in (int, str) and isinstance(value, hint) and not isinstance(value, bool):
        return value
    if hint is bool and isinstance(value, bool):
        return value
    if hint in _TYPE_NAMES:
        raise error(f"{where} must be {_TYPE_NAMES[hint]}, got {value!r}")
    raise TypeError(f"{where}: unsupported field type {hint!r}")
