"""The throughput baseline: a grpc.aio server that forwards each GenerateText as one POST.

It does only what no gateway can skip: decode the call, send the create with
`Prefer: wait` over aiohttp (the fastest Python HTTP client measured for this
project), decode the answer and reply. Whatever the gateway costs beyond this is
its own doing. Run as `python -m bench.forwarder`, under uvloop like the gateway.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, TypeAlias

import aiohttp
import grpc
import uvloop
from grpc_health.v1 import _async as health_aio
from grpc_health.v1 import health_pb2, health_pb2_grpc

from inference_gateway_protos.inference.gateway.v1 import gateway_pb2 as pb

__all__ = ["main"]

_SERVICE = "inference.gateway.v1.InferenceGateway"

if TYPE_CHECKING:
    Context: TypeAlias = grpc.aio.ServicerContext[Any, Any]


class _Forwarder:
    def __init__(self, session: aiohttp.ClientSession, base_url: str, token: str) -> None:
        self._session = session
        self._base_url = base_url.rstrip("/")
        self._headers = {
            "Authorization": f"Bearer {token}",
            "Content-Type": "application/json",
            "Prefer": "wait=60",
        }

    async def generate_text(
        self, request: pb.GenerateTextRequest, context: Context
    ) -> pb.GenerateTextResponse:
        body = json.dumps({"input": {"prompt": request.prompt}}).encode()
        url = f"{self._base_url}/v1/models/{request.model}/predictions"
        async with self._session.post(url, data=body, headers=self._headers) as response:
            data = await response.json()
        if response.status != 201 or data.get("status") != "succeeded":
            await context.abort(grpc.StatusCode.UNAVAILABLE, f"upstream answered {data}")
        return pb.GenerateTextResponse(
            text="".join(data["output"]),
            prediction=pb.Prediction(
                id=data["id"],
                model=data["model"],
                version=data["version"],
                status=pb.PREDICTION_STATUS_SUCCEEDED,
            ),
        )


async def _serve(port: int, base_url: str, token: str, max_connections: int) -> None:
    connector = aiohttp.TCPConnector(limit=max_connections)
    async with aiohttp.ClientSession(connector=connector) as session:
        forwarder = _Forwarder(session, base_url, token)
        server = grpc.aio.server()
        handler = grpc.method_handlers_generic_handler(
            _SERVICE,
            {
                "GenerateText": grpc.unary_unary_rpc_method_handler(
                    forwarder.generate_text,
                    request_deserializer=pb.GenerateTextRequest.FromString,
                    response_serializer=pb.GenerateTextResponse.SerializeToString,
                )
            },
        )
        server.add_generic_rpc_handlers((handler,))
        health = health_aio.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(health, server)
        if server.add_insecure_port(f"127.0.0.1:{port}") == 0:
            raise OSError(f"cannot bind 127.0.0.1:{port}")
        await server.start()
        await health.set("", health_pb2.HealthCheckResponse.SERVING)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        await server.stop(0)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.forwarder", description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--base-url", required=True, help="the simulator, without /v1")
    parser.add_argument("--token", required=True)
    parser.add_argument("--max-connections", type=int, default=10_000)
    args = parser.parse_args(argv)
    uvloop.run(_serve(args.port, args.base_url, args.token, args.max_connections))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
