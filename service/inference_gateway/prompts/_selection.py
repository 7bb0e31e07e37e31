"""Which template applies: a validated name from the caller, or one chosen by Replicate model id."""

from __future__ import annotations

import re

from inference_gateway.prompts._builtin_templates import BUILTIN_TEMPLATES
from inference_gateway.prompts._model import NO_TEMPLATE, PromptError

_VALID_NAMES = (*sorted(BUILTIN_TEMPLATES), NO_TEMPLATE)
_VALID_NAMES_TEXT = ", ".join(_VALID_NAMES[:-1]) + f" or {_VALID_NAMES[-1]}"

# Replicate's official chat models, by "owner/name". Only families whose prompt format
# is certain are listed; any other model gets no template.
_MODEL_RULES: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"meta/llama-2-[^/]*-chat"), "llama2"),
    (re.compile(r"meta/meta-llama-3[^/]*-instruct"), "llama3"),  # 3, 3.1, ...
    (re.compile(r"mistralai/[^/]*instruct[^/]*"), "mistral"),  # Mistral and Mixtral
    (re.compile(r"google-deepmind/gemma[^/]*-it"), "gemma"),
)


def parse_template_name(name: str) -> str:
    """The canonical template name for what a caller wrote (case and padding are forgiven)."""
    canonical = name.strip().lower()
    if canonical in BUILTIN_TEMPLATES or canonical == NO_TEMPLATE:
        return canonical
    raise PromptError.for_field(
        "template",
        f"Unknown chat template {name!r}; use one of {_VALID_NAMES_TEXT}.",
        reason="UNKNOWN_TEMPLATE",
        template=name,
    )


def template_for_model(model_name: str | None) -> str | None:
    """The built-in template a Replicate model id implies: "meta/llama-2-7b-chat" -> "llama2"."""
    if not model_name:
        return None
    model_id = model_name.partition(":")[0].lower()  # tolerate a ":version" suffix
    for pattern, template in _MODEL_RULES:
        if pattern.fullmatch(model_id):
            return template
    return None
