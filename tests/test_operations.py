"""Operation names, filters and page tokens; the store's operation records on both back ends."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from inference_gateway.access import ANONYMOUS
from inference_gateway.config import CallerConfig
from inference_gateway.errors import InvalidArgument, PermissionDenied
from inference_gateway.operations import OperationNames, _Claims, _parse_filter, _parse_page_token
from inference_gateway.state import MemoryStore, StateStore
from inference_gateway.state.redis import RedisStore
from tests.redis_fixtures import RedisServer, redis_server

KEY = b"0123456789abcdef0123456789abcdef"
NAMES = OperationNames(KEY)
ALICE = replace(ANONYMOUS, name="alice")
BOB = replace(ANONYMOUS, name="bob")


def _issued(caller: CallerConfig = ALICE) -> str:
    return NAMES.issue(
        _Claims(uuid.uuid4().hex, NAMES.caller_tag(caller.name), ("p1",), "owner/name", "text")
    )


def test_a_name_reads_back_for_its_caller_only() -> None:
    name = _issued()
    claims = NAMES.read(name, ALICE)
    assert claims.prediction_ids == ("p1",)
    assert claims.model == "owner/name"
    assert "alice" not in name
    with pytest.raises(PermissionDenied) as other:
        NAMES.read(name, BOB)
    assert other.value.reason == "OPERATION_OF_ANOTHER_CALLER"
    with pytest.raises(PermissionDenied):
        NAMES.read(name, ANONYMOUS)


def test_a_name_signed_with_another_key_is_not_one_this_gateway_issued() -> None:
    foreign = OperationNames(b"f" * 32).issue(
        _Claims("x", NAMES.caller_tag("alice"), ("p1",), "owner/name", "text")
    )
    with pytest.raises(InvalidArgument) as refused:
        NAMES.read(foreign, ALICE)
    assert refused.value.reason == "INVALID_OPERATION_NAME"


_NAME = _issued()


@given(
    position=st.integers(min_value=0, max_value=len(_NAME)),
    cut=st.integers(min_value=0, max_value=3),
    inserted=st.text(max_size=3),
)
def test_every_altered_name_is_refused_as_invalid(position: int, cut: int, inserted: str) -> None:
    altered = _NAME[:position] + inserted + _NAME[position + cut :]
    if altered == _NAME:
        return
    with pytest.raises(InvalidArgument) as refused:
        NAMES.read(altered, ALICE)
    assert refused.value.reason == "INVALID_OPERATION_NAME"


@pytest.mark.parametrize(
    ("text", "done", "status", "kept"),
    [
        ("", True, "succeeded", True),
        ("done=true", True, "succeeded", True),
        ("done=false", True, "succeeded", False),
        ("status=SUCCEEDED", True, "succeeded", True),
        ('status="prediction_status_failed"', True, "succeeded", False),
        ("status=starting AND done=false", False, "starting", True),
    ],
)
def test_filters_keep_what_they_name(text: str, done: bool, status: str, kept: bool) -> None:
    class Record:
        def __init__(self) -> None:
            self.done = done
            self.status = status

    assert _parse_filter(text)(Record()) is kept  # type: ignore[arg-type]


@given(st.text(max_size=40))
def test_any_filter_text_parses_or_is_refused_precisely(text: str) -> None:
    reason = None
    try:
        _parse_filter(text)
    except InvalidArgument as refused:
        reason = refused.reason
    assert reason in (None, "INVALID_FILTER")


@given(st.text(max_size=12))
@example("²")  # a digit to str.isdigit, not to int()
def test_any_page_token_reads_as_an_offset_or_is_refused(token: str) -> None:
    reason, offset = None, 0
    try:
        offset = _parse_page_token(token)
    except InvalidArgument as refused:
        reason = refused.reason
    assert reason in (None, "INVALID_PAGE_TOKEN")
    assert offset >= 0


# --- the store's records -------------------------------------------------------------------


@pytest.fixture(scope="module")
def shared_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    with redis_server(Path(tmp_path_factory.mktemp("redis"))) as server:
        yield server


@pytest.fixture(params=["memory", "redis"])
async def stores(
    request: pytest.FixtureRequest, shared_redis: RedisServer
) -> AsyncIterator[list[StateStore]]:
    """Two clients of one store (two replicas), or the one in-process store twice."""
    if request.param == "memory":
        memory = MemoryStore()
        yield [memory, memory]
        return
    prefix = f"test-{uuid.uuid4().hex[:8]}"
    clients = [RedisStore(shared_redis.url, prefix=prefix, timeout=5.0) for _ in range(2)]
    yield list(clients)
    for client in clients:
        await client.close()


async def test_a_record_is_seen_by_every_replica_until_it_expires(stores: list[StateStore]) -> None:
    first, second = stores
    await first.put("record", b"one", 60.0)
    assert await second.get("record") == b"one"
    await second.put("record", b"two", 0.05)
    assert await first.get("record") == b"two"
    await asyncio.sleep(0.2)  # a TTL has no event to await
    assert await first.get("record") is None
    assert await first.get("never-written") is None


async def test_put_new_lets_exactly_one_of_many_replicas_through(stores: list[StateStore]) -> None:
    attempts = [store.put_new("once", b"1", 60.0) for store in stores * 10]
    assert sorted(await asyncio.gather(*attempts)) == [False] * 19 + [True]


async def test_an_index_lists_live_members_oldest_first(stores: list[StateStore]) -> None:
    first, second = stores
    for member in ("a", "b", "c"):
        await first.index_add("index", member, 60.0)
    await second.index_add("index", "a", 60.0)  # a refresh keeps its place
    await second.index_add("index", "gone", 0.05)
    await first.index_remove("index", "b")
    await asyncio.sleep(0.2)  # a TTL has no event to await
    assert await second.index_members("index") == ["a", "c"]
    assert await first.index_members("empty") == []
