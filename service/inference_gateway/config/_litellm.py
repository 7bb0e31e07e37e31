"""LiteLLM proxy files (`model_list:`), read the way LiteLLM reads them for Replicate.

Each entry's `model_name` becomes an alias for its `litellm_params.model`. What LiteLLM
would send to Replicate is kept: `os.environ/NAME` is resolved for every value, `max_tokens`
is renamed as LiteLLM renames it, the prompt-template keys become a role-markup template,
and every other key is passed through as a model input. Keys that steer LiteLLM itself
(routing, retries, pricing) are dropped and listed in the config's notes, except
`router_settings.fallbacks` (`[{model_name: [fallback, ...]}]`), which becomes each
alias's `fallbacks`: tried on the failures the gateway falls back on (routing.py), which
are fewer than LiteLLM's (never the caller's own bad request). Values read from
`os.environ/NAME` are strings, as in LiteLLM. Deviations, each
deliberate: `stop` lists are joined with "," (Replicate takes one string), `seed` is sent
(LiteLLM drops it), and `replicate/owner/name:VERSION` posts the version to /v1/predictions
(LiteLLM posts it to /v1/models/VERSION/predictions, which 404s).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace

from inference_gateway.config._model import AliasConfig, ApiKeyRef, Secret
from inference_gateway.config._reader import ENV_PREFIX, Reader, check_fallbacks, join
from inference_gateway.config._templates import CUSTOM_TEMPLATE_KEYS, read_custom_template
from inference_gateway.config._yaml import LocatedList, LocatedMap
from inference_gateway.model_ids import Task
from inference_gateway.prompts import Template

__all__ = ["LITELLM_SECTIONS", "read_litellm"]

LITELLM_SECTIONS = ("model_list",)
# LiteLLM proxy settings with no meaning for this gateway: read past, named in the notes.
_IGNORED_SECTIONS = (
    "litellm_settings",
    "router_settings",
    "general_settings",
    "environment_variables",
    "credential_list",
)
_ENTRY_KEYS = ("model_name", "litellm_params", "model_info")
_PROVIDER = "replicate"
_MODES = {"chat": Task.TEXT, "completion": Task.TEXT, "image_generation": Task.IMAGE}

# litellm_params that configure LiteLLM, not the model; dropped rather than sent as inputs.
_LITELLM_ONLY_KEYS = frozenset(
    {
        # the router's per-deployment rate limits and pick order
        "rpm",
        "tpm",
        "weight",
        "order",
        # LiteLLM's own retry loop; the gateway has its own retry policy
        "num_retries",
        "max_retries",
        # streaming deadline; StreamText runs under the caller's gRPC deadline
        "stream_timeout",
        # where LiteLLM sends requests; its Replicate handler ignores these and so do we
        "api_base",
        "base_url",
        "api_version",
        "organization",
        "region_name",
        # headers LiteLLM discards on the Replicate path anyway
        "extra_headers",
        # moves the first system message into input.system_prompt; templates decide here
        "supports_system_prompt",
        # request-shaping switches of LiteLLM itself
        "drop_params",
        "stream",
        "mock_response",
        "tags",
        "use_in_pass_through",
        "merge_reasoning_content_in_choices",
    }
)
# Pricing metadata: input_cost_per_token, output_cost_per_second, cache_read_input_token_cost…
_COST_KEY = re.compile(r"(?:^|_)cost(?:_|$)")


def read_litellm(reader: Reader, document: LocatedMap) -> list[AliasConfig]:
    reader.check_keys(document, LITELLM_SECTIONS + _IGNORED_SECTIONS, "")
    for section in _IGNORED_SECTIONS:
        if section in document and section != "router_settings":
            reader.notes.append(f"{section}: LiteLLM proxy settings, ignored by this gateway")
    variables = document.get("environment_variables")
    if isinstance(variables, LocatedMap) and variables:
        names = ", ".join(map(str, variables))
        reader.notes.append(f"the gateway does not set environment_variables; export {names}")
    entries = reader.sequence(
        document.get("model_list"), document.line_of("model_list"), "model_list"
    )
    if entries is None:
        return []
    aliases = _read_entries(reader, entries)
    return _with_fallbacks(reader, document, aliases)


def _with_fallbacks(
    reader: Reader, document: LocatedMap, aliases: list[AliasConfig]
) -> list[AliasConfig]:
    """`router_settings.fallbacks` onto the aliases; the router's other settings noted."""
    settings = document.get("router_settings")
    if not isinstance(settings, LocatedMap):
        if "router_settings" in document:
            reader.notes.append("router_settings: not a mapping, ignored by this gateway")
        return aliases
    others = sorted(str(key) for key in settings if key != "fallbacks")
    if others:
        reader.notes.append(f"router_settings: ignored by this gateway: {', '.join(others)}")
    if "fallbacks" not in settings:
        return aliases
    where = "router_settings.fallbacks"
    rules = reader.sequence(settings["fallbacks"], settings.line_of("fallbacks"), where)
    if rules is None:
        return aliases
    by_name = {alias.name: alias for alias in aliases}
    lines: dict[str, int] = {}
    for index, (rule, line) in enumerate(zip(rules, rules.item_lines, strict=True)):
        rule_where = f"{where}[{index}]"
        mapping = reader.mapping(rule, line, rule_where)
        for name, targets in (mapping or {}).items():
            names = reader.names(targets, line, join(rule_where, name))
            if names is None:
                continue
            if name not in by_name:
                reader.problem(line, rule_where, f"{name!r} is not a model_name in model_list")
                continue
            by_name[name] = replace(by_name[name], fallbacks=tuple(names))
            lines[name] = line
    found = list(by_name.values())
    check_fallbacks(reader, found, lines, where)
    return found


def _read_entries(reader: Reader, entries: LocatedList) -> list[AliasConfig]:
    found: list[AliasConfig] = []
    first_line: dict[str, int] = {}
    for index, (entry_value, line) in enumerate(zip(entries, entries.item_lines, strict=True)):
        where = f"model_list[{index}]"
        entry = reader.mapping(entry_value, line, where)
        if entry is None:
            continue
        reader.check_keys(entry, _ENTRY_KEYS, where)
        name = reader.text(
            entry.get("model_name"), entry.line_of("model_name"), join(where, "model_name")
        )
        if name is None:
            continue
        if "*" in name:
            reader.problem(
                line,
                join(where, "model_name"),
                "wildcard model names are not supported; name each model",
            )
            continue
        if name in first_line:
            reader.problem(
                line,
                join(where, "model_name"),
                f"{name!r} is also defined at {reader.source(first_line[name])}; LiteLLM"
                " load-balances entries that share a model_name, which this gateway does not"
                " support yet: give each entry its own model_name",
            )
            continue
        first_line[name] = line
        alias = _read_entry(reader, name, entry, f"{where} ({name})")
        if alias is not None:
            found.append(alias)
    return found


@dataclass
class _Settings:
    """What an entry's litellm_params say, other than the model and the template."""

    defaults: dict[str, object] = field(default_factory=dict)
    dropped: list[str] = field(default_factory=list)
    api_key: ApiKeyRef | None = None
    timeout: float | None = None
    concurrency: int | None = None


def _read_entry(reader: Reader, name: str, entry: LocatedMap, where: str) -> AliasConfig | None:
    errors_before = len(reader.problems)
    params_where = join(where, "litellm_params")
    found = _read_model(reader, entry, where, params_where)
    if found is None:
        return None
    params, model = found
    ref = reader.model_ref(model, params.line_of("model"), join(params_where, "model"))
    task = _read_mode(reader, entry, where)
    settings = _read_settings(reader, params, params_where, model)
    template: Template | None = None
    if any(key in params for key in CUSTOM_TEMPLATE_KEYS):
        template = read_custom_template(reader, params, params_where)
        if task is Task.IMAGE:
            reader.problem(params.line, params_where, "prompt templates apply to text models only")
    if settings.dropped:
        dropped = ", ".join(sorted(settings.dropped))
        reader.notes.append(f"{where}: ignored LiteLLM-only keys {dropped}")
    if ref is None or len(reader.problems) > errors_before:
        return None
    return AliasConfig(
        name=name,
        model=ref,
        task=task or ref.task or Task.TEXT,
        defaults=settings.defaults,
        prefix=None,
        suffix=None,
        template=template,
        add_bos=False,
        api_key=settings.api_key,
        timeout_seconds=settings.timeout,
        max_concurrency=settings.concurrency,
        source=reader.source(entry.line),
    )


def _read_model(
    reader: Reader, entry: LocatedMap, where: str, params_where: str
) -> tuple[LocatedMap, str] | None:
    """The entry's litellm_params and its model string with the replicate/ prefix."""
    if "litellm_params" not in entry:
        reader.problem(entry.line, where, "litellm_params is required, with model: replicate/...")
        return None
    params = reader.mapping(entry["litellm_params"], entry.line_of("litellm_params"), params_where)
    if params is None:
        return None
    if "model" not in params:
        reader.problem(params.line, params_where, "model is required, e.g. replicate/owner/name")
        return None
    model = reader.text(params["model"], params.line_of("model"), join(params_where, "model"))
    if model is None:
        return None
    prefixed = model.startswith(f"{_PROVIDER}/")
    # LiteLLM takes the provider from custom_llm_provider, else from the model's prefix.
    if params.get("custom_llm_provider", _PROVIDER if prefixed else None) != _PROVIDER:
        reader.problem(
            params.line_of("model"),
            join(params_where, "model"),
            f"{model!r} is not a Replicate model; this gateway serves replicate/... models only,"
            " so serve this entry from another proxy",
        )
        return None
    return params, model if prefixed else f"{_PROVIDER}/{model}"


def _read_settings(reader: Reader, params: LocatedMap, where: str, model: str) -> _Settings:
    settings = _Settings()
    for key, raw in params.items():
        line = params.line_of(key)
        key_where = join(where, key)
        if not isinstance(key, str):
            reader.problem(line, where, f"keys must be strings, not {key!r}")
        elif key in ("model", "custom_llm_provider") or key in CUSTOM_TEMPLATE_KEYS:
            continue
        elif key == "api_key":
            settings.api_key = _read_api_key(reader, raw, line, key_where)
        elif key == "litellm_credential_name":
            reader.problem(
                line,
                key_where,
                "shared credentials are not supported; write api_key: os.environ/NAME",
            )
        elif key in _LITELLM_ONLY_KEYS or _COST_KEY.search(key):
            settings.dropped.append(key)
        elif reader.secret_literal(key, raw, line, key_where):
            continue
        else:
            value = _resolve(reader, raw, line, key_where)
            if key == "timeout":
                settings.timeout = reader.positive_number(value, line, key_where)
            elif key == "max_parallel_requests":
                settings.concurrency = reader.positive_int(value, line, key_where)
            elif key == "max_tokens":
                input_name = _max_tokens_input(model)
                settings.defaults[input_name] = reader.json_value(value, line, key_where)
            elif key == "stop":
                stop = _stop_sequences(reader, value, line, key_where)
                settings.defaults["stop_sequences"] = stop
            else:
                settings.defaults[key] = reader.json_value(value, line, key_where)
    return settings


def _read_mode(reader: Reader, entry: LocatedMap, where: str) -> Task | None:
    """The task from `model_info.mode`; the rest of model_info is LiteLLM's metadata."""
    info = entry.get("model_info")
    if not isinstance(info, LocatedMap) or "mode" not in info:
        return None
    mode = info["mode"]
    if isinstance(mode, str) and mode in _MODES:
        return _MODES[mode]
    reader.problem(
        info.line_of("mode"),
        join(where, "model_info.mode"),
        f"expected one of {', '.join(_MODES)}; this gateway serves text and image models",
    )
    return None


def _read_api_key(reader: Reader, raw: object, line: int, where: str) -> ApiKeyRef | None:
    if isinstance(raw, str) and raw.startswith(ENV_PREFIX):
        return reader.env_key(raw, line, where)
    if isinstance(raw, str) and raw:
        return ApiKeyRef(literal=Secret(raw))
    reader.problem(line, where, f"expected a key or {ENV_PREFIX}NAME")
    return None


def _resolve(reader: Reader, value: object, line: int, where: str) -> object:
    """`value` with every "os.environ/NAME" string replaced by the variable's value."""
    if isinstance(value, str) and value.startswith(ENV_PREFIX):
        return reader.env(value.removeprefix(ENV_PREFIX), line, where)
    if isinstance(value, list):
        return [_resolve(reader, item, line, where) for item in value]
    if isinstance(value, dict):
        return {key: _resolve(reader, item, line, where) for key, item in value.items()}
    return value


def _max_tokens_input(model: str) -> str:
    """The input LiteLLM renames max_tokens to for this model string."""
    if "vicuna" in model or "flan" in model:
        return "max_length"
    if "meta/codellama-13b" in model:
        return "max_tokens"
    return "max_new_tokens"


def _stop_sequences(reader: Reader, value: object, line: int, where: str) -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return ",".join(str(item) for item in value)
    reader.problem(line, where, "expected a string or a list of strings")
    return None
