"""A gateway and a simulator on loopback, for end-to-end tests over real gRPC and HTTP."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, replace
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2_grpc

from inference_gateway.config import GatewayConfig, load_config
from inference_gateway.grpc_api.server import RunningGateway, start_gateway
from inference_gateway.outputs import parse_origin
from inference_gateway.settings import Settings
from inference_gateway_protos.inference.gateway.v1 import gateway_pb2_grpc
from replicate_simulator import (
    RequestLog,
    RunningSimulator,
    SimulatorConfig,
    start_simulator,
)

TEST_TOKEN = "r8_test_gateway_token_0000000000000000"


@dataclass
class Harness:
    simulator: RunningSimulator
    gateway: RunningGateway
    channel: grpc.aio.Channel
    stub: gateway_pb2_grpc.InferenceGatewayAsyncStub
    health: health_pb2_grpc.HealthStub

    @property
    def requests(self) -> RequestLog:
        """The simulator's request log."""
        return self.simulator.state.requests


def test_settings(**overrides: object) -> Settings:
    base = Settings(
        host="127.0.0.1",
        port=0,
        metrics_host="127.0.0.1",
        metrics_port=0,
        api_token=TEST_TOKEN,
        grace_period=2.0,
        drain_delay=0.0,
        uvloop=False,
        # The default (0.25 s) is for a quiet production host: on a loaded 2-core test
        # machine a Redis answer may take longer, and the store would fail open (budgets
        # and slots per replica) or closed (idempotency UNAVAILABLE) mid-test.
        redis_timeout=5.0,
    )
    return replace(base, **overrides)  # type: ignore[arg-type]


@asynccontextmanager
async def running_gateway(
    *,
    simulator_config: SimulatorConfig | None = None,
    config: GatewayConfig | Path | None = None,
    env: Mapping[str, str] | None = None,
    env_defaults: Mapping[str, object] | None = None,
    serve_metrics: bool = False,
    **settings: object,
) -> AsyncIterator[Harness]:
    if isinstance(config, Path):
        config = load_config(config, env or {})
    # Fast tokens keep the suite quick; tests about pacing pass their own config.
    simulator_config = simulator_config or SimulatorConfig(token_interval_seconds=0.002)
    async with AsyncExitStack() as stack:
        simulator = await start_simulator(simulator_config, "127.0.0.1", 0)
        stack.push_async_callback(simulator.stop)
        settings.setdefault("output_file_origins", (parse_origin(simulator.files_url),))
        gateway = await start_gateway(
            test_settings(base_url=simulator.base_url, **settings),
            config or GatewayConfig.empty(),
            env_defaults or {},
            serve_metrics=serve_metrics,
        )
        stack.push_async_callback(gateway.stop, 0.1)
        channel = grpc.aio.insecure_channel(f"127.0.0.1:{gateway.port}")
        stack.push_async_callback(channel.close, None)
        yield Harness(
            simulator=simulator,
            gateway=gateway,
            channel=channel,
            stub=gateway_pb2_grpc.InferenceGatewayStub(channel),  # the async stub, typed so
            health=health_pb2_grpc.HealthStub(channel),
        )
