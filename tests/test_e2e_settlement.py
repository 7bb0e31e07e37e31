"""Settling what calls cost, whatever ends them: store outages, canceled hedge losers, and
operations nobody watches, on gateways sharing one real Redis, against the simulator.

Expected amounts come from the price table below and what the simulator recorded.
"""

from __future__ import annotations

import logging
import textwrap
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest

from inference_gateway.config import GatewayConfig, hash_token, load_config
from inference_gateway_protos.inference.gateway.v1 import gateway_pb2 as pb
from tests.gateway_harness import running_gateway
from tests.redis_fixtures import RedisServer, redis_server

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
