"""Prompt formatting: a caller's raw prompt or chat turns become Replicate's `prompt` input.

Chat-tuned models answer well only when their turns carry the markup they were
trained on, and LiteLLM gets that wrong for most Replicate model ids (it falls back
to space-joined text, or renders template error messages into the prompt). This
package does it in one place, and the rules are:

Raw prompt
    `prefix + prompt + suffix`, each affix only when non-empty, exactly as promptfoo
    does; no template is ever applied to raw text. An empty `prompt` counts as absent,
    because proto3 cannot tell the two apart.

Messages
    Roles are "system", "user" and "assistant"; every turn needs non-blank content and
    at least one turn must be the user's. `prefix`/`suffix` are refused: they shape raw
    text, and a template shapes messages. The template is the caller's choice (the
    request's name, else the alias's), else the one the Replicate model id implies
    (see `template_for_model`), else none.

Built-in templates ("llama2", "llama3", "mistral", "chatml", "gemma")
    Python renderings of the model authors' own `chat_template` from
    `tokenizer_config.json`, with `add_generation_prompt=True`; the tests compare them
    with those Jinja strings. Where the authors' template strips content, so do we.

    - System messages: Llama 2 puts one inside the first `[INST]` in `<<SYS>>` tags,
      Llama 3 and ChatML give it its own turn. Mistral's current template and Gemma 3's
      prepend it to the first user turn followed by "\\n\\n"; we do the same for Gemma 1
      and 2, whose templates refuse system messages outright, rather than fail requests.
      Llama 2, Mistral and Gemma take a system message only as the first message and
      need the rest to alternate user, assistant, user, ...; the error names the first
      message out of order instead of letting a template render an error into the text.
    - BOS: by default the beginning-of-sequence token (`<s>`, `<|begin_of_text|>`,
      `<bos>`) is left out, because a model server normally tokenizes the prompt with
      special tokens on, which adds it, and a doubled BOS degrades the output.
      `add_bos=True` (an alias option) puts it in the text for servers that do not.
      A tokenizer adds only the first BOS, so the `<s>` that Llama 2 puts before every
      later `[INST]` always stays in the text. ChatML's template writes no BOS, so
      `add_bos` changes nothing there.

Custom templates (`CustomTemplate`)
    LiteLLM's `custom_prompt` semantics exactly, BOS and EOS between turns included
    (see `_custom_template`), so a LiteLLM configuration produces the same text.
    `add_bos` does not apply: the configuration says where its tokens go.

Jinja templates (`JinjaTemplate`)
    A tokenizer's `chat_template`, rendered as Hugging Face renders it, in a sandbox
    with limits on output size, loop count and time (see `_jinja_sandbox`). It gets the
    configured `bos_token`/`eos_token` as they are; `add_bos` does not apply.

No template ("none")
    The first system message becomes `system_prompt`; every other turn's content, in
    order, is joined with a blank line ("\\n\\n") into `prompt`, with no role labels.

Every failure is a `PromptError` (INVALID_ARGUMENT) whose message says what to change
and whose field violations name the field, e.g. `messages[2].role`.
"""

from __future__ import annotations

from inference_gateway.prompts._build import build_prompt, compile_template
from inference_gateway.prompts._builtin_templates import BUILTIN_TEMPLATES
from inference_gateway.prompts._model import (
    NO_TEMPLATE,
    ChatMessage,
    CustomTemplate,
    JinjaTemplate,
    PromptError,
    RenderedPrompt,
    RoleMarkup,
    Template,
)
from inference_gateway.prompts._selection import parse_template_name, template_for_model

__all__ = [
    "BUILTIN_TEMPLATES",
    "NO_TEMPLATE",
    "ChatMessage",
    "CustomTemplate",
    "JinjaTemplate",
    "PromptError",
    "RenderedPrompt",
    "RoleMarkup",
    "Template",
    "build_prompt",
    "compile_template",
    "parse_template_name",
    "template_for_model",
]
