"""OpenTelemetry traces: on only when the standard OTEL_* variables ask, free when off.

Every hook here starts with one check of `_STATE.provider`: with tracing off no span,
context or attribute object is made. With it on, the gateway's interceptor makes the RPC's
server span (continuing the caller's W3C traceparent; OpenTelemetry's grpc.aio
interceptor wraps a stream in a generator it never closes, so a call gRPC abandons would
keep its handler, and its cancel on Replicate, waiting for the garbage collector), the
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
from collections.abc import Coroutine, Iterable, Iterator, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from opentelemetry.context import Context
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.trace import Span, Tracer

__all__ = [
    "CallSpan",
    "TracingSetupError",
    "annotate_call",
    "call_ended",
    "call_started",
    "client_span",
    "enabled",
    "exemplar",
    "log_ids",
    "shutdown",
    "span_across_yields",
    "start_from_environment",
    "traced",
]

_LOGGER = logging.getLogger(__name__)
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
    from opentelemetry.sdk.resources import SERVICE_NAME, Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    from inference_gateway.otlp_encoding import FastOTLPSpanExporter

    resource = Resource.create({SERVICE_NAME: _SERVICE_NAME}).merge(Resource.create())
    provider = TracerProvider(resource=resource)
    provider.add_span_processor(BatchSpanProcessor(FastOTLPSpanExporter()))
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


def span_across_yields(name: str) -> AbstractContextManager[None]:
    """A child span of whatever is current, current while the block runs, for a block
    that yields (an async generator's); nothing when tracing is off.

    gRPC may close an abandoned stream's generator from another context, where the
    attach cannot be undone (OpenTelemetry's detach then logs an error): the context from
    before is attached again instead, which holds in either.
    """
    tracer = _STATE.tracer
    if tracer is None:
        return _OFF
    return _across_yields(tracer, name)


@contextlib.contextmanager
def _across_yields(tracer: Tracer, name: str) -> Iterator[None]:
    from opentelemetry import context, trace
    from opentelemetry.trace import StatusCode

    before = context.get_current()
    current = tracer.start_span(name)
    context.attach(trace.set_span_in_context(current))
    try:
        yield
    except Exception as error:
        current.record_exception(error)
        current.set_status(StatusCode.ERROR, str(error))
        raise
    finally:
        current.end()
        context.attach(before)


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


@dataclass
class CallSpan:
    """The RPC's server span, and the context to go back to when it ends."""

    span: Span
    before: Context


# gRPC's conventions: a server span is an error only for these codes (the server's fault).
_SERVER_FAULTS = frozenset(
    {"UNKNOWN", "DEADLINE_EXCEEDED", "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS"}
)


def call_started(
    service: str, method: str, metadata: Iterable[tuple[str, str | bytes]] | None
) -> CallSpan | None:
    """Starts the RPC's server span, continuing the caller's W3C trace context, and makes
    it current; None when tracing is off."""
    tracer = _STATE.tracer
    if tracer is None:
        return None
    from opentelemetry import context, propagate, trace
    from opentelemetry.trace import SpanKind

    carrier = {key: value for key, value in metadata or () if isinstance(value, str)}
    parent = propagate.extract(carrier)
    span = tracer.start_span(
        f"{service}/{method}",
        context=parent,
        kind=SpanKind.SERVER,
        attributes={"rpc.system": "grpc", "rpc.service": service, "rpc.method": method},
    )
    before = context.get_current()
    context.attach(trace.set_span_in_context(span, parent))
    _CALL_SPAN.set(span)
    return CallSpan(span, before)


def call_ended(call: CallSpan | None, code: str, attributes: Mapping[str, Any]) -> None:
    """Ends the RPC's server span with its status code and `attributes`.

    The context from before is attached again rather than detached: a stream gRPC
    abandoned ends in another context, where a detach cannot be undone.
    """
    if call is None:
        return
    from grpc import StatusCode as GrpcCode
    from opentelemetry import context
    from opentelemetry.trace import StatusCode

    span = call.span
    span.set_attributes({k: v for k, v in attributes.items() if v is not None})
    span.set_attribute("rpc.grpc.status_code", GrpcCode[code].value[0])
    if code in _SERVER_FAULTS:
        span.set_status(StatusCode.ERROR, code)
    span.end()
    context.attach(call.before)


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
