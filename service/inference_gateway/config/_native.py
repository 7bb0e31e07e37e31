"""The gateway's own format: a top-level `aliases:` mapping, every key checked.

aliases:
  llama3:
    model: meta/meta-llama-3-8b-instruct
    task: text                      # or image; default: from the model id, else text
    defaults: {temperature: 0.6, max_new_tokens: 512, hf_token: os.environ/HF_TOKEN}
    prompt: {prefix: "", suffix: ""}
    template: llama3                # a builtin name, {roles: ...} or {jinja: ...}
    add_bos: false
    api_key: os.environ/TEAM_A_REPLICATE_TOKEN
    timeout_seconds: 120
    max_concurrency: 8
    fallbacks: [mixtral, meta/llama-2-7b-chat]   # aliases or model ids, tried in order
    fallback_on_failure: false      # also when the prediction fails (Replicate's error is text)
    fallback_on_ambiguous_create: false  # also after a create's 5xx: it may have run, and bills
    hedge_after_seconds: 5          # still booting after 5 s: start the first fallback too
    hedges_per_minute: 10
    fallback_reserve_seconds: 30    # booting this close to the deadline: switch to a fallback
    warm: {min_instances: 1, hours: "07:00-19:00"}  # deployments: kept warm daily (UTC)
    per_caller: {requests_per_minute: 60, max_concurrency: 2}   # each caller's share
    cache: true                     # the response cache (needs a seed, or deterministic)
    deterministic: false            # the model gives the same output for the same input
    max_cost: "0.50"                # the most one call may cost, for budgets
pricing: {models: {meta/*: {output_token: "0.00000025"}}}   # read by _pricing.py
callers:                            # optional; when present, callers must authenticate
  billing-service: {token_file: /var/run/secrets/gateway/billing, aliases: [llama3]}

`callers:` is read by `_callers.py`; `aliases:` may be left out when it is there.
"""

from __future__ import annotations

import re
from functools import partial

from inference_gateway.config._callers import CALLERS_SECTION, LIMIT_KEYS, read_limits
from inference_gateway.config._model import (
    DEFAULT_FALLBACK_RESERVE_SECONDS,
    DEFAULT_HEDGES_PER_MINUTE,
    AliasConfig,
    CallerLimits,
    WarmSchedule,
)
from inference_gateway.config._pricing import PRICING_SECTION, read_money
from inference_gateway.config._reader import Reader, check_fallbacks, join
from inference_gateway.config._templates import read_affixes, read_template
from inference_gateway.config._yaml import LocatedMap
from inference_gateway.defaults import check_input_default
from inference_gateway.model_ids import EndpointKind, Task

__all__ = ["NATIVE_SECTIONS", "read_native"]

# Every top-level section of the native format, in one place. Sections that later issues
# add are listed here when they are implemented: until then they are refused, because
# ignoring a setting (an access rule, say) would be worse than failing.
NATIVE_SECTIONS = ("aliases", CALLERS_SECTION, PRICING_SECTION)

_ALIAS_KEYS = (
    "model",
    "task",
    "defaults",
    "prompt",
    "template",
    "add_bos",
    "api_key",
    "timeout_seconds",
    "max_concurrency",
    "fallbacks",
    "fallback_on_failure",
    "fallback_on_ambiguous_create",
    "hedge_after_seconds",
    "hedges_per_minute",
    "fallback_reserve_seconds",
    "per_caller",
    "cache",
    "deterministic",
    "max_cost",
    "warm",
)
_TASKS = {task.value: task for task in Task}
_HOURS = re.compile(r"(\d\d):(\d\d)-(\d\d):(\d\d)")
# Replicate's bound on a deployment's min_instances.
MAX_MIN_INSTANCES = 5


def read_native(reader: Reader, document: LocatedMap) -> list[AliasConfig]:
    reader.check_keys(document, NATIVE_SECTIONS, "")
    if "aliases" not in document:
        return []
    aliases = reader.mapping(document.get("aliases"), document.line_of("aliases"), "aliases")
    if aliases is None:
        return []
    found: list[AliasConfig] = []
    for name, spec_value in aliases.items():
        line = aliases.line_of(name)
        if not isinstance(name, str) or not name or name != name.strip():
            reader.problem(
                line, f"aliases[{name!r}]", "alias names are non-empty strings without edge spaces"
            )
            continue
        where = join("aliases", name)
        spec = reader.mapping(spec_value, line, where)
        if spec is not None:
            alias = _read_alias(reader, name, spec, where, line)
            if alias is not None:
                found.append(alias)
    check_fallbacks(reader, found, {a.name: aliases.line_of(a.name) for a in found}, "aliases")
    return found


def _read_alias(
    reader: Reader, name: str, spec: LocatedMap, where: str, name_line: int
) -> AliasConfig | None:
    reader.check_keys(spec, _ALIAS_KEYS, where)
    if "model" not in spec:
        reader.problem(spec.line, where, "model is required, e.g. model: owner/name")
        return None
    errors_before = len(reader.problems)
    ref = reader.optional(spec, "model", where, reader.model_ref)
    task = reader.optional(spec, "task", where, partial(_read_task, reader))
    if ref is not None and ref.task is not None and task is not None and task is not ref.task:
        reader.problem(
            spec.line_of("task"),
            join(where, "task"),
            f"{ref} is an image model by its id; set task: image or leave task out",
        )
    task = task or (ref.task if ref is not None else None) or Task.TEXT
    if task is Task.IMAGE:
        for key in ("prompt", "template", "add_bos"):
            if key in spec:
                reader.problem(spec.line_of(key), join(where, key), "applies to text models only")
    defaults = reader.optional(spec, "defaults", where, partial(_read_defaults, reader))
    affixes = reader.optional(spec, "prompt", where, partial(read_affixes, reader))
    prefix, suffix = affixes or (None, None)
    template = None
    if "template" in spec:  # not reader.optional: mypy cannot solve it for a union type
        template = read_template(
            reader, spec["template"], spec.line_of("template"), join(where, "template")
        )
    add_bos = reader.optional(spec, "add_bos", where, reader.flag)
    api_key = reader.optional(spec, "api_key", where, reader.env_key)
    timeout = reader.optional(spec, "timeout_seconds", where, reader.positive_number)
    concurrency = reader.optional(spec, "max_concurrency", where, reader.positive_int)
    fallbacks = reader.optional(spec, "fallbacks", where, reader.names)
    on_failure = reader.optional(spec, "fallback_on_failure", where, reader.flag)
    on_ambiguous = reader.optional(spec, "fallback_on_ambiguous_create", where, reader.flag)
    hedge_after = reader.optional(spec, "hedge_after_seconds", where, reader.positive_number)
    hedges = reader.optional(spec, "hedges_per_minute", where, reader.positive_int)
    reserve = reader.optional(spec, "fallback_reserve_seconds", where, reader.positive_number)
    warm = reader.optional(spec, "warm", where, partial(_read_warm, reader))
    if warm is not None and ref is not None and ref.kind is not EndpointKind.DEPLOYMENT:
        reader.problem(
            spec.line_of("warm"),
            join(where, "warm"),
            "warm hours apply to deployments only (model: deployments/owner/name)",
        )
    if hedge_after is not None and not fallbacks:
        reader.problem(
            spec.line_of("hedge_after_seconds"),
            join(where, "hedge_after_seconds"),
            "a hedge runs on the first fallback: add fallbacks: [...]",
        )
    per_caller = reader.optional(spec, "per_caller", where, partial(_read_per_caller, reader))
    cache = reader.optional(spec, "cache", where, reader.flag)
    deterministic = reader.optional(spec, "deterministic", where, reader.flag)
    max_cost = reader.optional(spec, "max_cost", where, partial(read_money, reader))
    if ref is None or len(reader.problems) > errors_before:
        return None
    return AliasConfig(
        name=name,
        model=ref,
        task=task,
        defaults=defaults or {},
        prefix=prefix,
        suffix=suffix,
        template=template,
        add_bos=bool(add_bos),
        api_key=api_key,
        timeout_seconds=timeout,
        max_concurrency=concurrency,
        source=reader.source(name_line),
        fallbacks=tuple(fallbacks or ()),
        fallback_on_failure=bool(on_failure),
        fallback_on_ambiguous_create=bool(on_ambiguous),
        hedge_after_seconds=hedge_after,
        hedges_per_minute=hedges or DEFAULT_HEDGES_PER_MINUTE,
        fallback_reserve_seconds=reserve or DEFAULT_FALLBACK_RESERVE_SECONDS,
        per_caller=per_caller or CallerLimits(),
        cache=bool(cache),
        deterministic=bool(deterministic),
        max_cost=max_cost,
        warm=warm,
    )


def _read_per_caller(reader: Reader, value: object, line: int, where: str) -> CallerLimits | None:
    spec = reader.mapping(value, line, where)
    if spec is None:
        return None
    reader.check_keys(spec, LIMIT_KEYS, where)
    return read_limits(reader, spec, where)


def _read_warm(reader: Reader, value: object, line: int, where: str) -> WarmSchedule | None:
    """`{min_instances: 1..5, hours: "HH:MM-HH:MM"}`, times in UTC."""
    spec = reader.mapping(value, line, where)
    if spec is None:
        return None
    reader.check_keys(spec, ("min_instances", "hours"), where)
    minimum = reader.optional(spec, "min_instances", where, reader.positive_int) or 1
    if minimum > MAX_MIN_INSTANCES:
        reader.problem(line, join(where, "min_instances"), f"at most {MAX_MIN_INSTANCES}")
    hours = reader.optional(spec, "hours", where, reader.text)
    match = _HOURS.fullmatch(hours or "")
    if match is None:
        reader.problem(
            line, join(where, "hours"), 'expected "HH:MM-HH:MM" (UTC), e.g. "07:00-19:00"'
        )
        return None
    h1, m1, h2, m2 = (int(group) for group in match.groups())
    if h1 > 23 or h2 > 23 or m1 > 59 or m2 > 59 or (h1, m1) == (h2, m2):
        reader.problem(line, join(where, "hours"), f"{hours!r} is not a window of the day")
        return None
    return WarmSchedule(minimum, h1 * 60 + m1, h2 * 60 + m2)


def _read_task(reader: Reader, value: object, line: int, where: str) -> Task | None:
    if isinstance(value, str) and value in _TASKS:
        return _TASKS[value]
    reader.problem(line, where, "expected text or image")
    return None


def _read_defaults(
    reader: Reader, value: object, line: int, where: str
) -> dict[str, object] | None:
    given = reader.mapping(value, line, where)
    if given is None:
        return None
    defaults: dict[str, object] = {}
    for key, item in given.items():
        item_line = given.line_of(key)
        if not isinstance(key, str):
            reader.problem(item_line, where, f"input names are strings, not {key!r}")
            continue
        before = len(reader.problems)
        value = reader.model_input(key, item, item_line, join(where, key))
        if len(reader.problems) > before:
            continue
        problem = check_input_default(key, value)
        if problem is not None:
            reader.problem(item_line, join(where, key), problem)
            continue
        defaults[key] = value
    return defaults
