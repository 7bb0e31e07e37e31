"""Spend budgets and the response cache across replicas sharing one Redis.

Each gateway is a full server on its own port, as a replica would be; the simulator is
one Replicate account, and its request log counts the predictions really created.
"""

from __future__ import annotations

import asyncio
import logging
import textwrap
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack, asynccontextmanager
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING

import grpc
import pytest
from google.rpc import error_details_pb2

from inference_gateway.config import GatewayConfig, hash_token, load_config
from inference_gateway.grpc_api.server import start_gateway
from inference_gateway_protos.inference.gateway.v1 import gateway_pb2 as pb
from inference_gateway_protos.inference.gateway.v1 import gateway_pb2_grpc
from replicate_simulator import RunningSimulator, SimulatorConfig, start_simulator
from tests import gateway_harness
from tests.redis_fixtures import RedisServer, redis_server
from tests.support.models import LLAMA2
from tests.support.rpc_status import error_info, has_detail

pytestmark = pytest.mark.asyncio

FLUX = "black-forest-labs/flux-schnell"
TOKEN = "cgw_test_budget_team_0123456789ab"
AUTH = (("authorization", f"Bearer {TOKEN}"),)
if TYPE_CHECKING:  # the async stub exists only in the type stubs
    from inference_gateway_protos.inference.gateway.v1.gateway_pb2_grpc import (
        InferenceGatewayAsyncStub as Stub,
    )


def config(tmp_path: Path) -> GatewayConfig:
    path = tmp_path / "gateway.yaml"
    path.write_text(
        textwrap.dedent(
            f"""\
            aliases:
              flux: {{model: {FLUX}, task: image}}
              llama2: {{model: {LLAMA2}, cache: true}}
            pricing:
              models:
                {FLUX}: {{image: "0.30"}}
                meta/*: {{input_token: "0.000001", output_token: "0.000002"}}
            callers:
              team-a:
                token_sha256: {hash_token(TOKEN)}
                aliases: ["*"]
                budget: {{amount: "1.00", per: day}}
            """
        )
    )
    return load_config(path, {})


@pytest.fixture
def redis(tmp_path: Path) -> Iterator[RedisServer]:
    with redis_server(tmp_path) as server:
        yield server


@asynccontextmanager
async def replicas(
    count: int, gateway_config: GatewayConfig, redis_url: str, predict_seconds: float = 0.0
) -> AsyncIterator[tuple[RunningSimulator, list[Stub]]]:
    behaviour = {FLUX: {"predict_seconds": predict_seconds}}
    simulator_config = SimulatorConfig(token_interval_seconds=0.0, model_behaviour=behaviour)
    async with AsyncExitStack() as stack:
        simulator = await start_simulator(simulator_config, "127.0.0.1", 0)
        stack.push_async_callback(simulator.stop)
        stubs = []
        for _ in range(count):
            gateway = await start_gateway(
                # A generous store timeout: on a loaded machine a 0.25 s one would fail closed.
                gateway_harness.test_settings(
                    base_url=simulator.base_url, redis_url=redis_url, redis_timeout=5.0
                ),
                gateway_config,
                {},
                serve_metrics=False,
            )
            stack.push_async_callback(gateway.stop, 0.1)
            channel = grpc.aio.insecure_channel(f"127.0.0.1:{gateway.port}")
            stack.push_async_callback(channel.close, None)
            stubs.append(gateway_pb2_grpc.InferenceGatewayStub(channel))
        yield simulator, stubs


async def draw(stub: Stub) -> str:
    """`OK cost`, or the refusal's code, reason and budget metadata."""
    try:
        reply = await stub.GenerateImage(
            pb.GenerateImageRequest(model="flux", prompt="a fox"), metadata=AUTH, timeout=20
        )
    except grpc.aio.AioRpcError as error:
        info = error_info(error)
        keys = ("caller", "limit", "period", "currency")
        outcome = [error.code().name, info.reason, *(info.metadata[k] for k in keys)]
        tomorrow = datetime.now(UTC).date() + timedelta(days=1)
        if info.metadata["resetsAt"] == f"{tomorrow.isoformat()}T00:00:00Z":
            outcome.append("resets-at-midnight")
        if has_detail(error, error_details_pb2.RetryInfo):
            outcome.append("RetryInfo")
        return " ".join(outcome)
    return f"OK {reply.cost.amount}"


REFUSED = (
    "RESOURCE_EXHAUSTED CALLER_BUDGET_EXHAUSTED team-a 1.000000000 day USD "
    "resets-at-midnight RetryInfo"
)


async def test_a_daily_budget_gives_three_images_then_refuses_on_any_replica(
    redis: RedisServer, tmp_path: Path
) -> None:
    async with replicas(3, config(tmp_path), redis.url) as (simulator, stubs):
        outcomes = [await draw(stubs[i % 3]) for i in range(5)]
        usage = await stubs[1].GetUsage(pb.GetUsageRequest(), metadata=AUTH)
        creates = simulator.state.requests.count("create")
    assert outcomes == ["OK 0.300000000"] * 3 + [REFUSED] * 2
    assert creates == 3
    assert usage.resets_at.ToDatetime() - usage.period_start.ToDatetime() == timedelta(days=1)
    assert Decimal(usage.spent) == Decimal("0.90")
    assert Decimal(usage.remaining) == Decimal("0.10")


async def test_concurrent_calls_cannot_overspend(redis: RedisServer, tmp_path: Path) -> None:
    # Every call is in flight at once (predictions run 1 s): only reservations stop them.
    async with replicas(3, config(tmp_path), redis.url, predict_seconds=1.0) as (sim, stubs):
        outcomes = await asyncio.gather(*(draw(stubs[i % 3]) for i in range(10)))
        usage = await stubs[0].GetUsage(pb.GetUsageRequest(), metadata=AUTH)
        creates = sim.state.requests.count("create")
    assert sorted(outcomes) == ["OK 0.300000000"] * 3 + [REFUSED] * 7
    assert creates == 3
    # At most one reservation (0.30) past the limit; here none, as each image costs its
    # reservation exactly.
    assert Decimal(usage.spent) <= Decimal("1.00") + Decimal("0.30")
    assert Decimal(usage.spent) == Decimal("0.90")


async def test_a_budget_refuses_when_the_store_is_down_by_default(
    redis: RedisServer, tmp_path: Path
) -> None:
    async with replicas(1, config(tmp_path), redis.url) as (simulator, stubs):
        redis.stop()
        outcome = await draw(stubs[0])
        creates = simulator.state.requests.count("create")
    assert outcome.startswith("UNAVAILABLE STATE_STORE_UNAVAILABLE")
    assert creates == 0


async def ask(
    stub: Stub, seed: int | None, mode: pb.CacheMode.ValueType = pb.CACHE_MODE_UNSPECIFIED
) -> pb.GenerateTextResponse:
    # max_new_tokens bounds the cost the budget reserves; seed makes the answer reproducible.
    request = pb.GenerateTextRequest(
        model="llama2", prompt="a haiku", max_new_tokens=32, cache=mode
    )
    if seed is not None:
        request.seed = seed
    reply: pb.GenerateTextResponse = await stub.GenerateText(request, metadata=AUTH, timeout=20)
    return reply


async def test_a_seeded_request_twice_on_two_replicas_makes_one_prediction(
    redis: RedisServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="inference_gateway.requests")
    async with replicas(2, config(tmp_path), redis.url) as (simulator, stubs):
        first = await ask(stubs[0], seed=7)
        second = await ask(stubs[1], seed=7)
        creates = simulator.state.requests.count("create")
        fresh = await ask(stubs[1], seed=7, mode=pb.CACHE_MODE_BYPASS)
        bypassed_creates = simulator.state.requests.count("create")
    assert creates == 1
    assert second.text == first.text
    assert second.prediction.id == first.prediction.id
    assert not first.cost.cache_hit
    assert Decimal(first.cost.amount) > 0
    assert second.cost.cache_hit
    assert Decimal(second.cost.amount) == 0
    assert second.cost.known
    assert bypassed_creates == 2
    assert not fresh.cost.cache_hit
    # The log line says so too: the hit at no cost, the others at their prediction's.
    lines = [
        record.request  # type: ignore[attr-defined]
        for record in caplog.records
        if record.name == "inference_gateway.requests"
    ]
    assert [(line.get("cache_hit"), line["cost"]) for line in lines] == [
        (None, first.cost.amount),
        (True, "0.000000000"),
        (None, fresh.cost.amount),
    ]


async def test_a_stream_is_answered_from_the_cache_in_one_piece(
    redis: RedisServer, tmp_path: Path
) -> None:
    async with replicas(2, config(tmp_path), redis.url) as (simulator, stubs):
        first = await ask(stubs[0], seed=11)
        request = pb.GenerateTextRequest(
            model="llama2", prompt="a haiku", max_new_tokens=32, seed=11
        )
        pieces = [m async for m in stubs[1].StreamText(request, metadata=AUTH, timeout=20)]
        creates = simulator.state.requests.count("create")
    assert creates == 1
    assert "".join(piece.text for piece in pieces) == first.text
    last = pieces[-1]
    assert last.prediction.id == first.prediction.id
    assert last.cost.cache_hit
    assert Decimal(last.cost.amount) == 0


async def test_an_unseeded_request_is_never_cached(redis: RedisServer, tmp_path: Path) -> None:
    async with replicas(2, config(tmp_path), redis.url) as (simulator, stubs):
        replies = [await ask(stubs[i % 2], seed=None) for i in range(2)]
        creates = simulator.state.requests.count("create")
    assert creates == 2
    assert not any(reply.cost.cache_hit for reply in replies)
