"""JSON messages between the orchestrator and the load generator, checked on the way in.

A job or result that does not decode names the field at fault, so a mismatch between
the two processes (or a hand-written job) fails with a message rather than a KeyError
deep inside a measurement.
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from collections.abc import Mapping
from typing import Any, ClassVar, Protocol, TypeVar

__all__ = ["Message", "WireError", "decode", "encode"]


class WireError(ValueError):
    """A message that is not valid JSON of the expected shape; says which field is wrong."""


class Message(Protocol):
    """A dataclass with a `KIND` naming it on the wire."""

    KIND: ClassVar[str]
    __dataclass_fields__: ClassVar[dict[str, Any]]


M = TypeVar("M", bound=Message)


def encode(message: Message) -> str:
    """One line of JSON: the message's fields plus its kind."""
    return json.dumps({"kind": message.KIND, **dataclasses.asdict(message)})


def decode(text: str, kinds: Mapping[str, type[M]]) -> M:
    """The message `text` holds, if its kind is one of `kinds` and every field fits."""
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise WireError(f"not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise WireError("a message must be a JSON object")
    kind = data.pop("kind", None)
    if not isinstance(kind, str) or kind not in kinds:
        raise WireError(f"kind must be one of {', '.join(sorted(kinds))}, got {kind!r}")
    message: M = _build(kinds[kind], data, str(kind))
    return message


def _build(cls: Any, data: Mapping[str, Any], where: str) -> Any:
    hints = typing.get_type_hints(cls)
    fields = {field.name: field for field in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise WireError(f"{where}: unknown field(s) {', '.join(unknown)}")
    values: dict[str, Any] = {}
    for name, field in fields.items():
        if name in data:
            values[name] = _coerce(data[name], hints[name], f"{where}.{name}")
        elif field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING:
            raise WireError(f"{where}: field {name!r} is required")
    try:
        return cls(**values)
    except ValueError as exc:  # the dataclass's own range checks
        raise WireError(f"{where}: {exc}") from None


def _coerce(value: Any, annotation: Any, where: str) -> Any:
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is typing.Literal:
        if value not in args:
            raise WireError(f"{where}: must be one of {', '.join(map(repr, args))}, got {value!r}")
        return value
    if origin in (types.UnionType, typing.Union):
        if value is None and type(None) in args:
            return None
        (inner,) = (arg for arg in args if arg is not type(None))
        return _coerce(value, inner, where)
    if origin is list or origin is tuple:
        if not isinstance(value, list):
            raise WireError(f"{where}: expected a list, got {type(value).__name__}")
        items = [_coerce(item, args[0], f"{where}[{i}]") for i, item in enumerate(value)]
        return items if origin is list else tuple(items)
    if origin is dict:
        if not isinstance(value, dict):
            raise WireError(f"{where}: expected an object, got {type(value).__name__}")
        return {
            _coerce(k, args[0], f"{where} key"): _coerce(v, args[1], f"{where}[{k!r}]")
            for k, v in value.items()
        }
    if dataclasses.is_dataclass(annotation):
        if not isinstance(value, dict):
            raise WireError(f"{where}: expected an object, got {type(value).__name__}")
        return _build(annotation, value, where)
    return _scalar(value, annotation, where)


def _scalar(value: Any, annotation: Any, where: str) -> Any:
    if annotation is float and isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if annotation in (int, str, bool) and type(value) is annotation:
        return value
    if annotation in (int, float, str, bool):
        raise WireError(f"{where}: expected {annotation.__name__}, got {value!r}")
    raise WireError(f"{where}: cannot decode a field of type {annotation!r}")
