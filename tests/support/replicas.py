"""Several gateways on one simulator account, as replicas sharing (or not) one Redis.

Each gateway is a full server on its own port (its own gRPC server, client and budgets),
as a replica would be; only the store between them differs.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

import grpc

from inference_gateway.config import GatewayConfig
from inference_gateway.grpc_api.server import start_gateway
from inference_gateway_protos.inference.gateway.v1 import gateway_pb2_grpc
from replicate_simulator import RunningSimulator, SimulatorConfig, start_simulator
from tests import gateway_harness
from tests.support.models import LLAMA3


@asynccontextmanager
async def replicas(
    count: int,
    simulator: RunningSimulator,
    config: GatewayConfig | None = None,
    **settings: object,
) -> AsyncIterator[list[gateway_pb2_grpc.InferenceGatewayAsyncStub]]:
    async with AsyncExitStack() as stack:
        stubs = []
        for _ in range(count):
            gateway = await start_gateway(
                gateway_harness.test_settings(base_url=simulator.base_url, **settings),
                config or GatewayConfig.empty(),
                {},
                serve_metrics=False,
            )
            stack.push_async_callback(gateway.stop, 0.1)
            channel = grpc.aio.insecure_channel(f"127.0.0.1:{gateway.port}")
            stack.push_async_callback(channel.close, None)
            stubs.append(gateway_pb2_grpc.InferenceGatewayStub(channel))
        yield stubs


@asynccontextmanager
async def simulator(
    predict_seconds: float = 0.0, token_interval_seconds: float = 0.0
) -> AsyncIterator[RunningSimulator]:
    config = SimulatorConfig(
        token_interval_seconds=token_interval_seconds,
        model_behaviour={LLAMA3: {"predict_seconds": predict_seconds}},
    )
    running = await start_simulator(config, "127.0.0.1", 0)
    try:
        yield running
    finally:
        await running.stop()
