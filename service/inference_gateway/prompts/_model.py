"""The prompt package's value types and its one error type, shared by every private module."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from inference_gateway.errors import FieldViolation, InvalidArgument

NO_TEMPLATE = "none"
VALID_ROLES: tuple[str, ...] = ("system", "user", "assistant")


@dataclass(eq=False)
class PromptError(InvalidArgument):
    """The caller's prompt, messages or template cannot be turned into a prompt as given."""

    reason: str = "INVALID_PROMPT"

    @classmethod
    def for_field(
        cls, field_path: str, description: str, *, reason: str = "INVALID_PROMPT", **metadata: str
    ) -> PromptError:
        """One bad field, described in a sentence that says what to change."""
        return cls(
            message=description,
            reason=reason,
            metadata=metadata,
            violations=(FieldViolation(field_path, description),),
        )


@dataclass(frozen=True, slots=True)
class ChatMessage:
    role: str
    content: str


@dataclass(frozen=True, slots=True)
class RoleMarkup:
    """Text a custom template puts around one role's turns (LiteLLM's `roles` entry)."""

    pre_message: str = ""
    post_message: str = ""


@dataclass(frozen=True, slots=True)
class CustomTemplate:
    """LiteLLM's `custom_prompt` settings, so a LiteLLM configuration carries over unchanged."""

    roles: Mapping[str, RoleMarkup]
    initial_prompt_value: str = ""
    final_prompt_value: str = ""
    bos_token: str = ""
    eos_token: str = ""


@dataclass(frozen=True, slots=True)
class JinjaTemplate:
    """A tokenizer's `chat_template` string, with the special tokens it may refer to."""

    source: str
    bos_token: str = ""
    eos_token: str = ""


Template = str | CustomTemplate | JinjaTemplate


@dataclass(frozen=True, slots=True)
class RenderedPrompt:
    prompt: str
    system_prompt: str | None
    template: str
