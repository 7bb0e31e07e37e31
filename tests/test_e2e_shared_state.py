"""Several gateway processes' worth of gateways on one simulator account, sharing state.

Each gateway here is a full server on its own port (its own gRPC server, client and
budgets), as a replica would be; only the store between them differs.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path

import grpc
import pytest
from google.rpc import error_details_pb2

from inference.gateway.v1 import gateway_pb2 as pb
from inference.gateway.v1 import gateway_pb2_grpc
from inference_gateway.config import GatewayConfig
from inference_gateway.grpc_api.server import start_gateway
from replicate_simulator import RunningSimulator, SimulatorConfig, start_simulator
from tests import gateway_harness
from tests.redis_fixtures import RedisServer, redis_server
from tests.support.models import LLAMA3
from tests.support.rpc_status import error_info, has_detail


@pytest.fixture
def redis(tmp_path: Path) -> Iterator[RedisServer]:
    with redis_server(tmp_path) as server:
        yield server


@asynccontextmanager
async def replicas(
    count: int, simulator: RunningSimulator, **settings: object
) -> AsyncIterator[list[gateway_pb2_grpc.InferenceGatewayAsyncStub]]:
    async with AsyncExitStack() as stack:
        stubs = []
        for _ in range(count):
            gateway = await start_gateway(
                gateway_harness.test_settings(base_url=simulator.base_url, **settings),
                GatewayConfig.empty(),
                {},
                serve_metrics=False,
            )
            stack.push_async_callback(gateway.stop, 0.1)
            channel = grpc.aio.insecure_channel(f"127.0.0.1:{gateway.port}")
            stack.push_async_callback(channel.close, None)
            stubs.append(gateway_pb2_grpc.InferenceGatewayStub(channel))
        yield stubs


@asynccontextmanager
async def simulator() -> AsyncIterator[RunningSimulator]:
    running = await start_simulator(SimulatorConfig(token_interval_seconds=0.0), "127.0.0.1", 0)
    try:
        yield running
    finally:
        await running.stop()


async def _generate(stub: gateway_pb2_grpc.InferenceGatewayAsyncStub) -> str:
    """`OK`, or the status code and, for a refusal, its ErrorInfo reason and RetryInfo."""
    try:
        await stub.GenerateText(pb.GenerateTextRequest(model=LLAMA3, prompt="hi"), timeout=3)
    except grpc.aio.AioRpcError as error:
        outcome = [error.code().name, error_info(error).reason]
        if has_detail(error, error_details_pb2.RetryInfo):
            outcome.append("RetryInfo")
        return " ".join(outcome)
    return "OK"


async def _two_calls_on_each_of_two_replicas(**settings: object) -> tuple[list[str], int]:
    async with simulator() as sim, replicas(2, sim, create_rate=6, **settings) as stubs:
        outcomes = await asyncio.gather(*(_generate(stubs[i % 2]) for i in range(4)))
        return sorted(outcomes), len(sim.state.requests.matching("create"))


REFUSED = "RESOURCE_EXHAUSTED RATE_BUDGET_EXHAUSTED RetryInfo"


async def test_replicas_sharing_redis_spend_one_account_budget(redis: RedisServer) -> None:
    # 6 creates a minute allow a burst of one, then one per 10 s: beyond a 3 s deadline.
    outcomes, creates = await _two_calls_on_each_of_two_replicas(redis_url=redis.url)
    assert outcomes == ["OK", REFUSED, REFUSED, REFUSED]
    assert creates == 1


async def test_replicas_without_a_store_each_spend_their_own_budget() -> None:
    outcomes, creates = await _two_calls_on_each_of_two_replicas()
    assert outcomes == ["OK", "OK", REFUSED, REFUSED]
    assert creates == 2
