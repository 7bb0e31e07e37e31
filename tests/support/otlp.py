"""An OTLP/gRPC trace receiver on loopback, built from opentelemetry-proto's service.

It keeps every span the gateway's exporter sends, as protobuf, so tests read what a
collector would receive rather than what the SDK meant to send.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import grpc
from opentelemetry.proto.collector.trace.v1 import (
    trace_service_pb2 as collector,
)
from opentelemetry.proto.collector.trace.v1 import (
    trace_service_pb2_grpc as collector_grpc,
)
from opentelemetry.proto.common.v1 import common_pb2
from opentelemetry.proto.trace.v1 import trace_pb2


@dataclass
class Receiver(collector_grpc.TraceServiceServicer):
    port: int = 0
    requests: list[collector.ExportTraceServiceRequest] = field(default_factory=list)

    async def Export(
        self, request: collector.ExportTraceServiceRequest, context: Any
    ) -> collector.ExportTraceServiceResponse:
        self.requests.append(request)
        return collector.ExportTraceServiceResponse()

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def spans(self) -> Iterator[trace_pb2.Span]:
        for request in self.requests:
            for resource_spans in request.resource_spans:
                for scope_spans in resource_spans.scope_spans:
                    yield from scope_spans.spans

    def raw(self) -> bytes:
        """Everything received, as bytes: for asserting what must never be in a span."""
        return b"".join(request.SerializeToString() for request in self.requests)


@asynccontextmanager
async def otlp_receiver() -> AsyncIterator[Receiver]:
    receiver = Receiver()
    server = grpc.aio.server()
    collector_grpc.add_TraceServiceServicer_to_server(receiver, server)  # type: ignore[no-untyped-call]
    receiver.port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        yield receiver
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
