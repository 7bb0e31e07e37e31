"""Deterministic text for the simulated language models.

A test must be able to predict a model's whole answer, so the words come from a PRNG
seeded with the model name and its input. The length knobs are left out of the seed,
so asking for fewer tokens yields a prefix of the longer answer. Some tokens carry
newlines, which exercises multi-line `data:` fields in the SSE stream.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
from collections.abc import Mapping

__all__ = ["answer_length", "count_prompt_tokens", "generate_tokens"]

MAX_LENGTH_KEYS = ("max_tokens", "max_new_tokens", "max_length")
MIN_LENGTH_KEYS = ("min_tokens", "min_new_tokens")
LENGTH_CAP = 4096

_VOCABULARY = (
    "amber", "anchor", "bright", "cedar", "copper", "delta", "drift", "ember", "falcon",
    "fern", "glacier", "harbor", "hollow", "indigo", "juniper", "kestrel", "lantern",
    "linen", "meadow", "mosaic", "nimbus", "orchard", "pebble", "quartz", "quiet",
    "river", "saffron", "signal", "silver", "summit", "thistle", "timber", "tundra",
    "umber", "velvet", "willow", "winter", "yarrow", "zephyr", "beacon", "canyon",
    "dune", "echo", "flint", "garnet", "heron", "island", "jasper",
)  # fmt: skip
_WORD = re.compile(r"\w+|[^\w\s]")


def answer_length(input: Mapping[str, object], default: int) -> int:
    """How many tokens the answer has: the default, raised to any minimum, cut to any maximum."""
    length = default
    for key in MIN_LENGTH_KEYS:
        value = input.get(key)
        if isinstance(value, int) and not isinstance(value, bool):
            length = max(length, value)
    for key in MAX_LENGTH_KEYS:
        value = input.get(key)
        if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
            length = min(length, value)
    return max(0, min(length, LENGTH_CAP))


def generate_tokens(model: str, input: Mapping[str, object], default_length: int) -> list[str]:
    """The answer `model` gives to `input`, as the chunks it streams."""
    rng = random.Random(_seed(model, input))
    tokens: list[str] = []
    sentence_left = rng.randint(5, 11)
    start_of_sentence = True
    after_newline = True
    for _ in range(answer_length(input, default_length)):
        if sentence_left == 0:
            ending = ".\n\n" if rng.random() < 0.3 else "."
            tokens.append(ending)
            sentence_left = rng.randint(5, 11)
            start_of_sentence = True
            after_newline = ending.endswith("\n")
            continue
        word = rng.choice(_VOCABULARY)
        if start_of_sentence:
            word = word.capitalize()
        tokens.append(word if after_newline else f" {word}")
        sentence_left -= 1
        start_of_sentence = after_newline = False
    return tokens


def count_prompt_tokens(input: Mapping[str, object]) -> int:
    """A rough input token count: words and punctuation of the rendered prompt."""
    prompt = _text(input.get("prompt"))
    system_prompt = _text(input.get("system_prompt"))
    template = _text(input.get("prompt_template"))
    if "{prompt}" in template:
        rendered = template.replace("{prompt}", prompt).replace("{system_prompt}", system_prompt)
    else:
        rendered = f"{system_prompt} {prompt}"
    return len(_WORD.findall(rendered))


def _text(value: object) -> str:
    return value if isinstance(value, str) else ""


def _seed(model: str, input: Mapping[str, object]) -> int:
    ignored = {*MAX_LENGTH_KEYS, *MIN_LENGTH_KEYS}
    kept = {key: value for key, value in input.items() if key not in ignored}
    canonical = json.dumps([model, kept], sort_keys=True, default=str)
    return int.from_bytes(hashlib.sha256(canonical.encode()).digest()[:8], "big")
