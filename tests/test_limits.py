"""Request limits: each refused over real gRPC, naming the limit and the setting that raises it."""

from __future__ import annotations

import argparse
import asyncio
import base64
import textwrap
from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf import struct_pb2
from hypothesis import given
from hypothesis import strategies as st

from inference_gateway.config import AliasConfig
from inference_gateway.deadlines import Deadline
from inference_gateway.domain import ImageRequest, InputImage, TextRequest
from inference_gateway.errors import InvalidArgument, ResourceExhausted
from inference_gateway.inputs import ModelInput, is_data_uri, layer_inputs
from inference_gateway.limits import (
    Admission,
    LimitExceeded,
    RequestLimits,
    data_uri_bytes,
)
from inference_gateway.metrics import Metrics
from inference_gateway.prompts import ChatMessage
from inference_gateway.settings import SettingsError, add_server_arguments, settings_from
from inference_gateway.state import MemoryStore, SharedState
from inference_gateway_protos.inference.gateway.v1 import gateway_pb2 as pb
from tests.gateway_harness import running_gateway
from tests.support.models import LLAMA3, alias_config
from tests.support.models import SDXL_PINNED as SDXL
from tests.support.rpc_status import error_info

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


def input_refusal(model_input: ModelInput) -> LimitExceeded:
    with pytest.raises(LimitExceeded) as caught:
        LIMITS.check_input(model_input)
    return caught.value


def messages(*contents: str) -> tuple[ChatMessage, ...]:
    return tuple(ChatMessage(role="user", content=c) for c in contents)


def data_uri(data: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(data).decode()


# --- units ------------------------------------------------------------------------------------


@given(data=st.binary(max_size=300))
def test_a_base64_data_uri_counts_the_bytes_it_decodes_to(data: bytes) -> None:
    assert data_uri_bytes(data_uri(data)) == len(data)


def test_a_plain_data_uri_counts_its_payload() -> None:
    assert data_uri_bytes("data:text/plain,hello") == 5
    assert is_data_uri("DATA:image/png;base64,AAAA")
    assert not is_data_uri("https://example.com/" + "x" * 500)


def text_chars(value: object) -> int:
    """Every string and key in a JSON value, of a data: URI its header: the README's rule."""
    if isinstance(value, str):
        if value.lower().startswith("data:") and "," in value:
            return len(value.split(",")[0]) + 1
        return len(value)
    if isinstance(value, dict):
        return sum(len(k) + text_chars(v) for k, v in value.items())
    if isinstance(value, list):
        return sum(text_chars(item) for item in value)
    return 0


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=12),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=4), inner, max_size=4)
    ),
    max_leaves=20,
)


@given(
    values=st.dictionaries(st.sampled_from(["prompt", "system_prompt", "a", "bb"]), json_values),
    explicit=st.sets(st.sampled_from(["prompt", "system_prompt", "a", "bb"])),
)
def test_every_string_and_key_at_any_depth_counts_toward_the_text_limit(
    values: dict[str, object], explicit: set[str]
) -> None:
    fields = {name: f"extra_input.{name}" for name in explicit}
    model_input = ModelInput(values, fields)
    total = text_chars(values)
    if total <= LIMITS.max_prompt_chars:
        LIMITS.check_input(model_input)
        return
    error = input_refusal(model_input)
    assert error.reason == "PROMPT_TOO_LONG"
    assert error.metadata["actual"] == str(total)
    # Named by the request field holding the most text.
    per_field = {fields.get(k, k): len(k) + text_chars(v) for k, v in values.items()}
    assert per_field[error.metadata["field"]] == max(per_field.values())


@given(
    size=st.integers(min_value=0, max_value=128),
    where=st.sampled_from(["top", "list", "object"]),
)
def test_a_data_uri_anywhere_is_held_to_the_image_byte_limit(size: int, where: str) -> None:
    uri = data_uri(b"\x89" * size)
    placed: object = {"top": uri, "list": [1, uri], "object": {"inner": [uri]}}[where]
    path = {"top": "", "list": "[1]", "object": ".inner[0]"}[where]
    model_input = ModelInput({"prompt": "p", "image": placed}, {"image": "extra_input.image"})
    if size <= LIMITS.max_input_image_bytes:
        LIMITS.check_input(model_input)  # a data URI's payload is not text
        return
    error = input_refusal(model_input)
    assert error.reason == "INPUT_IMAGE_TOO_LARGE"
    assert error.metadata["field"] == "extra_input.image" + path
    assert error.metadata["actual"] == str(size)


def test_a_data_uri_header_counts_as_text() -> None:
    header = "data:image/" + "p" * 200 + ";base64,"
    error = input_refusal(ModelInput({"image": header + "AAAA"}, {"image": "input_images[0]"}))
    assert error.reason == "PROMPT_TOO_LONG"
    assert error.metadata["actual"] == str(len("image") + len(header))
    assert error.metadata["field"] == "input_images[0]"


def test_the_text_refusal_names_the_field_and_the_setting() -> None:
    model_input = layer_inputs(
        {"prompt": "x" * 10, "notes": "y" * 200}, fields={"notes": "extra_input.notes"}
    )
    error = input_refusal(model_input)
    assert error.metadata == {
        "field": "extra_input.notes",
        "limit": "100",
        "actual": str(len("prompt") + 10 + len("notes") + 200),
        "setting": "GATEWAY_MAX_PROMPT_CHARS",
    }
    assert "most of it in extra_input.notes" in error.message
    assert "--max-prompt-chars (GATEWAY_MAX_PROMPT_CHARS)" in error.message


@given(count=st.integers(min_value=0, max_value=6))
def test_chat_messages_and_input_images_are_counted_on_the_request(count: int) -> None:
    chat = TextRequest(model="m", messages=messages(*("x" for _ in range(count))))
    images = ImageRequest(
        model="m", prompt="p", input_images=tuple(InputImage("image") for _ in range(count))
    )
    cases: list[tuple[TextRequest | ImageRequest, int, str]] = [
        (chat, LIMITS.max_messages, "TOO_MANY_MESSAGES"),
        (images, LIMITS.max_input_images, "TOO_MANY_INPUT_IMAGES"),
    ]
    for request, limit, reason in cases:
        if count <= limit:
            LIMITS.check(request)
        else:
            assert refusal(request).reason == reason


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
    return alias_config(name, max_concurrency=max_concurrency)


async def test_alias_slots_are_counted_per_alias_and_given_back_however_a_call_ends() -> None:
    admission = Admission(SharedState(MemoryStore()), lease_seconds=15, observer=Metrics())
    deadline = Deadline.after(30)

    def hold(held: AliasConfig | None) -> AbstractAsyncContextManager[None]:
        return admission.hold(None, held, deadline)

    one, other = alias("one", 2), alias("other", 1)
    async with hold(one), hold(one), hold(other):
        for full in (one, other):
            with pytest.raises(ResourceExhausted) as caught:
                async with hold(full):
                    pass
            assert caught.value.reason == "ALIAS_CONCURRENCY_LIMIT"
            assert caught.value.retry_after_seconds is not None
        async with hold(alias("unlimited", None)), hold(None):
            pass
    with pytest.raises(RuntimeError):
        async with hold(one), hold(one):
            raise RuntimeError("the call failed")
    async with hold(one), hold(one), hold(other):
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


async def test_prompt_length_over_grpc_at_and_over_the_limit() -> None:
    # The input's text counts its names too: {"prompt": "x" * 14} is 20 characters.
    async with running_gateway(max_prompt_chars=20) as h:
        reply = await h.stub.GenerateText(
            pb.GenerateTextRequest(model=LLAMA3, prompt="x" * 14), timeout=20
        )
        assert reply.text
        creates = h.requests.count("create")
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await h.stub.GenerateText(
                pb.GenerateTextRequest(model=LLAMA3, prompt="x" * 15), timeout=10
            )
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        details = caught.value.details() or ""
        assert "21 characters" in details
        assert "the limit is 20" in details
        assert "GATEWAY_MAX_PROMPT_CHARS" in details
        assert error_info(caught.value).metadata["limit"] == "20"
        assert h.requests.count("create") == creates


def struct(value: dict[str, Any]) -> struct_pb2.Struct:
    message = struct_pb2.Struct()
    message.update(value)
    return message


@pytest.mark.parametrize(
    ("request_fields", "field"),
    [
        ({"system_prompt": "s" * 5000}, "system_prompt"),
        ({"prefix": "p" * 5000}, "prompt"),
        ({"suffix": "s" * 5000}, "prompt"),
        ({"extra_input": struct({"notes": {"deep": ["n" * 5000]}})}, "extra_input.notes"),
        ({"extra_input": struct({"n" * 5000: 1})}, "extra_input." + "n" * 5000),
        (
            {
                "messages": [
                    pb.ChatMessage(role="system", content="s" * 5000),
                    pb.ChatMessage(role="user", content="hi"),
                ]
            },
            "messages",
        ),
    ],
    ids=["system_prompt", "prefix", "suffix", "extra_input", "extra_input-key", "system-message"],
)
async def test_every_field_that_reaches_the_model_counts_toward_the_text_limit(
    request_fields: dict[str, object], field: str
) -> None:
    # Was: 50,000 characters went upstream under a 1,000 limit through any of these.
    async with running_gateway(max_prompt_chars=1000) as h:
        request = pb.GenerateTextRequest(model=LLAMA3, **request_fields)  # type: ignore[arg-type]
        if not request.messages:
            request.prompt = "hi"
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await h.stub.GenerateText(request, timeout=10)
        assert h.requests.count() == 0
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    info = error_info(caught.value)
    assert info.reason == "PROMPT_TOO_LONG"
    assert field.startswith(info.metadata["field"].rstrip("…"))
    assert int(info.metadata["actual"]) > 5000


async def test_an_alias_default_counts_toward_the_text_limit(tmp_path: Path) -> None:
    config = tmp_path / "gateway.yaml"
    config.write_text(
        f"aliases:\n  chat:\n    model: {LLAMA3}\n    defaults:\n"
        f"      system_prompt: {'d' * 2000}\n"
    )
    async with running_gateway(config=config, max_prompt_chars=1000) as h:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await h.stub.GenerateText(pb.GenerateTextRequest(model="chat", prompt="hi"), timeout=10)
        assert h.requests.count() == 0
    assert error_info(caught.value).metadata["field"] == "system_prompt"


async def test_a_data_uri_in_extra_input_is_held_to_the_image_byte_limit() -> None:
    # Was: only input_images were measured; extra_input carried any size inline.
    async with running_gateway(max_input_image_bytes=32) as h:
        extra = struct({"image": data_uri(b"\x89" * 33), "masks": [data_uri(b"m" * 40)]})
        calls: list[Any] = [
            h.stub.GenerateImage(
                pb.GenerateImageRequest(model=SDXL, prompt="a fox", extra_input=extra), timeout=10
            ),
            h.stub.GenerateText(
                pb.GenerateTextRequest(model=LLAMA3, prompt="a fox", extra_input=extra), timeout=10
            ),
        ]
        for call in calls:
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await call
            info = error_info(caught.value)
            assert info.reason == "INPUT_IMAGE_TOO_LARGE"
            assert info.metadata["field"] in ("extra_input.image", "extra_input.masks[0]")
            assert "GATEWAY_MAX_INPUT_IMAGE_BYTES" in (caught.value.details() or "")
        assert h.requests.count() == 0


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
