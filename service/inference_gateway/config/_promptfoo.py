"""promptfoo files (`providers:`), read the way promptfoo's Replicate providers read them.

Each `replicate:` provider becomes an alias named by its `label`, else by its id. Its
`config` keys are model inputs, forwarded verbatim and untyped as promptfoo forwards them,
except `apiKey` (the key, never an input) and `prompt` (the prefix and suffix). Like
promptfoo, image providers default `width` and `height` to 768 when unset or 0. The rest
of the file (prompts, tests, description…) is promptfoo's business and is skipped.
"""

from __future__ import annotations

import re

from inference_gateway.config._model import AliasConfig, ApiKeyRef, Secret
from inference_gateway.config._reader import Reader, join
from inference_gateway.config._templates import read_affixes
from inference_gateway.config._yaml import LocatedMap
from inference_gateway.model_ids import Task

__all__ = ["PROMPTFOO_SECTIONS", "read_promptfoo"]

# promptfoo accepts `targets` as another name for `providers`.
PROMPTFOO_SECTIONS = ("providers", "targets")
_PROVIDER_KEYS = ("id", "label", "config")
# Options that only shape promptfoo's own evaluation run.
_IGNORED_PROVIDER_KEYS = ("prompts", "transform", "delay", "inputs")
_IMAGE_SIZE_KEYS = ("width", "height")
_IMAGE_SIZE_DEFAULT = 768
_PREFIX = "replicate:"
# promptfoo renders "{{ env.NAME }}" in its config; treat it as a reference, not a key.
_ENV_TEMPLATE = re.compile(r"\{\{\s*env\.(\w+)\s*\}\}")
_IMAGE_PROMPT_REFUSAL = (
    "promptfoo sends an image provider's config.prompt in place of the prompt; remove it"
)
_ENV_REFUSAL = (
    "promptfoo's env block changes keys and defaults, and this gateway does not read it;"
    " export the variables instead"
)


def read_promptfoo(reader: Reader, document: LocatedMap) -> list[AliasConfig]:
    if "env" in document:
        reader.problem(document.line_of("env"), "env", _ENV_REFUSAL)
    skipped = [str(key) for key in document if key not in PROMPTFOO_SECTIONS and key != "env"]
    if skipped:
        reader.notes.append(f"promptfoo settings skipped: {', '.join(skipped)}")
    section = next(key for key in PROMPTFOO_SECTIONS if key in document)
    line = document.line_of(section)
    value = document[section]
    if isinstance(value, str):
        return _collect(reader, [(value, line, f"{section}")])
    entries = reader.sequence(value, line, section)
    if entries is None:
        return []
    return _collect(
        reader,
        [
            (entry, item_line, f"{section}[{index}]")
            for index, (entry, item_line) in enumerate(
                zip(entries, entries.item_lines, strict=True)
            )
        ],
    )


def _collect(reader: Reader, entries: list[tuple[object, int, str]]) -> list[AliasConfig]:
    found: list[AliasConfig] = []
    first_line: dict[str, int] = {}
    for entry, line, where in entries:
        alias = _read_provider(reader, entry, line, where)
        if alias is None:
            continue
        if alias.name in first_line:
            reader.problem(
                line,
                where,
                f"the name {alias.name!r} is also used at {reader.source(first_line[alias.name])};"
                " give one of them a distinct label",
            )
            continue
        first_line[alias.name] = line
        found.append(alias)
    return found


def _read_provider(reader: Reader, entry: object, line: int, where: str) -> AliasConfig | None:
    if isinstance(entry, str):
        spec = LocatedMap(line)
        spec["id"] = entry
    else:
        found = reader.mapping(entry, line, where)
        if found is None:
            return None
        spec = found
        if "env" in spec:
            reader.problem(spec.line_of("env"), join(where, "env"), _ENV_REFUSAL)
        reader.check_keys(spec, _PROVIDER_KEYS + _IGNORED_PROVIDER_KEYS + ("env",), where)
        skipped = [key for key in _IGNORED_PROVIDER_KEYS if key in spec]
        if skipped:
            reader.notes.append(f"{where}: promptfoo-only options skipped: {', '.join(skipped)}")
    errors_before = len(reader.problems)
    if "id" not in spec:
        reader.problem(spec.line, where, "id is required, e.g. id: replicate:owner/name")
        return None
    provider_id = reader.text(spec["id"], spec.line_of("id"), join(where, "id"))
    if provider_id is None:
        return None
    if not provider_id.startswith(_PREFIX):
        reader.problem(
            spec.line_of("id"),
            join(where, "id"),
            f"{provider_id!r} is not a Replicate provider; this gateway serves replicate:..."
            " providers only",
        )
        return None
    ref = reader.model_ref(provider_id, spec.line_of("id"), join(where, "id"))
    name = provider_id
    if "label" in spec:
        label = reader.text(spec["label"], spec.line_of("label"), join(where, "label"))
        if label is not None and not label.strip():
            reader.problem(spec.line_of("label"), join(where, "label"), "a label is not blank")
        name = label or name
    task = (ref.task if ref is not None else None) or Task.TEXT
    defaults, prefix, suffix, api_key = _read_config(reader, spec, task, join(where, "config"))
    if ref is None or len(reader.problems) > errors_before:
        return None
    return AliasConfig(
        name=name,
        model=ref,
        task=task,
        defaults=defaults,
        prefix=prefix,
        suffix=suffix,
        template=None,
        add_bos=False,
        api_key=api_key,
        timeout_seconds=None,
        max_concurrency=None,
        source=reader.source(spec.line),
    )


def _read_config(
    reader: Reader, spec: LocatedMap, task: Task, where: str
) -> tuple[dict[str, object], str | None, str | None, ApiKeyRef | None]:
    defaults: dict[str, object] = {}
    prefix = suffix = None
    api_key = None
    config = LocatedMap(spec.line)
    if "config" in spec:
        config = reader.mapping(spec["config"], spec.line_of("config"), where) or config
    for key, value in config.items():
        line = config.line_of(key)
        key_where = join(where, key)
        if not isinstance(key, str):
            reader.problem(line, where, f"keys must be strings, not {key!r}")
        elif key == "apiKey":
            api_key = _read_api_key(reader, value, line, key_where)
        elif key == "prompt" and task is Task.IMAGE:
            reader.problem(line, key_where, _IMAGE_PROMPT_REFUSAL)
        elif key == "prompt":
            prefix, suffix = read_affixes(reader, value, line, key_where)
        else:
            defaults[key] = reader.model_input(key, value, line, key_where)
    if task is Task.IMAGE:
        for key in _IMAGE_SIZE_KEYS:
            if not defaults.get(key):
                defaults[key] = _IMAGE_SIZE_DEFAULT
    return defaults, prefix, suffix, api_key


def _read_api_key(reader: Reader, value: object, line: int, where: str) -> ApiKeyRef | None:
    if not isinstance(value, str) or not value:
        reader.problem(line, where, "expected the key as a non-empty string")
        return None
    reference = _ENV_TEMPLATE.fullmatch(value.strip())
    if reference is None:
        return ApiKeyRef(literal=Secret(value))
    name = reference.group(1)
    return ApiKeyRef(env_var=name) if reader.env(name, line, where) is not None else None
