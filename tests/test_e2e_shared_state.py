"""Rate budgets, alias slots and callers' quotas held across replicas sharing one Redis."""

from __future__ import annotations

import asyncio
import textwrap
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import cast

import grpc
import pytest
import redis.asyncio as aioredis
from google.rpc import error_details_pb2
from grpc_health.v1 import health_pb2

from inference_gateway.config import GatewayConfig, hash_token, load_config
from inference_gateway_protos.inference.gateway.v1 import gateway_pb2 as pb
from inference_gateway_protos.inference.gateway.v1 import gateway_pb2_grpc
from tests import gateway_harness
from tests.redis_fixtures import RedisServer
from tests.support.models import LLAMA3
from tests.support.replicas import replicas, simulator
from tests.support.rpc_status import error_info, has_detail

CALLER_TOKEN = "caller-token-for-team-a"


def quota_config(tmp_path: Path, caller: str, alias: str = "") -> GatewayConfig:
    path = tmp_path / "gateway.yaml"
    path.write_text(
        textwrap.dedent(
            f"""\
            aliases:
              llama3: {{model: {LLAMA3}, {alias}}}
            callers:
              team-a:
                token_sha256: {hash_token(CALLER_TOKEN)}
                aliases: ["*"]
                {caller}
            """
        )
    )
    return load_config(path, {})


async def _generate(
    stub: gateway_pb2_grpc.InferenceGatewayAsyncStub, model: str = LLAMA3, seconds: float = 7
) -> str:
    """`OK`, or the status code and, for a refusal, its ErrorInfo reason and metadata,
    RetryInfo and the gRPC retry pushback."""
    try:
        await stub.GenerateText(
            pb.GenerateTextRequest(model=model, prompt="hi"),
            timeout=seconds,
            metadata=(("authorization", f"Bearer {CALLER_TOKEN}"),),
        )
    except grpc.aio.AioRpcError as error:
        info = error_info(error)
        outcome = [error.code().name, info.reason]
        outcome.extend(
            f"{k}={info.metadata[k]}" for k in ("caller", "quota", "limit") if k in info.metadata
        )
        if has_detail(error, error_details_pb2.RetryInfo):
            outcome.append("RetryInfo")
        metadata = cast(Sequence[tuple[str, str]], error.trailing_metadata() or ())
        if any(key == "grpc-retry-pushback-ms" and int(value) > 0 for key, value in metadata):
            outcome.append("pushback")
        return " ".join(outcome)
    return "OK"


async def _two_calls_on_each_of_two_replicas(**settings: object) -> tuple[list[str], int]:
    async with simulator() as sim, replicas(2, sim, None, create_rate=6, **settings) as stubs:
        outcomes = await asyncio.gather(*(_generate(stubs[i % 2]) for i in range(4)))
        return sorted(outcomes), len(sim.state.requests.matching("create"))


REFUSED = "RESOURCE_EXHAUSTED RATE_BUDGET_EXHAUSTED RetryInfo pushback"


async def test_replicas_sharing_redis_spend_one_account_budget(redis: RedisServer) -> None:
    # 6 creates a minute allow a burst of one, then one per 10 s: beyond a 7 s deadline.
    outcomes, creates = await _two_calls_on_each_of_two_replicas(redis_url=redis.url)
    assert outcomes == ["OK", REFUSED, REFUSED, REFUSED]
    assert creates == 1


async def test_replicas_without_a_store_each_spend_their_own_budget() -> None:
    outcomes, creates = await _two_calls_on_each_of_two_replicas()
    assert outcomes == ["OK", "OK", REFUSED, REFUSED]
    assert creates == 2


@pytest.mark.parametrize("store", ["redis", "memory"])
async def test_a_callers_requests_per_minute_hold_across_replicas(
    redis: RedisServer, tmp_path: Path, store: str
) -> None:
    config = quota_config(tmp_path, "requests_per_minute: 3")
    shared: dict[str, object] = {"redis_url": redis.url} if store == "redis" else {}
    async with simulator() as sim, replicas(2, sim, config, **shared) as stubs:
        outcomes = [await _generate(stubs[i % 2], "llama3") for i in range(5)]
    refused = (
        "RESOURCE_EXHAUSTED CALLER_QUOTA_EXCEEDED caller=team-a quota=requests_per_minute limit=3"
    )
    if store == "redis":
        assert outcomes == ["OK"] * 3 + [f"{refused} RetryInfo pushback"] * 2
    else:  # each replica counts its own three
        assert outcomes == ["OK"] * 5


@pytest.mark.parametrize(
    ("caller", "alias", "refusal"),
    [
        ("", "max_concurrency: 2", "RESOURCE_EXHAUSTED ALIAS_CONCURRENCY_LIMIT limit=2"),
        (
            "max_concurrency: 2",
            "",
            "RESOURCE_EXHAUSTED CALLER_QUOTA_EXCEEDED caller=team-a quota=max_concurrency limit=2",
        ),
        (
            "",
            "per_caller: {max_concurrency: 2}",
            "RESOURCE_EXHAUSTED CALLER_QUOTA_EXCEEDED caller=team-a quota=max_concurrency limit=2",
        ),
    ],
    ids=["alias", "caller", "alias-per-caller"],
)
async def test_concurrency_limits_hold_across_replicas(
    redis: RedisServer, tmp_path: Path, caller: str, alias: str, refusal: str
) -> None:
    config = quota_config(tmp_path, caller, alias)
    # Predictions run 2 s: every call arrives while the first two still hold their slots.
    async with (
        simulator(predict_seconds=2) as sim,
        replicas(3, sim, config, redis_url=redis.url) as stubs,
    ):
        outcomes = await asyncio.gather(*(_generate(stubs[i % 3], "llama3", 20) for i in range(6)))
        creates = len(sim.state.requests.matching("create"))
    assert sorted(outcomes) == ["OK", "OK"] + [f"{refusal} RetryInfo pushback"] * 4
    assert creates == 2


async def _reason(
    stub: gateway_pb2_grpc.InferenceGatewayAsyncStub, request: pb.GenerateTextRequest
) -> str:
    try:
        await stub.GenerateText(request, timeout=10)
    except grpc.aio.AioRpcError as error:
        return str(error_info(error).reason)
    return "OK"


async def test_redis_stopped_mid_run_fail_open_serves_fail_closed_refuses_then_both_resume(
    redis: RedisServer,
) -> None:
    async with gateway_harness.running_gateway(redis_url=redis.url, redis_timeout=0.5) as h:
        registry = h.gateway.metrics.registry
        plain = pb.GenerateTextRequest(model=LLAMA3, prompt="hi")
        keyed = pb.GenerateTextRequest(model=LLAMA3, prompt="hi", request_id=str(uuid.uuid4()))
        await h.stub.GenerateText(plain, timeout=10)
        redis.stop()
        started = time.monotonic()
        # Budgets fail open: served on this replica's own state, and counted.
        await h.stub.GenerateText(plain, timeout=10)
        fail_open = registry.get_sample_value(
            "inference_gateway_state_fail_open_total", {"guarantee": "budget"}
        )
        assert fail_open is not None
        assert fail_open >= 1
        # Idempotency fails closed: UNAVAILABLE, at once rather than at the deadline.
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await h.stub.GenerateText(keyed, timeout=10)
        assert refused.value.code() is grpc.StatusCode.UNAVAILABLE
        assert error_info(refused.value).reason == "STATE_STORE_UNAVAILABLE"
        assert time.monotonic() - started < 5
        health = await h.health.Check(health_pb2.HealthCheckRequest(service=""), timeout=5)
        assert health.status == health_pb2.HealthCheckResponse.SERVING
        redis.start()
        # Back: after the store's retry interval (1 s) the shared state serves again.
        while (reason := await _reason(h.stub, keyed)) == "STATE_STORE_UNAVAILABLE":
            assert time.monotonic() - started < 30
            await asyncio.sleep(0.25)
        assert reason == "OK"
        assert h.requests.matching("create")
    client = aioredis.Redis.from_url(redis.url)
    try:
        assert await client.keys("inference-gateway:{idem:*"), "the record is in Redis"
    finally:
        await client.aclose()
