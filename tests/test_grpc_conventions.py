"""gRPC's conventions the gateway follows beyond its own contract: channelz."""

from __future__ import annotations

from grpc_channelz.v1 import channelz_pb2, channelz_pb2_grpc

from inference_gateway_protos.inference.gateway.v1 import gateway_pb2 as pb
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
