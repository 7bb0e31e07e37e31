"""Request records follow the call, whichever of its predictions answers: request_id
repeats of a hedged call, over real gRPC against the simulator."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from inference_gateway_protos.inference.gateway.v1 import gateway_pb2 as pb
from tests.gateway_harness import Harness, running_gateway
from tests.simulator_fixtures import wait_until
from tests.support.models import LLAMA2, LLAMA3

pytestmark = pytest.mark.asyncio

# A deployment of LLAMA3 that boots for 120 s, hedged after 5 s on a warm LLAMA2.
CONFIG = f"""
aliases:
  hedged:
    model: deployments/acme/llama3-prod
    fallbacks: [backup]
    hedge_after_seconds: 5
  backup:
    model: {LLAMA2}
"""


@pytest.fixture
async def h(tmp_path: Path) -> AsyncIterator[Harness]:
    path = tmp_path / "gateway.yaml"
    path.write_text(CONFIG, encoding="utf-8")
    async with running_gateway(config=path) as harness:
        harness.simulator.state.force_cold_boot(LLAMA3, 120.0)
        yield harness


def request(request_id: str) -> pb.GenerateTextRequest:
    return pb.GenerateTextRequest(model="hedged", prompt="hello", request_id=request_id)


def cancels(h: Harness) -> dict[str, float]:
    """The gateway's cancels sent, by reason."""
    counted = {
        sample.labels["reason"]: sample.value
        for family in h.gateway.metrics.registry.collect()
        for sample in family.samples
        if sample.name == "inference_gateway_cancels_sent_total"
    }
    return {reason: value for reason, value in counted.items() if value}


async def streamed(h: Harness, message: pb.GenerateTextRequest) -> tuple[str, pb.Prediction]:
    pieces, last = [], pb.Prediction()
    async for reply in h.stub.StreamText(message, timeout=30):
        pieces.append(reply.text)
        if reply.HasField("prediction"):
            last = reply.prediction
    return "".join(pieces), last


async def booted_deployment_canceled(h: Harness) -> None:
    state = h.simulator.state
    [booted] = [p for p in state.predictions.values() if p.deployment == "acme/llama3-prod"]
    await wait_until(booted, lambda p: p.status == "canceled")
    await h.gateway.runner.drain_cancels()


@pytest.mark.slow
async def test_repeats_during_and_after_a_hedged_call_get_the_hedge_that_answered(
    h: Harness,
) -> None:
    ask = request(str(uuid.uuid4()))
    first = asyncio.ensure_future(h.stub.GenerateText(ask, timeout=30))
    await asyncio.wait_for(h.requests.wait_for(1, kind="create"), 10)
    # During the boot, before the hedge exists: the repeat waits for the call, not for
    # the booting prediction the record names now (it loses, and is canceled).
    during_boot = asyncio.ensure_future(h.stub.GenerateText(ask, timeout=30))
    await asyncio.wait_for(h.requests.wait_for(2, kind="create"), 15)
    during_hedge = asyncio.ensure_future(h.stub.GenerateText(ask, timeout=30))
    replies = await asyncio.gather(first, during_boot, during_hedge)
    after = await h.stub.GenerateText(ask, timeout=30)
    replayed, replayed_end = await streamed(h, ask)

    [winner] = [p for p in h.simulator.state.predictions.values() if p.model.full_name == LLAMA2]
    for reply in (*replies, after):
        assert reply.prediction.id == winner.id
        assert (reply.prediction.answered_by, reply.prediction.role) == (
            "backup",
            pb.PREDICTION_ROLE_HEDGE,
        )
        assert reply.text == replies[0].text
    assert replayed == replies[0].text
    assert replayed_end.id == winner.id
    assert replayed_end.role == pb.PREDICTION_ROLE_HEDGE
    assert h.requests.count(kind="create") == 2
    await booted_deployment_canceled(h)
    assert h.requests.count(kind="cancel") == 1
    assert cancels(h) == {"hedge_lost": 1}


@pytest.mark.slow
async def test_a_hedged_stream_with_a_request_id_replays_the_winners_text(h: Harness) -> None:
    ask = request(str(uuid.uuid4()))
    text, end = await streamed(h, ask)
    assert (end.answered_by, end.role) == ("backup", pb.PREDICTION_ROLE_HEDGE)
    replayed, replayed_end = await streamed(h, ask)
    again = await h.stub.GenerateText(ask, timeout=30)

    [winner] = [p for p in h.simulator.state.predictions.values() if p.model.full_name == LLAMA2]
    assert text
    assert replayed == text == again.text
    assert end.id == replayed_end.id == again.prediction.id == winner.id
    assert (again.prediction.answered_by, again.prediction.role) == (
        "backup",
        pb.PREDICTION_ROLE_HEDGE,
    )
    assert h.requests.count(kind="create") == 2
    await booted_deployment_canceled(h)
    assert cancels(h) == {"hedge_lost": 1}


@pytest.mark.slow
async def test_a_hedged_call_whose_caller_leaves_keeps_the_hedge_for_a_repeat(
    tmp_path: Path,
) -> None:
    path = tmp_path / "gateway.yaml"
    path.write_text(CONFIG, encoding="utf-8")
    async with running_gateway(config=path, idempotency_grace=30.0) as h:
        state = h.simulator.state
        state.force_cold_boot(LLAMA3, 120.0)
        # A hedge that runs long enough for its caller to leave while it runs.
        state.set_behaviour(LLAMA2, predict_seconds=3.0)
        ask = request(str(uuid.uuid4()))
        first = asyncio.ensure_future(h.stub.GenerateText(ask, timeout=30))
        await asyncio.wait_for(h.requests.wait_for(2, kind="create"), 15)
        first.cancel()
        [booted] = [p for p in state.predictions.values() if p.model.full_name == LLAMA3]
        # The booting prediction the hedge overtook is canceled at once, not kept.
        await wait_until(booted, lambda p: p.status == "canceled")
        repeat = await h.stub.GenerateText(ask, timeout=30)
        [hedge] = [p for p in state.predictions.values() if p.model.full_name == LLAMA2]
        assert repeat.prediction.id == hedge.id
        assert hedge.status == "succeeded"
        assert h.requests.count(kind="create") == 2
        assert h.requests.count(kind="cancel") == 1
