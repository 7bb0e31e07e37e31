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


async def test_stream_text_names_its_template_first_then_any_progress_then_text() -> None:
    async with running_gateway() as h:
        messages = [
            message
            async for message in h.stub.StreamText(
                pb.GenerateTextRequest(model=LLAMA3, prompt="Count to ten"), timeout=20
            )
        ]
        first, *rest = messages
        assert not first.text
        assert not first.HasField("progress")
        assert not first.HasField("prediction")
        texts = [i for i, message in enumerate(rest) if message.text]
        progress = [i for i, message in enumerate(rest) if message.HasField("progress")]
        assert texts
        assert all(i < texts[0] for i in progress)


async def test_a_stream_whose_create_fails_still_gets_its_template_before_the_status() -> None:
    """The template waits for the create's answer (so the create goes out first), but
    never past it: a caller sees it, then the failure, as before."""
    async with running_gateway() as h:
        h.simulator.state.faults.add(kind="create", model=LLAMA3, status=400)
        messages: list[pb.StreamTextResponse] = []

        async def read() -> None:
            async for message in h.stub.StreamText(
                pb.GenerateTextRequest(model=LLAMA3, prompt="Count to ten"), timeout=20
            ):
                messages.append(message)

        with pytest.raises(grpc.aio.AioRpcError) as failed:
            await read()
        assert failed.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert len(messages) == 1
        assert not messages[0].text
        assert not messages[0].HasField("progress")


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
