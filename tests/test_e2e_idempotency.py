"""Idempotent requests (AIP-155) end to end: repeats on any replica make one prediction."""

from __future__ import annotations

import asyncio
import uuid

import grpc
import pytest

from inference_gateway.grpc_api import servicer
from inference_gateway.grpc_api.auth import anonymous
from inference_gateway.state import ClaimOutcome
from inference_gateway_protos.inference.gateway.v1 import gateway_pb2 as pb
from inference_gateway_protos.inference.gateway.v1 import gateway_pb2_grpc
from replicate_simulator import RunningSimulator
from tests.gateway_harness import running_gateway
from tests.redis_fixtures import RedisServer
from tests.support.models import LLAMA3, SDXL_PINNED
from tests.support.replicas import replicas, simulator
from tests.support.rpc_status import error_info


def text_request(request_id: str, prompt: str = "Tell me a story") -> pb.GenerateTextRequest:
    return pb.GenerateTextRequest(model=LLAMA3, prompt=prompt, request_id=request_id)


async def stream_text(
    stub: gateway_pb2_grpc.InferenceGatewayAsyncStub, request: pb.GenerateTextRequest
) -> tuple[str, str]:
    """The streamed text, joined, and the prediction id of the last message."""
    pieces, prediction_id = [], ""
    async for message in stub.StreamText(request, timeout=30):
        pieces.append(message.text)
        if message.HasField("prediction"):
            prediction_id = message.prediction.id
    return "".join(pieces), prediction_id


def creates(sim: RunningSimulator) -> int:
    return len(sim.state.requests.matching("create"))


async def test_repeats_on_two_replicas_and_after_the_end_share_one_prediction(
    redis: RedisServer,
) -> None:
    request = text_request(str(uuid.uuid4()))
    async with (
        simulator(predict_seconds=1.0) as sim,
        replicas(2, sim, redis_url=redis.url) as (one, two),
    ):
        first, second = await asyncio.gather(
            one.GenerateText(request, timeout=30), two.GenerateText(request, timeout=30)
        )
        third = await two.GenerateText(request, timeout=30)
        # StreamText shares GenerateText's message: a repeat of it replays the whole text.
        replayed, replayed_id = await stream_text(one, request)
        assert creates(sim) == 1
    ids = {first.prediction.id, second.prediction.id, third.prediction.id, replayed_id}
    assert len(ids) == 1
    assert first.text == second.text == third.text == replayed
    assert first.text


async def test_a_stream_repeat_while_it_runs_gets_the_whole_text_in_order_once(
    redis: RedisServer,
) -> None:
    request = text_request(str(uuid.uuid4()))
    async with (
        simulator(token_interval_seconds=0.05) as sim,
        replicas(2, sim, redis_url=redis.url) as (one, two),
    ):
        first = asyncio.ensure_future(stream_text(one, request))
        await asyncio.wait_for(sim.state.requests.wait_for(1, kind="create"), 10)
        repeat = await stream_text(two, request)
        original = await first
        assert creates(sim) == 1
    assert repeat == original
    assert original[0]


async def test_the_same_request_id_with_a_different_request_is_refused(
    redis: RedisServer,
) -> None:
    request_id = str(uuid.uuid4())
    async with simulator() as sim, replicas(2, sim, redis_url=redis.url) as (one, two):
        await one.GenerateText(text_request(request_id), timeout=30)
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await two.GenerateText(text_request(request_id, "Another story"), timeout=30)
        with pytest.raises(grpc.aio.AioRpcError) as image:
            await two.GenerateImage(
                pb.GenerateImageRequest(model=LLAMA3, prompt="x", request_id=request_id),
                timeout=30,
            )
        assert creates(sim) == 1
    assert refused.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert error_info(refused.value).reason == "REQUEST_ID_REUSED"
    assert error_info(refused.value).metadata["requestId"] == request_id
    assert image.value.code() is grpc.StatusCode.INVALID_ARGUMENT


async def test_a_request_id_that_is_not_a_uuid_is_refused_before_anything_runs() -> None:
    async with simulator() as sim, replicas(1, sim) as (one,):
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await one.GenerateText(text_request("retry-1"), timeout=30)
        assert creates(sim) == 0
    assert refused.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert error_info(refused.value).reason == "INVALID_REQUEST_ID"


async def test_without_redis_one_replica_still_makes_one_prediction_per_request_id() -> None:
    request = text_request(str(uuid.uuid4()))
    async with simulator(predict_seconds=0.5) as sim, replicas(1, sim) as (one,):
        answers = await asyncio.gather(*(one.GenerateText(request, timeout=30) for _ in range(3)))
        assert creates(sim) == 1
    assert len({answer.prediction.id for answer in answers}) == 1


@pytest.mark.slow
async def test_an_abandoned_call_waits_its_grace_for_a_repeat_then_is_canceled(
    redis: RedisServer,
) -> None:
    adopted, left = text_request(str(uuid.uuid4())), text_request(str(uuid.uuid4()))
    # Creates are held 1 s, predictions run 6: each call leaves while its create is held,
    # and the prediction is handed to the grace when the create answers.
    settings: dict[str, object] = {"redis_url": redis.url, "idempotency_grace": 2.0, "max_wait": 1}
    async with (
        simulator(predict_seconds=6.0) as sim,
        replicas(2, sim, None, **settings) as (one, two),
    ):
        for started, request in enumerate((adopted, left), start=1):
            call = one.GenerateText(request, timeout=30)
            await asyncio.wait_for(sim.state.requests.wait_for(started, kind="create"), 10)
            call.cancel()
        # A repeat within the grace adopts its prediction: it is not canceled.
        answer = await two.GenerateText(adopted, timeout=30)
        assert answer.prediction.status == pb.PREDICTION_STATUS_SUCCEEDED
        [cancel] = await asyncio.wait_for(sim.state.requests.wait_for(1, kind="cancel"), 10)
        assert creates(sim) == 2
    assert answer.prediction.id not in cancel.path


async def test_an_image_request_repeated_on_another_replica_gets_the_same_images(
    redis: RedisServer,
) -> None:
    request = pb.GenerateImageRequest(
        model=SDXL_PINNED, prompt="a red fox", request_id=str(uuid.uuid4())
    )
    async with simulator() as sim, replicas(2, sim, redis_url=redis.url) as (one, two):
        first = await one.GenerateImage(request, timeout=30)
        repeat = await two.GenerateImage(request, timeout=30)
        creates_seen = len(sim.state.requests.matching("create"))
    assert creates_seen == 1
    assert repeat.prediction.id == first.prediction.id
    assert [image.uri for image in repeat.images] == [image.uri for image in first.images]
    assert first.images


async def test_a_finished_request_ids_record_keeps_no_copy_of_the_input() -> None:
    # Was: the record kept Replicate's whole prediction, input included, for the retention
    # window: each request_id held up to the request limit (8 MiB) in the shared store.
    prompt = "many words " * 10_000
    async with running_gateway() as h:
        message = pb.GenerateTextRequest(
            model=LLAMA3, prompt=prompt, request_id=str(uuid.uuid4()), max_new_tokens=5
        )
        first = await h.stub.GenerateText(message, timeout=20)
        request_id = servicer.text_request(message, anonymous(None)).request_id
        assert request_id is not None
        claim = await h.gateway.gateway.state.store.claim(
            f"idem:{anonymous(None).name}:{request_id.value}",
            request_id.fingerprint,
            "inspecting",
            1.0,
            1.0,
        )
        assert claim.outcome is ClaimOutcome.DONE
        assert claim.response is not None
        assert len(claim.response) < 8_000 < len(prompt)
        # A repeat still gets the whole answer.
        again = await h.stub.GenerateText(message, timeout=20)
        assert (again.text, again.prediction.id) == (first.text, first.prediction.id)
        assert h.requests.count("create") == 1


@pytest.mark.parametrize("state", ["streaming", "polling", "held"])
async def test_a_repeat_after_a_replica_shut_down_runs_the_request_again(
    redis: RedisServer, state: str
) -> None:
    # Was: the record kept the prediction the shutdown canceled, and a repeat on another
    # replica replayed (or attached to) it: ABORTED PREDICTION_CANCELED, though nothing the
    # caller did canceled it and the request could run.
    request = text_request(str(uuid.uuid4()))
    max_wait = 4 if state == "held" else 1
    async with running_gateway(redis_url=redis.url, max_wait=max_wait) as h:
        h.simulator.state.set_behaviour(LLAMA3, never_finishes=True, streams=state != "polling")
        first = asyncio.ensure_future(h.stub.GenerateText(request, timeout=600))
        wanted = {"streaming": "stream", "polling": "get", "held": "create"}[state]
        await h.requests.wait_for(1, kind=wanted)
        await h.gateway.stop(grace=1.0)
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await first
        assert error_info(caught.value).reason == "GATEWAY_SHUTTING_DOWN"
        h.simulator.state.reset_behaviour(LLAMA3)
        async with replicas(1, h.simulator, redis_url=redis.url) as (other,):
            reply = await other.GenerateText(request, timeout=30)
        assert reply.prediction.status == pb.PREDICTION_STATUS_SUCCEEDED
        assert reply.text
        assert creates(h.simulator) == 2
