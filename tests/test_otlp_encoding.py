"""The fast OTLP encoder writes what the SDK's encoder writes, for any span the SDK makes."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.trace import (
    Link,
    NonRecordingSpan,
    SpanContext,
    SpanKind,
    StatusCode,
    TraceFlags,
)
from opentelemetry.trace.span import TraceState

from inference_gateway.otlp_encoding import FastOTLPSpanExporter, encode_request

_SCALARS = st.one_of(
    st.text(max_size=20),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False),
)
_VALUES = st.one_of(
    _SCALARS,
    st.lists(st.text(max_size=8), max_size=3).map(tuple),
    st.lists(st.integers(min_value=-(2**63), max_value=2**63 - 1), max_size=3),
    st.lists(st.floats(allow_nan=False), max_size=3),
    st.lists(st.booleans(), max_size=3),
)
_ATTRIBUTES = st.dictionaries(st.text(min_size=1, max_size=12), _VALUES, max_size=6)


class _Kept(SpanExporter):
    def __init__(self) -> None:
        self.spans: list[ReadableSpan] = []

    def export(self, spans: Any) -> SpanExportResult:
        self.spans.extend(spans)
        return SpanExportResult.SUCCESS


def _spans(draw: Any) -> list[ReadableSpan]:
    """Spans made by the SDK (its ids come from `random`, so not inside a strategy)."""
    kept = _Kept()
    providers = []
    for service in ("inference-gateway", "other"):
        provider = TracerProvider(
            resource=Resource.create({"service.name": service, **draw(_ATTRIBUTES)})
        )
        provider.add_span_processor(SimpleSpanProcessor(kept))
        providers.append(provider)
    tracers = [
        provider.get_tracer(name, version, attributes=draw(_ATTRIBUTES) or None)
        for provider in providers
        for name, version in (("inference_gateway", None), ("scope", "1.2"))
    ]
    remote = SpanContext(
        trace_id=draw(st.integers(1, 2**128 - 1)),
        span_id=draw(st.integers(1, 2**64 - 1)),
        is_remote=True,
        trace_flags=TraceFlags(TraceFlags.SAMPLED),
        trace_state=TraceState([("vendor", "v1")]) if draw(st.booleans()) else None,
    )
    for _ in range(draw(st.integers(1, 8))):
        tracer = draw(st.sampled_from(tracers))
        parent = draw(st.sampled_from(["none", "remote"]))
        context = (
            trace.set_span_in_context(NonRecordingSpan(remote)) if parent == "remote" else None
        )
        links = [Link(remote, draw(_ATTRIBUTES))] if draw(st.booleans()) else []
        span = tracer.start_span(
            draw(st.text(max_size=20)),
            context=context,
            kind=draw(st.sampled_from(list(SpanKind))),
            attributes=draw(_ATTRIBUTES),
            links=links,
        )
        with trace.use_span(span, end_on_exit=False):
            child = tracer.start_span("child", attributes=draw(_ATTRIBUTES))
            child.end()
        if draw(st.booleans()):
            span.add_event("event", draw(_ATTRIBUTES))
        code = draw(st.sampled_from(list(StatusCode)))
        description = draw(st.text(max_size=10)) if code is StatusCode.ERROR else None
        span.set_status(code, description)
        span.end()
    return kept.spans


@settings(max_examples=100, deadline=None)
@given(st.data())
def test_the_request_equals_the_sdks(data: st.DataObject) -> None:
    spans = _spans(data.draw)
    assert ExportTraceServiceRequest.FromString(encode_request(spans)) == encode_spans(spans)


def test_the_exporter_encodes_through_the_sdks_own_hook() -> None:
    # Were the SDK to stop calling _translate_data, the override would go unused: slower,
    # never wrong, but this says so.
    assert "_translate_data" in vars(OTLPSpanExporter)
    assert FastOTLPSpanExporter._translate_data is not OTLPSpanExporter._translate_data
