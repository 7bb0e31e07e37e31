"""Models' schemas, fetched once and cached, to check a request before spending one.

Replicate rejects any input its model's schema does not list (422), and a rejected
create still spends a slot of the account's rate budget. Cog writes each model's
inputs as OpenAPI: `components.schemas.Input.properties`, with enums behind
`allOf: [{$ref: ...}]`; and what it returns as `components.schemas.Output`, where files
are strings of format `uri` (an image model's output) and text is strings without one.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from inference_gateway import tracing
from inference_gateway.deadlines import Deadline
from inference_gateway.errors import GatewayError
from inference_gateway.model_ids import EndpointKind, ModelRef, Task
from inference_gateway.replicate import ReplicateClient

__all__ = [
    "MAX_EXACT_INTEGER",
    "InputField",
    "ModelSchema",
    "SchemaCache",
    "parse_model_schema",
    "whole_number",
]

_LOGGER = logging.getLogger(__name__)
_JSON_TYPES: Mapping[str, tuple[type, ...]] = {
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "array": (list,),
    "object": (dict,),
}
# The largest integer a double (every number in a protobuf Struct) holds exactly; past it a
# whole double stands for a range of integers, and 1e300 would be sent as 301 digits.
MAX_EXACT_INTEGER = 2**53


def whole_number(value: float) -> int | None:
    """`value` as an int when it is whole and within ±MAX_EXACT_INTEGER, else None."""
    if value.is_integer() and abs(value) <= MAX_EXACT_INTEGER:
        return int(value)
    return None


@dataclass(frozen=True, slots=True)
class InputField:
    name: str
    type: str | None
    minimum: float | None = None
    maximum: float | None = None
    enum: tuple[Any, ...] | None = None

    def problem(self, value: object) -> str | None:
        """Why `value` does not fit this field, or None when it does."""
        if value is None:
            return None
        if self.type == "integer" and isinstance(value, float) and value.is_integer():
            if whole_number(value) is None:
                return (
                    f"must be an integer within ±{MAX_EXACT_INTEGER} (2^53, the largest a "
                    f"JSON number holds exactly), got {value:g}"
                )
        elif self.type is not None:
            expected = _JSON_TYPES.get(self.type)
            is_bool = isinstance(value, bool)
            if expected is not None and (
                not isinstance(value, expected) or (is_bool and self.type != "boolean")
            ):
                return f"must be of type {self.type}, got {type(value).__name__}"
        if self.enum is not None and value not in self.enum:
            return f"must be one of {', '.join(map(repr, self.enum))}"
        if isinstance(value, int | float) and not isinstance(value, bool):
            if self.minimum is not None and value < self.minimum:
                return f"must be at least {self.minimum:g}"
            if self.maximum is not None and value > self.maximum:
                return f"must be at most {self.maximum:g}"
        return None

    def typed(self, value: object) -> object:
        """A value that fits this field, in the field's JSON type: integers as ints, numbers
        as floats (a Struct carries both as doubles)."""
        if self.type == "integer" and isinstance(value, float):
            whole = whole_number(value)
            return value if whole is None else whole
        if self.type == "number" and isinstance(value, int) and not isinstance(value, bool):
            return float(value)
        return value


@dataclass(frozen=True, slots=True)
class ModelSchema:
    """A model's inputs, and the task its output says it does (None when it does not say)."""

    fields: Mapping[str, InputField]
    # IMAGE when the output is files, TEXT when it is strings; None for anything else.
    output_task: Task | None = None
    # The version this schema is of: for a model or deployment endpoint, the one that
    # was latest when fetched (the response cache keys by it).
    version: str | None = None

    def accepts(self, name: str) -> bool:
        return name in self.fields

    def names(self) -> list[str]:
        return sorted(self.fields)


def _resolve(
    node: Mapping[str, Any], components: Mapping[str, Any], seen: frozenset[str] = frozenset()
) -> Mapping[str, Any]:
    """Follows `$ref` and merges `allOf` members, the two ways cog spells a field's type.

    `seen` holds the refs being followed, so a schema that refers to itself ends.
    """
    merged: dict[str, Any] = {}
    ref = node.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/components/schemas/") and ref not in seen:
        target = components.get(ref.rsplit("/", 1)[-1])
        if isinstance(target, Mapping):
            merged.update(_resolve(target, components, seen | {ref}))
    parts = node.get("allOf")
    for part in parts if isinstance(parts, list) else ():
        if isinstance(part, Mapping):
            merged.update(_resolve(part, components, seen))
    merged.update({k: v for k, v in node.items() if k not in ("$ref", "allOf")})
    return merged


def _number(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _output_task(components: Mapping[str, Any]) -> Task | None:
    output = components.get("Output")
    if not isinstance(output, Mapping):
        return None
    node = _resolve(output, components)
    items = node.get("items") if node.get("type") == "array" else node
    if not isinstance(items, Mapping):
        return None
    items = _resolve(items, components)
    if items.get("type") != "string":
        return None
    return Task.IMAGE if items.get("format") == "uri" else Task.TEXT


def parse_model_schema(openapi_schema: object) -> ModelSchema | None:
    """The `Input` (and `Output`) of a version's openapi_schema, or None without an Input."""
    if not isinstance(openapi_schema, Mapping):
        return None
    section = openapi_schema.get("components")
    components = section.get("schemas") if isinstance(section, Mapping) else None
    if not isinstance(components, Mapping):
        return None
    schema = components.get("Input")
    if not isinstance(schema, Mapping) or not isinstance(schema.get("properties"), Mapping):
        return None
    fields = {}
    for name, raw in schema["properties"].items():
        node = _resolve(raw, components) if isinstance(raw, Mapping) else {}
        enum = node.get("enum")
        kind = node.get("type")
        fields[str(name)] = InputField(
            name=str(name),
            type=kind if isinstance(kind, str) else None,
            minimum=_number(node.get("minimum")),
            maximum=_number(node.get("maximum")),
            enum=tuple(enum) if isinstance(enum, list) else None,
        )
    return ModelSchema(fields, _output_task(components))


@dataclass
class _Entry:
    schema: ModelSchema | None
    expires: float


class SchemaCache:
    """Fetches each model's input schema once per TTL; concurrent callers share one fetch.

    A schema that cannot be fetched (a private model, a network fault) is remembered
    as unknown for a short while, and the request goes out unchecked. At most
    `max_entries` models are remembered, the least recently used forgotten first, so
    callers naming ever new models cannot grow the process.
    """

    def __init__(
        self,
        client: ReplicateClient,
        *,
        ttl_seconds: float,
        max_entries: int,
        failure_ttl_seconds: float = 30.0,
    ) -> None:
        self._client = client
        self._ttl = ttl_seconds
        self._failure_ttl = failure_ttl_seconds
        self._max_entries = max_entries
        self._entries: OrderedDict[str, _Entry] = OrderedDict()
        # One per fetch in flight: bounded by the calls in flight.
        self._pending: dict[str, asyncio.Future[ModelSchema | None]] = {}

    def __len__(self) -> int:
        """How many models' schemas (or their absence) are remembered."""
        return len(self._entries)

    @staticmethod
    def _key(ref: ModelRef) -> str | None:
        if ref.kind is EndpointKind.VERSION and ref.owner is None:
            return None  # a bare version id: Replicate has no way to look it up
        return str(ref)

    def known(self, ref: ModelRef) -> tuple[bool, ModelSchema | None]:
        """(True, the schema or None for none) when no fetch is needed; else (False, None).

        Most calls end here, so they skip the deadline a fetch is held to.
        """
        key = self._key(ref)
        if key is None:
            return True, None
        entry = self._entries.get(key)
        if entry is not None and entry.expires > time.monotonic():
            self._entries.move_to_end(key)
            return True, entry.schema
        return False, None

    async def get(self, ref: ModelRef, *, token: str, deadline: Deadline) -> ModelSchema | None:
        known, schema = self.known(ref)
        key = self._key(ref)
        if known or key is None:
            return schema
        pending = self._pending.get(key)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[ModelSchema | None] = asyncio.get_running_loop().create_future()
        self._pending[key] = future
        try:
            fetch = self._fetch(ref, token=token, deadline=deadline)
            schema = await tracing.traced("replicate.schema", fetch)
        except GatewayError as exc:
            _LOGGER.info("input schema of %s unavailable (%s); sending unchecked", key, exc)
            schema, ttl = None, self._failure_ttl
        except BaseException:
            # This caller was cancelled (or hit a bug): those sharing its fetch go on unchecked.
            future.set_result(None)
            raise
        else:
            ttl = self._ttl if schema is not None else self._failure_ttl
        finally:
            self._pending.pop(key, None)
        self._remember(key, _Entry(schema, time.monotonic() + ttl))
        future.set_result(schema)
        return schema

    def _remember(self, key: str, entry: _Entry) -> None:
        self._entries[key] = entry
        self._entries.move_to_end(key)
        while len(self._entries) > self._max_entries:
            self._entries.popitem(last=False)

    async def _fetch(self, ref: ModelRef, *, token: str, deadline: Deadline) -> ModelSchema | None:
        # Schema look-ups must not eat the prediction's time: give them a few seconds at most.
        budget = Deadline.after(min(5.0, deadline.remaining()))
        owner, name, version = ref.owner, ref.name, ref.version
        if ref.kind is EndpointKind.DEPLOYMENT:
            deployment = await self._client.get_json(
                f"/v1/deployments/{owner}/{name}",
                endpoint="deployment",
                token=token,
                deadline=budget,
            )
            release = deployment.get("current_release")
            if not isinstance(release, Mapping):
                return None
            model = str(release.get("model") or "")
            version_obj = release.get("version")
            version = version_obj.get("id") if isinstance(version_obj, Mapping) else version_obj
            if "/" not in model or not isinstance(version, str):
                return None
            owner, name = model.split("/", 1)
        if version:
            body = await self._client.get_json(
                f"/v1/models/{owner}/{name}/versions/{version}",
                endpoint="version",
                token=token,
                deadline=budget,
            )
            return _of_version(parse_model_schema(body.get("openapi_schema")), version)
        body = await self._client.get_json(
            f"/v1/models/{owner}/{name}", endpoint="model", token=token, deadline=budget
        )
        latest = body.get("latest_version")
        if not isinstance(latest, Mapping):
            return None
        latest_id = latest.get("id")
        return _of_version(
            parse_model_schema(latest.get("openapi_schema")),
            latest_id if isinstance(latest_id, str) else None,
        )


def _of_version(schema: ModelSchema | None, version: str | None) -> ModelSchema | None:
    return None if schema is None else dataclasses.replace(schema, version=version)
