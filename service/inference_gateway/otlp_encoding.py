"""Spans to OTLP protobuf bytes, for the exporter's thread, about 5x faster than the SDK.

OpenTelemetry's encoder builds a protobuf object per span, attribute and value (about
50 us a span here, three spans a call), on the exporter's thread, holding the GIL the
event loop waits for. This writes the same message as wire bytes and lets protobuf parse
it once (in C) for the exporter to send. A span with anything the fast path does not
write (events, links, a value that is neither str, bool, int, float, bytes nor a sequence
of them) goes through the SDK's encoder, so what a collector receives never differs:
tests/test_otlp_encoding.py holds the two equal.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar, cast

from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

if TYPE_CHECKING:
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import ReadableSpan
    from opentelemetry.sdk.util.instrumentation import InstrumentationScope

__all__ = ["FastOTLPSpanExporter", "encode_request"]

_INT64 = (-(2**63), 2**63)
# The remote bits of Span.flags (SpanFlags): the parent's remoteness is known, and is it.
_HAS_IS_REMOTE, _IS_REMOTE = 0x100, 0x200
_SMALL = [bytes([n]) for n in range(128)]
T = TypeVar("T")
# Attribute keys as written (a KeyValue's first field): a call's spans use the same few.
_KEYS: dict[str, bytes] = {}
_KEYS_KEPT = 1024


class _Unwritable(Exception):
    """A span the fast path does not write: the SDK's encoder writes it."""


def _varint(n: int) -> bytes:
    if n < 128:
        return _SMALL[n]
    out = bytearray()
    while n > 127:
        out.append((n & 127) | 128)
        n >>= 7
    out.append(n)
    return bytes(out)


def _field(tag: bytes, payload: bytes) -> bytes:
    """A length-delimited field (string, bytes or message)."""
    return tag + _varint(len(payload)) + payload


def _value(value: Any) -> bytes:
    """An AnyValue, as the SDK's _encode_value makes it (bool before int: bool is an int)."""
    if isinstance(value, bool):
        return b"\x10\x01" if value else b"\x10\x00"
    if isinstance(value, str):
        return _field(b"\x0a", value.encode())
    if isinstance(value, int):
        if not _INT64[0] <= value < _INT64[1]:
            raise _Unwritable
        return b"\x18" + _varint(value & 0xFFFFFFFFFFFFFFFF)
    if isinstance(value, float):
        return b"\x21" + struct.pack("<d", value)
    if isinstance(value, bytes):
        return _field(b"\x3a", value)
    if isinstance(value, Sequence):
        return _field(b"\x2a", b"".join(_field(b"\x0a", _value(v)) for v in value))
    raise _Unwritable


def _attributes(tag: bytes, attributes: Mapping[str, Any] | None) -> bytes:
    if not attributes:
        return b""
    parts = []
    for key, value in attributes.items():
        written = _KEYS.get(key)
        if written is None:
            written = _field(b"\x0a", key.encode())
            if len(_KEYS) < _KEYS_KEPT:
                _KEYS[key] = written
        encoded = _value(value)
        pair = written + b"\x12" + _varint(len(encoded)) + encoded
        parts.append(tag + _varint(len(pair)) + pair)
    return b"".join(parts)


def _span(span: ReadableSpan) -> bytes:
    if span.events or span.links:
        raise _Unwritable
    context = span.get_span_context()
    assert context is not None
    parts = [
        b"\x0a\x10" + context.trace_id.to_bytes(16, "big"),
        b"\x12\x08" + context.span_id.to_bytes(8, "big"),
    ]
    if context.trace_state:
        state = ",".join(f"{key}={value}" for key, value in context.trace_state.items())
        parts.append(_field(b"\x1a", state.encode()))
    parent = span.parent
    if parent is not None:
        parts.append(b"\x22\x08" + parent.span_id.to_bytes(8, "big"))
    if span.name:
        parts.append(_field(b"\x2a", span.name.encode()))
    parts.append(b"\x30" + _varint(span.kind.value + 1))  # SpanKind: the proto's counts from 1
    if span.start_time:
        parts.append(b"\x39" + struct.pack("<Q", span.start_time))
    if span.end_time:
        parts.append(b"\x41" + struct.pack("<Q", span.end_time))
    parts.append(_attributes(b"\x4a", span.attributes))
    if span.dropped_attributes:
        parts.append(b"\x50" + _varint(span.dropped_attributes))
    if span.dropped_events:
        parts.append(b"\x60" + _varint(span.dropped_events))
    if span.dropped_links:
        parts.append(b"\x70" + _varint(span.dropped_links))
    status = span.status
    message = status.description.encode() if status.description else b""
    code = status.status_code.value
    parts.append(
        _field(
            b"\x7a",
            (_field(b"\x12", message) if message else b"")
            + (b"\x18" + _varint(code) if code else b""),
        )
    )
    flags = _HAS_IS_REMOTE | (_IS_REMOTE if parent is not None and parent.is_remote else 0)
    parts.append(b"\x85\x01" + struct.pack("<I", flags))
    return b"".join(parts)


def _span_or_sdk(span: ReadableSpan) -> bytes:
    try:
        return _span(span)
    except (_Unwritable, UnicodeEncodeError):
        [resource_spans] = encode_spans([span]).resource_spans
        return resource_spans.scope_spans[0].spans[0].SerializeToString()


def _resource(resource: Resource) -> bytes:
    return _field(b"\x0a", _attributes(b"\x0a", resource.attributes))


def _scope(scope: InstrumentationScope | None) -> bytes:
    if scope is None:
        return _field(b"\x0a", b"")
    return _field(
        b"\x0a",
        (_field(b"\x0a", scope.name.encode()) if scope.name else b"")
        + (_field(b"\x12", scope.version.encode()) if scope.version else b"")
        + _attributes(b"\x1a", scope.attributes),
    )


class _Canonical:
    """The first of equal objects, found by identity: a Resource's hash serialises its
    attributes to JSON each time (about 10 us), and every span of a provider shares one."""

    def __init__(self) -> None:
        self._by_id: dict[int, Any] = {}
        self._by_value: dict[Any, Any] = {}

    def __call__(self, value: T) -> T:
        found = self._by_id.get(id(value))
        if found is None:
            found = self._by_id[id(value)] = self._by_value.setdefault(value, value)
        return cast(T, found)


def encode_request(spans: Sequence[ReadableSpan]) -> bytes:
    """The ExportTraceServiceRequest the SDK's encode_spans makes, as bytes."""
    try:
        return _request(spans)
    except (_Unwritable, UnicodeEncodeError):
        # A resource or scope attribute the fast path does not write.
        return encode_spans(spans).SerializeToString()


def _request(spans: Sequence[ReadableSpan]) -> bytes:
    resources, scopes_of = _Canonical(), _Canonical()
    grouped: dict[int, tuple[Resource, dict[int, tuple[InstrumentationScope | None, list[bytes]]]]]
    grouped = {}
    for span in spans:
        resource = resources(span.resource)
        scope = scopes_of(span.instrumentation_scope or None)
        scopes = grouped.setdefault(id(resource), (resource, {}))[1]
        scopes.setdefault(id(scope), (scope, []))[1].append(_span_or_sdk(span))
    out = []
    for resource, scopes in grouped.values():
        body = [_resource(resource)]
        for scope, encoded in scopes.values():
            schema = scope.schema_url if scope is not None else None
            body.append(
                _field(
                    b"\x12",
                    _scope(scope)
                    + b"".join(_field(b"\x12", span) for span in encoded)
                    + (_field(b"\x1a", schema.encode()) if schema else b""),
                )
            )
        if resource.schema_url:
            body.append(_field(b"\x1a", resource.schema_url.encode()))
        out.append(_field(b"\x0a", b"".join(body)))
    return b"".join(out)


class FastOTLPSpanExporter(OTLPSpanExporter):
    """The SDK's OTLP/gRPC span exporter with the fast encoder."""

    def _translate_data(self, data: Sequence[ReadableSpan]) -> ExportTraceServiceRequest:
        return ExportTraceServiceRequest.FromString(encode_request(data))
