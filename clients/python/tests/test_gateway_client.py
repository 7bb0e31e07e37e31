"""The Python client against a real gateway and the simulator, over gRPC and HTTP on loopback."""

from __future__ import annotations

import hashlib
import json
import uuid
from pathlib import Path

import grpc
import pytest
from google.protobuf import duration_pb2
from google.rpc import error_details_pb2, status_pb2
from inference_gateway_protos.inference.gateway.v1 import gateway_pb2 as pb
from tests.gateway_harness import Harness, running_gateway
from tests.support.models import LLAMA3

from inference_gateway_client import (
    SERVICE_CONFIG,
    FailedPrecondition,
    GatewayClient,
    InvalidArgument,
    NotFound,
    ResourceExhausted,
    Unauthenticated,
    Unavailable,
    channel_options,
    error_from,
)


def client_of(h: Harness, **options: object) -> GatewayClient:
    return GatewayClient(f"127.0.0.1:{h.gateway.port}", **options)  # type: ignore[arg-type]


# The GETs one gateway call sends before it gives up on a prediction it cannot read and
# answers UNAVAILABLE (its retry loop's attempts; counted by the no-retry test below).
GETS_BEFORE_UNAVAILABLE = 12


def poll_faults(h: Harness) -> None:
    """The prediction runs past the held create, and the gateway cannot read it once."""
    h.simulator.state.set_behaviour(LLAMA3, streams=False, predict_seconds=2.0)
    h.simulator.state.faults.add(kind="get", drop_connection=True, times=GETS_BEFORE_UNAVAILABLE)


@pytest.mark.slow
async def test_a_retry_after_unavailable_attaches_to_the_first_attempts_prediction() -> None:
    async with running_gateway(max_wait=1) as h, client_of(h) as client:
        poll_faults(h)
        reply = await client.generate_text(
            pb.GenerateTextRequest(model=LLAMA3, prompt="Tell me about the sea"),
            deadline_seconds=60,
        )
        creates = h.requests.matching("create")
        expected = h.simulator.state.expected_text(LLAMA3, creates[0].body["input"])
        unread = h.simulator.state.faults.pending()
    # Every fault fired, so the first attempt ended UNAVAILABLE after creating; the
    # channel's retry sent the same request_id, which attached: one prediction, two attempts.
    assert unread == []
    assert len(creates) == 1
    assert reply.prediction.status == pb.PREDICTION_STATUS_SUCCEEDED
    assert reply.text == expected


@pytest.mark.slow
async def test_without_retries_the_same_fault_surfaces_as_unavailable() -> None:
    async with running_gateway(max_wait=1) as h, client_of(h, retries=False) as client:
        poll_faults(h)
        with pytest.raises(Unavailable) as failed:
            await client.generate_text(
                pb.GenerateTextRequest(model=LLAMA3, prompt="x"), deadline_seconds=60
            )
        # Answered GETs are not counted: once it has answered UNAVAILABLE the gateway may
        # read the prediction again (it did, 2 ms later, racing this line under load).
        dropped = [get for get in h.requests.matching("get") if get.response_status is None]
        unread = h.simulator.state.faults.pending()
    assert len(dropped) == GETS_BEFORE_UNAVAILABLE
    assert unread == []
    assert failed.value.code == grpc.StatusCode.UNAVAILABLE
    assert failed.value.reason == "REPLICATE_UNREACHABLE"
    assert failed.value.domain == "inference-gateway"


async def test_the_callers_request_id_is_kept_and_a_missing_one_filled_in() -> None:
    mine = str(uuid.uuid4())
    async with running_gateway() as h, client_of(h) as client:
        await client.generate_text(
            pb.GenerateTextRequest(model=LLAMA3, prompt="a", request_id=mine)
        )
        again = await client.generate_text(
            pb.GenerateTextRequest(model=LLAMA3, prompt="a", request_id=mine)
        )
        await client.generate_text(pb.GenerateTextRequest(model=LLAMA3, prompt="a"))
        await client.generate_text(pb.GenerateTextRequest(model=LLAMA3, prompt="a"))
        creates = h.requests.matching("create")
    # The repeat of `mine` replayed; each call without one got its own id.
    assert len(creates) == 3
    assert again.prediction.id


async def test_details_come_out_as_typed_exceptions() -> None:
    async with running_gateway() as h, client_of(h) as client:
        with pytest.raises(InvalidArgument) as invalid:
            await client.generate_text(
                pb.GenerateTextRequest(model=LLAMA3, prompt="x", temperature=-5)
            )
        with pytest.raises(NotFound) as unknown:
            await client.generate_text(pb.GenerateTextRequest(model="no-such-alias", prompt="x"))
        h.simulator.state.set_behaviour(LLAMA3, fail_error="CUDA out of memory")
        with pytest.raises(FailedPrecondition) as failed:
            await client.generate_text(pb.GenerateTextRequest(model=LLAMA3, prompt="x"))
        streamed = client.stream_text(pb.GenerateTextRequest(model=LLAMA3, prompt="x"))
        with pytest.raises(FailedPrecondition) as failed_stream:
            async for _ in streamed:
                pass
    assert invalid.value.reason == "INPUT_NOT_ACCEPTED"
    assert [v.field for v in invalid.value.field_violations] == ["temperature"]
    assert invalid.value.metadata["model"] == LLAMA3
    assert unknown.value.reason == "UNKNOWN_ALIAS"
    assert failed.value.reason == "PREDICTION_FAILED"
    assert failed.value.prediction_id
    assert "CUDA out of memory" in failed.value.message
    assert failed_stream.value.reason == "PREDICTION_FAILED"


async def test_the_bearer_token_goes_with_every_call(tmp_path: Path) -> None:
    token = "caller-token-for-the-client-test"
    config = tmp_path / "gateway.yaml"
    config.write_text(
        "aliases:\n"
        f"  llama3: {{model: {LLAMA3}}}\n"
        "callers:\n"
        "  svc:\n"
        f"    token_sha256: {hashlib.sha256(token.encode()).hexdigest()}\n"
        "    aliases: [llama3]\n"
    )
    async with running_gateway(config=config) as h:
        async with client_of(h, token=token) as client:
            reply = await client.generate_text(pb.GenerateTextRequest(model="llama3", prompt="x"))
            models = await client.list_models()
        async with client_of(h) as anonymous:
            with pytest.raises(Unauthenticated) as refused:
                await anonymous.list_models()
    assert reply.text
    assert [m.alias for m in models.models] == ["llama3"]
    assert refused.value.reason == "CALLER_TOKEN_MISSING"


def test_the_service_config_retries_only_what_request_id_makes_safe() -> None:
    options = dict(channel_options())
    config = json.loads(str(options["grpc.service_config"]))
    assert config == SERVICE_CONFIG
    [creating, _listing] = config["methodConfig"]
    assert {n["method"] for n in creating["name"]} == {
        "GenerateText",
        "StreamText",
        "GenerateImage",
    }
    assert set(creating["retryPolicy"]["retryableStatusCodes"]) == {
        "UNAVAILABLE",
        "RESOURCE_EXHAUSTED",
    }
    assert options["grpc.enable_retries"] == 1
    assert dict(channel_options(retries=False))["grpc.enable_retries"] == 0
    # Within the gateway's ping allowance (10 s without data).
    assert int(options["grpc.keepalive_time_ms"]) >= 10_000


def test_retry_info_comes_out_as_seconds() -> None:
    """A RESOURCE_EXHAUSTED as the gateway sends it (grpc-status-details-bin), decoded."""
    info = error_details_pb2.ErrorInfo(
        reason="CALLER_QUOTA_EXCEEDED", domain="inference-gateway", metadata={"quota": "rpm"}
    )
    retry = error_details_pb2.RetryInfo(
        retry_delay=duration_pb2.Duration(seconds=2, nanos=5 * 10**8)
    )
    status = status_pb2.Status(
        code=grpc.StatusCode.RESOURCE_EXHAUSTED.value[0], message="slow down"
    )
    status.details.add().Pack(info)
    status.details.add().Pack(retry)
    error = grpc.aio.AioRpcError(
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        grpc.aio.Metadata(),
        grpc.aio.Metadata(("grpc-status-details-bin", status.SerializeToString())),
        details="slow down",
        debug_error_string="",
    )

    typed = error_from(error)

    assert isinstance(typed, ResourceExhausted)
    assert (typed.reason, typed.retry_delay, typed.metadata) == (
        "CALLER_QUOTA_EXCEEDED",
        2.5,
        {"quota": "rpm"},
    )
