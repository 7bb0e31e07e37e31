"""Request limits: each refused over real gRPC, naming the limit and the setting that raises it."""

from __future__ import annotations

import argparse
import asyncio
import base64
import textwrap
from collections.abc import Sequence
from pathlib import Path
from typing import cast

import grpc
import pytest
from google.rpc import error_details_pb2, status_pb2
from hypothesis import given
from hypothesis import strategies as st

from inference.gateway.v1 import gateway_pb2 as pb
from inference_gateway.config import AliasConfig
from inference_gateway.domain import ImageRequest, InputImage, TextRequest
from inference_gateway.errors import InvalidArgument, ResourceExhausted
from inference_gateway.limits import AliasSlots, LimitExceeded, RequestLimits, inline_image_bytes
from inference_gateway.model_ids import Task, parse_model_id
from inference_gateway.prompts import ChatMessage
from inference_gateway.settings import SettingsError, add_server_arguments, settings_from
from tests.gateway_harness import running_gateway

LLAMA3 = "meta/meta-llama-3-8b-instruct"
SDXL = "stability-ai/sdxl:7762fd07cf82c948538e41f63f77d685e02b063e37e496e96eefd46c929f9bdc"
LIMITS = RequestLimits(
    max_prompt_chars=100, max_messages=3, max_input_images=2, max_input_image_bytes=64
)
# The limit settings: (Settings field, flag, variable, default).
SETTINGS = [
    ("max_request_bytes", "--max-request-bytes", "GATEWAY_MAX_REQUEST_BYTES", 8 * 1024 * 1024),
    ("max_prompt_chars", "--max-prompt-chars", "GATEWAY_MAX_PROMPT_CHARS", 200_000),
    ("max_messages", "--max-messages", "GATEWAY_MAX_MESSAGES", 1_000),
    ("max_input_images", "--max-input-images", "GATEWAY_MAX_INPUT_IMAGES", 8),
    ("max_input_image_bytes", "--max-input-image-bytes", "GATEWAY_MAX_INPUT_IMAGE_BYTES",
     1024 * 1024),
]  # fmt: skip


def parse(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_server_arguments(parser)
    return parser.parse_args(argv)


def refusal(request: TextRequest | ImageRequest, limits: RequestLimits = LIMITS) -> LimitExceeded:
    with pytest.raises(LimitExceeded) as caught:
        limits.check(request)
    return caught.value


def messages(*contents: str) -> tuple[ChatMessage, ...]:
    return tuple(ChatMessage(role="user", content=c) for c in contents)


def data_uri(data: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(data).decode()


# --- units ------------------------------------------------------------------------------------


@given(data=st.binary(max_size=300))
def test_a_base64_data_uri_counts_the_bytes_it_decodes_to(data: bytes) -> None:
    assert inline_image_bytes(InputImage("image", uri=data_uri(data))) == len(data)


@given(data=st.binary(min_size=1, max_size=300))
def test_inline_data_counts_its_length(data: bytes) -> None:
    assert inline_image_bytes(InputImage("image", data=data)) == len(data)


def test_an_image_url_costs_nothing_inline() -> None:
    assert inline_image_bytes(InputImage("image", uri="https://example.com/" + "x" * 500)) == 0
    assert inline_image_bytes(InputImage("image", uri="data:text/plain,hello")) == 5


@given(length=st.integers(min_value=0, max_value=200))
def test_a_prompt_is_refused_exactly_when_over_the_limit(length: int) -> None:
    request = TextRequest(model="m", prompt="é" * length)  # characters, not bytes
    if length <= LIMITS.max_prompt_chars:
        LIMITS.check(request)
    else:
        error = refusal(request)
        assert error.reason == "PROMPT_TOO_LONG"
        assert error.metadata == {
            "field": "prompt",
            "limit": "100",
            "actual": str(length),
            "setting": "GATEWAY_MAX_PROMPT_CHARS",
        }


@given(sizes=st.lists(st.integers(min_value=0, max_value=60), max_size=6))
def test_chat_messages_count_their_text_together(sizes: list[int]) -> None:
    request = TextRequest(model="m", messages=messages(*("x" * n for n in sizes)))
    if len(sizes) > LIMITS.max_messages:
        assert refusal(request).reason == "TOO_MANY_MESSAGES"
    elif sum(sizes) > LIMITS.max_prompt_chars:
        error = refusal(request)
        assert error.reason == "PROMPT_TOO_LONG"
        assert error.metadata["field"] == "messages"
        assert error.metadata["actual"] == str(sum(sizes))
    else:
        LIMITS.check(request)


@given(sizes=st.lists(st.integers(min_value=1, max_value=100), max_size=4))
def test_input_images_are_limited_in_number_then_each_in_size(sizes: list[int]) -> None:
    images = tuple(InputImage("image", data=b"\0" * n) for n in sizes)
    request = ImageRequest(model="m", prompt="p", input_images=images)
    if len(sizes) > LIMITS.max_input_images:
        assert refusal(request).reason == "TOO_MANY_INPUT_IMAGES"
    elif any(n > LIMITS.max_input_image_bytes for n in sizes):
        error = refusal(request)
        first = next(i for i, n in enumerate(sizes) if n > LIMITS.max_input_image_bytes)
        assert error.reason == "INPUT_IMAGE_TOO_LARGE"
        assert error.metadata["field"] == f"input_images[{first}]"
        assert error.metadata["actual"] == str(sizes[first])
    else:
        LIMITS.check(request)


def test_an_image_prompt_is_held_to_the_prompt_limit() -> None:
    error = refusal(ImageRequest(model="m", prompt="x" * 101))
    assert error.reason == "PROMPT_TOO_LONG"


def test_a_refusal_says_what_to_change_and_is_invalid_argument() -> None:
    error = refusal(TextRequest(model="m", messages=messages("a", "b", "c", "d")))
    assert isinstance(error, InvalidArgument)
    assert error.grpc_code == grpc.StatusCode.INVALID_ARGUMENT
    assert "4 chat messages" in error.message
    assert "the limit is 3" in error.message
    assert "--max-messages (GATEWAY_MAX_MESSAGES)" in error.message
    [violation] = error.violations
    assert violation.field == "messages"


def alias(name: str, max_concurrency: int | None) -> AliasConfig:
    return AliasConfig(
        name=name,
        model=parse_model_id(LLAMA3),
        task=Task.TEXT,
        defaults={},
        prefix=None,
        suffix=None,
        template=None,
        add_bos=False,
        api_key=None,
        timeout_seconds=None,
        max_concurrency=max_concurrency,
        source="test",
    )


async def test_alias_slots_are_counted_per_alias_and_given_back_however_a_call_ends() -> None:
    slots = AliasSlots()
    one, other = alias("one", 2), alias("other", 1)
    async with slots.hold(one), slots.hold(one), slots.hold(other):
        for full in (one, other):
            with pytest.raises(ResourceExhausted) as caught:
                async with slots.hold(full):
                    pass
            assert caught.value.reason == "ALIAS_CONCURRENCY_LIMIT"
            assert caught.value.retry_after_seconds is not None
        async with slots.hold(alias("unlimited", None)), slots.hold(None):
            pass
    with pytest.raises(RuntimeError):
        async with slots.hold(one), slots.hold(one):
            raise RuntimeError("the call failed")
    async with slots.hold(one), slots.hold(one), slots.hold(other):
        pass


# --- settings ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "flag", "env", "default"), SETTINGS)
def test_each_limit_has_a_flag_a_variable_and_a_default(
    name: str, flag: str, env: str, default: int
) -> None:
    assert getattr(settings_from(parse([]), {}), name) == default
    assert getattr(settings_from(parse([]), {env: "123"}), name) == 123
    assert getattr(settings_from(parse([flag, "7"]), {env: "123"}), name) == 7
    for bad in ("0", "-1", "lots"):
        with pytest.raises(SettingsError, match=env):
            settings_from(parse([]), {env: bad})


# --- over real gRPC ---------------------------------------------------------------------------


def error_info(error: grpc.aio.AioRpcError) -> error_details_pb2.ErrorInfo:
    metadata = cast(Sequence[tuple[str, bytes]], error.trailing_metadata() or ())
    [raw] = [value for key, value in metadata if key == "grpc-status-details-bin"]
    status = status_pb2.Status.FromString(raw)
    info = error_details_pb2.ErrorInfo()
    [packed] = [d for d in status.details if d.Is(info.DESCRIPTOR)]
    packed.Unpack(info)
    return info


async def test_prompt_length_over_grpc_at_and_over_the_limit() -> None:
    async with running_gateway(max_prompt_chars=20) as h:
        reply = await h.stub.GenerateText(
            pb.GenerateTextRequest(model=LLAMA3, prompt="x" * 20), timeout=20
        )
        assert reply.text
        creates = h.requests.count("create")
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await h.stub.GenerateText(
                pb.GenerateTextRequest(model=LLAMA3, prompt="x" * 21), timeout=10
            )
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        details = caught.value.details() or ""
        assert "21 characters" in details
        assert "the limit is 20" in details
        assert "GATEWAY_MAX_PROMPT_CHARS" in details
        assert error_info(caught.value).metadata["limit"] == "20"
        assert h.requests.count("create") == creates


async def test_message_count_and_text_over_grpc_on_a_stream() -> None:
    def chat(*contents: str) -> pb.GenerateTextRequest:
        turns = [pb.ChatMessage(role="user", content=c) for c in contents]
        return pb.GenerateTextRequest(model=LLAMA3, messages=turns)

    async with running_gateway(max_messages=2, max_prompt_chars=10) as h:
        for request, reason in [
            (chat("a", "b", "c"), "TOO_MANY_MESSAGES"),
            (chat("hello", "world!"), "PROMPT_TOO_LONG"),
        ]:
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                async for _ in h.stub.StreamText(request, timeout=10):
                    pass
            assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert error_info(caught.value).reason == reason
        assert h.requests.count() == 0


async def test_input_image_count_and_size_over_grpc() -> None:
    def image(*images: pb.InputImage) -> pb.GenerateImageRequest:
        return pb.GenerateImageRequest(model=SDXL, prompt="a fox", input_images=images)

    async with running_gateway(max_input_images=1, max_input_image_bytes=32) as h:
        reply = await h.stub.GenerateImage(
            image(pb.InputImage(input_name="image", data=b"\x89" * 32, mime_type="image/png")),
            timeout=20,
        )
        assert reply.images
        [create] = h.requests.matching("create")
        assert create.body["input"]["image"] == data_uri(b"\x89" * 32)
        creates = h.requests.count("create")
        for request, reason, setting in [
            (
                image(
                    pb.InputImage(uri="https://example.com/a.png"),
                    pb.InputImage(uri="https://example.com/b.png"),
                ),
                "TOO_MANY_INPUT_IMAGES",
                "GATEWAY_MAX_INPUT_IMAGES",
            ),
            (
                image(pb.InputImage(data=b"\x89" * 33)),
                "INPUT_IMAGE_TOO_LARGE",
                "GATEWAY_MAX_INPUT_IMAGE_BYTES",
            ),
            (
                image(pb.InputImage(uri=data_uri(b"\x89" * 33))),
                "INPUT_IMAGE_TOO_LARGE",
                "GATEWAY_MAX_INPUT_IMAGE_BYTES",
            ),
        ]:
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await h.stub.GenerateImage(request, timeout=10)
            assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert error_info(caught.value).reason == reason
            assert setting in (caught.value.details() or "")
        assert h.requests.count("create") == creates


async def test_request_size_is_capped_by_the_grpc_receive_limit() -> None:
    async with running_gateway(max_request_bytes=4096) as h:
        reply = await h.stub.GenerateText(
            pb.GenerateTextRequest(model=LLAMA3, prompt="x" * 3000), timeout=20
        )
        assert reply.text
        creates = h.requests.count("create")
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await h.stub.GenerateText(
                pb.GenerateTextRequest(model=LLAMA3, prompt="x" * 5000), timeout=10
            )
        assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        # gRPC itself refuses, before parsing: its message names the size and the limit.
        assert "4096" in (caught.value.details() or "")
        assert h.requests.count("create") == creates


@pytest.mark.parametrize(
    "model",
    [
        "owner/" + "n" * (1 << 20),
        "n" * (1 << 20),
        "deployments/owner/" + "n" * (1 << 20),
        f"owner/name:{'0' * (1 << 20)}",
    ],
    ids=["official", "alias-like", "deployment", "version"],
)
async def test_a_one_mib_model_id_is_refused_before_anything_reads_it(model: str) -> None:
    async with running_gateway() as h:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await h.stub.GenerateText(pb.GenerateTextRequest(model=model, prompt="x"), timeout=20)
        assert h.requests.count() == 0
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    details = caught.value.details() or ""
    assert "the longest accepted is 256" in details
    assert len(details) < 4096
    info = error_info(caught.value)
    assert info.reason == "MODEL_ID_TOO_LONG"
    assert all(len(value) <= 256 for value in info.metadata.values())


async def test_per_alias_concurrency_refuses_the_call_over_the_limit(tmp_path: Path) -> None:
    config = tmp_path / "gateway.yaml"
    config.write_text(
        textwrap.dedent(
            f"""
            aliases:
              llama3: {{model: {LLAMA3}, max_concurrency: 1}}
            """
        )
    )
    # A short hold on the create, so the first call's prediction is canceled promptly at the end.
    async with running_gateway(config=config, max_wait=1) as h:
        h.simulator.state.set_behaviour(LLAMA3, never_finishes=True)
        request = pb.GenerateTextRequest(model="llama3", prompt="hold")
        first = h.stub.GenerateText(request, timeout=30)
        holding = asyncio.ensure_future(first)
        await h.requests.wait_for(1, "create")
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await h.stub.GenerateText(request, timeout=10)
        assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        details = caught.value.details() or ""
        assert "'llama3'" in details
        assert "max_concurrency" in details
        assert error_info(caught.value).metadata["limit"] == "1"
        assert h.requests.count("create") == 1
        first.cancel()
        with pytest.raises(asyncio.CancelledError):
            await holding
