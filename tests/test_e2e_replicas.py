"""Issue 13's scenarios with real gateway processes (`inference-gateway serve`) sharing one
Redis and one simulated Replicate account: what holds with Redis, and what does not
without it."""

from __future__ import annotations

import asyncio
import signal
import time
from pathlib import Path

import grpc
import pytest
from google.rpc import error_details_pb2

from inference_gateway_protos.inference.gateway.v1 import gateway_pb2 as pb
from inference_gateway_protos.inference.gateway.v1 import gateway_pb2_grpc
from tests.redis_fixtures import RedisServer
from tests.support.models import LLAMA3
from tests.support.replicas import gateway_processes, simulator
from tests.support.rpc_status import error_info, has_detail

pytestmark = pytest.mark.slow

REFUSED = "RESOURCE_EXHAUSTED RATE_BUDGET_EXHAUSTED RetryInfo"


async def _outcome(
    stub: gateway_pb2_grpc.InferenceGatewayAsyncStub, model: str, seconds: float
) -> str:
    try:
        await stub.GenerateText(pb.GenerateTextRequest(model=model, prompt="hi"), timeout=seconds)
    except grpc.aio.AioRpcError as error:
        outcome = [error.code().name]
        if has_detail(error, error_details_pb2.ErrorInfo):
            outcome.append(error_info(error).reason)
        if has_detail(error, error_details_pb2.RetryInfo):
            outcome.append("RetryInfo")
        return " ".join(outcome)
    return "OK"


@pytest.mark.parametrize("shared", [True, False], ids=["redis", "in-process"])
async def test_three_processes_at_three_times_the_create_limit_for_a_minute(
    redis: RedisServer, shared: bool
) -> None:
    # The account may create 60 a minute; at time scale 10 a simulated minute is 6 s, so
    # the account allows 10 creates a real second, in bursts of 60. The gateways are told
    # a little less (6 a second, bursts of 60), as an operator sets the limits it knows.
    env = {"GATEWAY_CREATE_RATE": "360"}
    if shared:
        env["GATEWAY_REDIS_URL"] = redis.url
    async with (
        simulator(time_scale=10, create_rate_per_minute=60) as sim,
        gateway_processes(3, sim, env) as gateways,
    ):

        async def call(n: int) -> str:
            await asyncio.sleep(n / 30)  # 30 calls a second for 6 s: 3 x the limit
            return await _outcome(gateways[n % 3].stub, LLAMA3, 8)

        outcomes = await asyncio.gather(*(call(n) for n in range(180)))
        throttled = [r for r in sim.state.requests.matching("create") if r.response_status == 429]
    if shared:
        assert throttled == []
        assert set(outcomes) == {"OK", REFUSED}
        # A burst and a bit more than 6 s of refill, waits included, fit the deadlines.
        assert 60 <= outcomes.count("OK") < 180
    else:
        assert throttled, "three in-process budgets spend three times the account's rate"


def _alias_config(tmp_path: Path) -> str:
    path = tmp_path / "gateway.yaml"
    path.write_text(f"aliases:\n  llama3: {{model: {LLAMA3}, max_concurrency: 4}}\n")
    return str(path)


async def test_max_concurrency_holds_across_three_processes_under_forty_callers(
    redis: RedisServer, tmp_path: Path
) -> None:
    env = {"GATEWAY_REDIS_URL": redis.url, "GATEWAY_CONFIG": _alias_config(tmp_path)}
    async with (
        simulator(predict_seconds=5) as sim,
        gateway_processes(3, sim, env) as gateways,
    ):
        outcomes = await asyncio.gather(
            *(_outcome(gateways[n % 3].stub, "llama3", 30) for n in range(40))
        )
        creates = len(sim.state.requests.matching("create"))
    # Every call arrived while the first four ran: never more than four predictions.
    assert creates == 4
    assert (
        sorted(outcomes)
        == ["OK"] * 4 + ["RESOURCE_EXHAUSTED ALIAS_CONCURRENCY_LIMIT RetryInfo"] * 36
    )


async def test_a_replica_killed_holding_slots_frees_them_within_the_lease(
    redis: RedisServer, tmp_path: Path
) -> None:
    lease = 3.0
    env = {
        "GATEWAY_REDIS_URL": redis.url,
        "GATEWAY_CONFIG": _alias_config(tmp_path),
        "GATEWAY_LEASE_SECONDS": str(lease),
        # Short held creates, so the survivor stops at once at the end (issue 12 #10).
        "GATEWAY_MAX_WAIT": "1",
    }
    async with (
        simulator(predict_seconds=60) as sim,
        gateway_processes(2, sim, env) as (doomed, survivor),
    ):
        held = [asyncio.ensure_future(_outcome(doomed.stub, "llama3", 120)) for _ in range(4)]
        await asyncio.wait_for(sim.state.requests.wait_for(4, kind="create"), 30)
        assert await _outcome(survivor.stub, "llama3", 5) == (
            "RESOURCE_EXHAUSTED ALIAS_CONCURRENCY_LIMIT RetryInfo"
        )
        doomed.process.send_signal(signal.SIGKILL)
        killed = time.monotonic()
        await doomed.process.wait()
        for call in held:
            assert (await call).startswith("UNAVAILABLE")
        # The survivor gets a slot (the simulator sees a fifth create) once the dead
        # replica's leases lapse.
        while True:
            probe = asyncio.ensure_future(_outcome(survivor.stub, "llama3", 60))
            fifth = asyncio.ensure_future(sim.state.requests.wait_for(5, kind="create"))
            done, _ = await asyncio.wait({probe, fifth}, return_when=asyncio.FIRST_COMPLETED)
            if fifth in done:
                freed = time.monotonic() - killed
                probe.cancel()
                break
            fifth.cancel()
            assert probe.result() == "RESOURCE_EXHAUSTED ALIAS_CONCURRENCY_LIMIT RetryInfo"
            assert time.monotonic() - killed < lease + 5, "the slots were never freed"
            await asyncio.sleep(0.2)
    assert freed < lease + 5
