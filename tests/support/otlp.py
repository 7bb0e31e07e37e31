"""The bench's OTLP/gRPC receiver (bench/otlp_receiver.py) in process, and its spans.

It keeps every span the gateway's exporter sends, as protobuf, so tests read what a
collector would receive rather than what the SDK meant to send.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from bench.otlp_receiver import Receiver, serve_receiver
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2 as collector
from opentelemetry.proto.common.v1 import common_pb2
from opentelemetry.proto.trace.v1 import trace_pb2


class _Notifying(Receiver):
    """The bench's receiver, telling waiters of each export as it arrives."""

    def __init__(self) -> None:
        super().__init__()
        self.arrived = asyncio.Condition()

    async def Export(
        self, request: collector.ExportTraceServiceRequest, context: Any
    ) -> collector.ExportTraceServiceResponse:
        reply = await super().Export(request, context)
        async with self.arrived:
            self.arrived.notify_all()
        return reply


@dataclass
class Collected:
    """What a receiver on loopback got, as protobuf: read after the gateway stopped, or
    awaited with `spans_named` while it serves."""

    receiver: _Notifying
    port: int

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def spans(self) -> Iterator[trace_pb2.Span]:
        for request in self.receiver.requests:
            for resource_spans in request.resource_spans:
                for scope_spans in resource_spans.scope_spans:
                    yield from scope_spans.spans

    async def spans_named(self, trace_id: str, names: set[str]) -> list[trace_pb2.Span]:
        """The trace's spans once each of `names` has arrived (a span is exported when it
        ends)."""

        def trace() -> list[trace_pb2.Span]:
            return [s for s in self.spans() if s.trace_id.hex() == trace_id]

        async with self.receiver.arrived:
            await self.receiver.arrived.wait_for(lambda: names <= {s.name for s in trace()})
        return trace()

    def raw(self) -> bytes:
        """Everything received, as bytes: for asserting what must never be in a span."""
        return b"".join(request.SerializeToString() for request in self.receiver.requests)


@asynccontextmanager
async def otlp_receiver() -> AsyncIterator[Collected]:
    receiver = _Notifying()
    server, port = await serve_receiver(receiver)
    try:
        yield Collected(receiver, port)
    finally:
        await server.stop(None)


def _plain(value: common_pb2.AnyValue) -> object:
    kind = value.WhichOneof("value")
    if kind == "array_value":
        return tuple(_plain(v) for v in value.array_value.values)
    return None if kind is None else getattr(value, kind)


def attributes(span: trace_pb2.Span) -> dict[str, object]:
    """A span's attributes as plain Python values."""
    out: dict[str, object] = {}
    for kv in span.attributes:
        value = kv.value
        out[kv.key] = _plain(value)
    return out
