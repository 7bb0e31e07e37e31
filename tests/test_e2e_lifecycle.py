"""The prediction lifecycle against the simulator's faults: what the caller gets, and what it cost.

Each test counts the upstream requests the simulator received, by endpoint kind.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import AsyncIterable

import grpc
import pytest

from inference_gateway_protos.inference.gateway.v1 import gateway_pb2 as pb
from replicate_simulator import SimulatorConfig
from tests.gateway_harness import Harness, running_gateway
from tests.simulator_fixtures import wait_until
from tests.support.models import LLAMA3
from tests.support.rpc_status import error_info, retry_delay_seconds
from tests.support.traffic import latest_prediction

PREDICTION_KINDS = ("create", "get", "stream", "cancel")


def prediction_requests(h: Harness) -> int:
    return sum(h.requests.count(kind) for kind in PREDICTION_KINDS)


async def warm_schema(h: Harness) -> None:
    """One call caches the model's schema, so later calls count prediction requests only."""
    await h.stub.GenerateText(pb.GenerateTextRequest(model=LLAMA3, prompt="warm"), timeout=20)
    h.requests.clear()


async def test_a_prediction_within_the_sync_wait_costs_exactly_one_request() -> None:
    async with running_gateway() as h:
        await warm_schema(h)
        reply = await h.stub.GenerateText(
            pb.GenerateTextRequest(model=LLAMA3, prompt="short"), timeout=30
        )
        assert reply.prediction.status == pb.PREDICTION_STATUS_SUCCEEDED
        assert h.requests.count() == 1
        [create] = h.requests.matching("create")
        assert create.headers["prefer"].startswith("wait=")


async def test_a_deadline_on_a_prediction_that_never_finishes_cancels_it() -> None:
    async with running_gateway() as h:
        await warm_schema(h)
        h.simulator.state.set_behaviour(LLAMA3, never_finishes=True)
        started = time.monotonic()
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await h.stub.GenerateText(
                pb.GenerateTextRequest(model=LLAMA3, prompt="forever"), timeout=3
            )
        elapsed = time.monotonic() - started
        assert caught.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
        assert elapsed < 3.5
        [create] = h.requests.matching("create")
        assert create.headers["cancel-after"].endswith("s")
        assert 3 <= int(create.headers["cancel-after"][:-1]) <= 5
        prediction = latest_prediction(h)
        await wait_until(prediction, lambda p: p.status == "canceled")
        assert h.requests.count("cancel") == 1


async def test_a_caller_that_goes_away_gets_its_prediction_canceled() -> None:
    async with running_gateway() as h:
        await warm_schema(h)
        h.simulator.state.set_behaviour(LLAMA3, never_finishes=True)
        call = h.stub.StreamText(pb.GenerateTextRequest(model=LLAMA3, prompt="x"), timeout=30)
        async for message in call:
            if message.text:
                break
        call.cancel()
        prediction = latest_prediction(h)
        await wait_until(prediction, lambda p: p.status == "canceled")
        assert h.requests.count("cancel") == 1


async def test_a_429_on_create_then_success_creates_exactly_one_prediction() -> None:
    async with running_gateway() as h:
        await warm_schema(h)
        h.simulator.state.faults.add(kind="create", status=429, retry_after=1)
        reply = await h.stub.GenerateText(
            pb.GenerateTextRequest(model=LLAMA3, prompt="again"), timeout=30
        )
        assert reply.prediction.status == pb.PREDICTION_STATUS_SUCCEEDED
        assert h.requests.count("create") == 2
        assert [r.response_status for r in h.requests.matching("create")] == [429, 201]
        assert len(h.simulator.state.predictions) == 2  # the warm-up and this one


async def test_a_5xx_on_create_is_not_retried_and_says_unavailable() -> None:
    async with running_gateway() as h:
        await warm_schema(h)
        h.simulator.state.faults.add(kind="create", status=503)
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await h.stub.GenerateText(pb.GenerateTextRequest(model=LLAMA3, prompt="x"), timeout=30)
        assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
        assert h.requests.count("create") == 1


async def test_a_stream_cut_halfway_is_resumed_with_the_whole_text_once() -> None:
    async with running_gateway() as h:
        await warm_schema(h)
        h.simulator.state.set_behaviour(LLAMA3, stream_cut_after_events=8)
        pieces = []
        async for message in h.stub.StreamText(
            pb.GenerateTextRequest(model=LLAMA3, prompt="a long story"), timeout=30
        ):
            pieces.append(message.text)
        [create] = h.requests.matching("create")
        expected = h.simulator.state.expected_text(LLAMA3, create.body["input"])
        assert "".join(pieces) == expected
        assert h.requests.count("stream") >= 2
        resumed = h.requests.matching("stream")[1]
        assert "last-event-id" in resumed.headers


async def test_a_failed_prediction_returns_its_error_and_id() -> None:
    async with running_gateway() as h:
        await warm_schema(h)
        h.simulator.state.set_behaviour(
            LLAMA3, fail_error="CUDA out of memory", fail_logs="loading\nallocating 80GB"
        )
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await h.stub.GenerateText(pb.GenerateTextRequest(model=LLAMA3, prompt="x"), timeout=30)
        prediction = latest_prediction(h)
        details = caught.value.details() or ""
        assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert "CUDA out of memory" in details
        assert prediction.id in details
        info = error_info(caught.value)
        assert info.reason == "PREDICTION_FAILED"
        assert info.metadata["predictionId"] == prediction.id


async def test_a_cold_boot_past_the_sync_wait_is_followed_over_the_stream() -> None:
    """Time-scaled: the gateway's sync wait is cut to 1 s and the boot lasts 3 s."""
    async with running_gateway(max_wait=1) as h:
        await warm_schema(h)
        h.simulator.state.force_cold_boot(LLAMA3, 3.0)
        reply = await h.stub.GenerateText(
            pb.GenerateTextRequest(model=LLAMA3, prompt="cold"), timeout=60
        )
        assert reply.prediction.status == pb.PREDICTION_STATUS_SUCCEEDED
        assert reply.prediction.timing.queue_duration.ToNanoseconds() >= 2_900_000_000
        assert prediction_requests(h) <= 3


# At time scale 60 the boot lasts 1.5 s while Replicate's timestamps say 90 s; the
# simulator reads the gateway's Cancel-After in simulated time too. The real-time run
# stays, in the slow tier: only it proves the gateway's own HTTP timeouts outlast a held
# create and a silent stream, which the scale shortens along with the boot.
@pytest.mark.parametrize(
    "time_scale",
    [pytest.param(60.0, id="scaled"), pytest.param(1.0, id="real-time", marks=pytest.mark.slow)],
)
async def test_a_90_second_cold_boot_within_a_5_minute_deadline_costs_three_requests(
    time_scale: float,
) -> None:
    simulator = SimulatorConfig(time_scale=time_scale, token_interval_seconds=0.002)
    async with running_gateway(simulator_config=simulator) as h:
        await warm_schema(h)
        h.simulator.state.force_cold_boot(LLAMA3, 90.0)
        reply = await h.stub.GenerateText(
            pb.GenerateTextRequest(model=LLAMA3, prompt="cold"), timeout=300
        )
        assert reply.prediction.status == pb.PREDICTION_STATUS_SUCCEEDED
        assert reply.prediction.timing.queue_duration.ToNanoseconds() >= 90_000_000_000
        assert reply.prediction.timing.cold_boot
        assert prediction_requests(h) <= 3
        assert h.requests.count("create") == 1


async def test_a_spent_create_budget_fails_fast_with_retry_info() -> None:
    # Six creates a minute, as Replicate allows low-credit accounts: a burst of one.
    async with running_gateway(create_rate=6) as h:
        await warm_schema(h)  # spends the one slot
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await h.stub.GenerateText(pb.GenerateTextRequest(model=LLAMA3, prompt="x"), timeout=3)
        assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert error_info(caught.value).reason == "RATE_BUDGET_EXHAUSTED"
        assert retry_delay_seconds(caught.value) > 3
        assert h.requests.count("create") == 0


async def test_a_model_without_a_stream_is_followed_by_gets_that_back_off() -> None:
    async with running_gateway(max_wait=1) as h:
        await warm_schema(h)
        h.simulator.state.set_behaviour(LLAMA3, streams=False, predict_seconds=4.0)
        reply = await h.stub.GenerateText(
            pb.GenerateTextRequest(model=LLAMA3, prompt="slow"), timeout=30
        )
        assert reply.prediction.status == pb.PREDICTION_STATUS_SUCCEEDED
        gets = h.requests.matching("get")
        assert h.requests.count("stream") == 0
        # About 3 s past the 1 s sync wait: GETs at 0.5, 0.75, 1.1, 1.7 s apart, not every 0.5 s.
        assert 2 <= len(gets) <= 6
        gaps = [b.time - a.time for a, b in itertools.pairwise(gets)]
        assert gaps == sorted(gaps)


async def test_a_stream_that_fails_midway_reports_the_error_with_its_last_logs() -> None:
    async with running_gateway() as h:
        await warm_schema(h)
        h.simulator.state.set_behaviour(
            LLAMA3, fail_error="worker crashed", fail_logs="step 1\nstep 2", fail_after_outputs=3
        )
        pieces: list[str] = []
        call = h.stub.StreamText(pb.GenerateTextRequest(model=LLAMA3, prompt="x"), timeout=30)
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await collect_text(call, pieces)
        prediction = latest_prediction(h)
        details = caught.value.details() or ""
        assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert "worker crashed" in details
        assert "step 2" in details
        assert prediction.id in details
        assert len([p for p in pieces if p]) == 3
        assert h.requests.count("cancel") == 0


async def collect_text(call: AsyncIterable[pb.StreamTextResponse], into: list[str]) -> None:
    async for message in call:
        into.append(message.text)
