"""Graceful shutdown: readiness goes first, calls drain, nothing is left running on Replicate."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterable

import grpc
import pytest
from grpc_health.v1 import health_pb2

from inference_gateway_protos.inference.gateway.v1 import gateway_pb2 as pb
from tests.gateway_harness import running_gateway
from tests.simulator_fixtures import wait_until
from tests.support.models import LLAMA3


async def test_predictions_still_running_after_the_grace_period_are_canceled() -> None:
    async with running_gateway() as h:
        h.simulator.state.set_behaviour(LLAMA3, never_finishes=True)
        call = h.stub.StreamText(pb.GenerateTextRequest(model=LLAMA3, prompt="x"), timeout=60)
        await first_text(call)  # the prediction is running and being followed
        [prediction] = h.simulator.state.predictions.values()
        await h.gateway.stop(grace=1.0)
        await wait_until(prediction, lambda p: p.status == "canceled")
        assert h.requests.count("cancel") == 1
        assert h.gateway.metrics.cancels_sent.labels("shutdown")._value.get() == 1
        with pytest.raises(grpc.aio.AioRpcError):
            async for _ in call:
                pass


async def first_text(call: AsyncIterable[pb.StreamTextResponse]) -> str:
    async for message in call:
        if message.text:
            return message.text
    raise AssertionError("the stream ended without text")


async def test_readiness_goes_not_serving_while_liveness_stays_serving_during_the_drain() -> None:
    async with running_gateway() as h:
        h.simulator.state.set_behaviour(LLAMA3, never_finishes=True)
        call = h.stub.StreamText(pb.GenerateTextRequest(model=LLAMA3, prompt="x"), timeout=60)
        await first_text(call)
        watch = h.health.Watch(health_pb2.HealthCheckRequest(service="readiness"), timeout=10)
        serving = health_pb2.HealthCheckResponse
        assert (await watch.read()).status == serving.SERVING
        stopping = asyncio.ensure_future(h.gateway.stop(grace=2.0, drain_delay=1.0))
        assert (await watch.read()).status == serving.NOT_SERVING
        watch.cancel()
        statuses = {}
        for service in ("liveness", ""):
            reply = await h.health.Check(health_pb2.HealthCheckRequest(service=service), timeout=5)
            statuses[service] = reply.status
        assert not stopping.done()  # still inside the drain delay
        assert statuses == {"liveness": serving.SERVING, "": serving.NOT_SERVING}
        await stopping
        with pytest.raises(grpc.aio.AioRpcError):
            async for _ in call:
                pass


async def test_a_caller_leaving_during_a_held_create_still_gets_its_prediction_canceled() -> None:
    async with running_gateway(max_wait=2) as h:
        h.simulator.state.set_behaviour(LLAMA3, never_finishes=True)
        call = h.stub.GenerateText(pb.GenerateTextRequest(model=LLAMA3, prompt="x"), timeout=60)
        task = asyncio.ensure_future(call)
        await h.requests.wait_for(1, kind="create")
        [prediction] = h.simulator.state.predictions.values()
        call.cancel()  # Replicate is still holding the create: the id is not known yet
        with pytest.raises(asyncio.CancelledError):
            await task
        await h.gateway.runner.drain_cancels()
        await wait_until(prediction, lambda p: p.status == "canceled")
        assert h.requests.count("cancel") == 1
