"""OpenTelemetry traces: on only when the standard OTEL_* variables ask, free when off.

Every hook here starts with one check of `_STATE.provider`: with tracing off no span,
context or attribute object is made. With it on, the library's grpc.aio server
interceptor makes the RPC's server span (continuing the caller's W3C traceparent), the
Replicate transport makes one client span per HTTP exchange (a stream's stays open until
its body closes: httpx's own instrumentation wraps only httpx's transports, not ours),
and the phases of a prediction (schema fetch, create, wait or stream, cancel) get spans
of their own in between. The RPC's span carries the GenAI semantic-convention attributes.
Never a token; the prompt only when prompt logging is on (request_log decides that).

The provider is the gateway's own, not the process-global one, so an embedding process
(or a test) keeps whatever it set globally.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
from collections.abc import Coroutine, Iterator, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    import grpc
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.trace import Span, Tracer

__all__ = [
    "TRACED_SERVICES",
    "TracingSetupError",
    "annotate_call",
    "call_started",
    "client_span",
    "enabled",
    "exemplar",
    "log_ids",
    "server_interceptor",
    "shutdown",
    "span",
    "start_from_environment",
    "traced",
]

_LOGGER = logging.getLogger(__name__)
# The services whose calls get a server span (health probes and reflection do not).
TRACED_SERVICES = ("inference.gateway.v1.InferenceGateway", "google.longrunning.Operations")
_SERVICE_NAME = "inference-gateway"
_EXPORTERS = ("otlp", "none")
_GRPC_PROTOCOL = "grpc"


class TracingSetupError(ValueError):
    """An OTEL_* variable asks for something the gateway cannot do."""


@dataclass
class _State:
    provider: TracerProvider | None = None
    tracer: Tracer | None = None


_STATE = _State()
# The RPC's server span, so the core can annotate it from inside child spans.
_CALL_SPAN: contextvars.ContextVar[Span | None] = contextvars.ContextVar("call_span", default=None)
_OFF: AbstractContextManager[None] = contextlib.nullcontext()
T = TypeVar("T")


def enabled() -> bool:
    return _STATE.provider is not None


def _wanted(environ: Mapping[str, str]) -> bool:
    """The OpenTelemetry spec's switches: the SDK disabled, an exporter named, an endpoint."""
    if environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    exporter = environ.get("OTEL_TRACES_EXPORTER", "").strip().lower()
    if exporter:
        if exporter not in _EXPORTERS:
            raise TracingSetupError(
                f"OTEL_TRACES_EXPORTER={exporter!r}: the gateway exports traces over OTLP/gRPC "
                "only; set it to otlp (or none, or unset it)"
            )
        return exporter == "otlp"
    return bool(
        environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
        or environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
    )


def _check_protocol(environ: Mapping[str, str]) -> None:
    for name in ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL"):
        protocol = environ.get(name, "").strip().lower()
        if protocol:
            if protocol != _GRPC_PROTOCOL:
                raise TracingSetupError(
                    f"{name}={protocol!r}: the gateway exports traces over OTLP/gRPC only; "
                    "set it to grpc (port 4317 on a collector) or unset it"
                )
            return


def start_from_environment(environ: Mapping[str, str]) -> bool:
    """Turns tracing on when the environment asks for it; True if it did.

    The SDK reads the rest itself: OTEL_EXPORTER_OTLP_* (endpoint, headers, TLS),
    OTEL_TRACES_SAMPLER(_ARG), OTEL_BSP_*, OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES.
    """
    if not _wanted(environ):
        return False
    _check_protocol(environ)
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import SERVICE_NAME, Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    resource = Resource.create({SERVICE_NAME: _SERVICE_NAME}).merge(Resource.create())
    provider = TracerProvider(resource=resource)
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    _STATE.provider = provider
    _STATE.tracer = provider.get_tracer("inference_gateway")
    _LOGGER.info("tracing on: spans exported over OTLP/gRPC")
    return True


def shutdown() -> None:
    """Exports what is still buffered and turns tracing off."""
    provider = _STATE.provider
    _STATE.provider = _STATE.tracer = None
    if provider is not None:
        provider.shutdown()


def server_interceptor() -> grpc.aio.ServerInterceptor | None:  # type: ignore[type-arg]
    """The library's grpc.aio server interceptor (server span per RPC), or None when off.

    It goes first, so the gateway's own interceptor runs inside the server span.
    """
    if _STATE.provider is None:
        return None
    from opentelemetry.instrumentation.grpc import aio_server_interceptor, filters

    traced = filters.any_of(*(filters.service_name(name) for name in TRACED_SERVICES))
    interceptor: grpc.aio.ServerInterceptor = aio_server_interceptor(  # type: ignore[type-arg,no-untyped-call]
        tracer_provider=_STATE.provider, filter_=traced
    )
    return interceptor


def span(name: str, attributes: Mapping[str, Any] | None = None) -> AbstractContextManager[Any]:
    """A child span of whatever is current, made current; nothing when tracing is off."""
    tracer = _STATE.tracer
    if tracer is None:
        return _OFF
    return tracer.start_as_current_span(name, attributes=attributes)


def traced(name: str, work: Coroutine[Any, Any, T]) -> Coroutine[Any, Any, T]:
    """`work` run inside a span of its own; `work` itself, untouched, when tracing is off."""
    if _STATE.tracer is None:
        return work
    return _in_span(_STATE.tracer, name, work)


async def _in_span(tracer: Tracer, name: str, work: Coroutine[Any, Any, T]) -> T:
    with tracer.start_as_current_span(name):
        return await work


def client_span(name: str, attributes: Mapping[str, Any]) -> Span | None:
    """An outgoing HTTP exchange's span, not made current: it may outlive this frame."""
    tracer = _STATE.tracer
    if tracer is None:
        return None
    from opentelemetry.trace import SpanKind

    return tracer.start_span(name, kind=SpanKind.CLIENT, attributes=attributes)


def call_started() -> contextvars.Token[Span | None] | None:
    """Remembers the RPC's server span (current when the gateway's interceptor starts)."""
    if _STATE.provider is None:
        return None
    from opentelemetry import trace

    return _CALL_SPAN.set(trace.get_current_span())


def annotate_call(attributes: Mapping[str, Any]) -> None:
    """Sets attributes on the RPC's server span, from wherever the call's code is."""
    if _STATE.provider is None:
        return
    call_span = _CALL_SPAN.get()
    if call_span is not None:
        call_span.set_attributes({k: v for k, v in attributes.items() if v is not None})


def _current_ids() -> tuple[str, str] | None:
    from opentelemetry import trace

    context = trace.get_current_span().get_span_context()
    if not context.is_valid:
        return None
    return format(context.trace_id, "032x"), format(context.span_id, "016x")


def log_ids() -> Iterator[tuple[str, str]]:
    """("trace_id", id) and ("span_id", id) of the current span, for a log line."""
    if _STATE.provider is None:
        return
    ids = _current_ids()
    if ids is not None:
        yield "trace_id", ids[0]
        yield "span_id", ids[1]


def exemplar() -> dict[str, str] | None:
    """An OpenMetrics exemplar naming the current trace, for a histogram observation."""
    if _STATE.provider is None:
        return None
    ids = _current_ids()
    if ids is None:
        return None
    return {"trace_id": ids[0], "span_id": ids[1]}
