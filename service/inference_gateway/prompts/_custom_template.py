"""LiteLLM's `custom_prompt`, reproduced so that a LiteLLM prompt configuration gives the same text.

The semantics (from `litellm/litellm_core_utils/prompt_templates/factory.py`):

- the prompt opens with `bos_token + initial_prompt_value`;
- each turn is `pre_message + content + post_message` of its role, "" for a role
  without markup;
- `eos_token` follows every assistant turn, and `bos_token` is written again only
  before the next *system* turn after that (LiteLLM also re-opens on a "human"
  role, which this gateway never accepts), not before a user turn;
- `final_prompt_value` closes the prompt.
"""

from __future__ import annotations

from collections.abc import Sequence

from inference_gateway.prompts._model import (
    VALID_ROLES,
    ChatMessage,
    CustomTemplate,
    PromptError,
    RoleMarkup,
)

_NO_MARKUP = RoleMarkup()


def check_custom_template(template: CustomTemplate) -> None:
    """Reject role names that no message can have, which are almost always typos."""
    for role in template.roles:
        if role not in VALID_ROLES:
            raise PromptError.for_field(
                f"template.roles.{role}",
                f"The custom template has markup for role {role!r}, which no message can have; "
                "name the roles 'system', 'user' and 'assistant'.",
                reason="INVALID_TEMPLATE",
            )


def render_custom(template: CustomTemplate, messages: Sequence[ChatMessage]) -> str:
    parts = [template.bos_token, template.initial_prompt_value]
    bos_open = True
    for message in messages:
        if message.role == "system" and not bos_open:
            parts.append(template.bos_token)
            bos_open = True
        markup = template.roles.get(message.role, _NO_MARKUP)
        parts += (markup.pre_message, message.content, markup.post_message)
        if message.role == "assistant":
            parts.append(template.eos_token)
            bos_open = False
    parts.append(template.final_prompt_value)
    return "".join(parts)
