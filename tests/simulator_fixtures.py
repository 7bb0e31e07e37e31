"""Helpers for tests that run against the Replicate simulator.

- `running_simulator`: an in-process simulator on the test's own loop (async tests).
- `simulator_in_thread`: a simulator on a background loop, for synchronous clients
  such as the official `replicate` package.
- `call_in_loop`: run a state method on the simulator's loop from another thread.
- `wait_until`: await a prediction reaching a condition, woken by its own events.
- `openapi_validator`: a jsonschema validator for a schema of Replicate's OpenAPI document.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import os
import threading
import urllib.parse
from collections.abc import AsyncIterator, Callable, Iterator
from functools import cache
from pathlib import Path
from typing import Any, TypeVar

import jsonschema  # type: ignore[import-untyped]
import yaml
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT7

from replicate_simulator import (
    Prediction,
    RunningSimulator,
    SimulatorConfig,
    start_simulator,
)

__all__ = [
    "FAST_CONFIG",
    "OPENAPI_PATH",
    "TEST_TOKEN",
    "auth_headers",
    "call_in_loop",
    "openapi_response_validator",
    "openapi_validator",
    "running_simulator",
    "simulator_in_thread",
    "wait_until",
]

T = TypeVar("T")

TEST_TOKEN = "r8_simulator_test_token"
# Replicate's OpenAPI document (a copy of https://api.replicate.com/openapi.json), kept in the
# shared reference folder beside the repository (as CI checks it out).
_SHARED_OPENAPI = Path(__file__).resolve().parents[2] / "shared" / "replicate" / "openapi.yaml"
OPENAPI_PATH = Path(os.environ.get("REPLICATE_OPENAPI_PATH", str(_SHARED_OPENAPI)))

# Quick models, so lifecycles finish in milliseconds.
FAST_CONFIG = SimulatorConfig(
    token_interval_seconds=0.0,
    model_behaviour={
        "stability-ai/sdxl": {"predict_seconds": 0.0},
        "meta/meta-llama-3-8b-instruct": {"predict_seconds": 0.0},
    },
)


def auth_headers(token: str = TEST_TOKEN) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@contextlib.asynccontextmanager
async def running_simulator(
    config: SimulatorConfig | None = None,
) -> AsyncIterator[RunningSimulator]:
    """A simulator on the current loop, stopped (predictions and timers included) on exit."""
    simulator = await start_simulator(config if config is not None else FAST_CONFIG)
    try:
        yield simulator
    finally:
        await simulator.stop()


@contextlib.contextmanager
def simulator_in_thread(config: SimulatorConfig | None = None) -> Iterator[RunningSimulator]:
    """A simulator served from a background thread with its own event loop."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="replicate-simulator", daemon=True)
    thread.start()
    try:
        start = start_simulator(config if config is not None else FAST_CONFIG)
        simulator = asyncio.run_coroutine_threadsafe(start, loop).result(timeout=10)
        try:
            yield simulator
        finally:
            asyncio.run_coroutine_threadsafe(simulator.stop(), loop).result(timeout=10)
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        loop.close()


def call_in_loop(simulator: RunningSimulator, function: Callable[[], T]) -> T:
    """Run `function` on the simulator's loop and return its result (from another thread)."""

    async def call() -> T:
        return function()

    return asyncio.run_coroutine_threadsafe(call(), simulator.loop).result(timeout=10)


async def wait_until(prediction: Prediction, condition: Callable[[Prediction], bool]) -> None:
    """Wait until `condition(prediction)` holds, re-checking on each of its changes.

    Gives up after 5 s, so a broken lifecycle fails the test instead of hanging it.
    """
    async with asyncio.timeout(5.0):
        while not condition(prediction):
            await prediction.wait_for_change()


@cache
def _openapi_document() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(OPENAPI_PATH.read_text(encoding="utf-8"))
    return document


@cache
def _openapi_registry() -> Registry[Any]:
    contents = _from_openapi(_openapi_document())
    resource: Resource[Any] = Resource.from_contents(contents, default_specification=DRAFT7)
    registry: Registry[Any] = Registry().with_resource("urn:replicate-openapi", resource)
    return registry


def openapi_validator(schema_name: str) -> jsonschema.Draft7Validator:
    """Validate against `components.schemas[schema_name]`, `$ref`s resolved in the document."""
    return _validator(f"/components/schemas/{schema_name}")


def openapi_response_validator(path: str, method: str, status: int) -> jsonschema.Draft7Validator:
    """Validate against the body schema the spec gives for one response of one operation."""
    operation = _openapi_document()["paths"][path][method]
    (content_type,) = operation["responses"][str(status)]["content"]
    pointer = "/".join(
        part.replace("~", "~0").replace("/", "~1")
        for part in ("", "paths", path, method, "responses", str(status), "content", content_type)
    )
    return _validator(f"{pointer}/schema")


def _validator(pointer: str) -> jsonschema.Draft7Validator:
    # Fail rather than skip: a missing document would quietly stop checking the simulator.
    assert OPENAPI_PATH.exists(), (
        f"Replicate's OpenAPI document is not at {OPENAPI_PATH}: set REPLICATE_OPENAPI_PATH"
    )
    return jsonschema.Draft7Validator(
        {"$ref": f"urn:replicate-openapi#{pointer}"},
        registry=_openapi_registry(),
        format_checker=_FORMATS,
    )


def _from_openapi(node: Any) -> Any:
    """OpenAPI 3.0 schema objects to JSON Schema: `nullable: true` becomes a null type."""
    if isinstance(node, list):
        return [_from_openapi(item) for item in node]
    if not isinstance(node, dict):
        return node
    converted = {key: _from_openapi(value) for key, value in node.items() if key != "nullable"}
    if node.get("nullable") is True:
        if "type" in converted:
            converted["type"] = [converted["type"], "null"]
        else:
            converted = {"anyOf": [converted, {"type": "null"}]}
    return converted


def _is_rfc3339(value: object) -> bool:
    if not isinstance(value, str):
        return True
    if "T" not in value or not value.endswith(("Z", "+00:00")):
        raise ValueError(f"{value!r} is not an RFC 3339 UTC timestamp")
    datetime.datetime.fromisoformat(value)
    return True


def _is_uri(value: object) -> bool:
    if not isinstance(value, str):
        return True
    parts = urllib.parse.urlsplit(value)
    return bool(parts.scheme in ("http", "https") and parts.netloc)


_FORMATS = jsonschema.FormatChecker(formats=())
_FORMATS.checks("date-time", raises=ValueError)(_is_rfc3339)
_FORMATS.checks("uri")(_is_uri)
