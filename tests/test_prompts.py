"""Prompt formatting, pinned to independent references.

The built-ins are compared with their authors' own Jinja `chat_template` strings
(`tests/data/chat_templates/`, rendered here with a plain sandbox, not the gateway's);
the custom form with strings worked out by hand from LiteLLM's `custom_prompt`
(`/work/shared/reference/litellm-replicate.md` §4).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import NoReturn

import jinja2
import pytest
from hypothesis import given
from hypothesis import strategies as st
from jinja2.sandbox import ImmutableSandboxedEnvironment

from inference_gateway.errors import InvalidArgument
from inference_gateway.prompts import (
    BUILTIN_TEMPLATES,
    NO_TEMPLATE,
    ChatMessage,
    CustomTemplate,
    JinjaTemplate,
    PromptError,
    RenderedPrompt,
    RoleMarkup,
    Template,
    _jinja_sandbox,
    build_prompt,
    compile_template,
    parse_template_name,
    template_for_model,
)

_DATA = Path(__file__).parent / "data" / "chat_templates"
_TOKENS: dict[str, dict[str, str]] = json.loads((_DATA / "tokens.json").read_text("utf-8"))


class _AuthorsTemplateRaised(Exception):
    pass


def _raise_exception(message: str) -> NoReturn:
    raise _AuthorsTemplateRaised(message)


# Configured as transformers' apply_chat_template configures its environment.
_REFERENCE_ENVIRONMENT = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
_REFERENCE_ENVIRONMENT.globals["raise_exception"] = _raise_exception


@cache
def _authors_template(family: str) -> jinja2.Template:
    return _REFERENCE_ENVIRONMENT.from_string((_DATA / f"{family}.jinja").read_text("utf-8"))


def _render_authors(family: str, messages: Sequence[ChatMessage], bos_token: str) -> str:
    turns = [{"role": m.role, "content": m.content} for m in messages]
    if family == "gemma" and turns[0]["role"] == "system":
        # Gemma's template refuses system turns; the gateway folds the system text into the
        # first user turn with a blank line, as Gemma 3's and Mistral's templates do.
        system = turns.pop(0)["content"]
        turns[0] = {"role": "user", "content": f"{system}\n\n{turns[0]['content']}"}
    return _authors_template(family).render(
        messages=turns,
        add_generation_prompt=True,
        bos_token=bos_token,
        eos_token=_TOKENS[family]["eos_token"],
    )


def reference(family: str, messages: Sequence[ChatMessage], *, add_bos: bool) -> str:
    """The authors' rendering; without add_bos, the opening BOS is the tokenizer's to add."""
    bos = _TOKENS[family]["bos_token"]
    text = _render_authors(family, messages, bos)
    return text if add_bos else text.removeprefix(bos)


def chat(
    messages: Sequence[ChatMessage],
    template: Template | None = None,
    *,
    model_name: str | None = None,
    add_bos: bool = False,
) -> RenderedPrompt:
    return build_prompt(
        prompt=None,
        messages=messages,
        prefix=None,
        suffix=None,
        template=template,
        model_name=model_name,
        add_bos=add_bos,
    )


SYSTEM = ChatMessage("system", "You are a terse assistant.")
HI = ChatMessage("user", "Hi")
HELLO = ChatMessage("assistant", "Hello! How can I help?")
QUESTION = ChatMessage("user", "What is 2+2?")
PADDED_ANSWER = ChatMessage("assistant", "   I am an assistant   ")
PADDED_QUESTION = ChatMessage("user", "  Who are you?\n")

CONVERSATIONS: dict[str, list[ChatMessage]] = {
    "system+user": [SYSTEM, QUESTION],
    "user": [QUESTION],
    "multi-turn": [SYSTEM, HI, HELLO, QUESTION],
    "multi-turn, no system": [HI, HELLO, QUESTION],
    "padded turns": [SYSTEM, PADDED_QUESTION, PADDED_ANSWER, QUESTION],
    "ends with assistant": [HI, HELLO],
}


# --- built-in templates against their authors' Jinja ---------------------------------


@pytest.mark.parametrize("add_bos", [False, True])
@pytest.mark.parametrize("conversation", CONVERSATIONS)
@pytest.mark.parametrize("family", sorted(BUILTIN_TEMPLATES))
def test_builtin_matches_authors_template(family: str, conversation: str, add_bos: bool) -> None:
    messages = CONVERSATIONS[conversation]
    rendered = chat(messages, family, add_bos=add_bos)
    assert rendered == RenderedPrompt(reference(family, messages, add_bos=add_bos), None, family)


def test_llama3_acceptance_example_is_byte_exact() -> None:
    rendered = chat(
        [
            ChatMessage("system", "Be a good human!"),
            ChatMessage("user", "What do you know about earth?"),
        ],
        "llama3",
    )
    assert json.dumps(rendered.prompt) == (
        '"<|start_header_id|>system<|end_header_id|>\\n\\nBe a good human!<|eot_id|>'
        "<|start_header_id|>user<|end_header_id|>\\n\\nWhat do you know about earth?<|eot_id|>"
        '<|start_header_id|>assistant<|end_header_id|>\\n\\n"'
    )


@pytest.mark.parametrize("family", ["llama3", "mistral", "chatml", "gemma"])
def test_leaving_bos_out_equals_rendering_with_empty_bos(family: str) -> None:
    # For templates with one BOS at the very start, "leave it to the tokenizer" is simply
    # rendering the authors' template with bos_token="".
    messages = CONVERSATIONS["multi-turn"]
    assert chat(messages, family).prompt == _render_authors(family, messages, bos_token="")


def test_llama2_keeps_the_bos_tokens_a_tokenizer_would_not_add() -> None:
    rendered = chat(CONVERSATIONS["multi-turn"], "llama2")
    assert rendered.prompt == (
        "[INST] <<SYS>>\nYou are a terse assistant.\n<</SYS>>\n\nHi [/INST] "
        "Hello! How can I help? </s><s>[INST] What is 2+2? [/INST]"
    )


def test_add_bos_puts_the_token_first() -> None:
    assert chat([QUESTION], "llama3", add_bos=True).prompt.startswith(
        "<|begin_of_text|><|start_header_id|>user"
    )
    assert chat([QUESTION], "llama2", add_bos=True).prompt.startswith("<s>[INST] What")
    assert chat([QUESTION], "gemma", add_bos=True).prompt.startswith("<bos><start_of_turn>user")


def test_chatml_has_no_bos_to_add() -> None:
    assert chat([QUESTION], "chatml", add_bos=True) == chat([QUESTION], "chatml", add_bos=False)


def test_mistral_system_prompt_is_folded_not_rendered_as_an_error() -> None:
    # LiteLLM renders "Error message - ..." into this prompt; the authors' current template
    # puts the system text before the first user turn instead.
    rendered = chat([SYSTEM, QUESTION], "mistral")
    assert rendered.prompt == " [INST] You are a terse assistant.\n\nWhat is 2+2? [/INST]"


def test_authors_gemma_template_refuses_a_system_turn_that_the_gateway_folds() -> None:
    with pytest.raises(_AuthorsTemplateRaised, match="System role not supported"):
        _authors_template("gemma").render(
            messages=[{"role": "system", "content": "s"}, {"role": "user", "content": "u"}],
            add_generation_prompt=True,
            bos_token="<bos>",
        )
    assert chat([SYSTEM, QUESTION], "gemma").prompt == (
        "<start_of_turn>user\nYou are a terse assistant.\n\nWhat is 2+2?<end_of_turn>\n"
        "<start_of_turn>model\n"
    )


_ALTERNATION_CASES = [
    ([HI, QUESTION], 1),
    ([HELLO, QUESTION], 0),
    ([SYSTEM, HELLO, QUESTION], 1),
    ([HI, HELLO, SYSTEM, QUESTION], 2),
    ([HI, HELLO, HELLO], 2),
]


@pytest.mark.parametrize("family", ["llama2", "mistral", "gemma"])
@pytest.mark.parametrize(("messages", "index"), _ALTERNATION_CASES)
def test_turns_out_of_order_name_the_message(
    family: str, messages: list[ChatMessage], index: int
) -> None:
    with pytest.raises(PromptError) as caught:
        chat(messages, family)
    assert caught.value.reason == "ROLES_MUST_ALTERNATE"
    assert [v.field for v in caught.value.violations] == [f"messages[{index}].role"]
    assert f"messages[{index}]" in caught.value.message
    with pytest.raises(_AuthorsTemplateRaised):  # the authors agree these are invalid
        _authors_template(family).render(
            messages=[{"role": m.role, "content": m.content} for m in messages],
            **_TOKENS[family],
        )


@pytest.mark.parametrize("family", ["llama3", "chatml"])
def test_templates_without_alternation_rules_accept_any_order(family: str) -> None:
    messages = [HI, QUESTION, SYSTEM, HELLO, HELLO, QUESTION]
    assert chat(messages, family).prompt == reference(family, messages, add_bos=False)


# --- generated conversations against the authors' Jinja ------------------------------

# Plain and unicode text, whitespace the templates may strip, and markup look-alikes.
_PIECES = [*"ab Z9.,!?\n\t", "é", "漢", "🙂", "\u2028", "\xa0", "<s>", "[INST]", "{{ x }}"]
_TEXT = st.lists(st.sampled_from(_PIECES), min_size=1, max_size=12).map("".join).filter(str.strip)


@st.composite
def alternating_conversations(draw: st.DrawFn) -> list[ChatMessage]:
    system = draw(st.none() | _TEXT)
    turns = draw(st.lists(_TEXT, min_size=1, max_size=6))
    messages = [ChatMessage("system", system)] if system is not None else []
    roles = ("user", "assistant")
    return messages + [ChatMessage(roles[i % 2], text) for i, text in enumerate(turns)]


@given(
    family=st.sampled_from(sorted(BUILTIN_TEMPLATES)),
    messages=alternating_conversations(),
    add_bos=st.booleans(),
)
def test_builtins_equal_authors_rendering_for_any_alternating_conversation(
    family: str, messages: list[ChatMessage], add_bos: bool
) -> None:
    assert chat(messages, family, add_bos=add_bos).prompt == reference(
        family, messages, add_bos=add_bos
    )


# --- custom templates: LiteLLM's custom_prompt, worked by hand -----------------------

MULTI_TURN = [SYSTEM, HI, HELLO, QUESTION]


def _same_markup(pre: str, post: str) -> dict[str, RoleMarkup]:
    return {
        role: RoleMarkup(pre.format(role=role), post) for role in ("system", "user", "assistant")
    }


def test_custom_chatml_matches_litellm_reference_output() -> None:
    template = CustomTemplate(
        roles=_same_markup("<|im_start|>{role}\n", "<|im_end|>\n"),
        final_prompt_value="<|im_start|>assistant\n",
        bos_token="<s>",
        eos_token="</s>",
    )
    rendered = chat(MULTI_TURN, template)
    assert rendered == RenderedPrompt(
        "<s><|im_start|>system\nYou are a terse assistant.<|im_end|>\n<|im_start|>user\nHi"
        "<|im_end|>\n<|im_start|>assistant\nHello! How can I help?<|im_end|>\n</s><|im_start|>"
        "user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n",
        None,
        "custom",
    )


def test_custom_with_litellm_llama2_settings() -> None:
    template = CustomTemplate(
        roles={
            "system": RoleMarkup("[INST] <<SYS>>\n", "\n<</SYS>>\n [/INST]\n"),
            "user": RoleMarkup("[INST] ", " [/INST]\n"),
            "assistant": RoleMarkup(post_message="\n"),
        },
        bos_token="<s>",
        eos_token="</s>",
    )
    assert chat(MULTI_TURN, template).prompt == (
        "<s>[INST] <<SYS>>\nYou are a terse assistant.\n<</SYS>>\n [/INST]\n[INST] Hi [/INST]\n"
        "Hello! How can I help?\n</s>[INST] What is 2+2? [/INST]\n"
    )


def test_custom_with_litellm_mistral_settings() -> None:
    template = CustomTemplate(
        roles={
            "system": RoleMarkup("[INST] \n", " [/INST]\n"),
            "user": RoleMarkup("[INST] ", " [/INST]\n"),
            "assistant": RoleMarkup(" ", "</s> "),
        },
        initial_prompt_value="<s>",
    )
    assert chat(MULTI_TURN, template).prompt == (
        "<s>[INST] \nYou are a terse assistant. [/INST]\n[INST] Hi [/INST]\n"
        " Hello! How can I help?</s> [INST] What is 2+2? [/INST]\n"
    )


def test_custom_bos_reopens_only_before_a_system_turn_after_an_answer() -> None:
    template = CustomTemplate(
        roles={"system": RoleMarkup("S:", "|"), "user": RoleMarkup("U:", "|")},
        initial_prompt_value="INIT|",
        final_prompt_value="END",
        bos_token="<s>",
        eos_token="</s>",
    )
    messages = [
        ChatMessage("system", "s1"),
        ChatMessage("user", "u1"),
        ChatMessage("assistant", "a1"),
        ChatMessage("system", "s2"),
        ChatMessage("user", "u2"),
        ChatMessage("assistant", "a2"),
        ChatMessage("user", "u3"),
    ]
    # The assistant role has no markup, so its text stands bare; eos closes each answer,
    # bos opens again before s2 but not before u3.
    assert chat(messages, template, add_bos=True).prompt == (
        "<s>INIT|S:s1|U:u1|a1</s><s>S:s2|U:u2|a2</s>U:u3|END"
    )


def test_custom_template_with_an_unknown_role_is_refused_at_load() -> None:
    template = CustomTemplate(roles={"assitant": RoleMarkup("A: ")})
    with pytest.raises(PromptError, match="'assitant'") as caught:
        compile_template(template)
    assert caught.value.reason == "INVALID_TEMPLATE"


# --- Jinja templates -------------------------------------------------------------------

ZEPHYR = (
    "{% for message in messages %}\n{% if message['role'] == 'user' %}\n"
    "{{ '<|user|>\n' + message['content'] + eos_token }}\n{% elif message['role'] == 'system' %}\n"
    "{{ '<|system|>\n' + message['content'] + eos_token }}\n"
    "{% elif message['role'] == 'assistant' %}\n"
    "{{ '<|assistant|>\n'  + message['content'] + eos_token }}\n{% endif %}\n"
    "{% if loop.last and add_generation_prompt %}\n{{ '<|assistant|>' }}\n{% endif %}\n"
    "{% endfor %}"
)


def test_jinja_zephyr_renders_as_hugging_face_documents_it() -> None:
    messages = [
        ChatMessage(
            "system", "You are a friendly chatbot who always responds in the style of a pirate"
        ),
        ChatMessage("user", "How many helicopters can a human eat in one sitting?"),
    ]
    rendered = chat(messages, JinjaTemplate(ZEPHYR, eos_token="</s>"))
    assert rendered == RenderedPrompt(
        "<|system|>\nYou are a friendly chatbot who always responds in the style of a pirate</s>\n"
        "<|user|>\nHow many helicopters can a human eat in one sitting?</s>\n<|assistant|>\n",
        None,
        "jinja",
    )


def test_jinja_authors_chatml_equals_the_builtin() -> None:
    template = JinjaTemplate((_DATA / "chatml.jinja").read_text("utf-8"), bos_token="<s>")
    assert chat(MULTI_TURN, template).prompt == chat(MULTI_TURN, "chatml").prompt


def test_jinja_raise_exception_is_a_prompt_error() -> None:
    template = JinjaTemplate((_DATA / "gemma.jinja").read_text("utf-8"), bos_token="<bos>")
    with pytest.raises(PromptError, match="System role not supported") as caught:
        chat([SYSTEM, QUESTION], template)
    assert caught.value.reason == "TEMPLATE_REJECTED_MESSAGES"
    assert isinstance(caught.value, InvalidArgument)


def test_jinja_syntax_error_is_reported_at_compile_time_with_its_line() -> None:
    with pytest.raises(PromptError, match="line 2") as caught:
        compile_template(JinjaTemplate("{{ bos_token }}\n{% for message in %}{% endfor %}"))
    assert caught.value.reason == "INVALID_TEMPLATE"
    assert caught.value.metadata == {"line": "2"}


def test_jinja_template_is_compiled_once() -> None:
    template = JinjaTemplate("{% for m in messages %}{{ m.content }}|{% endfor %}-cached")
    compile_template(template)
    before = _jinja_sandbox.compile_jinja.cache_info()
    chat([QUESTION], template)
    chat([HI], template)
    after = _jinja_sandbox.compile_jinja.cache_info()
    assert (after.hits - before.hits, after.misses - before.misses) == (2, 0)


def test_jinja_gets_strftime_now_and_hugging_face_tojson() -> None:
    year_before = datetime.now().year
    template = JinjaTemplate("{{ strftime_now('%Y') }} {{ messages[0].content | tojson }}")
    rendered = chat([ChatMessage("user", "<é>")], template).prompt
    assert rendered in {f'{year} "<é>"' for year in (year_before, datetime.now().year)}


def test_jinja_supports_loop_controls() -> None:
    template = JinjaTemplate(
        "{% for m in messages %}{% if loop.index > 1 %}{% break %}{% endif %}"
        "{{ m.content }}{% endfor %}"
    )
    assert chat([HI, HELLO, QUESTION], template).prompt == "Hi"


@pytest.mark.parametrize(
    "source",
    [
        "{% for i in range(70000) %}{{ '0123456789abcdef' }}{% endfor %}",  # output size
        "{% for i in range(1000) %}{% for j in range(1000) %}{% endfor %}{% endfor %}",  # loops
        "{% set ns = namespace(s='ab') %}{% for i in range(40) %}{% set ns.s = ns.s ~ ns.s %}"
        "{% endfor %}{{ ns.s | length }}",  # doubling
        "{{ 'x' * 100000000 }}",
        "{{ 'x'.ljust(100000000) }}",
        "{{ 'x' | center(100000000) }}",
        "{{ 7 ** 100000000 }}",
    ],
)
def test_jinja_resource_limits(source: str) -> None:
    with pytest.raises(PromptError) as caught:
        chat([QUESTION], JinjaTemplate(source))
    assert caught.value.reason == "TEMPLATE_LIMIT_EXCEEDED"


def test_jinja_deadline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_jinja_sandbox, "MAX_RENDER_SECONDS", -1.0)
    with pytest.raises(PromptError, match="longer than") as caught:
        chat([QUESTION], JinjaTemplate("{{ messages[0].content }}"))
    assert caught.value.reason == "TEMPLATE_LIMIT_EXCEEDED"


@pytest.mark.parametrize(
    "source",
    [
        "{% macro f() %}{{ f() }}{% endmacro %}{{ f() }}",
        "{{ ''.__class__.__mro__[1].__subclasses__() }}",
        "{{ messages.append(1) }}",
        "{{ lipsum(100000) }}",
        "{{ 1 / 0 }}",
    ],
)
def test_jinja_faults_are_prompt_errors(source: str) -> None:
    with pytest.raises(PromptError) as caught:
        chat([QUESTION], JinjaTemplate(source))
    assert caught.value.reason == "TEMPLATE_RENDER_FAILED"


def test_jinja_empty_output_is_refused() -> None:
    with pytest.raises(PromptError, match="empty prompt"):
        chat([QUESTION], JinjaTemplate("{# nothing #}  "))


# --- raw prompts ----------------------------------------------------------------------


def raw(
    prompt: str | None,
    prefix: str | None = None,
    suffix: str | None = None,
    template: Template | None = None,
    model_name: str | None = None,
) -> RenderedPrompt:
    return build_prompt(
        prompt=prompt,
        messages=[],
        prefix=prefix,
        suffix=suffix,
        template=template,
        model_name=model_name,
    )


@pytest.mark.parametrize(
    ("prefix", "suffix", "expected"),
    [
        ("P: ", " :S", "P: hello :S"),
        ("P: ", None, "P: hello"),
        (None, " :S", "hello :S"),
        ("", "", "hello"),
        (None, None, "hello"),
    ],
)
def test_raw_prompt_gets_affixes_as_promptfoo_adds_them(
    prefix: str | None, suffix: str | None, expected: str
) -> None:
    assert raw("hello", prefix, suffix) == RenderedPrompt(expected, None, NO_TEMPLATE)


def test_raw_prompt_is_never_templated() -> None:
    expected = RenderedPrompt("[INST] hi [/INST]", None, NO_TEMPLATE)
    assert raw("[INST] hi [/INST]", template="llama2") == expected
    assert raw("[INST] hi [/INST]", model_name="meta/llama-2-70b-chat") == expected


# --- no template -----------------------------------------------------------------------


def test_no_template_sends_the_system_turn_apart_and_joins_the_rest() -> None:
    messages = [HI, HELLO, SYSTEM, QUESTION, ChatMessage("system", "Later rule.")]
    assert chat(messages, NO_TEMPLATE) == RenderedPrompt(
        "Hi\n\nHello! How can I help?\n\nWhat is 2+2?\n\nLater rule.",
        "You are a terse assistant.",
        NO_TEMPLATE,
    )


def test_no_template_without_system_turn() -> None:
    assert chat([QUESTION], NO_TEMPLATE) == RenderedPrompt("What is 2+2?", None, NO_TEMPLATE)


# --- selection ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("model_name", "expected"),
    [
        ("meta/llama-2-7b-chat", "llama2"),
        ("meta/llama-2-70b-chat", "llama2"),
        ("meta/meta-llama-3-8b-instruct", "llama3"),
        ("meta/meta-llama-3-70b-instruct", "llama3"),
        ("meta/meta-llama-3.1-405b-instruct", "llama3"),
        ("mistralai/mistral-7b-instruct-v0.2", "mistral"),
        ("mistralai/mixtral-8x7b-instruct-v0.1", "mistral"),
        ("google-deepmind/gemma-7b-it", "gemma"),
        ("google-deepmind/gemma-2b-it", "gemma"),
        ("Meta/Llama-2-13b-Chat:" + "0" * 64, "llama2"),
        ("meta/llama-2-70b", None),
        ("meta/meta-llama-3-8b", None),
        ("google-deepmind/gemma-7b", None),
        ("mistralai/mistral-7b-v0.1", None),
        ("acme/meta/llama-2-7b-chat", None),
        ("stability-ai/sdxl", None),
        ("", None),
        (None, None),
    ],
)
def test_template_for_model(model_name: str | None, expected: str | None) -> None:
    assert template_for_model(model_name) == expected


def test_model_id_picks_the_template_when_none_is_named() -> None:
    rendered = chat([SYSTEM, QUESTION], model_name="meta/llama-2-7b-chat")
    assert rendered == chat([SYSTEM, QUESTION], "llama2")


def test_named_template_wins_over_model_id() -> None:
    assert chat([QUESTION], "chatml", model_name="meta/llama-2-7b-chat").template == "chatml"
    assert chat([SYSTEM, QUESTION], NO_TEMPLATE, model_name="meta/llama-2-7b-chat") == (
        RenderedPrompt("What is 2+2?", "You are a terse assistant.", NO_TEMPLATE)
    )


def test_unknown_model_gets_no_template() -> None:
    assert chat([SYSTEM, QUESTION], model_name="acme/my-model").template == NO_TEMPLATE


@pytest.mark.parametrize(
    ("name", "expected"), [("llama3", "llama3"), (" ChatML ", "chatml"), ("NONE", "none")]
)
def test_parse_template_name(name: str, expected: str) -> None:
    assert parse_template_name(name) == expected


@pytest.mark.parametrize("name", ["llama-3", "", "custom", "jinja", "zephyr"])
def test_unknown_template_name_lists_the_valid_ones(name: str) -> None:
    with pytest.raises(PromptError) as caught:
        parse_template_name(name)
    assert caught.value.reason == "UNKNOWN_TEMPLATE"
    assert caught.value.message.endswith("chatml, gemma, llama2, llama3, mistral or none.")
    assert [v.field for v in caught.value.violations] == ["template"]


def test_unknown_template_name_given_to_build_prompt() -> None:
    with pytest.raises(PromptError, match="Unknown chat template 'llama4'"):
        chat([QUESTION], "llama4")


@pytest.mark.parametrize("name", sorted(BUILTIN_TEMPLATES | {NO_TEMPLATE}))
def test_compile_template_accepts_every_builtin_name(name: str) -> None:
    assert compile_template(name.upper()) == name


# --- validation ---------------------------------------------------------------------------


def test_prompt_and_messages_together_are_refused() -> None:
    with pytest.raises(PromptError, match="not both") as caught:
        build_prompt(
            prompt="hi", messages=[HI], prefix=None, suffix=None, template=None, model_name=None
        )
    assert {v.field for v in caught.value.violations} == {"prompt", "messages"}


@pytest.mark.parametrize("prompt", [None, ""])
def test_neither_prompt_nor_messages_is_refused(prompt: str | None) -> None:
    with pytest.raises(PromptError, match="neither"):
        raw(prompt)


@pytest.mark.parametrize(("affix", "value"), [("prefix", "P: "), ("suffix", " :S")])
def test_affixes_with_messages_are_refused(affix: str, value: str) -> None:
    prefix, suffix = (value, None) if affix == "prefix" else (None, value)
    with pytest.raises(PromptError, match="template") as caught:
        build_prompt(
            prompt=None, messages=[HI], prefix=prefix, suffix=suffix, template=None, model_name=None
        )
    assert [v.field for v in caught.value.violations] == [affix]


def test_bad_roles_and_empty_contents_are_all_named() -> None:
    messages = [
        ChatMessage("user", "fine"),
        ChatMessage("tool", "result"),
        ChatMessage("assistant", ""),
        ChatMessage("User", " \n\t"),
    ]
    with pytest.raises(PromptError) as caught:
        chat(messages, "chatml")
    assert caught.value.reason == "INVALID_MESSAGES"
    assert [v.field for v in caught.value.violations] == [
        "messages[1].role",
        "messages[2].content",
        "messages[3].role",
        "messages[3].content",
    ]
    assert "'tool'" in caught.value.message
    assert "1 more problems" in caught.value.message


@pytest.mark.parametrize("template", [*sorted(BUILTIN_TEMPLATES), NO_TEMPLATE])
def test_a_conversation_needs_a_user_turn(template: str) -> None:
    with pytest.raises(PromptError, match="no user turn"):
        chat([SYSTEM], template)
    with pytest.raises(PromptError, match="no user turn"):
        chat([HELLO], template)
