"""Properties of prompt formatting that must hold for any input, not just the examples.

Whatever a caller sends, `build_prompt` answers with a prompt or a `PromptError`
(never another exception), and a conversation it accepts loses no turn's text.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

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
    build_prompt,
    compile_template,
    parse_template_name,
    template_for_model,
)

_CHATML_JINJA = (
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + "
    "message['content'] + '<|im_end|>' + '\n'}}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
_CUSTOM = CustomTemplate(
    roles={"user": RoleMarkup("U: ", "\n"), "assistant": RoleMarkup("A: ", "\n")},
    final_prompt_value="A:",
    bos_token="<s>",
    eos_token="</s>",
)
_TEMPLATES: list[Template | None] = [
    None,
    NO_TEMPLATE,
    *sorted(BUILTIN_TEMPLATES),
    _CUSTOM,
    JinjaTemplate(_CHATML_JINJA),
    "zephyr",  # unknown: must be refused, not crash
]
_MODEL_NAMES = [
    None,
    "",
    "meta/llama-2-13b-chat",
    "meta/meta-llama-3-8b-instruct",
    "mistralai/mixtral-8x7b-instruct-v0.1",
    "google-deepmind/gemma-7b-it",
    "acme/base-model",
]

_ANY_TEXT = st.text(max_size=20)
_CONTENT = st.text(min_size=1, max_size=20).filter(str.strip)
# Mostly well-formed turns, so that the checks after the first one get exercised too.
_ANY_MESSAGE = st.builds(
    ChatMessage,
    role=st.sampled_from([*("system", "user", "assistant") * 3, "tool", "User", ""]),
    content=_CONTENT | st.sampled_from(["", " ", "\n\t"]),
)


def _outcome(
    prompt: str | None,
    messages: list[ChatMessage],
    template: Template | None,
    *,
    prefix: str | None = None,
    suffix: str | None = None,
    model_name: str | None = None,
    add_bos: bool = False,
) -> RenderedPrompt | PromptError:
    """The prompt, or the PromptError; any other exception escapes and fails the test."""
    try:
        return build_prompt(
            prompt=prompt,
            messages=messages,
            prefix=prefix,
            suffix=suffix,
            template=template,
            model_name=model_name,
            add_bos=add_bos,
        )
    except PromptError as error:
        return error


@settings(max_examples=400)
@given(
    prompt=st.none() | st.just("") | _ANY_TEXT,
    messages=st.lists(_ANY_MESSAGE, max_size=6),
    prefix=st.none() | _ANY_TEXT,
    suffix=st.none() | _ANY_TEXT,
    template=st.sampled_from(_TEMPLATES),
    model_name=st.sampled_from(_MODEL_NAMES) | _ANY_TEXT,
    add_bos=st.booleans(),
)
def test_build_prompt_returns_or_raises_prompt_error(
    prompt: str | None,
    messages: list[ChatMessage],
    prefix: str | None,
    suffix: str | None,
    template: Template | None,
    model_name: str | None,
    add_bos: bool,
) -> None:
    outcome = _outcome(
        prompt,
        messages,
        template,
        prefix=prefix,
        suffix=suffix,
        model_name=model_name,
        add_bos=add_bos,
    )
    if isinstance(outcome, PromptError):
        assert outcome.message
        assert outcome.violations
    else:
        assert outcome.prompt


@st.composite
def accepted_conversations(draw: st.DrawFn) -> list[ChatMessage]:
    """An optional system turn, then user and assistant turns alternating from the user's."""
    system = draw(st.none() | _CONTENT)
    turns = draw(st.lists(_CONTENT, min_size=1, max_size=6))
    messages = [ChatMessage("system", system)] if system is not None else []
    roles = ("user", "assistant")
    return messages + [ChatMessage(roles[i % 2], text) for i, text in enumerate(turns)]


@given(
    messages=accepted_conversations(),
    template=st.sampled_from([t for t in _TEMPLATES if t != "zephyr"]),
    model_name=st.sampled_from(_MODEL_NAMES),
    add_bos=st.booleans(),
)
def test_every_turn_reaches_the_model(
    messages: list[ChatMessage], template: Template | None, model_name: str | None, add_bos: bool
) -> None:
    rendered = build_prompt(
        prompt=None,
        messages=messages,
        prefix=None,
        suffix=None,
        template=template,
        model_name=model_name,
        add_bos=add_bos,
    )
    sent = rendered.prompt + (rendered.system_prompt or "")
    for message in messages:
        assert message.content.strip() in sent


@given(prompt=_ANY_TEXT.filter(bool), prefix=st.none() | _ANY_TEXT, suffix=st.none() | _ANY_TEXT)
def test_raw_prompt_is_prefix_prompt_suffix(
    prompt: str, prefix: str | None, suffix: str | None
) -> None:
    rendered = build_prompt(
        prompt=prompt,
        messages=[],
        prefix=prefix,
        suffix=suffix,
        template="llama2",
        model_name="meta/llama-2-7b-chat",
    )
    expected = (prefix if prefix else "") + prompt + (suffix if suffix else "")
    assert (rendered.prompt, rendered.system_prompt, rendered.template) == (
        expected,
        None,
        NO_TEMPLATE,
    )


@given(name=_ANY_TEXT)
def test_template_names_parse_or_are_refused(name: str) -> None:
    try:
        parsed: str | PromptError = parse_template_name(name)
    except PromptError as error:
        parsed = error
    if isinstance(parsed, PromptError):
        assert parsed.reason == "UNKNOWN_TEMPLATE"
    else:
        assert parsed in BUILTIN_TEMPLATES | {NO_TEMPLATE}
        assert parsed == name.strip().lower()


@given(
    name=st.sampled_from(sorted(BUILTIN_TEMPLATES | {NO_TEMPLATE})),
    upper=st.lists(st.booleans(), min_size=8, max_size=8),
    padding=st.sampled_from(["", " ", "\t", "\n "]),
)
def test_template_names_forgive_case_and_padding(
    name: str, upper: list[bool], padding: str
) -> None:
    written = "".join(c.upper() if up else c for c, up in zip(name, upper, strict=False))
    assert parse_template_name(f"{padding}{written}{padding}") == name


@given(model_name=st.none() | st.text(max_size=60))
def test_template_for_model_never_fails(model_name: str | None) -> None:
    assert template_for_model(model_name) in BUILTIN_TEMPLATES | {None}


_JINJA_PIECES = [
    *("{{ ", " }}", "{% ", " %}", "for m in messages", "endfor", "if ", "else", "endif"),
    *("m.content", "m['role']", "messages", "loop.index", "bos_token", "range(3)", "'x'"),
    *(" | trim", " | tojson", "raise_exception('no')", " + ", " ~ ", "(", ")", "[0]", " ", "\n"),
]


@given(source=st.lists(st.sampled_from(_JINJA_PIECES), max_size=14).map("".join))
def test_any_jinja_source_compiles_and_renders_or_raises_prompt_error(source: str) -> None:
    template = JinjaTemplate(source, bos_token="<s>")
    try:
        compile_template(template)
    except PromptError as error:
        assert error.reason == "INVALID_TEMPLATE"  # noqa: PT017 - the error is the outcome here
        return
    outcome = _outcome(None, [ChatMessage("user", "hello")], template)
    if isinstance(outcome, PromptError):
        assert outcome.violations
    else:
        assert outcome.template == "jinja"
