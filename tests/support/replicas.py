"""Several gateways on one simulator account, as replicas sharing (or not) one Redis.

Each gateway is a full server on its own port (its own gRPC server, client and budgets),
as a replica would be; only the store between them differs.
"""

from __future__ import annotations

import asyncio
import os
import socket
import sys
from collections.abc import AsyncIterator, Mapping
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from typing import Any

import grpc
from google.longrunning import operations_pb2_grpc

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
    predict_seconds: float = 0.0, token_interval_seconds: float = 0.0, **config: Any
) -> AsyncIterator[RunningSimulator]:
    """The simulator, with LLAMA3 running `predict_seconds` (simulated) and `config` on top."""
    settings = SimulatorConfig(
        token_interval_seconds=token_interval_seconds,
        model_behaviour={LLAMA3: {"predict_seconds": predict_seconds}},
        **config,
    )
    running = await start_simulator(settings, "127.0.0.1", 0)
    try:
        yield running
    finally:
        await running.stop()


@dataclass
class GatewayProcess:
    """`inference-gateway serve` in a process of its own."""

    process: asyncio.subprocess.Process
    stub: gateway_pb2_grpc.InferenceGatewayAsyncStub
    ops: operations_pb2_grpc.OperationsStub


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@asynccontextmanager
async def gateway_process(
    simulator: RunningSimulator, env: Mapping[str, str]
) -> AsyncIterator[GatewayProcess]:
    """A gateway process on `simulator`'s account, with `env` on top of a clean environment;
    stopped with SIGTERM at the end, unless the test killed it."""
    port = _free_port()
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("REPLICATE_", "GATEWAY_"))}
    environ.update(
        REPLICATE_API_TOKEN=gateway_harness.TEST_TOKEN,
        REPLICATE_BASE_URL=simulator.base_url,
        GATEWAY_GRACE_PERIOD="2",
        GATEWAY_DRAIN_DELAY="0",
        # As test_settings: a loaded test machine answers Redis later than 0.25 s.
        GATEWAY_REDIS_TIMEOUT="5",
    )
    environ.update(env)  # a test's own settings win
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "inference_gateway", "serve",
        "--host", "127.0.0.1", "--port", str(port), "--metrics-port", str(_free_port()),
        env=environ, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert process.stderr is not None
    lines: list[str] = []
    while not any("serving gRPC" in line for line in lines):
        line = await asyncio.wait_for(process.stderr.readline(), timeout=60)
        assert line, "the gateway process stopped early:\n" + "".join(lines)
        lines.append(line.decode())

    async def drain() -> None:  # its request log, so the pipe never fills
        assert process.stderr is not None
        while await process.stderr.readline():
            pass

    drained = asyncio.ensure_future(drain())
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            yield GatewayProcess(
                process,
                gateway_pb2_grpc.InferenceGatewayStub(channel),  # the async stub, typed so
                operations_pb2_grpc.OperationsStub(channel),
            )
    finally:
        if process.returncode is None:
            process.terminate()
            assert await asyncio.wait_for(process.wait(), timeout=30) == 0
        await asyncio.wait_for(process.wait(), timeout=30)
        await drained


@asynccontextmanager
async def gateway_processes(
    count: int, simulator: RunningSimulator, env: Mapping[str, str]
) -> AsyncIterator[list[GatewayProcess]]:
    async with AsyncExitStack() as stack:
        yield list(
            await asyncio.gather(
                *(stack.enter_async_context(gateway_process(simulator, env)) for _ in range(count))
            )
        )
