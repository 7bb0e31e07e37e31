"""The five built-in chat templates, in Python so that no request pays for Jinja.

Each renderer reproduces its authors' `chat_template` (kept verbatim under
`tests/data/chat_templates/`, where the tests render them for comparison) rendered
with `add_generation_prompt=True`. Where the authors' Jinja strips content
(`.strip()` or `| trim`), so do these; where it does not, neither do these.

`first_bos` is the beginning-of-sequence token the template would open with, or ""
when the model server's tokenizer is left to add it. Llama 2 also puts `<s>` before
every later `[INST]`; a tokenizer only ever adds the first, so the later ones always
stay in the text.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from inference_gateway.prompts._model import ChatMessage, PromptError

Renderer = Callable[[Sequence[ChatMessage], str], str]


def _split_system(messages: Sequence[ChatMessage]) -> tuple[str | None, Sequence[ChatMessage]]:
    """A leading system message's text, and the turns after it."""
    if messages[0].role == "system":
        return messages[0].content, messages[1:]
    return None, messages


def _fold_system(system: str | None, index: int, content: str) -> str:
    """The first user turn carries the system text, as Mistral's and Gemma 3's templates do."""
    if system is None or index > 0:
        return content
    return f"{system}\n\n{content}"


def _llama2(messages: Sequence[ChatMessage], first_bos: str) -> str:
    system, turns = _split_system(messages)
    parts: list[str] = []
    for index, message in enumerate(turns):
        content = message.content
        if index == 0 and system is not None:
            content = f"<<SYS>>\n{system}\n<</SYS>>\n\n{content}"
        if message.role == "user":
            bos = first_bos if index == 0 else "<s>"
            parts.append(f"{bos}[INST] {content.strip()} [/INST]")
        else:
            parts.append(f" {content.strip()} </s>")
    return "".join(parts)


def _llama3(messages: Sequence[ChatMessage], first_bos: str) -> str:
    turns = "".join(
        f"<|start_header_id|>{m.role}<|end_header_id|>\n\n{m.content.strip()}<|eot_id|>"
        for m in messages
    )
    return f"{first_bos}{turns}<|start_header_id|>assistant<|end_header_id|>\n\n"


def _mistral(messages: Sequence[ChatMessage], first_bos: str) -> str:
    system, turns = _split_system(messages)
    parts = [first_bos]
    for index, message in enumerate(turns):
        if message.role == "user":
            parts.append(f" [INST] {_fold_system(system, index, message.content)} [/INST]")
        else:
            parts.append(f" {message.content}</s>")
    return "".join(parts)


def _chatml(messages: Sequence[ChatMessage], _first_bos: str) -> str:
    # ChatML's template never writes a BOS token, so there is none to leave out or put in.
    turns = "".join(f"<|im_start|>{m.role}\n{m.content}<|im_end|>\n" for m in messages)
    return f"{turns}<|im_start|>assistant\n"


def _gemma(messages: Sequence[ChatMessage], first_bos: str) -> str:
    system, turns = _split_system(messages)
    parts = [first_bos]
    for index, message in enumerate(turns):
        role = "model" if message.role == "assistant" else message.role
        content = _fold_system(system, index, message.content).strip()
        parts.append(f"<start_of_turn>{role}\n{content}<end_of_turn>\n")
    parts.append("<start_of_turn>model\n")
    return "".join(parts)


@dataclass(frozen=True, slots=True)
class _Family:
    bos: str
    render: Renderer
    alternates: bool  # the authors' template enforces system? user, assistant, user, ...


_FAMILIES: dict[str, _Family] = {
    "llama2": _Family("<s>", _llama2, alternates=True),
    "llama3": _Family("<|begin_of_text|>", _llama3, alternates=False),
    "mistral": _Family("<s>", _mistral, alternates=True),
    "chatml": _Family("<s>", _chatml, alternates=False),
    "gemma": _Family("<bos>", _gemma, alternates=True),
}

BUILTIN_TEMPLATES: frozenset[str] = frozenset(_FAMILIES)


def _check_alternation(name: str, messages: Sequence[ChatMessage]) -> None:
    """Turn the authors' `raise_exception` into an error that names the message to fix."""
    start = 1 if messages[0].role == "system" else 0
    for index in range(start, len(messages)):
        expected = "user" if (index - start) % 2 == 0 else "assistant"
        role = messages[index].role
        if role == expected:
            continue
        if role == "system":
            description = (
                f"messages[{index}] is a system message, but the {name} template takes a "
                "system message only as the first message; merge it into that one."
            )
        else:
            description = (
                f"messages[{index}] has role {role!r} where the {name} template needs "
                f"{expected!r}: after an optional first system message, turns must alternate "
                "user, assistant, user, ... starting with user."
            )
        raise PromptError.for_field(
            f"messages[{index}].role",
            description,
            reason="ROLES_MUST_ALTERNATE",
            template=name,
            index=str(index),
        )


def render_builtin(name: str, messages: Sequence[ChatMessage], *, add_bos: bool) -> str:
    """The prompt for `messages` under built-in template `name` (already validated)."""
    family = _FAMILIES[name]
    if family.alternates:
        _check_alternation(name, messages)
    return family.render(messages, family.bos if add_bos else "")
