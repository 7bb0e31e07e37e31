"""Validate JSON values against the small JSON Schema subset Cog and Replicate use.

Replicate rejects bad request bodies and bad model inputs with 422 and a list of
`invalid_fields` in gojsonschema's vocabulary (`required`, `invalid_type`, `enum`,
`number_gte`, `number_lte`, `additional_property_not_allowed`). The simulator
reproduces those entries; it needs no full validator, only: type, properties,
required, additionalProperties, items, enum, minimum, maximum and allOf/$ref into
`#/components/schemas/`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["InvalidField", "SchemaError", "resolve_schema", "validate_object"]

Schema = Mapping[str, Any]

_REF_PREFIX = "#/components/schemas/"


class SchemaError(ValueError):
    """A schema uses something this validator does not understand (a catalogue bug)."""


@dataclass(frozen=True, slots=True)
class InvalidField:
    """One entry of a 422's `invalid_fields`."""

    type: str
    field: str
    description: str

    def detail_line(self) -> str:
        return f"- {self.field}: {self.description}" if self.field else f"- {self.description}"

    def to_json(self) -> dict[str, str]:
        return {"type": self.type, "field": self.field, "description": self.description}


def resolve_schema(schema: Schema, components: Schema) -> dict[str, Any]:
    """Flatten `allOf` members (following `$ref`s) into one schema, as Cog's enums need."""
    merged = {key: value for key, value in schema.items() if key not in ("allOf", "$ref")}
    parts = list(schema.get("allOf", ()))
    if "$ref" in schema:
        parts.append({"$ref": schema["$ref"]})
    for part in parts:
        target = part
        if "$ref" in part:
            ref = part["$ref"]
            name = ref.removeprefix(_REF_PREFIX) if isinstance(ref, str) else ""
            if (
                not isinstance(ref, str)
                or not ref.startswith(_REF_PREFIX)
                or name not in components
            ):
                raise SchemaError(f"unresolvable $ref {ref!r}")
            target = components[name]
        for key, value in resolve_schema(target, components).items():
            merged.setdefault(key, value)
    return merged


def validate_object(
    value: object,
    schema: Schema,
    *,
    components: Schema,
    field: str,
    forbid_additional: bool = False,
) -> list[InvalidField]:
    """Check a JSON object against an object schema; `field` names it in the messages."""
    if not isinstance(value, Mapping):
        return [_invalid_type(field, "object", value)]
    problems: list[InvalidField] = []
    properties: Schema = schema.get("properties", {})
    for name in schema.get("required", ()):
        if name not in value:
            problems.append(InvalidField("required", field, f"{name} is required"))
    if forbid_additional or schema.get("additionalProperties") is False:
        problems += [
            InvalidField(
                "additional_property_not_allowed",
                field,
                f"Additional property {name} is not allowed",
            )
            for name in value
            if name not in properties
        ]
    for name, item in value.items():
        if name in properties:
            child = f"{field}.{name}" if field else str(name)
            problems += _validate_value(
                item, resolve_schema(properties[name], components), child, components
            )
    return problems


def _validate_value(
    value: object, schema: Schema, field: str, components: Schema
) -> list[InvalidField]:
    expected = schema.get("type")
    if expected == "object" and "properties" in schema:
        return validate_object(value, schema, components=components, field=field)
    if expected is not None and not _has_type(value, expected):
        return [_invalid_type(field, expected, value)]
    if "enum" in schema and value not in schema["enum"]:
        allowed = ", ".join(json.dumps(option) for option in schema["enum"])
        return [InvalidField("enum", field, f"{field} must be one of the following: {allowed}")]
    problems: list[InvalidField] = []
    if _is_number(value):
        if "minimum" in schema and value < schema["minimum"]:
            problems.append(
                InvalidField(
                    "number_gte", field, f"Must be greater than or equal to {schema['minimum']}"
                )
            )
        if "maximum" in schema and value > schema["maximum"]:
            problems.append(
                InvalidField(
                    "number_lte", field, f"Must be less than or equal to {schema['maximum']}"
                )
            )
    if expected == "array" and isinstance(value, list) and "items" in schema:
        items = resolve_schema(schema["items"], components)
        for index, item in enumerate(value):
            problems += _validate_value(item, items, f"{field}.{index}", components)
    return problems


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _has_type(value: object, expected: str) -> bool:
    if expected not in _TYPE_CHECKS:
        raise SchemaError(f"unsupported schema type {expected!r}")
    return _TYPE_CHECKS[expected](value)


def _is_integer(value: object) -> bool:
    if isinstance(value, float):
        return value.is_integer()
    return isinstance(value, int) and not isinstance(value, bool)


_TYPE_CHECKS: dict[str, Callable[[object], bool]] = {
    "integer": _is_integer,
    "number": _is_number,
    "string": lambda value: isinstance(value, str),
    "boolean": lambda value: isinstance(value, bool),
    "array": lambda value: isinstance(value, list),
    "object": lambda value: isinstance(value, Mapping),
    "null": lambda value: value is None,
}


def _json_type(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "integer" if value.is_integer() else "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object"


def _invalid_type(field: str, expected: str, value: object) -> InvalidField:
    return InvalidField(
        "invalid_type", field, f"Invalid type. Expected: {expected}, given: {_json_type(value)}"
    )
