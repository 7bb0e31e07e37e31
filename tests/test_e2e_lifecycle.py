"""The prediction lifecycle against the simulator's faults: what the caller gets, and what it cost.

Each test counts the upstream requests the simulator received, by endpoint kind.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import AsyncIterable
from pathlib import Path

import grpc
import pytest

from inference_gateway_protos.inference.gateway.v1 import gateway_pb2 as pb
from replicate_simulator import SimulatorConfig
from tests.gateway_harness import Harness, running_gateway
from tests.simulator_fixtures import wait_until
from tests.support.models import LLAMA3, SDXL, SDXL_PINNED
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


@pytest.mark.slow
async def test_a_deadline_on_a_prediction_that_never_finishes_cancels_it() -> None:
    async with running_gateway() as h:
        await warm_schema(h)
        h.simulator.state.set_behaviour(LLAMA3, never_finishes=True)
        started = time.monotonic()
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await h.stub.GenerateText(
                pb.GenerateTextRequest(model=LLAMA3, prompt="forever"), timeout=7
            )
        elapsed = time.monotonic() - started
        assert caught.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
        assert elapsed < 7.5
        [create] = h.requests.matching("create")
        assert create.headers["cancel-after"] == "6s"
        prediction = latest_prediction(h)
        await wait_until(prediction, lambda p: p.status == "canceled")
        # Replicate's Cancel-After (rounded down) usually ends it a moment before the
        # gateway's deadline would; either way one of them does, and the answer is the same.
        assert h.requests.count("cancel") <= 1


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
            await h.stub.GenerateText(pb.GenerateTextRequest(model=LLAMA3, prompt="x"), timeout=7)
        assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert error_info(caught.value).reason == "RATE_BUDGET_EXHAUSTED"
        assert retry_delay_seconds(caught.value) > 3
        assert h.requests.count("create") == 0


@pytest.mark.slow
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


# --- one deadline for every step of every RPC --------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("limit", ["default_timeout", "alias timeout_seconds"])
async def test_a_stream_kept_open_by_keepalives_ends_at_the_limit_and_is_canceled(
    limit: str, tmp_path: Path
) -> None:
    """The upstream stream never says `done` but is never silent either."""
    config = tmp_path / "aliases.yaml"
    config.write_text(f"aliases:\n  llama3: {{model: {LLAMA3}, timeout_seconds: 6.5}}\n")
    by_alias = limit != "default_timeout"
    model = "llama3" if by_alias else LLAMA3
    default_timeout = 600.0 if by_alias else 6.5
    async with running_gateway(config=config, default_timeout=default_timeout) as h:
        await warm_schema(h)
        h.simulator.state.set_behaviour(
            LLAMA3, never_finishes=True, output_tokens=2, stream_keepalive_seconds=0.2
        )
        started = time.monotonic()
        pieces: list[str] = []
        call = h.stub.StreamText(pb.GenerateTextRequest(model=model, prompt="x"), timeout=30)
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await collect_text(call, pieces)
        elapsed = time.monotonic() - started
        prediction = latest_prediction(h)
        assert caught.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
        assert error_info(caught.value).metadata["predictionId"] == prediction.id
        assert 5.5 <= elapsed < 7.5
        assert "".join(pieces)  # it did stream, until the limit
        await wait_until(prediction, lambda p: p.status == "canceled")
        assert h.requests.count("cancel") <= 1


@pytest.mark.parametrize(("seconds", "minimum"), [(0.5, None), (0.3, 0.5), (1.5, 2.0)])
async def test_a_deadline_too_short_for_any_prediction_is_refused_before_anything_is_spent(
    seconds: float, minimum: float | None
) -> None:
    gateway = running_gateway() if minimum is None else running_gateway(min_deadline=minimum)
    async with gateway as h:
        text = pb.GenerateTextRequest(model=LLAMA3, prompt="x")
        calls = (
            h.stub.GenerateText(text, timeout=seconds),
            h.stub.GenerateImage(
                pb.GenerateImageRequest(model=SDXL_PINNED, prompt="x"), timeout=seconds
            ),
            collect_text(h.stub.StreamText(text, timeout=seconds), []),
        )
        expected = f"{minimum or 1.0:g}"  # GATEWAY_MIN_DEADLINE, 1 s unless set
        for call in calls:
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await call
            assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            details = caught.value.details() or ""
            assert "too short" in details
            assert f"at least {expected}s" in details
            assert "GATEWAY_MIN_DEADLINE" in details
            info = error_info(caught.value)
            assert info.reason == "DEADLINE_TOO_SHORT"
            assert info.metadata["minimumSeconds"] == expected
            assert info.metadata["setting"] == "GATEWAY_MIN_DEADLINE"
        assert h.requests.count() == 0  # not even a schema look-up


async def test_a_deadline_of_exactly_the_minimum_is_served() -> None:
    async with running_gateway(min_deadline=2.0) as h:
        await warm_schema(h)
        reply = await h.stub.GenerateText(
            pb.GenerateTextRequest(model=LLAMA3, prompt="x"), timeout=2.0
        )
        assert reply.prediction.status == pb.PREDICTION_STATUS_SUCCEEDED


# --- deadlines under Replicate's 5 s minimum Cancel-After --------------------------------------


async def test_a_short_deadline_on_a_fast_warm_model_is_served() -> None:
    """2-3 s deadlines are common for fast warm models: served, with Replicate's 5 s
    minimum Cancel-After, the closest to the caller's deadline Replicate accepts."""
    async with running_gateway() as h:
        await warm_schema(h)
        h.simulator.state.set_behaviour(LLAMA3, predict_seconds=1.0)
        reply = await h.stub.GenerateText(
            pb.GenerateTextRequest(model=LLAMA3, prompt="quick"), timeout=3.0
        )
        assert reply.prediction.status == pb.PREDICTION_STATUS_SUCCEEDED
        expected = h.simulator.state.expected_text(LLAMA3, {"prompt": "quick"})
        assert reply.text == expected
        pieces: list[str] = []
        await collect_text(
            h.stub.StreamText(pb.GenerateTextRequest(model=LLAMA3, prompt="quick"), timeout=3.0),
            pieces,
        )
        assert "".join(pieces) == expected
        creates = h.requests.matching("create")
        assert [create.headers["cancel-after"] for create in creates] == ["5s", "5s"]
        assert h.requests.count("cancel") == 0


@pytest.mark.parametrize("seconds", [1.2, 3.0])
async def test_a_short_deadline_on_a_prediction_that_never_finishes_cancels_it_at_the_deadline(
    seconds: float,
) -> None:
    """The gateway cancels it itself, once, at the caller's deadline: its 5 s Cancel-After
    is only the backstop, so the create is held no longer than leaves time to know the
    prediction's id (under 1.5 s left, not held at all)."""
    async with running_gateway() as h:
        await warm_schema(h)
        h.simulator.state.set_behaviour(LLAMA3, never_finishes=True)
        started = time.time()
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await h.stub.GenerateText(
                pb.GenerateTextRequest(model=LLAMA3, prompt="forever"), timeout=seconds
            )
        assert caught.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
        assert time.time() - started < seconds + 0.5
        [create] = h.requests.matching("create")
        assert create.headers["cancel-after"] == "5s"
        held = create.headers.get("prefer")
        if seconds < 1.5:
            assert held is None
        else:
            assert held is not None
            assert int(held.removeprefix("wait=")) < seconds
        async with asyncio.timeout(10):
            [cancel] = await h.requests.wait_for(1, kind="cancel")
        prediction = latest_prediction(h)
        assert cancel.path.endswith(f"/{prediction.id}/cancel")
        assert cancel.time - started < seconds + 0.5  # at the deadline, not at Cancel-After
        await wait_until(prediction, lambda p: p.status == "canceled")
        assert h.requests.count("cancel") == 1


async def test_cancel_after_is_never_later_than_the_callers_deadline() -> None:
    async with running_gateway() as h:
        await warm_schema(h)
        h.simulator.state.set_behaviour(SDXL, predict_seconds=0.0)
        await h.stub.GenerateText(pb.GenerateTextRequest(model=LLAMA3, prompt="x"), timeout=8.0)
        await h.stub.GenerateImage(
            pb.GenerateImageRequest(model=SDXL_PINNED, prompt="x"), timeout=8.0
        )
        cancel_afters = [r.headers["cancel-after"] for r in h.requests.matching("create")]
        assert len(cancel_afters) == 2
        for value in cancel_afters:
            assert value.endswith("s")
            assert 5 <= int(value[:-1]) < 8


# --- an abandoned unary call ------------------------------------------------------------------


@pytest.mark.slow
async def test_a_caller_leaving_generate_text_has_its_prediction_canceled_within_seconds() -> None:
    """With the default hold, not when a minute-long held create finally returns."""
    async with running_gateway() as h:
        await warm_schema(h)
        h.simulator.state.set_behaviour(LLAMA3, never_finishes=True)
        call = h.stub.GenerateText(pb.GenerateTextRequest(model=LLAMA3, prompt="x"), timeout=300)
        answer = asyncio.ensure_future(call)
        await h.requests.wait_for(1, kind="create")
        prediction = latest_prediction(h)
        await wait_until(prediction, lambda p: p.status == "processing")
        left = time.monotonic()
        call.cancel()
        with pytest.raises(asyncio.CancelledError):
            await answer
        async with asyncio.timeout(15):
            [cancel] = await h.requests.wait_for(1, kind="cancel")
        assert cancel.path.endswith(f"/{prediction.id}/cancel")
        # The default hold is 5 s; it began before the caller left.
        assert time.monotonic() - left < 6.0
        await wait_until(prediction, lambda p: p.status == "canceled")


# --- the API lagging behind the stream ------------------------------------------------------


async def test_generate_text_reads_again_until_the_api_catches_up_with_the_stream() -> None:
    async with running_gateway(max_wait=1) as h:
        await warm_schema(h)
        h.simulator.state.set_behaviour(LLAMA3, predict_seconds=1.5, api_lag_seconds=1.0)
        reply = await h.stub.GenerateText(
            pb.GenerateTextRequest(model=LLAMA3, prompt="lagging"), timeout=30
        )
        [create] = h.requests.matching("create")
        assert reply.prediction.status == pb.PREDICTION_STATUS_SUCCEEDED
        assert reply.text == h.simulator.state.expected_text(LLAMA3, create.body["input"])
        assert h.requests.count("stream") == 1
        # Backing off from 0.1 s over a 1 s lag: a handful of reads, not one per 100 ms.
        assert 2 <= h.requests.count("get") <= 6


async def test_generate_text_answers_from_the_stream_when_the_api_lags_past_the_deadline() -> None:
    async with running_gateway(max_wait=1) as h:
        await warm_schema(h)
        h.simulator.state.set_behaviour(LLAMA3, predict_seconds=1.0, api_lag_seconds=60.0)
        reply = await h.stub.GenerateText(
            pb.GenerateTextRequest(model=LLAMA3, prompt="lagging"), timeout=7
        )
        [create] = h.requests.matching("create")
        assert reply.prediction.status == pb.PREDICTION_STATUS_SUCCEEDED
        assert reply.text == h.simulator.state.expected_text(LLAMA3, create.body["input"])
        assert h.requests.count("cancel") == 0


async def test_stream_text_reads_again_until_the_api_catches_up_with_the_stream() -> None:
    async with running_gateway() as h:
        await warm_schema(h)
        h.simulator.state.set_behaviour(LLAMA3, api_lag_seconds=1.0)
        messages = [
            m
            async for m in h.stub.StreamText(
                pb.GenerateTextRequest(model=LLAMA3, prompt="lagging"), timeout=30
            )
        ]
        [create] = h.requests.matching("create")
        assert "".join(m.text for m in messages) == h.simulator.state.expected_text(
            LLAMA3, create.body["input"]
        )
        assert messages[-1].prediction.status == pb.PREDICTION_STATUS_SUCCEEDED
        assert 2 <= h.requests.count("get") <= 6


async def test_a_create_sent_again_after_a_429_carries_a_cancel_after_shortened_by_the_wait() -> (
    None
):
    """Cancel-After counts from the creation: the time spent waiting to retry comes off it."""
    async with running_gateway() as h:
        await warm_schema(h)
        h.simulator.state.faults.add(kind="create", status=429, retry_after=2)
        await h.stub.GenerateText(pb.GenerateTextRequest(model=LLAMA3, prompt="x"), timeout=20)
        first, second = (r.headers["cancel-after"] for r in h.requests.matching("create"))
        # 20 s less the margin and a moment: 19 s; two seconds later, 17 s at the most.
        assert first == "19s"
        assert int(second[:-1]) <= 17
