"""gRPC's conventions the gateway follows beyond its own contract: channelz, keepalive."""

from __future__ import annotations

import grpc
import pytest
from grpc_channelz.v1 import channelz_pb2, channelz_pb2_grpc

from inference_gateway_protos.inference.gateway.v1 import gateway_pb2 as pb
from inference_gateway_protos.inference.gateway.v1 import gateway_pb2_grpc
from tests.gateway_harness import running_gateway
from tests.support.models import LLAMA3


async def test_channelz_reports_the_servers_calls() -> None:
    async with running_gateway() as h:
        for _ in range(2):
            await h.stub.GenerateText(pb.GenerateTextRequest(model=LLAMA3, prompt="x"), timeout=20)
        channelz = channelz_pb2_grpc.ChannelzStub(h.channel)
        servers = await channelz.GetServers(channelz_pb2.GetServersRequest(), timeout=10)
    # One server in this process; its counts include the two calls (and this one).
    assert len(servers.server) >= 1
    assert max(s.data.calls_succeeded for s in servers.server) >= 2
    assert any(s.listen_socket for s in servers.server)


@pytest.mark.slow  # about 10 s of real time before the server's patience runs out
async def test_a_client_pinging_too_often_is_told_to_calm_down() -> None:
    """Keepalive enforcement: pings every second while no data flows break the 10 s floor;
    after two strikes the server sends GOAWAY (too_many_pings) and drops the connection."""
    async with running_gateway(max_wait=60) as h:
        h.simulator.state.set_behaviour(LLAMA3, predict_seconds=30.0)
        eager = grpc.aio.insecure_channel(
            f"127.0.0.1:{h.gateway.port}",
            options=[
                ("grpc.keepalive_time_ms", 1000),
                ("grpc.keepalive_permit_without_calls", 1),
                ("grpc.http2.max_pings_without_data", 0),
            ],
        )
        async with eager:
            stub = gateway_pb2_grpc.InferenceGatewayStub(eager)
            with pytest.raises(grpc.aio.AioRpcError) as dropped:
                # Held by Replicate's Prefer: wait: no data flows while it waits.
                await stub.GenerateText(
                    pb.GenerateTextRequest(model=LLAMA3, prompt="x"), timeout=25
                )
    assert dropped.value.code() == grpc.StatusCode.UNAVAILABLE
    assert dropped.value.details() == "Too many pings"
