"""An abandoned StreamText closes everything it opened at once, over real gRPC and HTTP.

A caller that cancels a stream must leave nothing behind: the upstream SSE GET is closed
(the simulator counts the stream responses it is serving), the gateway's upstream
connections go back to what they were, its prediction gets exactly one cancel, and no
generator of the gateway is left for the garbage collector to close later, in another
task and context (where its cancel and spans land in the wrong call).
"""

from __future__ import annotations

import asyncio
import sys
import uuid
from collections import Counter
from collections.abc import AsyncGenerator, AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import AsyncGeneratorType
from typing import Any, cast

import grpc
import pytest
from google.rpc import error_details_pb2

from inference_gateway_protos.inference.gateway.v1 import gateway_pb2 as pb
from tests.gateway_harness import Harness, running_gateway
from tests.support.models import LLAMA2, LLAMA3
from tests.support.rpc_status import status_detail

CALLS = 4
# Enough text that the gateway is still writing it when the caller leaves (the caller
# reads one message; gRPC's flow control then holds the gateway in its write).
FLOOD_TOKENS = 60_000
PATIENCE_S = 20.0
CONFIG = f"""
aliases:
  hedged:
    model: {LLAMA3}
    fallbacks: [backup]
    hedge_after_seconds: 30
  hedged-now:
    model: {LLAMA3}
    fallbacks: [backup]
    hedge_after_seconds: 1
  backup:
    model: {LLAMA2}
"""


@contextmanager
def left_to_gc() -> Iterator[Counter[str]]:
    """Names of the gateway's async generators closed by their finalizer (the garbage
    collector's path) rather than by whoever iterated them. Entered on the running loop,
    which installs its own hooks each time it starts."""
    found: Counter[str] = Counter()
    before = sys.get_asyncgen_hooks()
    loop_finalizer = before.finalizer

    def finalizer(generator: AsyncGenerator[Any, Any]) -> None:
        code = cast("AsyncGeneratorType[Any, Any]", generator).ag_code
        if "inference_gateway" in code.co_filename:
            found[code.co_qualname] += 1
        if loop_finalizer is not None:
            loop_finalizer(generator)

    sys.set_asyncgen_hooks(firstiter=before.firstiter, finalizer=finalizer)
    try:
        yield found
    finally:
        sys.set_asyncgen_hooks(*before)


@pytest.fixture
async def h(tmp_path: Path) -> AsyncIterator[Harness]:
    path = tmp_path / "gateway.yaml"
    path.write_text(CONFIG, encoding="utf-8")
    async with running_gateway(config=path, idempotency_grace=0.5) as harness:
        yield harness


def upstream_in_use(h: Harness) -> int:
    """Connections the gateway's pool has handed out and not had back."""
    # Nothing public counts them: the client's transport, its aiohttp session, its pool.
    transport: Any = h.gateway.client._http._transport
    session = transport._session
    return 0 if session is None else len(session.connector._acquired)


async def first_text(call: Any) -> None:
    async for message in call:
        if message.text:
            return
    raise AssertionError("the stream ended before any text")


@pytest.mark.parametrize(
    ("model", "with_request_id"),
    [(LLAMA3, False), ("hedged", False), ("hedged-now", False), (LLAMA3, True)],
    ids=["plain", "routed", "hedge_won", "request_id"],
)
async def test_canceled_streams_close_upstream_at_once_and_cancel_once_each(
    h: Harness, model: str, with_request_id: bool
) -> None:
    for name in (LLAMA3, LLAMA2):
        h.simulator.state.set_behaviour(
            name, token_interval_seconds=0.0, output_tokens=FLOOD_TOKENS, never_finishes=True
        )
    if model == "hedged-now":
        # The own model stays booting, so its hedge (the backup) sends the text and
        # answers; the booting one is dropped as the hedge wins.
        h.simulator.state.set_behaviour(LLAMA3, queue_seconds=60)
    with left_to_gc() as closed_by_gc:
        baseline = upstream_in_use(h)
        calls = [
            h.stub.StreamText(
                pb.GenerateTextRequest(
                    model=model,
                    prompt=f"story {i}",
                    request_id=str(uuid.uuid4()) if with_request_id else "",
                ),
                timeout=60,
            )
            for i in range(CALLS)
        ]
        for call in calls:
            await asyncio.wait_for(first_text(call), PATIENCE_S)
        for call in calls:
            call.cancel()

        # Each upstream stream is closed (by the gateway, or by the cancel that ends it)...
        await asyncio.wait_for(h.simulator.state.open_streams.wait_for_at_most(0), PATIENCE_S)
        # ...each prediction canceled, and nothing of the gateway's left to the collector.
        predictions = len(h.simulator.state.predictions)
        await asyncio.wait_for(h.requests.wait_for(predictions, "cancel"), PATIENCE_S)
        await h.gateway.runner.drain_cancels(PATIENCE_S)
        assert dict(closed_by_gc) == {}
        assert upstream_in_use(h) == baseline
        assert h.gateway.runner.running == {}
        canceled = Counter(request.path for request in h.requests.matching("cancel"))
        assert len(canceled) == predictions == CALLS * (2 if model == "hedged-now" else 1)
        assert set(canceled.values()) == {1}
        assert {p.status for p in h.simulator.state.predictions.values()} == {"canceled"}
    for call in calls:
        assert await call.code() == grpc.StatusCode.CANCELLED


# --- errors once the prediction exists name it -----------------------------------------------


def prediction_named(caught: grpc.aio.AioRpcError) -> tuple[str, str]:
    info = status_detail(caught, error_details_pb2.ErrorInfo)
    return info.reason, info.metadata["predictionId"]


@pytest.mark.slow
async def test_an_unreachable_replicate_after_the_create_names_the_prediction(h: Harness) -> None:
    # The create answers; every read of the prediction after it finds no server.
    h.simulator.state.set_behaviour(LLAMA3, never_finishes=True, streams=False)
    h.simulator.state.faults.add(kind="get", drop_connection=True, times=None)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        async for _ in h.stub.StreamText(
            pb.GenerateTextRequest(model=LLAMA3, prompt="x"), timeout=30
        ):
            pass
    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
    [created] = h.simulator.state.predictions
    assert prediction_named(caught.value) == ("REPLICATE_UNREACHABLE", created)


async def test_an_upstream_error_while_a_call_follows_its_prediction_names_it() -> None:
    async with running_gateway(max_wait=1) as h:
        h.simulator.state.set_behaviour(LLAMA3, never_finishes=True)
        # The held create answers, then the stream and the reads after it are refused.
        h.simulator.state.faults.add(kind="stream", status=404, times=None)
        h.simulator.state.faults.add(kind="get", status=404, times=None)
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await h.stub.GenerateText(pb.GenerateTextRequest(model=LLAMA3, prompt="x"), timeout=30)
        assert caught.value.code() == grpc.StatusCode.NOT_FOUND
        [created] = h.simulator.state.predictions
        assert prediction_named(caught.value) == ("REPLICATE_NOT_FOUND", created)
