"""What the caller sends becomes the model's input in the model's own types, over real gRPC.

Struct numbers are doubles: the schema decides whether one is sent as an integer, and a
message protobuf cannot parse is refused by name, not answered UNKNOWN.
"""

from __future__ import annotations

import struct as binary
from typing import Any

import grpc
import pytest
from google.protobuf import struct_pb2

from inference_gateway_protos.inference.gateway.v1 import gateway_pb2 as pb
from tests.gateway_harness import running_gateway
from tests.support.models import LLAMA3
from tests.support.models import SDXL_PINNED as SDXL
from tests.support.rpc_status import error_info

LLAMA3_V = "9c6da3c589ca2d8c35fe03d540250f3bda6af4e6780c3dc1632a38ed34690bb4"
TEXT = "/inference.gateway.v1.InferenceGateway/GenerateText"


def struct(value: dict[str, Any]) -> struct_pb2.Struct:
    message = struct_pb2.Struct()
    message.update(value)
    return message


# --- the wire format, written by hand: protobuf's own encoder refuses to nest this deep ---


def _varint(n: int) -> bytes:
    out = b""
    while True:
        low, n = n & 0x7F, n >> 7
        if not n:
            return out + bytes([low])
        out += bytes([low | 0x80])


def _field(number: int, payload: bytes) -> bytes:
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def nested_struct(levels: int) -> bytes:
    """A Struct `{"a": {"a": ... {"x": 1.0}}}` with `levels` objects around the innermost."""
    number = _varint(2 << 3 | 1) + binary.pack("<d", 1.0)  # Value.number_value
    message = _field(1, _field(1, b"x") + _field(2, number))  # Struct.fields entry
    for _ in range(levels):
        message = _field(1, _field(1, b"a") + _field(2, _field(5, message)))
    return message


def text_request_bytes(extra_input: bytes) -> bytes:
    number = pb.GenerateTextRequest.DESCRIPTOR.fields_by_name["extra_input"].number
    head = pb.GenerateTextRequest(model=LLAMA3, prompt="hi").SerializeToString()
    return head + _field(number, extra_input)


async def call_raw(channel: grpc.aio.Channel, method: str, body: bytes) -> grpc.aio.AioRpcError:
    call = channel.unary_unary(
        method, request_serializer=lambda b: b, response_deserializer=lambda b: b
    )
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call(body, timeout=20)
    return caught.value


async def test_an_extra_input_nested_past_protobufs_limit_is_invalid_argument() -> None:
    # Was UNKNOWN: protobuf's DecodeError, raised in gRPC's deserializer.
    async with running_gateway() as h:
        deep = await call_raw(h.channel, TEXT, text_request_bytes(nested_struct(40)))
        shallow = await call_raw(h.channel, TEXT, text_request_bytes(nested_struct(30)))
        assert h.requests.count("create") == 0
    assert deep.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error_info(deep).reason == "EXTRA_INPUT_TOO_DEEP"
    assert "flatten" in (deep.details() or "")
    # Thirty levels parse: the model's schema then refuses the unknown input by its field.
    assert error_info(shallow).reason == "INPUT_NOT_ACCEPTED"
    assert "extra_input.a" in error_info(shallow).metadata["fields"]


async def test_a_message_that_is_not_protobuf_is_invalid_argument_on_every_rpc() -> None:
    bad_utf8 = _field(1, b"\xff\xfe")  # model: a proto3 string must be UTF-8
    async with running_gateway() as h:
        for method in ("GenerateText", "StreamText", "GenerateImage"):
            path = f"/inference.gateway.v1.InferenceGateway/{method}"
            if method == "StreamText":
                stream = h.channel.unary_stream(
                    path, request_serializer=lambda b: b, response_deserializer=lambda b: b
                )
                with pytest.raises(grpc.aio.AioRpcError) as caught:
                    async for _ in stream(bad_utf8, timeout=20):
                        pass
                error = caught.value
            else:
                error = await call_raw(h.channel, path, bad_utf8)
            assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, method
            assert error_info(error).reason == "UNDECODABLE_REQUEST"


async def test_numbers_are_sent_in_the_schemas_types() -> None:
    async with running_gateway() as h:
        await h.stub.GenerateText(
            pb.GenerateTextRequest(
                model=LLAMA3, prompt="hi", extra_input=struct({"top_k": 40.0, "top_p": 1})
            ),
            timeout=20,
        )
        [create] = h.requests.matching("create")
    sent = create.body["input"]
    assert sent["top_k"] == 40
    assert isinstance(sent["top_k"], int)
    assert sent["top_p"] == 1.0
    assert isinstance(sent["top_p"], float)


@pytest.mark.parametrize("value", [1e300, -1e300, 2.0**60, 0.5])
async def test_a_number_an_integer_input_cannot_take_is_refused_by_its_field(value: float) -> None:
    # Was: 1e300 went to the model as a 301-digit integer.
    async with running_gateway() as h:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await h.stub.GenerateText(
                pb.GenerateTextRequest(
                    model=LLAMA3, prompt="hi", extra_input=struct({"top_k": value})
                ),
                timeout=20,
            )
        assert h.requests.count("create") == 0
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    info = error_info(caught.value)
    assert info.reason == "INPUT_NOT_ACCEPTED"
    assert info.metadata["fields"] == "extra_input.top_k"


async def test_without_a_schema_a_huge_number_stays_a_number() -> None:
    # A bare version id has no schema to look up: the gateway sends 1e300 as a double.
    async with running_gateway() as h:
        with pytest.raises(grpc.aio.AioRpcError):
            await h.stub.GenerateText(
                pb.GenerateTextRequest(
                    model=LLAMA3_V, prompt="hi", extra_input=struct({"top_k": 1e300, "seed": 7})
                ),
                timeout=20,
            )
        [create] = h.requests.matching("create")
    sent = create.body["input"]
    assert sent["top_k"] == 1e300
    assert isinstance(sent["top_k"], float)
    assert sent["seed"] == 7
    assert isinstance(sent["seed"], int)


async def test_a_refusal_names_the_field_the_caller_sent() -> None:
    # Was reported against max_tokens, this model's name for it, which the caller never sent.
    async with running_gateway() as h:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await h.stub.GenerateText(
                pb.GenerateTextRequest(model=LLAMA3, prompt="hi", max_new_tokens=-3), timeout=20
            )
        assert h.requests.count("create") == 0
    info = error_info(caught.value)
    assert info.reason == "INPUT_NOT_ACCEPTED"
    assert info.metadata["fields"] == "max_new_tokens"
    assert (caught.value.details() or "").startswith("max_new_tokens")


async def test_an_image_rpc_on_a_text_model_is_refused_before_any_prediction() -> None:
    # Was: the prediction was created (and billed), then the text output refused.
    async with running_gateway() as h:
        with pytest.raises(grpc.aio.AioRpcError) as image_call:
            await h.stub.GenerateImage(
                pb.GenerateImageRequest(model=LLAMA3, prompt="a fox"), timeout=20
            )
        with pytest.raises(grpc.aio.AioRpcError) as text_call:
            await h.stub.GenerateText(
                pb.GenerateTextRequest(model=SDXL, prompt="a fox"), timeout=20
            )
        assert h.requests.count("create") == 0
    assert image_call.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error_info(image_call.value).reason == "WRONG_TASK"
    assert "GenerateText" in (image_call.value.details() or "")
    assert error_info(text_call.value).reason == "WRONG_TASK"
    assert "GenerateImage" in (text_call.value.details() or "")


async def test_a_long_mime_type_or_data_uri_header_never_goes_upstream() -> None:
    # Was: a 1 MiB mime_type went to the model inside the image's data: URI header.
    header = "data:image/" + "p" * 5000 + ";base64,"
    async with running_gateway(max_prompt_chars=1000) as h:
        with pytest.raises(grpc.aio.AioRpcError) as mime:
            await h.stub.GenerateImage(
                pb.GenerateImageRequest(
                    model=SDXL,
                    prompt="a fox",
                    input_images=[pb.InputImage(data=b"x", mime_type="image/" + "p" * 5000)],
                ),
                timeout=20,
            )
        with pytest.raises(grpc.aio.AioRpcError) as extra:
            await h.stub.GenerateImage(
                pb.GenerateImageRequest(
                    model=SDXL, prompt="a fox", extra_input=struct({"image": header + "AAAA"})
                ),
                timeout=20,
            )
        assert h.requests.count() == 0
    assert error_info(mime.value).reason == "INVALID_INPUT_IMAGE"
    assert error_info(extra.value).reason == "PROMPT_TOO_LONG"
    assert error_info(extra.value).metadata["field"] == "extra_input.image"
