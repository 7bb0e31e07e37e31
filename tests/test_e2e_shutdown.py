"""Graceful shutdown: readiness goes first, calls drain, nothing is left running on Replicate."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
import time
from collections.abc import AsyncIterable, AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from inference_gateway.config import GatewayConfig, load_config
from inference_gateway.grpc_api.server import connection_age_grace
from inference_gateway.settings import Settings
from inference_gateway_protos.inference.gateway.v1 import gateway_pb2 as pb
from inference_gateway_protos.inference.gateway.v1 import gateway_pb2_grpc
from replicate_simulator import RunningSimulator, SimulatorConfig
from tests.gateway_harness import TEST_TOKEN, running_gateway
from tests.simulator_fixtures import running_simulator, wait_until
from tests.support.models import LLAMA3
from tests.support.rpc_status import error_info


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


@pytest.mark.slow
async def test_connection_ageing_lets_a_call_longer_than_the_shutdown_grace_finish() -> None:
    """Ageing spreads load over replicas; it must not end a call the caller may still make.

    Time-scaled: connections age after 1 s, the shutdown grace is 0.5 s, the call takes 7 s.
    """
    async with running_gateway(max_connection_age=1.0, grace_period=0.5) as h:
        h.simulator.state.set_behaviour(LLAMA3, predict_seconds=7.0)
        reply = await h.stub.GenerateText(
            pb.GenerateTextRequest(model=LLAMA3, prompt="a long one"), timeout=60
        )
        assert reply.prediction.status == pb.PREDICTION_STATUS_SUCCEEDED
        assert h.requests.count("cancel") == 0


def test_the_connection_age_grace_defaults_to_the_longest_call_allowed(tmp_path: Path) -> None:
    config = tmp_path / "aliases.yaml"
    config.write_text(f"aliases:\n  slow: {{model: {LLAMA3}, timeout_seconds: 900}}\n")
    settings = Settings(default_timeout=600.0)
    assert connection_age_grace(settings, GatewayConfig.empty()) == 600.0
    assert connection_age_grace(settings, load_config(config, {})) == 900.0
    chosen = Settings(max_connection_age_grace=42.0)
    assert connection_age_grace(chosen, load_config(config, {})) == 42.0


# --- a real process, a real signal ------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@asynccontextmanager
async def serving_process(
    simulator: RunningSimulator, **env: str
) -> AsyncIterator[tuple[asyncio.subprocess.Process, grpc.aio.Channel]]:
    """`inference-gateway serve` against the simulator, with a channel to it."""
    port = _free_port()
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("REPLICATE_", "GATEWAY_"))}
    environ.update(
        REPLICATE_API_TOKEN=TEST_TOKEN,
        REPLICATE_BASE_URL=simulator.base_url,
        GATEWAY_HOST="127.0.0.1",
        GATEWAY_PORT=str(port),
        GATEWAY_METRICS_HOST="127.0.0.1",
        GATEWAY_METRICS_PORT=str(_free_port()),
        GATEWAY_DRAIN_DELAY="0",
        **env,
    )
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "inference_gateway", "serve", env=environ,
        stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
    try:
        health = health_pb2_grpc.HealthStub(channel)
        request = health_pb2.HealthCheckRequest(service="readiness")
        await health.Check(request, timeout=30, wait_for_ready=True)
        yield process, channel
    finally:
        await channel.close(None)
        if process.returncode is None:
            process.kill()
            await process.wait()


@pytest.mark.slow
async def test_sigterm_with_held_creates_exits_within_its_grace_and_cancels_them_all() -> None:
    """Three GenerateText calls held by Replicate and one followed stream, at SIGTERM.

    Shutdown ends within drain (0) + grace (1 s) + the cancel window (5 s), and every
    prediction the gateway learned of, held creates included, is canceled by then.
    """
    async with (
        running_simulator(SimulatorConfig(token_interval_seconds=0.002)) as simulator,
        serving_process(simulator, GATEWAY_GRACE_PERIOD="1") as (process, channel),
    ):
        simulator.state.set_behaviour(LLAMA3, never_finishes=True)
        stub = gateway_pb2_grpc.InferenceGatewayStub(channel)
        request = pb.GenerateTextRequest(model=LLAMA3, prompt="x")
        held = [asyncio.ensure_future(stub.GenerateText(request, timeout=120)) for _ in range(3)]
        stream = stub.StreamText(request, timeout=120)
        await first_text(stream)
        await simulator.state.requests.wait_for(4, kind="create")
        signalled = time.monotonic()
        process.send_signal(signal.SIGTERM)
        async with asyncio.timeout(15):
            code = await process.wait()
        took = time.monotonic() - signalled
        assert code == 0
        assert took < 1 + 5 + 2
        predictions = list(simulator.state.predictions.values())
        assert len(predictions) == 4
        assert [p.status for p in predictions] == ["canceled"] * 4
        assert simulator.state.requests.count("cancel") == 4
        for call in held:
            with pytest.raises(grpc.aio.AioRpcError):
                await call


async def test_sighup_drains_like_sigterm_instead_of_killing_calls() -> None:
    async with (
        running_simulator(SimulatorConfig(token_interval_seconds=0.002)) as simulator,
        serving_process(simulator, GATEWAY_GRACE_PERIOD="20") as (process, channel),
    ):
        simulator.state.set_behaviour(LLAMA3, predict_seconds=1.5)
        stub = gateway_pb2_grpc.InferenceGatewayStub(channel)
        call = asyncio.ensure_future(
            stub.GenerateText(pb.GenerateTextRequest(model=LLAMA3, prompt="x"), timeout=60)
        )
        await simulator.state.requests.wait_for(1, kind="create")
        process.send_signal(signal.SIGHUP)
        reply = await call
        async with asyncio.timeout(15):
            code = await process.wait()
        assert reply.prediction.status == pb.PREDICTION_STATUS_SUCCEEDED
        assert code == 0


async def test_calls_unfinished_at_the_end_of_the_grace_get_one_answer() -> None:
    # Was: GenerateText got gRPC's own UNAVAILABLE (no ErrorInfo, no prediction id) while
    # StreamText got ABORTED (PREDICTION_CANCELED, as if someone else had canceled it).
    # Both now say the replica shut down and canceled their prediction, UNAVAILABLE:
    # a retry runs elsewhere, and without a request_id it is a new, billed prediction.
    async with running_gateway(max_wait=1) as h:
        h.simulator.state.set_behaviour(LLAMA3, never_finishes=True)
        stream = h.stub.StreamText(pb.GenerateTextRequest(model=LLAMA3, prompt="x"), timeout=600)
        await first_text(stream)
        unary = asyncio.ensure_future(
            h.stub.GenerateText(pb.GenerateTextRequest(model=LLAMA3, prompt="y"), timeout=600)
        )
        # Neither create is held any longer: both calls follow their prediction's stream.
        await h.requests.wait_for(2, kind="stream")
        await h.gateway.stop(grace=2.0)
        errors = []
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            async for _ in stream:
                pass
        errors.append(caught.value)
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await unary
        errors.append(caught.value)
        ids = {p.id for p in h.simulator.state.predictions.values()}
        for error in errors:
            assert error.code() == grpc.StatusCode.UNAVAILABLE, error.details()
            info = error_info(error)
            assert info.reason == "GATEWAY_SHUTTING_DOWN"
            assert info.metadata["predictionId"] in ids
            assert "canceled" in (error.details() or "")
        assert h.requests.count("cancel") == 2


async def test_calls_polling_when_the_grace_ends_get_the_gateway_s_answer() -> None:
    # Was: a call polling a model without a stream slept up to a poll interval past the
    # grace, so gRPC aborted it with its own bare UNAVAILABLE (no ErrorInfo, no prediction).
    async with running_gateway(max_wait=1) as h:
        h.simulator.state.set_behaviour(LLAMA3, never_finishes=True, streams=False)
        request = pb.GenerateTextRequest(model=LLAMA3, prompt="x")
        unary = asyncio.ensure_future(h.stub.GenerateText(request, timeout=600))
        stream = h.stub.StreamText(request, timeout=600)
        streamed = asyncio.ensure_future(_drain(stream))
        # Both calls poll: the unary one after its held create, the stream at once; the
        # next GET of each is due after the grace below has ended.
        await h.requests.wait_for(3, kind="get")
        await h.gateway.stop(grace=1.0)
        ids = {p.id for p in h.simulator.state.predictions.values()}
        for call in (unary, streamed):
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await call
            error = caught.value
            assert error.code() == grpc.StatusCode.UNAVAILABLE, error.details()
            info = error_info(error)
            assert info.reason == "GATEWAY_SHUTTING_DOWN"
            assert info.metadata["predictionId"] in ids
            assert "canceled" in (error.details() or "")
        assert [p.status for p in h.simulator.state.predictions.values()] == ["canceled"] * 2
        assert h.requests.count("cancel") == 2


async def _drain(call: AsyncIterable[pb.StreamTextResponse]) -> None:
    async for _ in call:
        pass


async def test_a_call_whose_create_is_held_when_the_grace_ends_gets_the_gateway_s_answer() -> None:
    # Was: gRPC's bare UNAVAILABLE. The prediction is not known yet, so the answer cannot
    # name it; it is canceled as soon as Replicate answers the create.
    async with running_gateway(max_wait=4) as h:
        h.simulator.state.set_behaviour(LLAMA3, never_finishes=True)
        call = asyncio.ensure_future(
            h.stub.GenerateText(pb.GenerateTextRequest(model=LLAMA3, prompt="x"), timeout=600)
        )
        await h.requests.wait_for(1, kind="create")
        await h.gateway.stop(grace=1.0)
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await call
        error = caught.value
        assert error.code() == grpc.StatusCode.UNAVAILABLE, error.details()
        assert error_info(error).reason == "GATEWAY_SHUTTING_DOWN"
        assert "canceled" in (error.details() or "")
        [prediction] = h.simulator.state.predictions.values()
        await wait_until(prediction, lambda p: p.status == "canceled")
        assert h.requests.count("cancel") == 1
