"""The composition root and the server's lifecycle: start, serve, drain, stop.

On SIGTERM or SIGINT: readiness (and the whole-server status) go NOT_SERVING while
liveness stays SERVING, the endpoints get `drain_delay` to notice, in-flight calls
get `grace_period` to finish, predictions still running after that are canceled on
Replicate, and the process exits 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Mapping
from dataclasses import dataclass
from threading import Thread
from wsgiref.simple_server import WSGIServer

import grpc
import httpx
from grpc_health.v1 import _async as health_aio
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from prometheus_client import start_http_server

from inference.gateway.v1 import gateway_pb2, gateway_pb2_grpc
from inference_gateway.config import GatewayConfig
from inference_gateway.core import CoreSettings, Gateway
from inference_gateway.grpc_api.interceptors import ObservingInterceptor
from inference_gateway.grpc_api.servicer import InferenceGatewayServicer
from inference_gateway.metrics import Metrics
from inference_gateway.predictions import PredictionRunner, RunnerSettings
from inference_gateway.registry import ModelRegistry
from inference_gateway.replicate import ClientSettings, ReplicateClient
from inference_gateway.schemas import SchemaCache
from inference_gateway.settings import Settings

__all__ = ["LIVENESS", "READINESS", "RunningGateway", "serve_until_signalled", "start_gateway"]

_LOGGER = logging.getLogger(__name__)
SERVICE_NAME = gateway_pb2.DESCRIPTOR.services_by_name["InferenceGateway"].full_name
READINESS = "readiness"
LIVENESS = "liveness"
_MESSAGE_LIMIT = 64 * 1024 * 1024


@dataclass
class RunningGateway:
    server: grpc.aio.Server
    port: int
    metrics_port: int
    health: health_aio.HealthServicer
    gateway: Gateway
    runner: PredictionRunner
    client: ReplicateClient
    metrics: Metrics
    settings: Settings
    _metrics_http: tuple[WSGIServer, Thread] | None = None

    async def stop(self, grace: float | None = None, drain_delay: float = 0.0) -> None:
        """Drains: NOT_SERVING, a pause for endpoints, calls finish, leftovers canceled."""
        grace = self.settings.grace_period if grace is None else grace
        self.runner.begin_shutdown()
        for name in ("", SERVICE_NAME, READINESS):
            await self.health.set(name, health_pb2.HealthCheckResponse.NOT_SERVING)
        if drain_delay > 0:
            await asyncio.sleep(drain_delay)
        stopping = asyncio.ensure_future(self.server.stop(grace))
        # Cancel on Replicate just before the server aborts what is still running.
        done, _ = await asyncio.wait({stopping}, timeout=max(0.0, grace - 0.5))
        if not done and self.runner.running:
            _LOGGER.warning("canceling %d predictions still running", len(self.runner.running))
            await self.runner.cancel_all()
        await stopping
        await self.runner.drain_cancels()
        await self.client.aclose()
        if self._metrics_http is not None:
            http_server, _ = self._metrics_http
            # shutdown() waits for the server thread's next poll: keep the loop free meanwhile.
            await asyncio.to_thread(http_server.shutdown)
            http_server.server_close()


def build_gateway(
    settings: Settings,
    config: GatewayConfig,
    env_defaults: Mapping[str, object],
    *,
    transport: httpx.AsyncBaseTransport | None = None,
) -> tuple[Gateway, PredictionRunner, ReplicateClient, Metrics]:
    metrics = Metrics(aliases=config.aliases, model_label_limit=settings.model_label_limit)
    client = ReplicateClient(
        ClientSettings(
            base_url=settings.base_url,
            max_connections=settings.max_connections,
            create_per_minute=settings.create_rate,
            other_per_minute=settings.other_rate,
        ),
        transport=transport,
        observer=metrics,
    )
    runner = PredictionRunner(
        client, RunnerSettings(max_wait_seconds=settings.max_wait), on_cancel=metrics
    )
    gateway = Gateway(
        registry=ModelRegistry(config),
        env_defaults=env_defaults,
        api_token=settings.api_token,
        client=client,
        runner=runner,
        schemas=SchemaCache(client, ttl_seconds=settings.schema_ttl),
        metrics=metrics,
        settings=CoreSettings(
            default_timeout_seconds=settings.default_timeout,
            cold_boot_threshold_seconds=settings.cold_boot_threshold,
        ),
    )
    return gateway, runner, client, metrics


async def start_gateway(
    settings: Settings,
    config: GatewayConfig,
    env_defaults: Mapping[str, object],
    *,
    transport: httpx.AsyncBaseTransport | None = None,
    serve_metrics: bool = True,
) -> RunningGateway:
    gateway, runner, client, metrics = build_gateway(
        settings, config, env_defaults, transport=transport
    )
    age_ms = int(settings.max_connection_age * 1000)
    server = grpc.aio.server(
        interceptors=[ObservingInterceptor(metrics)],
        options=[
            ("grpc.max_receive_message_length", _MESSAGE_LIMIT),
            ("grpc.max_send_message_length", _MESSAGE_LIMIT),
            ("grpc.max_connection_age_ms", age_ms),
            ("grpc.max_connection_age_grace_ms", int(settings.grace_period * 1000) + 5000),
            # Long generations send no data for minutes; let clients keep the line alive.
            ("grpc.keepalive_time_ms", 60_000),
            ("grpc.keepalive_permit_without_calls", 1),
            ("grpc.http2.min_recv_ping_interval_without_data_ms", 10_000),
        ],
    )
    gateway_pb2_grpc.add_InferenceGatewayServicer_to_server(
        InferenceGatewayServicer(gateway), server
    )
    health_servicer = health_aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection(
        (SERVICE_NAME, health.SERVICE_NAME, reflection.SERVICE_NAME), server
    )
    port = server.add_insecure_port(f"{settings.host}:{settings.port}")
    if port == 0:
        raise OSError(f"cannot bind the gRPC port {settings.host}:{settings.port}")
    metrics_http = None
    metrics_port = 0
    if serve_metrics:
        http_server, thread = start_http_server(
            settings.metrics_port, addr=settings.metrics_host, registry=metrics.registry
        )
        metrics_http = (http_server, thread)
        metrics_port = http_server.server_port
    await server.start()
    for name in ("", SERVICE_NAME, READINESS, LIVENESS):
        await health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    return RunningGateway(
        server=server,
        port=port,
        metrics_port=metrics_port,
        health=health_servicer,
        gateway=gateway,
        runner=runner,
        client=client,
        metrics=metrics,
        settings=settings,
        _metrics_http=metrics_http,
    )


async def serve_until_signalled(running: RunningGateway) -> None:
    """Serves until SIGTERM or SIGINT, then drains and returns."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(Exception):
                loop.remove_signal_handler(sig)
    _LOGGER.info("shutting down: draining for up to %.0fs", running.settings.grace_period)
    await running.stop(drain_delay=running.settings.drain_delay)
    _LOGGER.info("stopped")
