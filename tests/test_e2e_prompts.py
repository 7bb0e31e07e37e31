"""Prompt formatting seen from the outside: what reaches Replicate for each kind of template."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import grpc
import pytest

from inference_gateway_protos.inference.gateway.v1 import gateway_pb2 as pb
from replicate_simulator import default_catalogue
from tests.gateway_harness import running_gateway
from tests.support.models import LLAMA3

_LLAMA2_SPEC = default_catalogue().model("meta/llama-2-7b-chat")
assert _LLAMA2_SPEC is not None
LLAMA2 = "meta/llama-2-7b-chat:" + _LLAMA2_SPEC.versions[0].id
# The request and the recorded input.prompt from LiteLLM's Replicate documentation page
# (docs.litellm.ai/docs/providers/replicate), as a JSON string.
LITELLM_DOC_PROMPT = json.loads(
    '"<|start_header_id|>system<|end_header_id|>\\n\\nBe a good human!<|eot_id|>'
    "<|start_header_id|>user<|end_header_id|>\\n\\nWhat do you know about earth?<|eot_id|>"
    '<|start_header_id|>assistant<|end_header_id|>\\n\\n"'
)


def _chat(*turns: tuple[str, str]) -> list[pb.ChatMessage]:
    return [pb.ChatMessage(role=role, content=content) for role, content in turns]


async def test_litellm_documentation_example_reaches_replicate_byte_for_byte() -> None:
    async with running_gateway() as h:
        reply = await h.stub.GenerateText(
            pb.GenerateTextRequest(
                model=LLAMA3,
                messages=_chat(
                    ("system", "Be a good human!"), ("user", "What do you know about earth?")
                ),
            ),
            timeout=20,
        )
        [create] = h.requests.matching("create")
        assert create.path == f"/v1/models/{LLAMA3}/predictions"
        assert create.body["input"]["prompt"] == LITELLM_DOC_PROMPT
        # Never wrap twice: Llama 3's own prompt_template would wrap the prompt again.
        assert create.body["input"]["prompt_template"] == "{prompt}"
        assert "system_prompt" not in create.body["input"]
        assert reply.template == "llama3"


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "gateway.yaml"
    path.write_text(textwrap.dedent(text))
    return path


ZEPHYR_TEMPLATE = (
    "{% for m in messages %}<|{{ m.role }}|>\n{{ m.content }}{{ eos_token }}\n{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)


async def test_a_configured_jinja_template_renders_through_grpc(tmp_path: Path) -> None:
    # JSON is YAML: the template goes into the file exactly as written here.
    config = _write(
        tmp_path,
        f"""
        aliases:
          zephyr:
            model: meta/meta-llama-3-8b-instruct
            template:
              jinja: {json.dumps(ZEPHYR_TEMPLATE)}
              eos_token: "</s>"
        """,
    )
    async with running_gateway(config=config) as h:
        reply = await h.stub.GenerateText(
            pb.GenerateTextRequest(
                model="zephyr", messages=_chat(("system", "Be brief."), ("user", "Hi"))
            ),
            timeout=20,
        )
        [create] = h.requests.matching("create")
        assert create.body["input"]["prompt"] == (
            "<|system|>\nBe brief.</s>\n<|user|>\nHi</s>\n<|assistant|>\n"
        )
        assert reply.template == "jinja"


async def test_a_custom_roles_template_renders_like_litellms_custom_prompt(tmp_path: Path) -> None:
    config = _write(
        tmp_path,
        """
        aliases:
          chatml:
            model: meta/meta-llama-3-8b-instruct
            template:
              roles:
                system: {pre_message: "<|im_start|>system\\n", post_message: "<|im_end|>\\n"}
                user: {pre_message: "<|im_start|>user\\n", post_message: "<|im_end|>\\n"}
                assistant: {pre_message: "<|im_start|>assistant\\n", post_message: "<|im_end|>\\n"}
              final_prompt_value: "<|im_start|>assistant\\n"
              bos_token: "<s>"
              eos_token: "</s>"
        """,
    )
    async with running_gateway(config=config) as h:
        reply = await h.stub.GenerateText(
            pb.GenerateTextRequest(
                model="chatml",
                messages=_chat(
                    ("system", "You are a terse assistant."),
                    ("user", "Hi"),
                    ("assistant", "Hello! How can I help?"),
                    ("user", "What is 2+2?"),
                ),
            ),
            timeout=20,
        )
        [create] = h.requests.matching("create")
        # LiteLLM 1.106.2's own output for the same settings (litellm-replicate.md, section 4).
        assert create.body["input"]["prompt"] == (
            "<s><|im_start|>system\nYou are a terse assistant.<|im_end|>\n<|im_start|>user\nHi"
            "<|im_end|>\n<|im_start|>assistant\nHello! How can I help?<|im_end|>\n</s>"
            "<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n"
        )
        assert reply.template == "custom"


async def test_prefix_and_suffix_wrap_a_raw_prompt_as_promptfoo_does() -> None:
    async with running_gateway() as h:
        await h.stub.GenerateText(
            pb.GenerateTextRequest(
                model=LLAMA2,
                prompt="hello",
                prefix="[INST] ",
                suffix=" [/INST]",
            ),
            timeout=20,
        )
        [create] = h.requests.matching("create")
        assert create.body["input"]["prompt"] == "[INST] hello [/INST]"


@pytest.mark.parametrize(
    ("messages", "prompt", "needle"),
    [
        ([], "", "prompt"),
        ([("robot", "hi")], "", "role"),
        ([("user", "hi")], "also a prompt", "prompt"),
    ],
)
async def test_bad_message_input_is_invalid_argument_saying_which(
    messages: list[tuple[str, str]], prompt: str, needle: str
) -> None:
    async with running_gateway() as h:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await h.stub.GenerateText(
                pb.GenerateTextRequest(model=LLAMA3, prompt=prompt, messages=_chat(*messages)),
                timeout=10,
            )
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert needle in (caught.value.details() or "")
        assert h.requests.count("create") == 0
