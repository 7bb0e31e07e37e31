"""An OTLP/gRPC trace receiver on loopback, built from opentelemetry-proto's service.

`python -m bench.otlp_receiver` binds a free port, says which on its first line of output,
counts the spans it receives until SIGTERM, then logs the count: what the gateways of
`python -m bench.run --tracing` export to. The tests use `Receiver` in process
(tests/support/otlp.py).
"""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from dataclasses import dataclass, field
from typing import Any

import grpc
import uvloop
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2 as collector
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2_grpc as collector_grpc

__all__ = ["Receiver", "main", "serve_receiver"]


@dataclass
class Receiver(collector_grpc.TraceServiceServicer):
    """Answers every export with success; keeps them when `keep` (tests), else counts."""

    keep: bool = True
    requests: list[collector.ExportTraceServiceRequest] = field(default_factory=list)
    spans_received: int = 0

    async def Export(
        self, request: collector.ExportTraceServiceRequest, context: Any
    ) -> collector.ExportTraceServiceResponse:
        self.spans_received += sum(
            len(scope.spans)
            for resource in request.resource_spans
            for scope in resource.scope_spans
        )
        if self.keep:
            self.requests.append(request)
        return collector.ExportTraceServiceResponse()


async def serve_receiver(receiver: Receiver) -> tuple[grpc.aio.Server, int]:
    """Starts `receiver` on a free loopback port; returns the server and the port."""
    server = grpc.aio.server()
    collector_grpc.add_TraceServiceServicer_to_server(receiver, server)  # type: ignore[no-untyped-call]
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    return server, port


async def _serve() -> None:
    receiver = Receiver(keep=False)
    server, port = await serve_receiver(receiver)
    print(json.dumps({"endpoint": f"http://127.0.0.1:{port}"}), flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await server.stop(None)
    # To its log (stderr), where the bench keeps every process's.
    print(f"spans received: {receiver.spans_received}", file=sys.stderr, flush=True)


def main() -> int:
    uvloop.run(_serve())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
