"""GenerateImage end to end: every field upstream, every image back, and bytes only from safe hosts.

Expected inputs and bytes are written out or fetched independently here (with httpx), not
read back from the gateway.
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

import grpc
import httpx
import pytest
from google.protobuf import struct_pb2
from hypothesis import given, settings
from hypothesis import strategies as st

from inference_gateway.config import GatewayConfig
from inference_gateway.domain import InputImage
from inference_gateway.errors import InvalidArgument
from inference_gateway.grpc_api.server import start_gateway
from inference_gateway.inputs import image_data_uri
from inference_gateway_protos.inference.gateway.v1 import gateway_pb2 as pb
from inference_gateway_protos.inference.gateway.v1 import gateway_pb2_grpc
from replicate_simulator import RunningSimulator, SimulatorConfig, start_simulator
from tests.gateway_harness import TEST_TOKEN, Harness, running_gateway
from tests.gateway_harness import test_settings as gateway_settings
from tests.support.models import SDXL, SDXL_VERSION
from tests.support.models import SDXL_PINNED as SDXL_ID
from tests.support.rpc_status import error_info

# Image models answer at once, so each test takes milliseconds.
FAST = SimulatorConfig(token_interval_seconds=0.0, model_behaviour={SDXL: {"predict_seconds": 0}})
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
DATA_PREFIX = "data:image/png;base64,"


def struct(**values: Any) -> struct_pb2.Struct:
    message = struct_pb2.Struct()
    message.update(values)
    return message


@asynccontextmanager
async def gateway(**settings: Any) -> AsyncIterator[Harness]:
    async with running_gateway(simulator_config=FAST, **settings) as h:
        yield h


async def refused(call: Awaitable[object]) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call
    return caught.value


async def fetch(url: str) -> httpx.Response:
    """An independent download, as any client of Replicate's file URLs would make it."""
    async with httpx.AsyncClient() as http:
        response = await http.get(url, headers={"Authorization": f"Bearer {TEST_TOKEN}"})
    response.raise_for_status()
    return response


# --- every field in, every image out ---------------------------------------------------------


async def test_every_field_reaches_replicate_and_every_image_comes_back_with_its_bytes() -> None:
    async with gateway() as h:
        reply = await h.stub.GenerateImage(
            pb.GenerateImageRequest(
                model=SDXL_ID,
                prompt="a lighthouse at dusk",
                width=768,
                height=512,
                refine="expert_ensemble_refiner",
                apply_watermark=False,
                num_inference_steps=20,
                extra_input=struct(
                    negative_prompt="blurry", num_outputs=3, seed=42, guidance_scale=7.5
                ),
                include_data=True,
            ),
            timeout=20,
        )

        [create] = h.requests.matching("create")
        assert create.body == {
            "version": SDXL_VERSION,
            "input": {
                "prompt": "a lighthouse at dusk",
                "width": 768,
                "height": 512,
                "refine": "expert_ensemble_refiner",
                "apply_watermark": False,
                "num_inference_steps": 20,
                "negative_prompt": "blurry",
                "num_outputs": 3,
                "seed": 42,
                "guidance_scale": 7.5,
            },
        }
        prediction_id = reply.prediction.id
        assert [image.uri for image in reply.images] == [
            f"{h.simulator.files_url}/files/{prediction_id}/out-{i}.png" for i in range(3)
        ]
        # The simulator's file origin is listed without GATEWAY_OUTPUT_FILE_TOKEN.
        files = h.requests.matching("file")
        assert len(files) == 3
        assert all("authorization" not in request.headers for request in files)
        assert [image.mime_type for image in reply.images] == ["image/png"] * 3
        for image in reply.images:
            served = await fetch(image.uri)
            assert image.data == served.content
            assert served.content.startswith(PNG_SIGNATURE)
        assert len({image.data for image in reply.images}) == 3
        assert reply.prediction.status == pb.PREDICTION_STATUS_SUCCEEDED


async def test_without_include_data_only_urls_come_back_and_nothing_is_downloaded() -> None:
    async with gateway() as h:
        reply = await h.stub.GenerateImage(
            pb.GenerateImageRequest(
                model=SDXL_ID, prompt="a fox", extra_input=struct(num_outputs=2)
            ),
            timeout=20,
        )
        assert len(reply.images) == 2
        assert all(image.data == b"" for image in reply.images)
        assert [image.mime_type for image in reply.images] == ["image/png"] * 2
        assert h.requests.count("file") == 0


async def test_a_single_url_output_is_one_image() -> None:
    async with gateway() as h:
        h.simulator.state.set_behaviour(SDXL, single_file_output=True)
        reply = await h.stub.GenerateImage(
            pb.GenerateImageRequest(
                model=SDXL_ID, prompt="a fox", extra_input=struct(num_outputs=2), include_data=True
            ),
            timeout=20,
        )
        [image] = reply.images
        assert image.uri == f"{h.simulator.files_url}/files/{reply.prediction.id}/out-0.png"
        assert image.data == (await fetch(image.uri)).content


@pytest.mark.parametrize("include_data", [True, False])
async def test_data_uri_outputs_are_decoded_without_any_download(include_data: bool) -> None:
    async with gateway() as h:
        h.simulator.state.set_behaviour(SDXL, data_uri_output=True)
        reply = await h.stub.GenerateImage(
            pb.GenerateImageRequest(
                model=SDXL_ID,
                prompt="a fox",
                extra_input=struct(num_outputs=2),
                include_data=include_data,
            ),
            timeout=20,
        )
        assert len(reply.images) == 2
        for image in reply.images:
            assert image.uri.startswith(DATA_PREFIX)
            assert image.mime_type == "image/png"
            decoded = base64.b64decode(image.uri[len(DATA_PREFIX) :], validate=True)
            assert decoded.startswith(PNG_SIGNATURE)
            assert image.data == (decoded if include_data else b"")
        assert h.requests.count("file") == 0


# --- where bytes may come from ---------------------------------------------------------------


class ConnectionCounter:
    """A TCP server on loopback that only counts the connections it accepts."""

    def __init__(self) -> None:
        self.accepted = 0
        self.first = asyncio.Event()

    async def accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        self.first.set()
        writer.close()


@asynccontextmanager
async def connection_counter() -> AsyncIterator[tuple[int, ConnectionCounter]]:
    counter = ConnectionCounter()
    server = await asyncio.start_server(counter.accept, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1], counter
    finally:
        server.close()
        await server.wait_closed()


@pytest.mark.parametrize(
    "base",
    ["http://127.0.0.1:{port}", "http://localhost:{port}", "https://127.0.0.1:{port}"],
    ids=["same-host-other-port", "other-host-name", "other-scheme"],
)
async def test_bytes_are_refused_from_another_origin_before_any_connection(base: str) -> None:
    async with gateway() as h, connection_counter() as (port, counter):
        foreign = base.format(port=port)
        h.simulator.state.set_behaviour(SDXL, output_url_base=foreign)
        request = pb.GenerateImageRequest(model=SDXL_ID, prompt="a fox", include_data=True)

        error = await refused(h.stub.GenerateImage(request, timeout=20))

        assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
        info = error_info(error)
        assert (info.reason, info.metadata["host"]) == ("OUTPUT_HOST_NOT_ALLOWED", foreign)
        assert "without include_data" in (error.details() or "")
        assert counter.accepted == 0
        # Without include_data the same output is returned as it is.
        reply = await h.stub.GenerateImage(
            pb.GenerateImageRequest(model=SDXL_ID, prompt="a fox"), timeout=20
        )
        assert [image.uri for image in reply.images] == [
            f"{foreign}/files/{reply.prediction.id}/out-0.png"
        ]
        assert counter.accepted == 0
        # The counter does count, so the zeros above mean no connection was made.
        _, writer = await asyncio.open_connection("127.0.0.1", port)
        await asyncio.wait_for(counter.first.wait(), timeout=5)
        writer.close()
        assert counter.accepted == 1


@asynccontextmanager
async def gateway_with_file_host(
    serve: Callable[[httpx.Request], httpx.Response],
) -> AsyncIterator[tuple[RunningSimulator, gateway_pb2_grpc.InferenceGatewayAsyncStub]]:
    """A gateway whose requests to the simulator go over loopback and the rest to `serve`.

    Stands in for Replicate's file hosts without reaching the internet.
    """
    async with AsyncExitStack() as stack:
        simulator = await start_simulator(FAST, "127.0.0.1", 0)
        stack.push_async_callback(simulator.stop)
        loopback = httpx.AsyncHTTPTransport()
        stack.push_async_callback(loopback.aclose)

        class Routing(httpx.AsyncBaseTransport):
            async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
                if str(request.url).startswith(simulator.base_url):
                    return await loopback.handle_async_request(request)
                return serve(request)

        running = await start_gateway(
            gateway_settings(base_url=simulator.base_url),
            GatewayConfig.empty(),
            {},
            transport=Routing(),
            serve_metrics=False,
        )
        stack.push_async_callback(running.stop, 0.1)
        channel = grpc.aio.insecure_channel(f"127.0.0.1:{running.port}")
        stack.push_async_callback(channel.close, None)
        yield simulator, gateway_pb2_grpc.InferenceGatewayStub(channel)


@pytest.mark.parametrize(
    ("base", "allowed"),
    [
        ("https://replicate.delivery/pbxt", True),
        ("https://pbxt.replicate.delivery", True),
        ("https://PBXT.Replicate.Delivery.:443", True),
        ("http://replicate.delivery", False),
        ("https://replicate.delivery:8443", False),
        ("https://replicate.delivery.example.com", False),
        ("https://evilreplicate.delivery", False),
        ("https://replicate.delivery@example.com", False),
    ],
)
async def test_replicate_file_hosts_are_fetched_with_the_token_and_look_alikes_are_not(
    base: str, allowed: bool
) -> None:
    seen: list[httpx.Request] = []

    def serve(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, content=PNG_SIGNATURE + b"file", headers={"content-type": ""})

    async with gateway_with_file_host(serve) as (simulator, stub):
        simulator.state.set_behaviour(SDXL, output_url_base=base)
        call = stub.GenerateImage(
            pb.GenerateImageRequest(model=SDXL_ID, prompt="a fox", include_data=True), timeout=20
        )
        if allowed:
            reply = await call
            [image] = reply.images
            assert image.data == PNG_SIGNATURE + b"file"
            # No type from the host: the file's extension says it.
            assert image.mime_type == "image/png"
            [request] = seen
            assert request.url.host.endswith("replicate.delivery")
            assert request.url.path == httpx.URL(image.uri).path
            assert request.headers["authorization"] == f"Bearer {TEST_TOKEN}"
        else:
            error = await refused(call)
            assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
            assert seen == []


async def test_a_file_over_the_download_limit_is_refused_naming_the_setting() -> None:
    request = pb.GenerateImageRequest(model=SDXL_ID, prompt="a fox", include_data=True)
    # Smaller than any PNG: signature, IHDR and IEND alone take 45 bytes.
    async with gateway(max_output_file_bytes=40) as h:
        error = await refused(h.stub.GenerateImage(request, timeout=20))

        assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
        info = error_info(error)
        assert (info.reason, info.metadata["limit"]) == ("OUTPUT_FILE_TOO_LARGE", "40")
        assert info.metadata["setting"] == "GATEWAY_MAX_OUTPUT_FILE_BYTES"
        assert "40 bytes" in (error.details() or "")
    async with gateway(max_output_file_bytes=10_000) as h:
        reply = await h.stub.GenerateImage(request, timeout=20)
        assert reply.images[0].data.startswith(PNG_SIGNATURE)


# --- input images ----------------------------------------------------------------------------


async def test_input_images_go_upstream_as_data_uris_or_urls() -> None:
    png = PNG_SIGNATURE + b"\x00" * 24
    jpeg = b"\xff\xd8\xff\xe0" + b"\x01" * 16
    async with gateway() as h:
        for image, expected in [
            (
                pb.InputImage(input_name="image", data=b"GIF89a..", mime_type="image/gif"),
                "data:image/gif;base64," + base64.b64encode(b"GIF89a..").decode(),
            ),
            (
                pb.InputImage(data=png),
                "data:image/png;base64," + base64.b64encode(png).decode(),
            ),
            (
                pb.InputImage(data=jpeg),
                "data:image/jpeg;base64," + base64.b64encode(jpeg).decode(),
            ),
            (
                pb.InputImage(uri="https://example.com/photos/cat.png?size=large"),
                "https://example.com/photos/cat.png?size=large",
            ),
        ]:
            h.requests.clear()
            await h.stub.GenerateImage(
                pb.GenerateImageRequest(model=SDXL_ID, prompt="a fox", input_images=[image]),
                timeout=20,
            )
            [create] = h.requests.matching("create")
            assert create.body["input"] == {"prompt": "a fox", "image": expected}


async def test_an_image_and_its_mask_go_to_their_own_inputs() -> None:
    async with gateway() as h:
        await h.stub.GenerateImage(
            pb.GenerateImageRequest(
                model=SDXL_ID,
                prompt="a fox",
                input_images=[
                    pb.InputImage(input_name="image", uri="https://example.com/a.png"),
                    pb.InputImage(input_name="mask", data=b"mask", mime_type="image/png"),
                ],
            ),
            timeout=20,
        )
        [create] = h.requests.matching("create")
        assert create.body["input"] == {
            "prompt": "a fox",
            "image": "https://example.com/a.png",
            "mask": "data:image/png;base64,bWFzaw==",
        }


@pytest.mark.parametrize(
    ("images", "extra", "reason", "field", "hint"),
    [
        (
            [pb.InputImage(uri="https://example.com/a.png", data=b"x")],
            {},
            "INVALID_INPUT_IMAGE",
            "input_images[0]",
            "not both",
        ),
        (
            [pb.InputImage(uri="http://example.com/a.png")],
            {},
            "INVALID_INPUT_IMAGE",
            "input_images[0].uri",
            "https://",
        ),
        (
            [pb.InputImage(uri="https:///no-host.png")],
            {},
            "INVALID_INPUT_IMAGE",
            "input_images[0].uri",
            "https://",
        ),
        (
            [pb.InputImage(data=b"x", mime_type="image/png;base64,AAAA")],
            {},
            "INVALID_INPUT_IMAGE",
            "input_images[0].mime_type",
            "MIME type",
        ),
        (
            [pb.InputImage(uri="https://example.com/a.png"), pb.InputImage(data=b"x")],
            {},
            "DUPLICATE_INPUT",
            "input_images[1].input_name",
            "input_images[0]",
        ),
        (
            [pb.InputImage(input_name="prompt", data=b"x")],
            {},
            "DUPLICATE_INPUT",
            "input_images[0].input_name",
            "prompt",
        ),
        (
            [pb.InputImage(data=b"x")],
            {"image": "https://example.com/a.png"},
            "DUPLICATE_INPUT",
            "input_images[0].input_name",
            "extra_input",
        ),
    ],
    ids=["uri-and-data", "http", "no-host", "bad-mime", "same-input-twice", "prompt", "extra"],
)
async def test_unusable_input_images_are_invalid_argument_before_any_request(
    images: list[pb.InputImage], extra: dict[str, Any], reason: str, field: str, hint: str
) -> None:
    async with gateway() as h:
        request = pb.GenerateImageRequest(
            model=SDXL_ID, prompt="a fox", input_images=images, extra_input=struct(**extra)
        )
        error = await refused(h.stub.GenerateImage(request, timeout=20))
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert error_info(error).reason == reason
        assert hint in (error.details() or "")
        assert field in (error.details() or "")
        assert h.requests.count("create") == 0


async def test_an_inline_image_over_the_limit_is_refused_naming_it() -> None:
    async with gateway(max_input_image_bytes=1024) as h:

        def request(size: int) -> pb.GenerateImageRequest:
            image = pb.InputImage(data=b"\x00" * size, mime_type="image/png")
            return pb.GenerateImageRequest(model=SDXL_ID, prompt="a fox", input_images=[image])

        await h.stub.GenerateImage(request(1024), timeout=20)
        error = await refused(h.stub.GenerateImage(request(1025), timeout=20))

        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
        info = error_info(error)
        assert (info.reason, info.metadata["limit"]) == ("INPUT_IMAGE_TOO_LARGE", "1024")
        details = error.details() or ""
        assert "the limit is 1024" in details
        assert "GATEWAY_MAX_INPUT_IMAGE_BYTES" in details
        assert "https URL" in details
        assert h.requests.count("create") == 1


# --- the rules underneath, as properties -----------------------------------------------------


@settings(max_examples=300, deadline=None, database=None, derandomize=True)
@given(
    data=st.binary(max_size=64),
    mime=st.sampled_from(["", "image/png", "image/svg+xml", "x,y", "a;b", "png", "é/x"])
    | st.text(max_size=12),
    uri=st.sampled_from(["", "https://example.com/a.png", "https://", "http://x/a", "data:x"])
    | st.text(max_size=20),
)
def test_an_input_image_becomes_a_data_uri_or_url_or_a_precise_refusal(
    data: bytes, mime: str, uri: str
) -> None:
    image = InputImage("image", uri=uri or None, data=data or None, mime_type=mime or None)
    value = uri_or_refusal(image)
    if isinstance(value, InvalidArgument):
        assert value.reason == "INVALID_INPUT_IMAGE"
        assert [v.field.startswith("input_images[3]") for v in value.violations] == [True]
        return
    if uri:
        assert value == uri
        return
    header, _, payload = value.partition(",")
    assert base64.b64decode(payload, validate=True) == data
    assert header.endswith(";base64")
    kind = header.removeprefix("data:").removesuffix(";base64")
    assert kind == (mime or kind)
    assert "," not in kind
    assert ";" not in kind


def uri_or_refusal(image: InputImage) -> str | InvalidArgument:
    try:
        return image_data_uri(image, 3)
    except InvalidArgument as error:
        return error
