"""The `check-config` report: what each alias will send, so a reader can check it by eye."""

from __future__ import annotations

import json
from collections.abc import Mapping

from inference_gateway.config._model import (
    AliasConfig,
    CallerConfig,
    CallerLimits,
    GatewayConfig,
)
from inference_gateway.defaults import credential_in
from inference_gateway.model_ids import Task
from inference_gateway.pricing import PriceTable
from inference_gateway.prompts import CustomTemplate, JinjaTemplate, Template

__all__ = ["describe_config"]

_ROW = "  {:<16}{}"


def describe_config(config: GatewayConfig, env_defaults: Mapping[str, object]) -> str:
    """Each alias with its endpoint, task, template, effective defaults and key source.

    Effective defaults are the environment's with the alias's on top; the environment's
    REPLICATE_* defaults are text-generation parameters and, as in promptfoo, apply to text
    aliases only. Keys are shown by where they come from, never by value.
    """
    where = "no configuration file" if config.path is None else str(config.path)
    count = len(config.aliases)
    lines = [f"Configuration: {where} ({config.format} format), {count} alias(es)"]
    lines += [f"Note: {note}" for note in config.notes]
    shown_env = _inputs(env_defaults) if env_defaults else "none set"
    lines.append(f"Environment defaults (REPLICATE_*, text aliases only): {shown_env}")
    for alias in sorted(config.aliases.values(), key=lambda a: a.name):
        lines.append("")
        lines += _describe_alias(alias, env_defaults)
    if config.callers is not None:
        lines.append("")
        lines += _describe_callers(config.callers)
    if config.pricing is not None:
        lines.append("")
        lines += _describe_prices(config.pricing)
    return "\n".join(lines)


def _describe_alias(alias: AliasConfig, env_defaults: Mapping[str, object]) -> list[str]:
    ref = alias.model
    inherited = env_defaults if alias.task is Task.TEXT else {}
    effective = {**inherited, **alias.defaults}
    origin = {key: "alias" if key in alias.defaults else "env" for key in effective}
    rows = [
        ("model", str(ref)),
        ("endpoint", f"POST {ref.create_path()}"),
        ("task", alias.task.value),
    ]
    if alias.task is Task.TEXT:
        rows.append(("template", _template(alias.template)))
        if alias.add_bos:
            rows.append(("add_bos", "yes"))
    if alias.prefix or alias.suffix:
        rows.append(("prompt", f"prefix {alias.prefix or ''!r}, suffix {alias.suffix or ''!r}"))
    defaults = ", ".join(
        f"{key}={_shown(key, value)} ({origin[key]})" for key, value in sorted(effective.items())
    )
    rows.append(("defaults", defaults or "none"))
    key_source = alias.api_key.describe() if alias.api_key else "the gateway's default key"
    rows.append(("api key", key_source))
    if alias.timeout_seconds is not None:
        rows.append(("timeout", f"{alias.timeout_seconds:g} s"))
    if alias.max_concurrency is not None:
        rows.append(("max concurrency", str(alias.max_concurrency)))
    if quotas := _limits(alias.per_caller):
        rows.append(("per caller", quotas))
    rows.extend(_routing(alias))
    return [f"{alias.name}    (defined at {alias.source})"] + [_ROW.format(*row) for row in rows]


def _routing(alias: AliasConfig) -> list[tuple[str, str]]:
    """Fallbacks, hedging and warm hours: each one can start predictions or instances."""
    rows = []
    if alias.fallbacks:
        when = " (also on failed predictions)" if alias.fallback_on_failure else ""
        rows.append(("fallbacks", ", ".join(alias.fallbacks) + when))
        if alias.hedge_after_seconds is not None:
            rows.append(
                (
                    "hedge",
                    f"after {alias.hedge_after_seconds:g} s booting, at most "
                    f"{alias.hedges_per_minute} a minute",
                )
            )
    if alias.warm is not None:
        start, end = alias.warm.start_minute, alias.warm.end_minute
        rows.append(
            (
                "warm hours",
                f"{start // 60:02d}:{start % 60:02d}-{end // 60:02d}:{end % 60:02d} UTC, "
                f"min_instances {alias.warm.min_instances}",
            )
        )
    return rows


def _describe_callers(callers: Mapping[str, CallerConfig]) -> list[str]:
    """Who may call; a token is shown by where it comes from, never by value or digest."""
    lines = [f"Callers: {len(callers)}; every call must carry a caller's bearer token"]
    for caller in sorted(callers.values(), key=lambda c: c.name):
        if caller.all_aliases:
            aliases, models = "every alias", "any model id"
        else:
            aliases = ", ".join(sorted(caller.aliases)) or "none"
            named = ", ".join(map(str, caller.models))
            models = "any model id" if caller.all_models else named or "none"
        rows = [("token", caller.token_source), ("aliases", aliases), ("model ids", models)]
        if quotas := _limits(caller.limits):
            rows.append(("quotas", quotas))
        if caller.budget is not None:
            rows.append(("budget", f"{caller.budget.amount} a {caller.budget.period} (UTC)"))
        lines.append(f"{caller.name}    (defined at {caller.source})")
        lines += [_ROW.format(*row) for row in rows]
    return lines


def _describe_prices(pricing: PriceTable) -> list[str]:
    """Each price as written, so a reader can check it against replicate.com by eye."""
    if not pricing.models:
        return ["Prices: none, so every call's cost is unknown"]
    lines = [f"Prices ({pricing.currency}; any other model's cost is unknown):"]
    for key, price in sorted(pricing.models.items()):
        rates = ", ".join(f"{rate.price} per {rate.unit}" for rate in price.rates)
        on = f" ({price.hardware})" if price.hardware else ""
        lines.append(f"  {key}: {rates}{on}")
    return lines


def _limits(limits: CallerLimits) -> str:
    parts = []
    if limits.requests_per_minute is not None:
        parts.append(f"{limits.requests_per_minute} requests a minute")
    if limits.max_concurrency is not None:
        parts.append(f"{limits.max_concurrency} at once")
    return ", ".join(parts)


def _template(template: Template | None) -> str:
    if template is None:
        return "chosen from the model id"
    if isinstance(template, CustomTemplate):
        return f"custom role markup (roles: {', '.join(template.roles) or 'none'})"
    if isinstance(template, JinjaTemplate):
        return f"jinja ({len(template.source)} characters)"
    return template


def _inputs(values: Mapping[str, object]) -> str:
    return ", ".join(f"{key}={_shown(key, value)}" for key, value in sorted(values.items()))


def _shown(name: str, value: object) -> str:
    """A default as check-config prints it: a credential-named one by where it is set only."""
    if credential_in(name, value) is not None:
        return "(a credential, not shown)"
    return json.dumps(value, ensure_ascii=False)
