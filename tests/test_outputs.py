"""Output files: where the gateway fetches them from, with which credentials, and how many bytes.

End to end over real gRPC and HTTP: the simulator serves the API and its files on two
origins, and a loopback file server here stands in for file hosts that redirect or send
large files. The rule underneath (`FilePolicy`) is checked against the two HTTP
libraries that connect (httpx and aiohttp's yarl) with hypothesis.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest
import yaml
import yarl
from aiohttp import web
from google.longrunning import operations_pb2, operations_pb2_grpc
from google.protobuf import struct_pb2
from google.rpc import code_pb2, error_details_pb2
from hypothesis import given, settings
from hypothesis import strategies as st

from inference_gateway.config import GatewayConfig
from inference_gateway.errors import Internal
from inference_gateway.grpc_api.server import RunningGateway, start_gateway
from inference_gateway.outputs import MAX_REDIRECTS, FilePolicy, Origin, Refusal, parse_origin
from inference_gateway.replicate import Prediction
from inference_gateway.settings import Settings, SettingsError
from inference_gateway_protos.inference.gateway.v1 import gateway_pb2 as pb
from inference_gateway_protos.inference.gateway.v1 import gateway_pb2_grpc
from replicate_simulator import RequestLog, RunningSimulator, SimulatorConfig, start_simulator
from tests.gateway_harness import TEST_TOKEN, running_gateway
from tests.gateway_harness import test_settings as gateway_settings
from tests.support.models import SDXL
from tests.support.models import SDXL_PINNED as SDXL_ID
from tests.support.rpc_status import error_info, status_detail

FAST = SimulatorConfig(token_interval_seconds=0.0, model_behaviour={SDXL: {"predict_seconds": 0}})
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
DEPLOYMENT = Path(__file__).parent.parent / "deploy" / "kubernetes" / "base" / "deployment.yaml"


def image_request(outputs: int = 1) -> pb.GenerateImageRequest:
    extra = struct_pb2.Struct()
    extra.update({"num_outputs": outputs})
    return pb.GenerateImageRequest(
        model=SDXL_ID, prompt="a fox", extra_input=extra, include_data=True
    )


async def refused(call: Awaitable[object]) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call
    return caught.value


# --- a loopback file host ----------------------------------------------------------------------


_CHUNK = 16_384


@dataclass
class FileHost:
    """Serves `/<kind>/<size>/<anything>`: `big` sends size bytes, `hold` waits midway,
    `redirect` answers 302 to `redirect_to`, where `{path}` is the request's path and
    `{tail}` the part after `<size>`; `bare` answers status <size> with nothing else."""

    url: str = ""
    redirect_to: str = ""
    content_type: str = "image/png"
    release: asyncio.Event = field(default_factory=asyncio.Event)
    requests: list[web.Request] = field(default_factory=list)

    async def serve(self, request: web.Request) -> web.StreamResponse:
        self.requests.append(request)
        kind, size = request.match_info["kind"], int(request.match_info["size"])
        if kind == "bare":  # a status and nothing else, no Location
            return web.Response(status=size)
        if kind == "redirect":
            tail = "/" + request.match_info["tail"]
            location = self.redirect_to.replace("{path}", request.path).replace("{tail}", tail)
            return web.Response(status=302, headers={"Location": location})
        response = web.StreamResponse(headers={"Content-Type": self.content_type})
        await response.prepare(request)
        chunk = b"\x00" * _CHUNK
        for sent in range(0, size, len(chunk)):
            if kind == "hold" and sent >= size // 2:
                await self.release.wait()
            await response.write(chunk[: size - sent])
        await response.write_eof()
        return response


def sent_before_hold(size: int) -> int:
    """What `hold/<size>` sends before it waits: whole chunks up to half the file. A test
    waits for all of it, so nothing more arrives to move what the gateway holds."""
    return -(-(size // 2) // _CHUNK) * _CHUNK


@asynccontextmanager
async def file_host() -> AsyncIterator[FileHost]:
    host = FileHost()
    app = web.Application()
    app.router.add_get("/{kind}/{size}/{tail:.*}", host.serve)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    host.url = f"http://127.0.0.1:{port}"
    try:
        yield host
    finally:
        host.release.set()
        await runner.cleanup()


class CountingTransport(httpx.AsyncBaseTransport):
    """Real HTTP over loopback that counts the body bytes the gateway read from `origin`."""

    def __init__(self) -> None:
        self.origin = ""
        self.read = 0
        self.reached = asyncio.Event()
        self.reach = 0
        self._inner = httpx.AsyncHTTPTransport()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self._inner.handle_async_request(request)
        if not str(request.url).startswith(self.origin):
            return response
        return httpx.Response(
            response.status_code,
            headers=response.headers,
            stream=_Counted(self, response.stream),
            request=request,
        )

    async def aclose(self) -> None:
        await self._inner.aclose()


class _Counted(httpx.AsyncByteStream):
    def __init__(self, counter: CountingTransport, stream: Any) -> None:
        self._counter = counter
        self._stream = stream

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self._stream:
            self._counter.read += len(chunk)
            yield chunk
            # Resumed: the gateway has taken the chunk in and asks for the next one.
            if self._counter.reach and self._counter.read >= self._counter.reach:
                self._counter.reached.set()

    async def aclose(self) -> None:
        await self._stream.aclose()


@dataclass
class Rig:
    simulator: RunningSimulator
    gateway: RunningGateway
    stub: gateway_pb2_grpc.InferenceGatewayAsyncStub
    files: FileHost
    transport: CountingTransport

    @property
    def held(self) -> int:
        """Output bytes the gateway holds for calls in flight."""
        return self.gateway.gateway._outputs.budget.held

    def gauge(self) -> float | None:
        """What /metrics says is held."""
        registry = self.gateway.metrics.registry
        return registry.get_sample_value("inference_gateway_output_bytes_held")


@asynccontextmanager
async def rig(**settings_: Any) -> AsyncIterator[Rig]:
    """Simulator, loopback file host and gateway; both file origins are allowed."""
    async with AsyncExitStack() as stack:
        simulator = await start_simulator(FAST, "127.0.0.1", 0)
        stack.push_async_callback(simulator.stop)
        files = await stack.enter_async_context(file_host())
        transport = CountingTransport()
        transport.origin = files.url
        stack.push_async_callback(transport.aclose)
        origins = (parse_origin(simulator.files_url), parse_origin(files.url))
        running = await start_gateway(
            gateway_settings(base_url=simulator.base_url, output_file_origins=origins, **settings_),
            GatewayConfig.empty(),
            {},
            transport=transport,
            serve_metrics=False,
        )
        stack.push_async_callback(running.stop, 0.1)
        channel = grpc.aio.insecure_channel(f"127.0.0.1:{running.port}")
        stack.push_async_callback(channel.close, None)
        yield Rig(
            simulator, running, gateway_pb2_grpc.InferenceGatewayStub(channel), files, transport
        )


# --- never the API origin ----------------------------------------------------------------------


def api_requests(log: RequestLog) -> list[str]:
    """What reached the simulator's API besides the create and the schema lookup."""
    return [
        f"{r.method} {r.path}"
        for r in log.matching()
        if r.kind not in ("create", "model", "version", "deployment")
    ]


@pytest.mark.parametrize(
    "base",
    [
        "{api}/v1/predictions?",
        "{api}/v1/account#",
        "{api}/v1/deployments#",
        "http://127.0.0.1:0{api_port}/v1/account#",
        "http://127.0.0.1:00{api_port}/v1/predictions?",
        "HTTP://127.0.0.1.:{api_port}/v1/account#",
    ],
    ids=["predictions", "account", "deployments", "leading-zero", "two-zeros", "trailing-dot"],
)
async def test_an_output_url_on_the_api_origin_is_never_fetched(base: str) -> None:
    async with running_gateway(simulator_config=FAST) as h:
        api_port = h.simulator.base_url.rsplit(":", 1)[1]
        base = base.format(api=h.simulator.base_url, api_port=api_port)
        h.simulator.state.set_behaviour(SDXL, output_url_base=base)

        error = await refused(h.stub.GenerateImage(image_request(), timeout=20))

        assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
        info = error_info(error)
        assert info.reason == "OUTPUT_HOST_NOT_ALLOWED"
        assert "without include_data" in (error.details() or "")
        assert api_requests(h.requests) == []
        assert h.requests.count("file") == 0


async def test_an_api_origin_url_gets_a_reason_that_names_the_api() -> None:
    async with running_gateway(simulator_config=FAST) as h:
        h.simulator.state.set_behaviour(SDXL, output_url_base=f"{h.simulator.base_url}/v1/account#")
        error = await refused(h.stub.GenerateImage(image_request(), timeout=20))
        assert "Replicate's API origin" in (error.details() or "")
        assert error_info(error).metadata["host"] == h.simulator.base_url


async def test_a_listed_file_origin_spelled_with_a_leading_zero_port_is_refused() -> None:
    async with running_gateway(simulator_config=FAST) as h:
        scheme_host, port = h.simulator.files_url.rsplit(":", 1)
        h.simulator.state.set_behaviour(SDXL, output_url_base=f"{scheme_host}:0{port}")

        error = await refused(h.stub.GenerateImage(image_request(), timeout=20))

        assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert error_info(error).metadata["host"] == "an unusual URL"
        assert h.requests.count("file") == 0


@pytest.mark.parametrize("with_token", [False, True])
async def test_a_listed_file_origin_gets_the_token_only_when_the_operator_says(
    with_token: bool,
) -> None:
    async with running_gateway(simulator_config=FAST, output_file_token=with_token) as h:
        reply = await h.stub.GenerateImage(image_request(2), timeout=20)

        assert all(image.data.startswith(PNG_SIGNATURE) for image in reply.images)
        tokens = [r.headers.get("authorization") for r in h.requests.matching("file")]
        assert tokens == [f"Bearer {TEST_TOKEN}" if with_token else None] * 2


# --- redirects ---------------------------------------------------------------------------------


async def test_a_redirect_to_an_allowed_origin_is_followed_without_the_token() -> None:
    async with rig() as r:
        r.simulator.state.set_behaviour(SDXL, output_url_base=f"{r.files.url}/redirect/0")
        # The file host sends the gateway on to the simulator's own copy of the file.
        r.files.redirect_to = r.simulator.files_url + "{tail}"
        reply = await r.stub.GenerateImage(image_request(), timeout=20)
        [image] = reply.images
        expected = f"{r.simulator.files_url}/files/{reply.prediction.id}/out-0.png"

        assert image.uri.startswith(r.files.url)
        [hop] = r.files.requests
        assert "Authorization" not in hop.headers
        [served] = r.simulator.state.requests.matching("file")
        assert "authorization" not in served.headers
        async with httpx.AsyncClient() as http:
            assert image.data == (await http.get(expected)).content


@pytest.mark.parametrize(
    ("target", "where"),
    [
        ("{api}/v1/account", "{api}"),
        ("{api}/v1/predictions", "{api}"),
        ("http://127.0.0.1:0{api_port}/v1/account", "an unusual URL"),
        ("http://127.0.0.1:{closed}/x.png", "http://127.0.0.1:{closed}"),
        ("http://169.254.169.254/latest/meta-data/", "http://169.254.169.254:80"),
        ("http://replicate.delivery/x.png", "http://replicate.delivery:80"),
        ("", "nowhere"),
    ],
    ids=["api-account", "api-predictions", "leading-zero", "loopback", "metadata", "http", "empty"],
)
async def test_a_redirect_to_a_forbidden_place_is_refused_precisely(
    target: str, where: str
) -> None:
    async with rig() as r, counter() as (closed, connections):
        api_port = r.simulator.base_url.rsplit(":", 1)[1]
        names = {"api": r.simulator.base_url, "api_port": api_port, "closed": closed}
        r.simulator.state.set_behaviour(SDXL, output_url_base=f"{r.files.url}/redirect/0")
        r.files.redirect_to = target.format(**names)

        error = await refused(r.stub.GenerateImage(image_request(), timeout=20))

        assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
        info = error_info(error)
        assert info.reason == "OUTPUT_REDIRECT_NOT_ALLOWED"
        assert info.metadata["host"] == where.format(**names)
        assert info.metadata["from"] == r.files.url
        assert info.metadata["predictionId"] in r.simulator.state.predictions
        assert "without include_data" in (error.details() or "")
        assert len(r.files.requests) == 1
        assert api_requests(r.simulator.state.requests) == []
        assert connections.accepted == 0


@pytest.mark.parametrize("status", [300, 301, 304, 307])
async def test_a_redirect_status_without_a_location_is_refused_not_internal(status: int) -> None:
    async with rig() as r:
        r.simulator.state.set_behaviour(SDXL, output_url_base=f"{r.files.url}/bare/{status}")

        error = await refused(r.stub.GenerateImage(image_request(), timeout=20))

        assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
        info = error_info(error)
        assert (info.reason, info.metadata["host"]) == ("OUTPUT_REDIRECT_NOT_ALLOWED", "nowhere")
        assert "without a Location" in (error.details() or "")


async def test_a_redirect_loop_ends_after_the_bounded_number_of_hops() -> None:
    async with rig() as r:
        r.simulator.state.set_behaviour(SDXL, output_url_base=f"{r.files.url}/redirect/0")
        r.files.redirect_to = "{path}"

        error = await refused(r.stub.GenerateImage(image_request(), timeout=20))

        assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
        info = error_info(error)
        assert (info.reason, info.metadata["limit"]) == ("OUTPUT_TOO_MANY_REDIRECTS", "5")
        assert info.metadata["predictionId"] in r.simulator.state.predictions
        assert len(r.files.requests) == MAX_REDIRECTS + 1


class Connections:
    def __init__(self) -> None:
        self.accepted = 0

    async def accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        writer.close()


@asynccontextmanager
async def counter() -> AsyncIterator[tuple[int, Connections]]:
    connections = Connections()
    server = await asyncio.start_server(connections.accept, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1], connections
    finally:
        server.close()
        await server.wait_closed()


# --- bytes -------------------------------------------------------------------------------------

CHUNK_SLACK = 256 * 1024  # one read from the socket, at most


async def test_one_reply_stops_downloading_at_its_limit_and_gives_its_bytes_back() -> None:
    limit = 300_000
    async with rig(max_response_bytes=limit, max_output_file_bytes=200_000) as r:
        # Four files of 150,000 bytes: 600,000 in all, twice the reply limit.
        r.simulator.state.set_behaviour(SDXL, output_url_base=f"{r.files.url}/big/150000")

        error = await refused(r.stub.GenerateImage(image_request(4), timeout=20))

        assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
        info = error_info(error)
        assert (info.reason, info.metadata["limit"]) == ("OUTPUT_REPLY_TOO_LARGE", str(limit))
        assert info.metadata["setting"] == "GATEWAY_MAX_RESPONSE_BYTES"
        assert str(limit) in (error.details() or "")
        assert r.transport.read <= limit + CHUNK_SLACK
        assert r.transport.read < 4 * 150_000
        assert r.held == 0


async def test_a_reply_within_its_limit_comes_back_whole() -> None:
    async with rig(max_response_bytes=1_000_000, max_output_file_bytes=200_000) as r:
        r.simulator.state.set_behaviour(SDXL, output_url_base=f"{r.files.url}/big/150000")
        reply = await r.stub.GenerateImage(
            image_request(3), timeout=20, compression=grpc.Compression.NoCompression
        )
        assert [len(image.data) for image in reply.images] == [150_000] * 3
        assert r.held == 0


async def test_every_reply_the_gateway_accepts_fits_the_send_limit() -> None:
    limit = 200_000
    async with rig(max_response_bytes=limit, max_output_file_bytes=limit) as r:
        # A long type from the file host is not passed on, so it cannot push a reply over.
        r.files.content_type = "image/" + "x" * 8_000
        outcomes = []
        for size in range(limit - 30_000, limit + 1, 3_000):
            r.simulator.state.set_behaviour(SDXL, output_url_base=f"{r.files.url}/big/{size}")
            call = r.stub.GenerateImage(image_request(), timeout=20)
            reply = (await asyncio.gather(call, return_exceptions=True))[0]
            if isinstance(reply, grpc.aio.AioRpcError):
                assert reply.code() == grpc.StatusCode.FAILED_PRECONDITION, reply.details()
                assert error_info(reply).reason == "OUTPUT_REPLY_TOO_LARGE"
                outcomes.append("refused")
                continue
            assert isinstance(reply, pb.GenerateImageResponse)
            [image] = reply.images
            assert (len(image.data), image.mime_type) == (size, "image/png")
            assert reply.ByteSize() <= limit
            outcomes.append("sent")
        assert "sent" in outcomes
        assert "refused" in outcomes
        assert r.held == 0


async def test_calls_together_stay_within_the_budget_and_give_it_back() -> None:
    async with rig(output_bytes_budget=250_000, max_output_file_bytes=200_000) as r:
        r.simulator.state.set_behaviour(SDXL, output_url_base=f"{r.files.url}/hold/200000")
        # The first call holds over half its file (whole chunks) until released.
        r.transport.reach = sent_before_hold(200_000)
        first = asyncio.ensure_future(r.stub.GenerateImage(image_request(), timeout=20))
        await asyncio.wait_for(r.transport.reached.wait(), timeout=20)
        assert r.held >= 100_000
        assert r.gauge() == r.held

        # A second call needs 200,000 more: over the budget of 250,000.
        r.simulator.state.set_behaviour(SDXL, output_url_base=f"{r.files.url}/big/200000")
        error = await refused(r.stub.GenerateImage(image_request(), timeout=20))

        assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        info = error_info(error)
        assert info.reason == "OUTPUT_BYTES_BUDGET_EXHAUSTED"
        assert (info.metadata["limit"], info.metadata["setting"]) == (
            "250000",
            "GATEWAY_OUTPUT_BYTES_BUDGET",
        )
        assert status_detail(error, error_details_pb2.RetryInfo).retry_delay.seconds >= 1
        # The first call still finishes, and then nothing is held.
        r.files.release.set()
        reply = await first
        assert len(reply.images[0].data) == 200_000
        assert r.held == 0
        assert r.gauge() == 0


async def test_an_operations_kept_bytes_are_held_against_the_budget_when_read() -> None:
    # Was: GetOperation and WaitOperation loaded an include_data operation's kept bytes
    # outside the budget, so concurrent reads of one operation held any number of copies.
    async with rig(output_bytes_budget=250_000, max_output_file_bytes=200_000) as r:
        channel = grpc.aio.insecure_channel(f"127.0.0.1:{r.gateway.port}")
        ops = operations_pb2_grpc.OperationsStub(channel)
        r.simulator.state.set_behaviour(SDXL, output_url_base=f"{r.files.url}/big/200000")
        submitted = await r.stub.SubmitImage(
            pb.SubmitImageRequest(request=image_request()), timeout=20
        )
        done = await ops.WaitOperation(
            operations_pb2.WaitOperationRequest(name=submitted.name), timeout=20
        )
        kept = pb.GenerateImageResponse()
        assert done.response.Unpack(kept)
        assert len(kept.images[0].data) == 200_000
        assert r.held == 0

        # A blocking call holds over 100,000 bytes: reading the 200,000 kept ones would pass
        # the budget of 250,000.
        r.simulator.state.set_behaviour(SDXL, output_url_base=f"{r.files.url}/hold/200000")
        r.transport.reach = sent_before_hold(200_000)
        first = asyncio.ensure_future(r.stub.GenerateImage(image_request(), timeout=20))
        await asyncio.wait_for(r.transport.reached.wait(), timeout=20)
        error = await refused(
            ops.GetOperation(operations_pb2.GetOperationRequest(name=submitted.name), timeout=20)
        )
        assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert error_info(error).reason == "OUTPUT_BYTES_BUDGET_EXHAUSTED"
        r.files.release.set()
        await first
        assert r.held == 0
        again = await ops.GetOperation(
            operations_pb2.GetOperationRequest(name=submitted.name), timeout=20
        )
        assert again.response.Unpack(kept)
        assert len(kept.images[0].data) == 200_000
        assert r.held == 0
        await channel.close(None)


@pytest.mark.slow
async def test_operations_keep_bytes_within_one_bound_for_all_of_them() -> None:
    # Was: each include_data operation kept up to GATEWAY_OPERATION_MAX_BYTES in the store
    # with no bound on all of them together, so a few submissions filled the Redis that
    # quotas, budgets and request_id records need (200 MB, noeviction in the overlay).
    async with rig(operation_total_bytes=400_000, max_output_file_bytes=200_000) as r:
        channel = grpc.aio.insecure_channel(f"127.0.0.1:{r.gateway.port}")
        ops = operations_pb2_grpc.OperationsStub(channel)
        r.simulator.state.set_behaviour(SDXL, output_url_base=f"{r.files.url}/big/200000")
        outcomes = []
        for _ in range(2):
            submitted = await r.stub.SubmitImage(
                pb.SubmitImageRequest(request=image_request()), timeout=20
            )
            outcomes.append(
                await ops.WaitOperation(
                    operations_pb2.WaitOperationRequest(name=submitted.name), timeout=20
                )
            )
        kept = pb.GenerateImageResponse()
        # 200,000 bytes are about 267,000 in the store (base64): the first fits, the
        # second would pass 400,000.
        first, second = outcomes
        assert first.response.Unpack(kept)
        assert len(kept.images[0].data) == 200_000
        assert second.error.code == code_pb2.RESOURCE_EXHAUSTED
        assert "GATEWAY_OPERATION_TOTAL_BYTES" in second.error.message
        assert len(r.files.requests) == 2
        assert r.held == 0
        await channel.close(None)


async def test_an_operation_waits_out_a_full_budget_instead_of_losing_its_answer() -> None:
    # Was: a submitted prediction that succeeded while blocking calls held the output
    # budget ended as RESOURCE_EXHAUSTED for good; nobody could ever read its images.
    async with rig(output_bytes_budget=250_000, max_output_file_bytes=200_000) as r:
        channel = grpc.aio.insecure_channel(f"127.0.0.1:{r.gateway.port}")
        ops = operations_pb2_grpc.OperationsStub(channel)
        r.simulator.state.set_behaviour(SDXL, output_url_base=f"{r.files.url}/hold/200000")
        r.transport.reach = sent_before_hold(200_000)
        first = asyncio.ensure_future(r.stub.GenerateImage(image_request(), timeout=30))
        await asyncio.wait_for(r.transport.reached.wait(), timeout=20)
        held_by_first = r.held

        r.simulator.state.set_behaviour(SDXL, output_url_base=f"{r.files.url}/big/200000")
        submitted = await r.stub.SubmitImage(
            pb.SubmitImageRequest(request=image_request()), timeout=20
        )
        # The follower's download was refused and gave its bytes back.
        await eventually(
            lambda: (
                any("/big/" in request.path for request in r.files.requests)
                and r.held == held_by_first
            )
        )
        r.files.release.set()
        await first
        done = await ops.WaitOperation(
            operations_pb2.WaitOperationRequest(name=submitted.name), timeout=30
        )
        assert done.done
        kept = pb.GenerateImageResponse()
        assert done.response.Unpack(kept), done.error
        assert len(kept.images[0].data) == 200_000
        assert r.held == 0
        await channel.close(None)


async def test_a_caller_leaving_mid_download_gives_the_bytes_back() -> None:
    async with rig() as r:
        r.simulator.state.set_behaviour(SDXL, output_url_base=f"{r.files.url}/hold/200000")
        r.transport.reach = sent_before_hold(200_000)
        call = r.stub.GenerateImage(image_request(), timeout=20)
        waiting = asyncio.ensure_future(call)
        await asyncio.wait_for(r.transport.reached.wait(), timeout=20)
        assert r.held >= 100_000

        call.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting
        await eventually(lambda: r.held == 0)


async def eventually(condition: Callable[[], bool]) -> None:
    """For what the gateway finishes after the caller has gone: no event marks it."""
    async with asyncio.timeout(10):
        while not condition():  # noqa: ASYNC110
            await asyncio.sleep(0.01)


def test_the_default_budget_fits_the_pods_memory_limit() -> None:
    """Fetched bytes are copied into the protobuf reply, then serialized: room for both."""
    deployment = yaml.safe_load(DEPLOYMENT.read_text())
    [container] = deployment["spec"]["template"]["spec"]["containers"]
    limit = container["resources"]["limits"]["memory"]
    assert limit.endswith("Gi")
    pod_bytes = int(limit.removesuffix("Gi")) * 1024**3
    defaults = Settings()
    held_at_peak = defaults.output_bytes_budget + 2 * defaults.max_response_bytes
    assert held_at_peak <= pod_bytes // 2
    assert defaults.max_output_file_bytes <= defaults.max_response_bytes


# --- the rest of the class: other upstream values that reach a request with the token ----------


@pytest.mark.parametrize(
    "pid", ["../account", "x/../../v1/account", "a?b", "a#b", "%2e%2e", "a b", "//evil", "é"]
)
def test_a_prediction_id_that_could_leave_its_path_is_refused(pid: str) -> None:
    # Ids become /v1/predictions/{id} and .../cancel, which are sent with the token.
    with pytest.raises(Internal, match="not a plain token") as caught:
        Prediction.parse({"id": pid, "status": "starting"}, endpoint="create")
    assert caught.value.reason == "REPLICATE_BAD_RESPONSE"
    assert Prediction.parse(
        {"id": "ufawqhfynnddngldkgtslldrkq", "status": "starting"}, endpoint="create"
    )


@pytest.mark.parametrize(
    ("base_url", "accepted"),
    [
        ("https://api.replicate.com", True),
        ("https://egress.internal:8443/replicate", True),
        ("http://127.0.0.1:8080", True),
        ("http://[::1]:8080", True),
        ("http://localhost:8080", True),
        ("http://api.replicate.com", False),
        ("http://10.0.0.7:8080", False),
        ("https://user:pass@api.replicate.com", False),
        ("api.replicate.com", False),
    ],
)
def test_the_token_goes_to_the_api_only_over_https_or_loopback(
    base_url: str, accepted: bool
) -> None:
    if accepted:
        assert gateway_settings(base_url=base_url).base_url == base_url
        return
    with pytest.raises(SettingsError, match="REPLICATE_BASE_URL"):
        gateway_settings(base_url=base_url)


# --- the rule underneath -----------------------------------------------------------------------

API = "http://127.0.0.1:8080"
EXTRA = (parse_origin("http://127.0.0.1:8081"), parse_origin("http://[::1]:9000"))
POLICY = FilePolicy(API, EXTRA, token_to_extra=False)
ALLOWED = {
    "http://127.0.0.1:8081/files/x/out-0.png": ("http://127.0.0.1:8081/files/x/out-0.png", False),
    "HTTP://127.0.0.1:8081?q=1": ("http://127.0.0.1:8081/?q=1", False),
    "http://127.0.0.1.:8081/a": ("http://127.0.0.1:8081/a", False),
    "http://[0:0::1]:9000/x": ("http://[::1]:9000/x", False),
    "https://replicate.delivery/pbxt/x/out-0.png": (
        "https://replicate.delivery/pbxt/x/out-0.png",
        True,
    ),
    "https://pbxt.replicate.delivery:443/out-0.png": (
        "https://pbxt.replicate.delivery/out-0.png",
        True,
    ),
    "HTTPS://PBXT.Replicate.Delivery.#frag": ("https://pbxt.replicate.delivery/", True),
}
REFUSED = [
    "http://127.0.0.1:8080/v1/account",
    "http://127.0.0.1:8080/files/x/out-0.png",
    "http://127.0.0.1:08080/v1/account",
    "http://127.0.0.1:08081/files/x",
    "http://127.0.0.1:/x",
    "http://127.0.0.1:+8081/x",
    "http://127.0.0.1:8081@example.com/x.png",
    "http://user@127.0.0.1:8081/x",
    "http://127.1:8081/x",
    "http://0x7f.0.0.1:8081/x",
    "http://2130706433:8081/x",
    "http://127.0.0.01:8081/x",
    "http://%31%32%37.0.0.1:8081/x",
    "http://127.0.0.1:8081\\@example.com/",
    "http://127.0.0.1 :8081/x",
    "http://[::1%25lo]:9000/x",
    "http://[::1]:9001/x",
    "http://::1:9000/x",
    "https://replicate.delivery:8443/x.png",
    "http://replicate.delivery/x.png",
    "https://evilreplicate.delivery/x.png",
    "https://replicate.delivery.example.com/x.png",
    "https://user@replicate.delivery/x.png",
    "https://replicate.delivery../x.png",
    "https://re_plicate.delivery/x.png",
    "https://replicate.délivery/x.png",
    "ftp://127.0.0.1:8081/x.png",
    "//127.0.0.1:8081/x.png",
    "http://127.0.0.1:99999/x.png",
    "",
]


def test_the_rule_allows_the_file_hosts_and_listed_origins_with_their_credentials() -> None:
    for url, (fetched, token) in ALLOWED.items():
        target = POLICY.vet(url)
        assert not isinstance(target, Refusal), url
        assert (target.url, target.send_token) == (fetched, token), url
    with_token = FilePolicy(API, EXTRA, token_to_extra=True).vet("http://127.0.0.1:8081/x")
    assert not isinstance(with_token, Refusal)
    assert with_token.send_token


@pytest.mark.parametrize("url", REFUSED)
def test_the_rule_refuses_everything_else(url: str) -> None:
    assert isinstance(POLICY.vet(url), Refusal)


@pytest.mark.parametrize(
    "text",
    ["127.0.0.1:8081", "http://127.0.0.1:8081/files", "http://u@h:1", "ftp://h:1", "http://h:01"],
)
def test_an_operator_origin_must_be_plain(text: str) -> None:
    with pytest.raises(ValueError, match="not an origin"):
        parse_origin(text)
    assert parse_origin("HTTP://Files.Example.COM.") == Origin("http", "files.example.com", 80)


def test_the_api_origin_cannot_be_listed_as_a_file_origin() -> None:
    with pytest.raises(SettingsError, match="GATEWAY_OUTPUT_FILE_ORIGINS"):
        gateway_settings(base_url=API, output_file_origins=(parse_origin(API),))
    remote = (parse_origin("http://files.internal:8081"),)
    with pytest.raises(SettingsError, match="in the clear"):
        gateway_settings(output_file_origins=remote, output_file_token=True)
    assert gateway_settings(output_file_origins=remote).output_file_origins == remote
    local = (parse_origin("http://127.0.0.1:8081"),)
    assert gateway_settings(output_file_origins=local, output_file_token=True).output_file_token
    with pytest.raises(SettingsError, match="GATEWAY_MAX_RESPONSE_BYTES"):
        gateway_settings(max_response_bytes=10, max_output_file_bytes=11)


# Characters that HTTP libraries read differently in a URL's authority.
edits = st.lists(
    st.tuples(st.integers(0, 60), st.sampled_from(list("\\@#?/:%.0 \t\né[]"))), max_size=3
)


def edited(url: str, changes: list[tuple[int, str]]) -> str:
    for at, char in changes:
        at = min(at, len(url))
        url = url[:at] + char + url[at:]
    return url


urls = st.one_of(
    st.sampled_from([*ALLOWED, *REFUSED]),
    st.builds(edited, st.sampled_from([*ALLOWED, *REFUSED]), edits),
    st.text(max_size=40),
)


def read_by(library: str, url: str) -> tuple[str, str, int]:
    if library == "httpx":
        parsed = httpx.URL(url)
        assert not parsed.userinfo
        return parsed.scheme, parsed.host, parsed.port or {"http": 80, "https": 443}[parsed.scheme]
    target = yarl.URL(url)
    assert target.user is None
    assert target.host is not None
    assert target.port is not None
    return target.scheme, target.host, target.port


@settings(max_examples=600, deadline=None, database=None, derandomize=True)
@given(url=urls)
def test_what_the_rule_allows_is_where_both_http_libraries_connect(url: str) -> None:
    target = POLICY.vet(url)
    if isinstance(target, Refusal):
        return
    origin = target.origin
    assert origin != parse_origin(API)
    assert origin in EXTRA or (
        origin.scheme == "https" and origin.host.endswith("replicate.delivery")
    )
    for library in ("httpx", "yarl"):
        assert read_by(library, target.url) == (origin.scheme, origin.host, origin.port)
    assert POLICY.vet(target.url) == target


@settings(max_examples=600, deadline=None, database=None, derandomize=True)
@given(url=urls)
def test_a_url_either_library_reads_as_the_api_is_never_allowed(url: str) -> None:
    api = parse_origin(API)
    for library in ("httpx", "yarl"):
        try:
            read = read_by(library, url)
        except (httpx.InvalidURL, ValueError, AssertionError, KeyError, TypeError):
            continue
        if read == (api.scheme, api.host, api.port):
            assert isinstance(POLICY.vet(url), Refusal)


async def test_a_cached_images_bytes_are_held_against_the_budget_when_read() -> None:
    # Was: an image answer read from the response cache (up to GATEWAY_CACHE_MAX_ENTRY_BYTES
    # each) was decoded outside the budget, so concurrent hits held any number of copies.
    async with rig(
        output_bytes_budget=250_000, max_output_file_bytes=200_000, cache_max_entry_bytes=400_000
    ) as r:
        cached = image_request()
        cached.extra_input.update({"seed": 7})
        cached.cache = pb.CACHE_MODE_USE
        r.simulator.state.set_behaviour(SDXL, output_url_base=f"{r.files.url}/big/200000")
        stored = await r.stub.GenerateImage(cached, timeout=20)
        assert len(stored.images[0].data) == 200_000
        assert not stored.cost.cache_hit

        # A blocking call holds over 100,000 bytes: the cached 200,000 would pass 250,000.
        r.simulator.state.set_behaviour(SDXL, output_url_base=f"{r.files.url}/hold/200000")
        r.transport.reach = sent_before_hold(200_000)
        first = asyncio.ensure_future(r.stub.GenerateImage(image_request(), timeout=20))
        await asyncio.wait_for(r.transport.reached.wait(), timeout=20)
        error = await refused(r.stub.GenerateImage(cached, timeout=20))
        assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert error_info(error).reason == "OUTPUT_BYTES_BUDGET_EXHAUSTED"
        r.files.release.set()
        await first
        assert r.held == 0

        hit = await r.stub.GenerateImage(cached, timeout=20)
        assert hit.images[0].data == stored.images[0].data
        assert hit.cost.cache_hit
        assert len(r.files.requests) == 2
        assert r.held == 0
