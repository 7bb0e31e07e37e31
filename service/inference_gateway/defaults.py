"""Default model inputs from `REPLICATE_*` variables, the ones promptfoo reads.

promptfoo parses these with parseInt/parseFloat, so `REPLICATE_MAX_LENGTH=12abc` quietly
becomes 12 and `REPLICATE_TOP_K=abc` vanishes. A gateway serves many callers from one
environment, so a typo here must stop it at start-up instead: every value is parsed whole
and range-checked, and a bad one raises EnvDefaultsError naming the variable and what it
accepts. The ranges are shared with the configuration loader through `check_input_default`.

Decisions:
- A numeric variable that is empty (or only whitespace) counts as unset, as in promptfoo;
  whitespace around a number is ignored.
- `REPLICATE_STOP_SEQUENCES` and `REPLICATE_SYSTEM_PROMPT` are sent exactly as written, not
  split or trimmed, and an empty value is sent as "": promptfoo does the same, so the two
  produce the same request.
- top_k accepts -1 as well as 0 and up: vLLM-based models on Replicate read -1 as "off".
- Counts and top_k stay within int32 and seeds within int64, the widths of the matching
  request fields, so a default can never say what a request cannot.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

__all__ = [
    "ENV_VARIABLES",
    "EnvDefaultsError",
    "api_key_from_env",
    "check_input_default",
    "credential_in",
    "env_defaults",
    "names_a_secret",
    "parse_number",
]

_INT32_MAX = 2**31 - 1
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
_INTEGER = re.compile(r"[+-]?[0-9]+")
_DECIMAL = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_SHOWN_LIMIT = 80
# Words that mark an input as a credential; matched as whole words, so max_tokens is not one.
_SECRET_WORDS = frozenset(
    {"token", "key", "secret", "password", "passwd", "apikey", "auth", "authorization"}
    | {"credential", "credentials", "cookie"}
)
_WORD = re.compile(r"[A-Z]?[a-z0-9]+|[A-Z]+(?![a-z])")


class EnvDefaultsError(ValueError):
    """A `REPLICATE_*` variable whose value the gateway will not guess at."""

    def __init__(self, variable: str, value: str, accepted: str) -> None:
        shown = value if len(value) <= _SHOWN_LIMIT else value[:_SHOWN_LIMIT] + "…"
        super().__init__(f"{variable}={shown!r} is not accepted: expected {accepted}")
        self.variable = variable
        self.value = value
        self.accepted = accepted


@dataclass(frozen=True, slots=True)
class _NumericInput:
    integer: bool
    accepted: str
    allows: Callable[[float], bool]

    def accepts(self, value: object) -> bool:
        if isinstance(value, bool) or not isinstance(value, int | float):
            return False
        if self.integer and not isinstance(value, int):
            return False
        return math.isfinite(value) and self.allows(value)


_NUMERIC_INPUTS: Mapping[str, _NumericInput] = {
    "max_length": _NumericInput(
        True, "an integer from 1 to 2147483647", lambda v: 1 <= v <= _INT32_MAX
    ),
    "max_new_tokens": _NumericInput(
        True, "an integer from 1 to 2147483647", lambda v: 1 <= v <= _INT32_MAX
    ),
    "temperature": _NumericInput(False, "a number >= 0, such as 0.7", lambda v: v >= 0),
    "repetition_penalty": _NumericInput(False, "a number > 0, such as 1.15", lambda v: v > 0),
    "top_p": _NumericInput(False, "a number from 0 to 1, such as 0.9", lambda v: 0 <= v <= 1),
    "top_k": _NumericInput(
        True, "an integer from -1 (off) to 2147483647", lambda v: -1 <= v <= _INT32_MAX
    ),
    "seed": _NumericInput(True, "a 64-bit integer", lambda v: _INT64_MIN <= v <= _INT64_MAX),
}
_TEXT_INPUTS = frozenset({"stop_sequences", "system_prompt"})

ENV_VARIABLES: Mapping[str, str] = {
    "REPLICATE_MAX_LENGTH": "max_length",
    "REPLICATE_MAX_NEW_TOKENS": "max_new_tokens",
    "REPLICATE_TEMPERATURE": "temperature",
    "REPLICATE_REPETITION_PENALTY": "repetition_penalty",
    "REPLICATE_TOP_P": "top_p",
    "REPLICATE_TOP_K": "top_k",
    "REPLICATE_SEED": "seed",
    "REPLICATE_STOP_SEQUENCES": "stop_sequences",
    "REPLICATE_SYSTEM_PROMPT": "system_prompt",
}
"""Each variable and the model input it sets."""


def parse_number(text: str, *, integer: bool) -> int | float | None:
    """The number `text` spells in full (surrounding whitespace aside), or None.

    Stricter than int()/float(): no "1_000", "nan", "inf" or non-ASCII digits, and no
    overflow to infinity.
    """
    stripped = text.strip()
    if integer:
        return int(stripped) if _INTEGER.fullmatch(stripped) else None
    if not _DECIMAL.fullmatch(stripped):
        return None
    value = float(stripped)
    return value if math.isfinite(value) else None


def names_a_secret(input_name: str) -> bool:
    """Whether an input's name says it holds a credential (`hf_token`, `apiKey`, `PASSWORD`).

    Such a default is never shown by ListModels, and a configuration file may give it only
    as an `os.environ/NAME` reference, never as a literal value.
    """
    return any(word.lower() in _SECRET_WORDS for word in _WORD.findall(input_name))


def credential_in(input_name: str, value: object) -> str | None:
    """Where a default holds a credential: the input itself when its name says so, or a
    key at any depth of its value (`headers.Authorization`, `extra.api_key`); else None.

    The one test for what ListModels hides and what a configuration may not write. Each
    container is visited once, so YAML anchors that share or nest one are no trap.
    """
    if names_a_secret(input_name):
        return input_name
    pending: list[tuple[str, object]] = [(input_name, value)]
    seen: set[int] = set()
    while pending:
        path, item = pending.pop()
        if not isinstance(item, Mapping | list) or id(item) in seen:
            continue
        seen.add(id(item))
        if isinstance(item, list):
            pending.extend((f"{path}[]", child) for child in item)
            continue
        for key, child in item.items():
            if names_a_secret(str(key)):
                return f"{path}.{key}"
            pending.append((f"{path}.{key}", child))
    return None


def check_input_default(input_name: str, value: object) -> str | None:
    """Why `value` is a bad default for a well-known input, or None if it is fine.

    Inputs the gateway does not know are model-specific and always pass.
    """
    if input_name in _TEXT_INPUTS:
        return None if isinstance(value, str) else "expected a string"
    spec = _NUMERIC_INPUTS.get(input_name)
    if spec is None or spec.accepts(value):
        return None
    return f"expected {spec.accepted}"


def env_defaults(environ: Mapping[str, str]) -> dict[str, object]:
    """Model inputs set by `REPLICATE_*` variables, keyed by input name; unset ones absent."""
    defaults: dict[str, object] = {}
    for variable, input_name in ENV_VARIABLES.items():
        text = environ.get(variable)
        if text is None:
            continue
        if input_name in _TEXT_INPUTS:
            defaults[input_name] = text
            continue
        if not text.strip():
            continue
        spec = _NUMERIC_INPUTS[input_name]
        value = parse_number(text, integer=spec.integer)
        if value is None or not spec.accepts(value):
            raise EnvDefaultsError(variable, text, spec.accepted)
        defaults[input_name] = value
    return defaults


def api_key_from_env(environ: Mapping[str, str]) -> str | None:
    """The Replicate key from the environment: REPLICATE_API_TOKEN, else REPLICATE_API_KEY.

    The official clients read REPLICATE_API_TOKEN; promptfoo and LiteLLM also take the
    other name. An empty value counts as unset, as in promptfoo.
    """
    return environ.get("REPLICATE_API_TOKEN") or environ.get("REPLICATE_API_KEY") or None
