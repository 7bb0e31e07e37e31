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


# With a request_id too: the record's claim must not take the hedge for a repeat (free).
@pytest.mark.parametrize("request_id", ["", "6d2c1f0e-8a3b-4c5d-9e7f-0a1b2c3d4e5f"])
async def test_a_canceled_hedge_loser_is_charged_its_run_time_to_the_caller(
    tmp_path: Path, request_id: str
) -> None:
    path = tmp_path / "gateway.yaml"
    path.write_text(HEDGED, encoding="utf-8")
    async with running_gateway(config=path) as h:
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
