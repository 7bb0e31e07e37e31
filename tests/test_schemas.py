"""Input schemas: reading cog's OpenAPI, checking values, and the shared, expiring cache."""

from __future__ import annotations

import asyncio
import dataclasses
import math
from collections import Counter
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

import grpc
import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from inference_gateway.deadlines import Deadline
from inference_gateway.grpc_api.server import client_settings
from inference_gateway.model_ids import parse_model_id
from inference_gateway.replicate import ReplicateClient
from inference_gateway.schemas import InputField, ModelSchema, SchemaCache, parse_model_schema
from inference_gateway.settings import Settings
from inference_gateway_protos.inference.gateway.v1 import gateway_pb2 as pb
from tests.gateway_harness import running_gateway

VERSION = "5c7d5dc6dd8bf75c1acaa8565735e7986bc5b66206b55cca93cb72c9bf15ccaa"

# The shape cog writes: plain fields, and enums behind allOf + $ref.
COG_OPENAPI: dict[str, Any] = {
    "openapi": "3.0.2",
    "components": {
        "schemas": {
            "Input": {
                "type": "object",
                "required": ["prompt"],
                "properties": {
                    "prompt": {"type": "string", "title": "Prompt", "x-order": 0},
                    "max_new_tokens": {"type": "integer", "minimum": 1, "maximum": 4096},
                    "temperature": {"type": "number", "minimum": 0, "maximum": 5.5},
                    "output_format": {
                        "allOf": [{"$ref": "#/components/schemas/output_format"}],
                        "default": "webp",
                    },
                    "image": {"type": "string", "format": "uri"},
                    "extras": {"description": "no type at all"},
                },
            },
            "output_format": {"type": "string", "enum": ["webp", "jpg", "png"]},
            "Output": {"type": "array", "items": {"type": "string"}},
        }
    },
}


def test_cog_schema_fields_are_read_with_refs_resolved() -> None:
    schema = parse_model_schema(COG_OPENAPI)
    assert schema is not None
    assert schema.names() == [
        "extras",
        "image",
        "max_new_tokens",
        "output_format",
        "prompt",
        "temperature",
    ]
    assert schema.fields["max_new_tokens"] == InputField("max_new_tokens", "integer", 1.0, 4096.0)
    assert schema.fields["temperature"] == InputField("temperature", "number", 0.0, 5.5)
    assert schema.fields["output_format"] == InputField(
        "output_format", "string", enum=("webp", "jpg", "png")
    )
    assert schema.fields["extras"] == InputField("extras", None)
    assert schema.accepts("prompt")
    assert not schema.accepts("Prompt")


def test_a_field_overrides_what_its_ref_says() -> None:
    openapi = {
        "components": {
            "schemas": {
                "Input": {"properties": {"n": {"$ref": "#/components/schemas/N", "maximum": 3}}},
                "N": {"type": "integer", "maximum": 10, "minimum": 1},
            }
        }
    }
    schema = parse_model_schema(openapi)
    assert schema is not None
    assert schema.fields["n"] == InputField("n", "integer", 1.0, 3.0)


@pytest.mark.parametrize(
    "openapi",
    [
        None,
        "schema",
        {},
        {"components": None},
        {"components": ["schemas"]},
        {"components": {"schemas": []}},
        {"components": {"schemas": {"Output": {}}}},
        {"components": {"schemas": {"Input": {"type": "object"}}}},
        {"components": {"schemas": {"Input": {"properties": ["prompt"]}}}},
    ],
)
def test_a_schema_without_a_readable_input_is_none(openapi: object) -> None:
    assert parse_model_schema(openapi) is None


def test_refs_that_loop_and_odd_allof_values_still_parse() -> None:
    openapi = {
        "components": {
            "schemas": {
                "Input": {
                    "properties": {
                        "a": {"$ref": "#/components/schemas/A"},
                        "b": {"allOf": 5, "type": "string"},
                        "c": {"allOf": "xyz", "$ref": "#/elsewhere/C"},
                        "d": [1, 2],
                    }
                },
                "A": {"allOf": [{"$ref": "#/components/schemas/B"}], "type": "integer"},
                "B": {"$ref": "#/components/schemas/A", "minimum": 2},
            }
        }
    }
    schema = parse_model_schema(openapi)
    assert schema is not None
    assert schema.fields["a"] == InputField("a", "integer", minimum=2.0)
    assert schema.fields["b"] == InputField("b", "string")
    assert schema.fields["c"] == InputField("c", None)
    assert schema.fields["d"] == InputField("d", None)


_JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=8)
    | st.sampled_from(["#/components/schemas/Input", "#/components/schemas/X", "allOf", "$ref"]),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(
            st.sampled_from(["$ref", "allOf", "type", "enum", "minimum", "maximum", "X", "Input"])
            | st.text(max_size=4),
            inner,
            max_size=5,
        )
    ),
    max_leaves=30,
)


@given(
    properties=st.dictionaries(st.text(max_size=5), _JSON, max_size=5),
    others=st.dictionaries(st.sampled_from(["X", "Y", "Input"]), _JSON, max_size=3),
    anything=_JSON,
)
def test_parsing_never_raises_on_arbitrary_json(
    properties: dict[str, object], others: dict[str, object], anything: object
) -> None:
    openapi = {"components": {"schemas": {**others, "Input": {"properties": properties}}}}
    schema = parse_model_schema(openapi)
    assert schema is not None
    assert set(schema.fields) == set(properties)
    parse_model_schema(anything)
    parse_model_schema({"components": anything})
    parse_model_schema({"components": {"schemas": anything}})


# --- field checks ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value", "problem"),
    [
        (InputField("n", "integer", 1, 10), 5, None),
        (InputField("n", "integer", 1, 10), 5.0, None),
        (InputField("n", "integer", 1, 10), 5.5, "must be of type integer, got float"),
        (InputField("n", "integer", 1, 10), True, "must be of type integer, got bool"),
        (InputField("n", "integer", 1, 10), "5", "must be of type integer, got str"),
        (InputField("n", "integer", 1, 10), 0, "must be at least 1"),
        (InputField("n", "integer", 1, 10), 11, "must be at most 10"),
        (InputField("t", "number", 0, 1.5), 2, "must be at most 1.5"),
        (InputField("t", "number", 0, 1.5), False, "must be of type number, got bool"),
        (InputField("b", "boolean"), True, None),
        (InputField("b", "boolean"), 1, "must be of type boolean, got int"),
        (InputField("s", "string", enum=("a", "b")), "c", "must be one of 'a', 'b'"),
        (InputField("s", "string", enum=("a", "b")), "b", None),
        (InputField("l", "array"), ["x"], None),
        (InputField("o", "object"), {"k": 1}, None),
        (InputField("o", "object"), [], "must be of type object, got list"),
        (InputField("u", "null-ish-unknown"), 3, None),
        (InputField("any", None, maximum=1), 2, "must be at most 1"),
        (InputField("n", "integer", 1, 10), None, None),
    ],
)
def test_field_problems(field: InputField, value: object, problem: str | None) -> None:
    assert field.problem(value) == problem


_ANY_JSON_VALUE = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner),
    max_leaves=10,
)
_FIELDS = st.builds(
    InputField,
    name=st.just("f"),
    type=st.sampled_from([None, "string", "integer", "number", "boolean", "array", "object", "x"]),
    minimum=st.none() | st.floats(allow_nan=False, allow_infinity=False),
    maximum=st.none() | st.floats(allow_nan=False, allow_infinity=False),
    enum=st.none() | st.lists(_ANY_JSON_VALUE, max_size=3).map(tuple),
)


@given(field=_FIELDS, value=_ANY_JSON_VALUE)
def test_problem_never_raises_on_any_json_value(field: InputField, value: object) -> None:
    problem = field.problem(value)
    assert problem is None or problem.startswith("must be ")


@given(
    low=st.integers(-100, 100),
    span=st.integers(0, 200),
    value=st.integers(-400, 400) | st.floats(-400, 400) | st.booleans() | st.text(max_size=2),
)
def test_a_bounded_integer_accepts_exactly_the_whole_numbers_in_range(
    low: int, span: int, value: object
) -> None:
    high = low + span
    whole = (isinstance(value, int) and not isinstance(value, bool)) or (
        isinstance(value, float) and math.isfinite(value) and value == int(value)
    )
    in_range = whole and low <= value <= high  # type: ignore[operator]
    assert (InputField("n", "integer", low, high).problem(value) is None) == in_range


# --- the cache ------------------------------------------------------------------------------


class Replicate:
    """Serves model, version and deployment objects by path; can hold requests at a gate."""

    def __init__(self, objects: Mapping[str, object]) -> None:
        self.objects = dict(objects)
        self.calls: Counter[str] = Counter()
        self.arrived = asyncio.Event()
        self.gate: asyncio.Event | None = None

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        self.calls[request.url.path] += 1
        self.arrived.set()
        if self.gate is not None:
            await self.gate.wait()
        body = self.objects.get(request.url.path)
        if body is None:
            return httpx.Response(404, json={"detail": "Not found."})
        return httpx.Response(200, json=body)


@asynccontextmanager
async def cache_over(
    replicate: Replicate, *, ttl: float = 300, failure_ttl: float = 300, size: int = 1024
) -> AsyncIterator[SchemaCache]:
    client = ReplicateClient(
        client_settings(Settings(base_url="https://api.replicate.test")),
        transport=httpx.MockTransport(replicate),
        jitter=lambda: 0.0,
    )
    try:
        yield SchemaCache(
            client, ttl_seconds=ttl, failure_ttl_seconds=failure_ttl, max_entries=size
        )
    finally:
        await client.aclose()


def lookup(cache: SchemaCache, model_id: str) -> Any:
    return cache.get(parse_model_id(model_id), token="t", deadline=Deadline.after(5))


MODEL_PATH = "/v1/models/meta/llama"
VERSION_PATH = f"/v1/models/acme/painter/versions/{VERSION}"
DEPLOYMENT_PATH = "/v1/deployments/acme/prod"


async def test_an_official_model_reads_its_latest_version() -> None:
    replicate = Replicate({MODEL_PATH: {"latest_version": {"openapi_schema": COG_OPENAPI}}})
    async with cache_over(replicate) as cache:
        schema = await lookup(cache, "meta/llama")
    assert schema == parse_model_schema(COG_OPENAPI)


async def test_a_pinned_version_reads_that_version() -> None:
    replicate = Replicate({VERSION_PATH: {"id": VERSION, "openapi_schema": COG_OPENAPI}})
    async with cache_over(replicate) as cache:
        schema = await lookup(cache, f"acme/painter:{VERSION}")
    assert isinstance(schema, ModelSchema)
    assert replicate.calls == Counter({VERSION_PATH: 1})


@pytest.mark.parametrize("version", [{"id": VERSION}, VERSION], ids=["object", "string"])
async def test_a_deployment_reads_its_current_release(version: object) -> None:
    replicate = Replicate(
        {
            DEPLOYMENT_PATH: {"current_release": {"model": "acme/painter", "version": version}},
            VERSION_PATH: {"openapi_schema": COG_OPENAPI},
        }
    )
    async with cache_over(replicate) as cache:
        schema = await lookup(cache, "deployments/acme/prod")
    # The release's version is the one the response cache keys this deployment's calls by.
    expected = parse_model_schema(COG_OPENAPI)
    assert expected is not None
    assert schema == dataclasses.replace(expected, version=VERSION)
    assert replicate.calls == Counter({DEPLOYMENT_PATH: 1, VERSION_PATH: 1})


@pytest.mark.parametrize(
    "deployment",
    [{}, {"current_release": None}, {"current_release": "v1"}, {"current_release": {"model": "x"}}],
)
async def test_a_deployment_without_a_readable_release_has_no_schema(
    deployment: dict[str, object],
) -> None:
    replicate = Replicate({DEPLOYMENT_PATH: deployment})
    async with cache_over(replicate) as cache:
        assert await lookup(cache, "deployments/acme/prod") is None
    assert replicate.calls == Counter({DEPLOYMENT_PATH: 1})


async def test_a_bare_version_cannot_be_looked_up() -> None:
    replicate = Replicate({})
    async with cache_over(replicate) as cache:
        assert await lookup(cache, VERSION) is None
    assert replicate.calls == Counter()


async def test_a_schema_is_fetched_once_per_ttl() -> None:
    replicate = Replicate({MODEL_PATH: {"latest_version": {"openapi_schema": COG_OPENAPI}}})
    async with cache_over(replicate, failure_ttl=0) as cache:
        await lookup(cache, "meta/llama")
        await lookup(cache, "meta/llama")
    assert replicate.calls[MODEL_PATH] == 1
    async with cache_over(replicate, ttl=0, failure_ttl=300) as cache:
        await lookup(cache, "meta/llama")
        await lookup(cache, "meta/llama")
    assert replicate.calls[MODEL_PATH] == 3


async def test_known_answers_without_a_fetch_only_what_needs_none() -> None:
    replicate = Replicate({MODEL_PATH: {"latest_version": {"openapi_schema": COG_OPENAPI}}})
    async with cache_over(replicate, failure_ttl=0) as cache:
        assert cache.known(parse_model_id("meta/llama")) == (False, None)
        assert cache.known(parse_model_id(VERSION)) == (True, None)
        fetched = await lookup(cache, "meta/llama")
        assert cache.known(parse_model_id("meta/llama")) == (True, fetched)
        assert cache.known(parse_model_id("meta/other")) == (False, None)
    assert fetched is not None
    assert replicate.calls == Counter({MODEL_PATH: 1})


@pytest.mark.parametrize(
    "objects",
    [{}, {MODEL_PATH: {"latest_version": None}}],
    ids=["not-found", "no-version"],
)
async def test_an_unavailable_schema_is_remembered_for_the_failure_ttl(
    objects: dict[str, object],
) -> None:
    replicate = Replicate(objects)
    async with cache_over(replicate, ttl=0, failure_ttl=300) as cache:
        assert await lookup(cache, "meta/llama") is None
        assert await lookup(cache, "meta/llama") is None
    assert replicate.calls[MODEL_PATH] == 1
    async with cache_over(replicate, ttl=300, failure_ttl=0) as cache:
        await lookup(cache, "meta/llama")
        await lookup(cache, "meta/llama")
    assert replicate.calls[MODEL_PATH] == 3


async def test_concurrent_callers_share_one_fetch() -> None:
    replicate = Replicate({MODEL_PATH: {"latest_version": {"openapi_schema": COG_OPENAPI}}})
    replicate.gate = asyncio.Event()
    # With no TTL only the shared fetch, not the cache, can save the others a request.
    async with cache_over(replicate, ttl=0) as cache:
        first = asyncio.create_task(lookup(cache, "meta/llama"))
        await replicate.arrived.wait()
        others = [asyncio.create_task(lookup(cache, "meta/llama")) for _ in range(5)]
        await asyncio.sleep(0)  # let the others reach the shared fetch
        replicate.gate.set()
        results = await asyncio.gather(first, *others)
    assert replicate.calls[MODEL_PATH] == 1
    assert all(r == parse_model_schema(COG_OPENAPI) for r in results)


async def test_callers_sharing_a_cancelled_fetch_go_on_without_a_schema() -> None:
    replicate = Replicate({MODEL_PATH: {"latest_version": {"openapi_schema": COG_OPENAPI}}})
    replicate.gate = asyncio.Event()
    async with cache_over(replicate) as cache:
        leader = asyncio.create_task(lookup(cache, "meta/llama"))
        await replicate.arrived.wait()
        follower = asyncio.create_task(lookup(cache, "meta/llama"))
        await asyncio.sleep(0)
        leader.cancel()
        # Before the fix the follower waited forever on a future nobody would resolve.
        assert await asyncio.wait_for(follower, timeout=2) is None
        assert leader.cancelled()
        # Nothing was cached: the next caller fetches afresh.
        replicate.gate.set()
        assert await lookup(cache, "meta/llama") == parse_model_schema(COG_OPENAPI)
    assert replicate.calls[MODEL_PATH] == 2


# --- a bounded cache ---------------------------------------------------------------------


async def test_the_least_recently_used_model_is_forgotten_first() -> None:
    paths = {f"/v1/models/owner/m{i}": {"latest_version": None} for i in range(4)}
    replicate = Replicate(paths)
    async with cache_over(replicate, size=3) as cache:
        for i in (0, 1, 2, 0, 3):  # m0 used again, so m1 is the least recent when m3 comes
            await lookup(cache, f"owner/m{i}")
        assert len(cache) == 3
        for i in (0, 2, 3):  # remembered: no request
            await lookup(cache, f"owner/m{i}")
        await lookup(cache, "owner/m1")  # forgotten: fetched again
    assert replicate.calls == Counter(
        {"/v1/models/owner/m0": 1, "/v1/models/owner/m1": 2, "/v1/models/owner/m2": 1,
         "/v1/models/owner/m3": 1}
    )  # fmt: skip


async def test_distinct_model_ids_over_grpc_never_grow_the_cache_past_its_bound() -> None:
    bound, distinct = 8, 60
    async with running_gateway(schema_cache_size=bound) as h:
        schemas = h.gateway.gateway._schemas
        sizes = []
        for i in range(distinct):
            request = pb.GenerateTextRequest(model=f"prober/model-{i}", prompt="x")
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await h.stub.GenerateText(request, timeout=20)
            assert caught.value.code() == grpc.StatusCode.NOT_FOUND
            sizes.append(len(schemas))
        looked_up = h.requests.count("model")
        exported = h.gateway.metrics.registry.get_sample_value(
            "inference_gateway_schema_cache_entries"
        )
        # The most recent model is still remembered; the first was forgotten.
        for i in (distinct - 1, 0):
            with pytest.raises(grpc.aio.AioRpcError):
                await h.stub.GenerateText(
                    pb.GenerateTextRequest(model=f"prober/model-{i}", prompt="x"), timeout=20
                )
        again = h.requests.count("model") - looked_up
    assert looked_up == distinct
    assert sizes == [min(n, bound) for n in range(1, distinct + 1)]
    assert exported == bound  # what /metrics shows operators
    assert again == 1
