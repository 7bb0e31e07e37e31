"""The composition root and the server's lifecycle: start, serve, drain, stop.

On SIGTERM, SIGINT or SIGHUP: readiness (and the whole-server status) go NOT_SERVING while
liveness stays SERVING, the endpoints get `drain_delay` to notice, in-flight calls
get `grace_period` to finish, predictions still running after that are canceled on
Replicate, and the process exits 0, within drain + grace + a few seconds for the
last cancels.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import secrets
import signal
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from threading import Thread
from wsgiref.simple_server import WSGIServer

import grpc
import httpx
from grpc_channelz.v1 import channelz
from grpc_health.v1 import _async as health_aio
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from prometheus_client import start_http_server

from inference_gateway import tracing
from inference_gateway.accounting import Accounting
from inference_gateway.cache import CacheSettings, ResponseCache
from inference_gateway.config import GatewayConfig
from inference_gateway.core import CoreSettings, Gateway
from inference_gateway.deadlines import Deadline
from inference_gateway.errors import REPLICATE_AUTH_FAILED, GatewayError
from inference_gateway.grpc_api.auth import CallerDirectory, Identify, anonymous
from inference_gateway.grpc_api.interceptors import ObservingInterceptor
from inference_gateway.grpc_api.operations_servicer import (
    OPERATIONS_SERVICE,
    OperationsServicer,
    add_operations_to_server,
)
from inference_gateway.grpc_api.servicer import InferenceGatewayServicer, add_to_server
from inference_gateway.limits import RequestLimits
from inference_gateway.metrics import Metrics
from inference_gateway.operations import Operations, OperationSettings
from inference_gateway.outputs import FilePolicy, OutputFetcher, OutputLimits
from inference_gateway.predictions import CANCEL_WINDOW_SECONDS, PredictionRunner, RunnerSettings
from inference_gateway.registry import ModelRegistry
from inference_gateway.replicate import ClientSettings, ReplicateClient
from inference_gateway.schemas import SchemaCache
from inference_gateway.settings import Settings, SettingsError
from inference_gateway.state import SharedState, open_store, parse_policies
from inference_gateway.state.redis import redacted_url
from inference_gateway_protos.inference.gateway.v1 import gateway_pb2

__all__ = [
    "LIVENESS",
    "READINESS",
    "RunningGateway",
    "check_replicate_token",
    "client_settings",
    "connection_age_grace",
    "serve_until_signalled",
    "start_gateway",
]

_LOGGER = logging.getLogger(__name__)
SERVICE_NAME = gateway_pb2.DESCRIPTOR.services_by_name["InferenceGateway"].full_name
READINESS = "readiness"
LIVENESS = "liveness"
_PEM_CERTIFICATE = b"-----BEGIN CERTIFICATE-----"
_PEM_PRIVATE_KEY = b"PRIVATE KEY-----"
_STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)


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
    operations: Operations
    _metrics_http: tuple[WSGIServer, Thread] | None = None

    async def stop(self, grace: float | None = None, drain_delay: float = 0.0) -> None:
        """Drains: NOT_SERVING, a pause for endpoints, calls finish, leftovers canceled.

        Ends within drain_delay + grace + CANCEL_WINDOW_SECONDS: whatever prediction the
        gateway knows is canceled by then; a create Replicate still holds is left to its
        Cancel-After, which is never later than its caller's deadline unless the call had
        under 5 s left (Replicate's minimum Cancel-After; see PredictionRunner._cancel_after).
        """
        grace = self.settings.grace_period if grace is None else grace
        self.runner.begin_shutdown()
        for name in ("", SERVICE_NAME, READINESS):
            await self.health.set(name, health_pb2.HealthCheckResponse.NOT_SERVING)
        if drain_delay > 0:
            await asyncio.sleep(drain_delay)
        stopping = asyncio.ensure_future(self.server.stop(grace))
        # Cancel on Replicate just before the server aborts what is still running.
        done, _ = await asyncio.wait({stopping}, timeout=max(0.0, grace - 0.5))
        if not done:
            if self.runner.running:
                _LOGGER.warning("canceling %d predictions still running", len(self.runner.running))
            # Calls whose creates Replicate still holds answer too.
            await self.runner.cancel_all()
        await stopping
        # Submitted predictions keep running: another replica's sweep takes them over.
        await self.operations.stop()
        # Warm-ups outlive the replica: another one's sweep restores them when due.
        await self.gateway.warmer.stop()
        await self.runner.drain_cancels(CANCEL_WINDOW_SECONDS)
        await self.client.aclose()
        await self.gateway.state.close()
        # The last export blocks until it is sent: off the loop, which may serve its receiver.
        await asyncio.to_thread(tracing.shutdown)
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
    state = _shared_state(settings, metrics)
    client = ReplicateClient(
        client_settings(settings),
        transport=transport,
        observer=metrics,
        state=state,
    )
    runner = PredictionRunner(
        client, RunnerSettings(max_wait_seconds=settings.max_wait), on_cancel=metrics
    )
    outputs = OutputFetcher(
        client,
        FilePolicy(
            settings.base_url,
            settings.output_file_origins,
            token_to_extra=settings.output_file_token,
        ),
        OutputLimits(
            max_file_bytes=settings.max_output_file_bytes,
            max_reply_bytes=settings.max_response_bytes,
            budget_bytes=settings.output_bytes_budget,
        ),
    )
    metrics.output_bytes_held.set_function(lambda: outputs.budget.held)
    schemas = SchemaCache(
        client, ttl_seconds=settings.schema_ttl, max_entries=settings.schema_cache_size
    )
    metrics.schema_cache_entries.set_function(lambda: len(schemas))
    gateway = Gateway(
        registry=ModelRegistry(config),
        env_defaults=env_defaults,
        api_token=settings.api_token,
        client=client,
        runner=runner,
        schemas=schemas,
        metrics=metrics,
        outputs=outputs,
        settings=CoreSettings(
            default_timeout_seconds=settings.default_timeout,
            min_deadline_seconds=settings.min_deadline,
            cold_boot_threshold_seconds=settings.cold_boot_threshold,
            limits=RequestLimits(
                max_prompt_chars=settings.max_prompt_chars,
                max_messages=settings.max_messages,
                max_input_images=settings.max_input_images,
                max_input_image_bytes=settings.max_input_image_bytes,
            ),
            lease_seconds=settings.lease_seconds,
            idempotency_retention_seconds=settings.idempotency_retention,
            idempotency_grace_seconds=settings.idempotency_grace,
            progress_interval_seconds=settings.progress_interval,
            warm_sweep_seconds=settings.warm_sweep_interval,
        ),
        state=state,
        accounting=Accounting(config.pricing, state, metrics),
        cache=ResponseCache(
            state,
            metrics,
            CacheSettings(
                ttl_seconds=settings.cache_ttl,
                max_bytes=settings.cache_max_bytes,
                max_entry_bytes=settings.cache_max_entry_bytes,
            ),
        ),
    )
    return gateway, runner, client, metrics


def client_settings(settings: Settings) -> ClientSettings:
    """The Replicate client's settings: Settings holds their defaults, as for every knob."""
    return ClientSettings(
        base_url=settings.base_url,
        max_connections=settings.max_connections,
        create_per_minute=settings.create_rate,
        other_per_minute=settings.other_rate,
    )


def _shared_state(settings: Settings, metrics: Metrics) -> SharedState:
    """Redis when GATEWAY_REDIS_URL is set, else this process's own memory; logged either way."""
    store = open_store(
        settings.redis_url, prefix=settings.redis_prefix, timeout=settings.redis_timeout
    )
    if settings.redis_url:
        _LOGGER.info(
            "shared state in Redis at %s (key prefix %r); on failure: %s",
            redacted_url(settings.redis_url),
            settings.redis_prefix,
            settings.redis_on_failure,
        )
    else:
        _LOGGER.info(
            "shared state in process: rate budgets, concurrency slots, quotas and idempotency "
            "records hold per replica (set GATEWAY_REDIS_URL to share them)"
        )
    return SharedState(
        store,
        timeout=settings.redis_timeout,
        policies=parse_policies(settings.redis_on_failure),
        observer=metrics,
    )


def settings_for_operations(settings: Settings) -> OperationSettings:
    """The operations' settings; a per-process key, with a warning, when none is set."""
    key = settings.operations_key
    if key is None:
        _LOGGER.warning(
            "GATEWAY_OPERATIONS_KEY is not set: operation names are signed with a key of this "
            "process's own, so they stop working when it restarts and are refused by other "
            "replicas; give every replica the same key (openssl rand -hex 32)"
        )
    return OperationSettings(
        key=key.encode() if key is not None else secrets.token_bytes(32),
        retention_seconds=settings.idempotency_retention,
        max_deadline_seconds=settings.operation_max_deadline,
        max_bytes=settings.operation_max_bytes,
        total_bytes=settings.operation_total_bytes,
        lease_seconds=settings.lease_seconds,
        default_wait_seconds=settings.default_timeout,
        other_per_minute=settings.other_rate,
    )


def connection_age_grace(settings: Settings, config: GatewayConfig) -> float:
    """How long calls on an aged connection may go on: by default, the longest call allowed."""
    if settings.max_connection_age_grace is not None:
        return settings.max_connection_age_grace
    alias_limits = (alias.timeout_seconds or 0.0 for alias in config.aliases.values())
    return max(settings.default_timeout, max(alias_limits, default=0.0))


def _read_pem(path: Path, option: str, marker: bytes) -> bytes:
    try:
        data = path.read_bytes()
    except OSError as error:
        raise SettingsError(f"{option}: cannot read {path}: {error.strerror}") from None
    if marker not in data:
        raise SettingsError(f"{option}: {path} is not PEM text with {marker.decode()!r}")
    return data


def _server_credentials(settings: Settings) -> grpc.ServerCredentials | None:
    """TLS credentials from the settings' files, or None to serve plaintext."""
    if settings.tls_cert is None or settings.tls_key is None:
        return None
    cert = _read_pem(settings.tls_cert, "--tls-cert (GATEWAY_TLS_CERT)", _PEM_CERTIFICATE)
    key = _read_pem(settings.tls_key, "--tls-key (GATEWAY_TLS_KEY)", _PEM_PRIVATE_KEY)
    client_ca = None
    if settings.tls_client_ca is not None:
        client_ca = _read_pem(
            settings.tls_client_ca, "--tls-client-ca (GATEWAY_TLS_CLIENT_CA)", _PEM_CERTIFICATE
        )
    return grpc.ssl_server_credentials(
        [(key, cert)], root_certificates=client_ca, require_client_auth=client_ca is not None
    )


def _identify(settings: Settings, config: GatewayConfig) -> Identify:
    """How a call's metadata names its caller: by token, or anonymous when auth is off."""
    if config.callers is None:
        if settings.require_auth:
            raise SettingsError(
                "--require-auth (GATEWAY_REQUIRE_AUTH) is set, but the configuration has no "
                "callers: section; add one (see the README, Authentication and TLS)"
            )
        _LOGGER.info("caller authentication is off: the configuration names no callers")
        return anonymous
    if settings.tls_cert is None:
        _LOGGER.warning(
            "caller authentication is on but TLS is off: tokens cross the network in the clear "
            "unless something in between encrypts them; see --tls-cert"
        )
    return CallerDirectory(config.callers.values()).authenticate


def _bind(server: grpc.aio.Server, address: str, credentials: grpc.ServerCredentials | None) -> int:
    """Listens on `address`; a port in use (or not ours) stops start-up with one line."""
    taken = (
        f"cannot listen for gRPC on {address}: the port is in use, or --host (GATEWAY_HOST) "
        "is not an address of this machine; stop what holds the port or choose another "
        "with --port (GATEWAY_PORT)"
    )
    try:
        if credentials is None:
            port = server.add_insecure_port(address)
        else:
            port = server.add_secure_port(address, credentials)
    except RuntimeError:
        if credentials is not None:
            taken += "; or --tls-key may not belong to --tls-cert (gRPC's log above says which)"
        raise SettingsError(taken) from None
    if port == 0:
        raise SettingsError(taken)
    return port


def _serve_metrics(settings: Settings, metrics: Metrics) -> tuple[WSGIServer, Thread]:
    try:
        return start_http_server(
            settings.metrics_port, addr=settings.metrics_host, registry=metrics.registry
        )
    except OSError as error:
        raise SettingsError(
            f"cannot serve metrics on {settings.metrics_host}:{settings.metrics_port}: "
            f"{error.strerror or error}; stop what holds the port or choose another with "
            "--metrics-port (GATEWAY_METRICS_PORT), and check --metrics-host "
            "(GATEWAY_METRICS_HOST)"
        ) from None


async def start_gateway(
    settings: Settings,
    config: GatewayConfig,
    env_defaults: Mapping[str, object],
    *,
    transport: httpx.AsyncBaseTransport | None = None,
    serve_metrics: bool = True,
    operation_settings: OperationSettings | None = None,
) -> RunningGateway:
    # Files and settings first: a bad one stops start-up before anything is opened.
    credentials = _server_credentials(settings)
    identify = _identify(settings, config)
    try:
        tracing.start_from_environment(os.environ)
    except tracing.TracingSetupError as error:
        raise SettingsError(str(error)) from None
    gateway, runner, client, metrics = build_gateway(
        settings, config, env_defaults, transport=transport
    )
    age_ms = int(settings.max_connection_age * 1000)
    server = grpc.aio.server(
        interceptors=[ObservingInterceptor(metrics, identify)],
        options=[
            # gRPC turns port sharing on by default: a second gateway would bind the same
            # port and take half the calls. Off unless asked for.
            ("grpc.so_reuseport", int(settings.reuse_port)),
            ("grpc.max_receive_message_length", settings.max_request_bytes),
            # The same number bounds the bytes one GenerateImage reply fetches (outputs.py).
            ("grpc.max_send_message_length", settings.max_response_bytes),
            ("grpc.max_connection_age_ms", age_ms),
            # Ageing only spreads load; it must never cut a call short.
            (
                "grpc.max_connection_age_grace_ms",
                int(connection_age_grace(settings, config) * 1000),
            ),
            # Long generations send no data for minutes; let clients keep the line alive.
            ("grpc.keepalive_time_ms", 60_000),
            ("grpc.keepalive_timeout_ms", 20_000),
            ("grpc.keepalive_permit_without_calls", 1),
            # Enforcement: a client pinging more often than every 10 s without data gets
            # two strikes, then GOAWAY (ENHANCE_YOUR_CALM). The Python client pings every 30 s.
            ("grpc.http2.min_recv_ping_interval_without_data_ms", 10_000),
            ("grpc.http2.max_ping_strikes", 2),
            # Calls wait in gRPC's queue until the loop takes each; past 1,000 queued (3,000
            # at most) gRPC cancels new ones. A burst of long calls is this gateway's normal
            # load, and the upstream pool already bounds how many can be served at once.
            ("grpc.server.max_pending_requests", settings.max_connections),
            ("grpc.server.max_pending_requests_hard_limit", settings.max_connections),
        ],
    )
    operations = Operations(
        gateway=gateway,
        runner=runner,
        client=client,
        state=gateway.state,
        metrics=metrics,
        settings=operation_settings or settings_for_operations(settings),
    )
    add_to_server(InferenceGatewayServicer(gateway, identify, operations), server)
    add_operations_to_server(OperationsServicer(operations, identify), server)
    # Channelz: the server's and its sockets' call counts, for grpcdebug; closed like
    # every service that is not listed open (a caller token when callers are configured).
    channelz.add_channelz_servicer(server)  # type: ignore[arg-type]  # takes aio servers too
    health_servicer = health_aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection(
        (SERVICE_NAME, OPERATIONS_SERVICE, health.SERVICE_NAME, reflection.SERVICE_NAME), server
    )
    port = _bind(server, f"{settings.host}:{settings.port}", credentials)
    metrics_http = None
    metrics_port = 0
    if serve_metrics:
        try:
            http_server, thread = _serve_metrics(settings, metrics)
        except SettingsError:
            await server.stop(None)
            await client.aclose()
            raise
        metrics_http = (http_server, thread)
        metrics_port = http_server.server_port
    await server.start()
    operations.start()
    gateway.warmer.start()
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
        operations=operations,
        _metrics_http=metrics_http,
    )


_TOKEN_CHECK_SECONDS = 10.0


async def check_replicate_token(
    running: RunningGateway, within: float = _TOKEN_CHECK_SECONDS
) -> bool | None:
    """Asks Replicate whose REPLICATE_API_TOKEN this is: one GET /v1/account.

    Says what it found in one log line and the replicate_auth_ok gauge; True if accepted,
    False if refused, None if Replicate could not be asked. Readiness does not depend on
    it: a Replicate outage must not take every replica out of its Service.
    """
    token = running.settings.api_token
    gauge = running.metrics.replicate_auth_ok
    base_url = running.settings.base_url
    if not token:
        return None
    try:
        account = await running.client.get_json(
            "/v1/account",
            endpoint="account",
            token=token,
            deadline=Deadline.after(within),
        )
    except GatewayError as error:
        if error.reason == REPLICATE_AUTH_FAILED:
            gauge.set(0)
            _LOGGER.error(
                "Replicate at %s REFUSED the API token (HTTP %s): every call will fail with "
                "FAILED_PRECONDITION until REPLICATE_API_TOKEN is set to a valid token",
                base_url,
                error.metadata.get("httpStatus", "?"),
            )
            return False
        _LOGGER.warning(
            "could not check the Replicate API token at %s (%s); calls will say if it is wrong",
            base_url,
            error.reason,
        )
        return None
    gauge.set(1)
    _LOGGER.info(
        "Replicate at %s accepted the API token (account %s)",
        base_url,
        account.get("username", "unknown"),
    )
    return True


async def serve_until_signalled(running: RunningGateway) -> None:
    """Serves until SIGTERM, SIGINT or SIGHUP, then drains and returns.

    SIGHUP drains like SIGTERM rather than killing the process mid-call: the
    configuration is read at start-up only, so an orchestrator (or a process manager
    that sends SIGHUP on reload) restarts the gateway to apply a new one.
    """
    _tune_collector(running.settings.gc_threshold)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in _STOP_SIGNALS:
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        for sig in _STOP_SIGNALS:
            with contextlib.suppress(Exception):
                loop.remove_signal_handler(sig)
    _LOGGER.info("shutting down: draining for up to %.0fs", running.settings.grace_period)
    await running.stop(drain_delay=running.settings.drain_delay)
    _LOGGER.info("stopped")


def _tune_collector(young_threshold: int) -> None:
    """Keeps the cyclic garbage collector off the hot path of a server holding many calls.

    Each held call keeps a few hundred objects alive, and a full collection walks them
    all while nothing is served: with Python's thresholds, 15 of them (0.2 to 1 s each)
    while 5,000 calls arrived, freeing almost nothing. What start-up built lives as long
    as the process: frozen, no collection walks it again.
    """
    gc.collect()
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(young_threshold, middle, old)
