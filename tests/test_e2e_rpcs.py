"""Every RPC end to end: a real gRPC client, the gateway, and the simulator over HTTP."""

from __future__ import annotations

import grpc
import pytest
from grpc_health.v1 import health_pb2

from inference_gateway_protos.inference.gateway.v1 import gateway_pb2 as pb
from tests.gateway_harness import running_gateway
from tests.support.models import LLAMA3
from tests.support.models import SDXL_PINNED as SDXL


async def test_generate_text_returns_the_models_whole_answer() -> None:
    async with running_gateway() as h:
        reply = await h.stub.GenerateText(
            pb.GenerateTextRequest(model=LLAMA3, prompt="Tell me about the sea"), timeout=20
        )
        [create] = h.requests.matching("create")
        expected = h.simulator.state.expected_text(LLAMA3, create.body["input"])
        assert reply.text == expected
        assert reply.text
        assert reply.prediction.status == pb.PREDICTION_STATUS_SUCCEEDED
        assert reply.prediction.id
        assert reply.prediction.usage.output_token_count > 0
        assert reply.prediction.timing.total_duration.ToNanoseconds() > 0


async def test_stream_text_relays_ordered_pieces_that_add_up_to_the_answer() -> None:
    async with running_gateway() as h:
        pieces = []
        last = None
        async for message in h.stub.StreamText(
            pb.GenerateTextRequest(model=LLAMA3, prompt="Count to ten"), timeout=20
        ):
            pieces.append(message.text)
            last = message
        [create] = h.requests.matching("create")
        expected = h.simulator.state.expected_text(LLAMA3, create.body["input"])
        text_pieces = [p for p in pieces if p]
        assert len(text_pieces) > 1
        assert "".join(text_pieces) == expected
        assert last is not None
        assert last.prediction.status == pb.PREDICTION_STATUS_SUCCEEDED


async def test_generate_image_returns_urls_the_simulator_serves() -> None:
    async with running_gateway() as h:
        reply = await h.stub.GenerateImage(
            pb.GenerateImageRequest(model=SDXL, prompt="a red fox"), timeout=20
        )
        assert reply.images
        assert all(image.uri.startswith(h.simulator.files_url) for image in reply.images)
        assert reply.prediction.status == pb.PREDICTION_STATUS_SUCCEEDED


async def test_health_answers_serving() -> None:
    async with running_gateway() as h:
        reply = await h.health.Check(health_pb2.HealthCheckRequest(service=""), timeout=5)
        assert reply.status == health_pb2.HealthCheckResponse.SERVING


async def test_a_malformed_model_id_is_invalid_argument_listing_the_forms() -> None:
    async with running_gateway() as h:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await h.stub.GenerateText(
                pb.GenerateTextRequest(model="a/b/c/d", prompt="hi"), timeout=5
            )
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "owner/name" in (caught.value.details() or "")
        assert h.requests.count() == 0
