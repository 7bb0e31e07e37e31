"""Traffic for end-to-end tests: every kind of call, and the simulator's view of it."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import grpc
import pytest

from inference_gateway_protos.inference.gateway.v1 import gateway_pb2 as pb
from replicate_simulator import Prediction
from tests.gateway_harness import Harness
from tests.simulator_fixtures import wait_until
from tests.support.models import LLAMA3, SDXL

TextStream = grpc.aio.UnaryStreamCall[pb.GenerateTextRequest, pb.StreamTextResponse]


def callable_id(h: Harness, model: str) -> str:
    """Official models are called by name, others by a version the simulator has."""
    spec = h.simulator.state.model(model)
    return model if spec.official else f"{model}:{spec.latest_version.id}"


def latest_prediction(h: Harness) -> Prediction:
    """The prediction created last (the simulator keeps them in creation order)."""
    return list(h.simulator.state.predictions.values())[-1]


@dataclass(frozen=True)
class Traffic:
    prompts: tuple[str, ...]
    # (gRPC method, status code name) -> calls that ended so.
    outcomes: Counter[tuple[str, str]]


async def traffic_of_every_kind(h: Harness) -> Traffic:
    """Success, stream, image, failure, a retried 429 and a caller who leaves (a cancel)."""
    prompts = ("tell me about foxes", "stream me a poem", "a red fox", "fail now", "retry me")
    stub, state = h.stub, h.simulator.state
    await stub.GenerateText(pb.GenerateTextRequest(model=LLAMA3, prompt=prompts[0]), timeout=20)
    stream = pb.GenerateTextRequest(model=LLAMA3, prompt=prompts[1])
    async for _ in stub.StreamText(stream, timeout=20):
        pass
    state.set_behaviour(SDXL, predict_seconds=0.0)
    sdxl = callable_id(h, SDXL)
    image = pb.GenerateImageRequest(model=sdxl, prompt=prompts[2], include_data=True)
    await stub.GenerateImage(image, timeout=20)
    state.set_behaviour(LLAMA3, fail_error="CUDA out of memory")
    with pytest.raises(grpc.aio.AioRpcError):
        await stub.GenerateText(pb.GenerateTextRequest(model=LLAMA3, prompt=prompts[3]), timeout=20)
    state.reset_behaviour(LLAMA3)
    state.faults.add(kind="create", model=LLAMA3, status=429, retry_after=0)
    await stub.GenerateText(pb.GenerateTextRequest(model=LLAMA3, prompt=prompts[4]), timeout=20)
    await hang_up(h, await open_an_endless_stream(h))
    await stub.ListModels(pb.ListModelsRequest(), timeout=20)
    outcomes = Counter(
        {
            ("GenerateText", "OK"): 2,
            ("GenerateText", "FAILED_PRECONDITION"): 1,
            ("StreamText", "OK"): 1,
            ("StreamText", "CANCELLED"): 1,
            ("GenerateImage", "OK"): 1,
            ("ListModels", "OK"): 1,
        }
    )
    return Traffic(prompts, outcomes)


async def open_an_endless_stream(h: Harness) -> TextStream:
    """A stream of a prediction that never finishes, read up to its first text."""
    h.simulator.state.set_behaviour(LLAMA3, never_finishes=True)
    call = h.stub.StreamText(pb.GenerateTextRequest(model=LLAMA3, prompt="forever"), timeout=30)
    async for message in call:
        if message.text:
            break
    return call


async def hang_up(h: Harness, call: TextStream) -> None:
    """Leaves the stream; returns once the gateway's cancel has been sent and answered."""
    call.cancel()
    await wait_until(latest_prediction(h), lambda p: p.status == "canceled")
    await h.gateway.runner.drain_cancels()
    h.simulator.state.reset_behaviour(LLAMA3)
