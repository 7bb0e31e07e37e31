"""Turns a request's raw prompt or chat messages into Replicate's `prompt` and `system_prompt`."""

from __future__ import annotations

from collections.abc import Sequence

from inference_gateway.errors import FieldViolation
from inference_gateway.prompts._builtin_templates import render_builtin
from inference_gateway.prompts._custom_template import check_custom_template, render_custom
from inference_gateway.prompts._jinja_sandbox import compile_jinja, render_jinja
from inference_gateway.prompts._model import (
    NO_TEMPLATE,
    VALID_ROLES,
    ChatMessage,
    CustomTemplate,
    JinjaTemplate,
    PromptError,
    RenderedPrompt,
    Template,
)
from inference_gateway.prompts._selection import parse_template_name, template_for_model

_PLAIN_SEPARATOR = "\n\n"
_MAX_LISTED_PROBLEMS = 3


def compile_template(template: Template) -> Template:
    """Validate a configured template once, at load time, so requests never meet a broken one."""
    if isinstance(template, CustomTemplate):
        check_custom_template(template)
    elif isinstance(template, JinjaTemplate):
        compile_jinja(template.source)
    else:
        return parse_template_name(template)
    return template


def _check_sources(prompt: str | None, messages: Sequence[ChatMessage]) -> None:
    if prompt and messages:
        description = (
            "Set prompt or messages, not both: prompt is raw text sent as it is, messages are "
            "chat turns rendered through a chat template."
        )
    elif not prompt and not messages:
        description = "Set prompt (raw text) or messages (chat turns); the request has neither."
    else:
        return
    raise PromptError(
        message=description,
        violations=(FieldViolation("prompt", description), FieldViolation("messages", description)),
    )


def _check_no_affixes(prefix: str | None, suffix: str | None) -> None:
    for name, value in (("prefix", prefix), ("suffix", suffix)):
        if value:
            raise PromptError.for_field(
                name,
                f"{name} applies to a raw prompt only; with messages, choose a chat template "
                "(template) to shape the text, or send the text as prompt.",
            )


def _check_messages(messages: Sequence[ChatMessage]) -> None:
    problems: list[FieldViolation] = []
    for index, message in enumerate(messages):
        if message.role not in VALID_ROLES:
            problems.append(
                FieldViolation(
                    f"messages[{index}].role",
                    f"messages[{index}].role is {message.role!r}; use 'system', 'user' or "
                    "'assistant'.",
                )
            )
        if not message.content.strip():
            problems.append(
                FieldViolation(
                    f"messages[{index}].content",
                    f"messages[{index}].content is empty; give the turn some text or leave "
                    "the message out.",
                )
            )
    if problems:
        text = " ".join(p.description for p in problems[:_MAX_LISTED_PROBLEMS])
        hidden = len(problems) - _MAX_LISTED_PROBLEMS
        if hidden > 0:
            text += f" ({hidden} more problems are listed in the field violations.)"
        raise PromptError(message=text, reason="INVALID_MESSAGES", violations=tuple(problems))
    if not any(m.role == "user" for m in messages):
        raise PromptError.for_field(
            "messages",
            "messages has no user turn; add at least one message with role 'user'.",
            reason="INVALID_MESSAGES",
        )


def _plain(messages: Sequence[ChatMessage]) -> RenderedPrompt:
    """No template: the first system message becomes `system_prompt`, the rest join as text."""
    system_index = next((i for i, m in enumerate(messages) if m.role == "system"), None)
    text = _PLAIN_SEPARATOR.join(m.content for i, m in enumerate(messages) if i != system_index)
    system = None if system_index is None else messages[system_index].content
    return RenderedPrompt(prompt=text, system_prompt=system, template=NO_TEMPLATE)


def _render(template: Template, messages: Sequence[ChatMessage], add_bos: bool) -> RenderedPrompt:
    if isinstance(template, CustomTemplate):
        check_custom_template(template)
        return RenderedPrompt(render_custom(template, messages), None, "custom")
    if isinstance(template, JinjaTemplate):
        text = render_jinja(template, messages)
        if not text.strip():
            raise PromptError.for_field(
                "template",
                "The chat template rendered an empty prompt for these messages; check that it "
                "writes the messages' content.",
                reason="TEMPLATE_RENDER_FAILED",
            )
        return RenderedPrompt(text, None, "jinja")
    name = parse_template_name(template)
    if name == NO_TEMPLATE:
        return _plain(messages)
    return RenderedPrompt(render_builtin(name, messages, add_bos=add_bos), None, name)


def build_prompt(
    *,
    prompt: str | None,
    messages: Sequence[ChatMessage],
    prefix: str | None,
    suffix: str | None,
    template: Template | None,
    model_name: str | None,
    add_bos: bool = False,
) -> RenderedPrompt:
    """The prompt Replicate receives for one request; `PromptError` says what to fix."""
    _check_sources(prompt, messages)
    if prompt:
        return RenderedPrompt(f"{prefix or ''}{prompt}{suffix or ''}", None, NO_TEMPLATE)
    _check_no_affixes(prefix, suffix)
    _check_messages(messages)
    chosen = template if template is not None else template_for_model(model_name) or NO_TEMPLATE
    return _render(chosen, messages, add_bos)
