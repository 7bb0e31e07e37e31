"""Rate budgets, alias slots and callers' quotas held across replicas sharing one Redis."""

from __future__ import annotations

import asyncio
import textwrap
from collections.abc import Sequence
from pathlib import Path
from typing import cast

import grpc
import pytest
from google.rpc import error_details_pb2

from inference_gateway.config import GatewayConfig, hash_token, load_config
from inference_gateway_protos.inference.gateway.v1 import gateway_pb2 as pb
from inference_gateway_protos.inference.gateway.v1 import gateway_pb2_grpc
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
    stub: gateway_pb2_grpc.InferenceGatewayAsyncStub, model: str = LLAMA3, seconds: float = 3
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
    # 6 creates a minute allow a burst of one, then one per 10 s: beyond a 3 s deadline.
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
    ],
)
async def test_concurrency_limits_hold_across_replicas(
    redis: RedisServer, tmp_path: Path, caller: str, alias: str, refusal: str
) -> None:
    config = quota_config(tmp_path, caller, alias)
    # Predictions run 3 s: every call arrives while the first two still hold their slots.
    async with (
        simulator(predict_seconds=3) as sim,
        replicas(3, sim, config, redis_url=redis.url) as stubs,
    ):
        outcomes = await asyncio.gather(*(_generate(stubs[i % 3], "llama3", 20) for i in range(6)))
        creates = len(sim.state.requests.matching("create"))
    assert sorted(outcomes) == ["OK", "OK"] + [f"{refusal} RetryInfo pushback"] * 4
    assert creates == 2
