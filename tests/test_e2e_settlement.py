"""Settling what calls cost, whatever ends them: store outages, canceled hedge losers, and
operations nobody watches, on gateways sharing one real Redis, against the simulator.

Expected amounts come from the price table below and what the simulator recorded.
"""

from __future__ import annotations

import asyncio
import logging
import textwrap
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, replace
from decimal import Decimal
from pathlib import Path

import grpc
import pytest
import redis.asyncio as aioredis
from google.longrunning import operations_pb2, operations_pb2_grpc
from google.protobuf import duration_pb2

from inference_gateway import operations
from inference_gateway.config import GatewayConfig, hash_token, load_config
from inference_gateway.grpc_api.server import RunningGateway, settings_for_operations, start_gateway
from inference_gateway.outputs import parse_origin
from inference_gateway_protos.inference.gateway.v1 import gateway_pb2 as pb
from inference_gateway_protos.inference.gateway.v1 import gateway_pb2_grpc
from replicate_simulator import RunningSimulator, SimulatorConfig, start_simulator
from tests import gateway_harness
from tests.gateway_harness import running_gateway
from tests.redis_fixtures import RedisServer, redis_server
from tests.simulator_fixtures import wait_until
from tests.support.models import LLAMA2, LLAMA3

pytestmark = pytest.mark.asyncio

FLUX = "black-forest-labs/flux-schnell"
IMAGE = Decimal("0.30")
TOKEN = "cgw_test_settlement_0123456789abc"
AUTH = (("authorization", f"Bearer {TOKEN}"),)


def config(tmp_path: Path, budget: str = "") -> GatewayConfig:
    path = tmp_path / "gateway.yaml"
    path.write_text(
        textwrap.dedent(
            f"""\
            aliases:
              flux: {{model: {FLUX}, task: image}}
            pricing:
              models:
                {FLUX}: {{image: "{IMAGE}"}}
            callers:
              team-a:
                token_sha256: {hash_token(TOKEN)}
                aliases: ["*"]
                {budget}
            """
        )
    )
    return load_config(path, {})


@pytest.fixture
def redis(tmp_path: Path) -> Iterator[RedisServer]:
    with redis_server(tmp_path) as server:
        yield server


async def test_an_outage_logs_unrecorded_spend_once_and_counts_all_of_it(
    redis: RedisServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # No budget: nothing is reserved before the create, so only the settlements meet the
    # outage.
    async with running_gateway(
        config=config(tmp_path), redis_url=redis.url, redis_timeout=5.0
    ) as h:
        redis.stop()
        caplog.set_level(logging.WARNING, logger="inference_gateway.accounting")
        replies = [
            await h.stub.GenerateImage(
                pb.GenerateImageRequest(model="flux", prompt="a fox"), metadata=AUTH, timeout=20
            )
            for _ in range(3)
        ]
        unrecorded = h.gateway.metrics.registry.get_sample_value(
            "inference_gateway_spend_unrecorded_total"
        )
    assert [Decimal(reply.cost.amount) for reply in replies] == [IMAGE] * 3
    warnings = [r for r in caplog.records if "could not record" in r.getMessage()]
    assert len(warnings) == 1
    assert unrecorded is not None
    assert Decimal(str(unrecorded)).quantize(Decimal("0.01")) == 3 * IMAGE


LLAMA3_SECOND = Decimal("0.50")
HEDGED = f"""
aliases:
  hedged:
    model: {LLAMA3}
    fallbacks: [backup]
    hedge_after_seconds: 1
  backup:
    model: {LLAMA2}
pricing:
  hardware:
    gpu-a40-large: "{LLAMA3_SECOND}"
  models:
    meta/*: {{hardware: gpu-a40-large}}
callers:
  team-a:
    token_sha256: {hash_token(TOKEN)}
    aliases: ["*"]
    budget: {{amount: "100.00", per: day}}
"""


def hedged_gateway(
    tmp_path: Path, max_wait: int = 5
) -> AbstractAsyncContextManager[gateway_harness.Harness]:
    path = tmp_path / "gateway.yaml"
    path.write_text(HEDGED, encoding="utf-8")
    return running_gateway(config=path, max_wait=max_wait)


# With a request_id too: the record's claim must not take the hedge for a repeat (free).
@pytest.mark.parametrize("request_id", ["", "6d2c1f0e-8a3b-4c5d-9e7f-0a1b2c3d4e5f"])
async def test_a_canceled_hedge_loser_is_charged_its_run_time_to_the_caller(
    tmp_path: Path, request_id: str
) -> None:
    async with hedged_gateway(tmp_path) as h:
        state = h.simulator.state
        # The own model boots past the hedge, then runs until it is canceled; the hedge
        # answers after it started running, so the loser has run time to pay for.
        state.force_cold_boot(LLAMA3, 2.5)
        state.set_behaviour(LLAMA3, never_finishes=True)
        state.set_behaviour(LLAMA2, predict_seconds=2.5)
        reply = await h.stub.GenerateText(
            pb.GenerateTextRequest(model="hedged", prompt="hello", request_id=request_id),
            metadata=AUTH,
            timeout=20,
        )
        [loser] = [p for p in state.predictions.values() if p.model.full_name == LLAMA3]
        await wait_until(loser, lambda p: p.status == "canceled")
        # The loser is settled in the background, as the cancels are.
        await h.gateway.runner.drain_cancels(within=30)
        usage = await h.stub.GetUsage(pb.GetUsageRequest(), metadata=AUTH)
        charged = {
            model: h.gateway.metrics.registry.get_sample_value(
                "inference_gateway_cost_total", {"caller": "team-a", "model": model}
            )
            for model in ("hedged", "backup")
        }
        seconds = {
            p.id: Decimal(str(p.to_json()["metrics"]["predict_time"]))
            for p in state.predictions.values()
        }
    assert reply.prediction.role == pb.PREDICTION_ROLE_HEDGE
    run_time = seconds[loser.id]
    assert run_time > 0
    loser_cost = run_time * LLAMA3_SECOND
    winner_cost = seconds[reply.prediction.id] * LLAMA3_SECOND
    assert Decimal(reply.cost.amount) == winner_cost
    assert Decimal(usage.reserved) == 0
    assert Decimal(usage.spent) == loser_cost + winner_cost
    assert charged["hedged"] is not None
    assert Decimal(str(charged["hedged"])).quantize(Decimal("0.000001")) == loser_cost.quantize(
        Decimal("0.000001")
    )


@pytest.mark.parametrize("request_id", ["", "7e3d2f1a-9b4c-4d6e-8f0a-1b2c3d4e5f6a"])
async def test_a_hedge_canceled_while_its_create_is_held_is_charged_once_it_exists(
    tmp_path: Path, request_id: str
) -> None:
    # Was: the hedge lost while Replicate still held its create, so the call ended with no
    # id for it: its prediction was canceled once the create answered, but ran meanwhile
    # and was never charged to the caller (nor counted in the chargeback metrics).
    async with hedged_gateway(tmp_path, max_wait=3) as h:
        state = h.simulator.state
        # The own model is still booting at the hedge (1 s), then answers at about 2 s;
        # the hedge's create is held until about 4 s.
        state.force_cold_boot(LLAMA3, 1.6)
        state.set_behaviour(LLAMA3, predict_seconds=0.3)
        state.set_behaviour(LLAMA2, never_finishes=True)
        reply = await h.stub.GenerateText(
            pb.GenerateTextRequest(model="hedged", prompt="hello", request_id=request_id),
            metadata=AUTH,
            timeout=20,
        )
        assert reply.prediction.role == pb.PREDICTION_ROLE_PRIMARY
        [loser] = [p for p in state.predictions.values() if p.model.full_name == LLAMA2]
        await wait_until(loser, lambda p: p.status == "canceled")
        await h.gateway.runner.drain_cancels(within=30)
        usage = await h.stub.GetUsage(pb.GetUsageRequest(), metadata=AUTH)
        charged = h.gateway.metrics.registry.get_sample_value(
            "inference_gateway_cost_total", {"caller": "team-a", "model": "backup"}
        )
        seconds = {
            p.id: Decimal(str(p.to_json()["metrics"]["predict_time"]))
            for p in state.predictions.values()
        }
    loser_cost = seconds[loser.id] * LLAMA3_SECOND
    assert loser_cost > 0
    assert Decimal(usage.reserved) == 0
    assert Decimal(usage.spent) == loser_cost + Decimal(reply.cost.amount)
    assert charged is not None
    assert Decimal(str(charged)).quantize(Decimal("0.000001")) == loser_cost.quantize(
        Decimal("0.000001")
    )


# --- operations ----------------------------------------------------------------------------

FOLLOWERS = "inference_gateway_operations_in_flight"


@asynccontextmanager
async def replicas(
    count: int, redis: RedisServer, tmp_path: Path
) -> AsyncIterator[tuple[RunningSimulator, list[RunningGateway], list[Stubs]]]:
    """Replicas sharing `redis` and the operations key, with a lease a test can outlast."""
    gateway_config = config(tmp_path, budget='budget: {amount: "100.00", per: day}')
    async with AsyncExitStack() as stack:
        simulator = await start_simulator(SimulatorConfig(), "127.0.0.1", 0)
        stack.push_async_callback(simulator.stop)
        settings = gateway_harness.test_settings(
            base_url=simulator.base_url,
            redis_url=redis.url,
            redis_timeout=5.0,
            operations_key="k" * 32,
            output_file_origins=(parse_origin(simulator.files_url),),
        )
        operation_settings = replace(settings_for_operations(settings), lease_seconds=1.5)
        gateways, stubs = [], []
        for _ in range(count):
            gateway = await start_gateway(
                settings,
                gateway_config,
                {},
                serve_metrics=False,
                operation_settings=operation_settings,
            )
            stack.push_async_callback(gateway.stop, 0.1)
            channel = grpc.aio.insecure_channel(f"127.0.0.1:{gateway.port}")
            stack.push_async_callback(channel.close, None)
            gateways.append(gateway)
            stubs.append(
                Stubs(
                    gateway_pb2_grpc.InferenceGatewayStub(channel),
                    operations_pb2_grpc.OperationsStub(channel),
                )
            )
        yield simulator, gateways, stubs


@dataclass
class Stubs:
    gateway: gateway_pb2_grpc.InferenceGatewayAsyncStub
    operations: operations_pb2_grpc.OperationsStub


def gauge(gateway: RunningGateway, name: str) -> float:
    return gateway.metrics.registry.get_sample_value(name) or 0.0


def charged(gateways: list[RunningGateway]) -> Decimal:
    """The chargeback metrics' cost of team-a's flux images, all replicas together."""
    labels = {"caller": "team-a", "model": "flux"}
    total = sum(
        gateway.metrics.registry.get_sample_value("inference_gateway_cost_total", labels) or 0.0
        for gateway in gateways
    )
    return Decimal(str(total)).quantize(Decimal("0.01"))


async def until(condition: Callable[[], bool], what: str, within: float = 20.0) -> None:
    """Polls state the test cannot await (another replica's follower), within a bound."""
    deadline = time.monotonic() + within
    while not condition():
        assert time.monotonic() < deadline, f"not within {within}s: {what}"
        await asyncio.sleep(0.05)


async def wait_done(stubs: Stubs, name: str) -> operations_pb2.Operation:
    timeout = duration_pb2.Duration(seconds=30)
    operation: operations_pb2.Operation = await stubs.operations.WaitOperation(
        operations_pb2.WaitOperationRequest(name=name, timeout=timeout), metadata=AUTH, timeout=40
    )
    assert operation.done
    return operation


@pytest.mark.slow
async def test_two_followers_of_one_operation_settle_it_once(
    redis: RedisServer, tmp_path: Path
) -> None:
    async with replicas(2, redis, tmp_path) as (simulator, gateways, stubs):
        simulator.state.set_behaviour(FLUX, predict_seconds=4.0)
        submitted = await stubs[0].gateway.SubmitImage(
            pb.SubmitImageRequest(request=pb.GenerateImageRequest(model="flux", prompt="a fox")),
            metadata=AUTH,
            timeout=10,
        )
        # The first follower's lease lapses while it still follows (a stalled replica, a
        # slow store): the second replica's sweep adopts the operation, and both follow it.
        client = aioredis.from_url(redis.url)
        try:
            async for key in client.scan_iter(match="*operation-follower:*"):
                await client.delete(key)
        finally:
            await client.aclose()
        await until(lambda: gauge(gateways[1], FOLLOWERS) == 1, "the second replica adopts")
        ended = await wait_done(stubs[1], submitted.name)
        await until(
            lambda: all(gauge(gateway, FOLLOWERS) == 0 for gateway in gateways),
            "both followers finish",
        )
        usage = await stubs[0].gateway.GetUsage(pb.GetUsageRequest(), metadata=AUTH)
        creates = simulator.state.requests.count("create")
    assert ended.WhichOneof("result") == "response"
    assert creates == 1
    assert Decimal(usage.spent) == IMAGE
    assert Decimal(usage.reserved) == 0
    assert charged(gateways) == IMAGE


@pytest.mark.slow
async def test_an_operation_whose_prediction_is_never_seen_to_end_is_settled(
    redis: RedisServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Replicate stops answering about the prediction: the follower gives up a second after
    # its deadline, unable to price it, and must still settle it (at its reservation).
    monkeypatch.setattr(operations, "_DEADLINE_SLACK", 1.0)
    async with replicas(1, redis, tmp_path) as (simulator, _, stubs):
        simulator.state.set_behaviour(FLUX, never_finishes=True)
        simulator.state.faults.add(kind="get", times=None, status=503)
        submitted = await stubs[0].gateway.SubmitImage(
            pb.SubmitImageRequest(
                request=pb.GenerateImageRequest(model="flux", prompt="a fox"),
                deadline=duration_pb2.Duration(seconds=5),
            ),
            metadata=AUTH,
            timeout=10,
        )
        ended = await wait_done(stubs[0], submitted.name)
        usage = await stubs[0].gateway.GetUsage(pb.GetUsageRequest(), metadata=AUTH)
    assert ended.WhichOneof("result") == "error"
    assert Decimal(usage.reserved) == 0
    assert Decimal(usage.spent) == IMAGE
