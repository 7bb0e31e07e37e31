"""What start-up checks and says: Replicate's verdict on the token, and the process metrics."""

from __future__ import annotations

import logging
import platform
import socket

import grpc
import httpx
import pytest
from grpc_health.v1 import health_pb2

from inference_gateway.grpc_api.server import check_replicate_token
from inference_gateway.settings import SettingsError
from inference_gateway_protos.inference.gateway.v1 import gateway_pb2 as pb
from replicate_simulator import SimulatorConfig
from tests.gateway_harness import TEST_TOKEN, Harness, running_gateway
from tests.simulator_fixtures import openapi_response_validator, running_simulator
from tests.support.models import LLAMA3

WRONG_TOKEN = "r8_test_revoked_token_00000000000000000"
# The simulator knows the harness's token only, so any other one is refused with a 401.
STRICT = SimulatorConfig(token_interval_seconds=0.002, valid_tokens=frozenset({TEST_TOKEN}))


async def test_the_simulator_answers_get_account_as_the_spec_says() -> None:
    async with running_simulator() as sim, httpx.AsyncClient(base_url=sim.base_url) as http:
        good = await http.get("/v1/account", headers={"Authorization": "Bearer r8_test_any"})
        anonymous = await http.get("/v1/account")
    assert good.status_code == 200
    openapi_response_validator("/account", "get", 200).validate(good.json())
    assert anonymous.status_code == 401


def auth_gauge(h: Harness) -> float | None:
    registry = h.gateway.metrics.registry
    value: float | None = registry.get_sample_value("inference_gateway_replicate_auth_ok")
    return value


async def test_an_accepted_token_is_said_once_and_shown_as_1(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async with running_gateway(simulator_config=STRICT) as h:
        assert auth_gauge(h) == -1  # not asked yet
        with caplog.at_level(logging.INFO, logger="inference_gateway"):
            assert await check_replicate_token(h.gateway) is True
        assert auth_gauge(h) == 1
        assert h.requests.count("account") == 1
    [line] = [r.getMessage() for r in caplog.records if "API token" in r.getMessage()]
    assert "accepted" in line
    assert "simulator" in line  # the account's name, from the simulator's answer


async def test_a_refused_token_is_said_in_one_line_and_calls_name_the_setting(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async with running_gateway(simulator_config=STRICT, api_token=WRONG_TOKEN) as h:
        with caplog.at_level(logging.INFO, logger="inference_gateway"):
            assert await check_replicate_token(h.gateway) is False
        assert auth_gauge(h) == 0
        # Readiness does not follow Replicate: the replica stays in its Service.
        health = await h.health.Check(health_pb2.HealthCheckRequest(service="readiness"))
        assert health.status == health_pb2.HealthCheckResponse.SERVING
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await h.stub.GenerateText(pb.GenerateTextRequest(model=LLAMA3, prompt="hi"), timeout=20)
    assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "REPLICATE_API_TOKEN" in (caught.value.details() or "")
    assert WRONG_TOKEN[:12] not in (caught.value.details() or "")
    [line] = [r for r in caplog.records if "API token" in r.getMessage()]
    assert line.levelno == logging.ERROR
    assert "REFUSED" in line.getMessage()
    assert "REPLICATE_API_TOKEN" in line.getMessage()
    assert WRONG_TOKEN[:12] not in line.getMessage()


async def test_an_unreachable_replicate_leaves_the_verdict_unknown(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async with running_gateway(simulator_config=STRICT) as h:
        h.simulator.state.faults.add(kind="account", status=503, times=10)
        with caplog.at_level(logging.INFO, logger="inference_gateway"):
            assert await check_replicate_token(h.gateway, within=1.0) is None
        assert auth_gauge(h) == -1
    [line] = [r for r in caplog.records if "API token" in r.getMessage()]
    assert line.levelno == logging.WARNING


async def test_metrics_carry_the_process_and_platform_collectors() -> None:
    async with running_gateway(serve_metrics=True) as h, httpx.AsyncClient() as client:
        response = await client.get(f"http://127.0.0.1:{h.gateway.metrics_port}/metrics")
    text = response.text
    resident = [line for line in text.splitlines() if line.startswith("process_resident_memory")]
    assert len(resident) == 1
    assert float(resident[0].split()[1]) > 1_000_000
    assert (
        f'python_info{{implementation="CPython",major="3",minor="{platform.python_version_tuple()[1]}"'
        in text
    )
    assert "python_gc_objects_collected_total" in text
    assert "process_open_fds" in text


async def test_a_token_refused_on_a_call_turns_the_gauge_to_0() -> None:
    """A token revoked while serving: no start-up check runs again, the calls say it."""
    async with running_gateway(simulator_config=STRICT, api_token=WRONG_TOKEN) as h:
        assert auth_gauge(h) == -1
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await h.stub.GenerateText(pb.GenerateTextRequest(model=LLAMA3, prompt="hi"), timeout=20)
        assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert auth_gauge(h) == 0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_a_port_in_use_is_refused_unless_sharing_is_asked_for() -> None:
    port = _free_port()
    async with running_gateway(port=port) as first:
        with pytest.raises(SettingsError, match=r"--port \(GATEWAY_PORT\)"):
            async with running_gateway(port=port):
                pass
        # The first one still serves, alone on its port.
        await first.health.Check(health_pb2.HealthCheckRequest(), timeout=5)
    shared = _free_port()
    async with (
        running_gateway(port=shared, reuse_port=True) as one,
        running_gateway(port=shared, reuse_port=True) as two,
    ):
        assert one.gateway.port == two.gateway.port == shared
