"""Fallbacks and hedges in the configuration: native keys, LiteLLM's router_settings, refusals."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from inference_gateway.config import ConfigError, WarmSchedule, describe_config, load_config
from inference_gateway.errors import (
    FailedPrecondition,
    GatewayError,
    InvalidArgument,
    NotFound,
    ResourceExhausted,
    Unavailable,
)
from inference_gateway.model_ids import parse_model_id
from inference_gateway.registry import ResolvedModel
from inference_gateway.routing import Candidate, fallback_reason
from tests.support.models import LLAMA2, LLAMA3, SDXL_PINNED


def load(tmp_path: Path, text: str) -> dict[str, object]:
    path = tmp_path / "gateway.yaml"
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return dict(load_config(path, {}).aliases)


def problems(tmp_path: Path, text: str) -> str:
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, text)
    return str(caught.value)


def test_native_keys_are_read(tmp_path: Path) -> None:
    aliases = load(
        tmp_path,
        f"""
        aliases:
          chat:
            model: {LLAMA3}
            fallbacks: [backup, {LLAMA2}]
            fallback_on_failure: true
            hedge_after_seconds: 5
            hedges_per_minute: 3
            fallback_reserve_seconds: 20
          backup: {{model: {LLAMA2}}}
        """,
    )
    chat = aliases["chat"]
    assert chat.fallbacks == ("backup", LLAMA2)  # type: ignore[attr-defined]
    assert chat.fallback_on_failure is True  # type: ignore[attr-defined]
    assert chat.hedge_after_seconds == 5  # type: ignore[attr-defined]
    assert chat.hedges_per_minute == 3  # type: ignore[attr-defined]
    assert chat.fallback_reserve_seconds == 20  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("spec", "fragment"),
    [
        ("fallbacks: [chat]", "'chat' is the alias itself"),
        ("fallbacks: [bakup]", "'bakup' is not an alias or a model id (did you mean 'backup'?)"),
        ("fallbacks: [pics]", "'pics' makes image; chat makes text"),
        ("fallbacks: ['replicate:image:stability-ai/sdxl']", "makes image; chat makes text"),
        ("hedge_after_seconds: 5", "a hedge runs on the first fallback"),
        ("fallbacks: backup", "expected a list"),
        ("fallbacks: [backup]\n    hedge_after_seconds: 0", "expected a number of seconds > 0"),
    ],
)
def test_bad_routing_is_refused_at_load(tmp_path: Path, spec: str, fragment: str) -> None:
    text = (
        f"aliases:\n  chat:\n    model: {LLAMA3}\n    {spec}\n  backup: {{model: {LLAMA2}}}\n"
        f"  pics: {{model: '{SDXL_PINNED}', task: image}}\n"
    )
    assert fragment in problems(tmp_path, text)


def test_litellm_router_fallbacks_map_onto_aliases(tmp_path: Path) -> None:
    aliases = load(
        tmp_path,
        f"""
        model_list:
          - model_name: chat
            litellm_params: {{model: replicate/{LLAMA3}}}
          - model_name: backup
            litellm_params: {{model: replicate/{LLAMA2}}}
        router_settings:
          fallbacks: [{{chat: [backup]}}]
          num_retries: 2
        """,
    )
    assert aliases["chat"].fallbacks == ("backup",)  # type: ignore[attr-defined]
    assert aliases["backup"].fallbacks == ()  # type: ignore[attr-defined]


def test_litellm_fallbacks_for_an_unknown_model_name_are_refused(tmp_path: Path) -> None:
    text = f"""
    model_list:
      - model_name: chat
        litellm_params: {{model: replicate/{LLAMA3}}}
    router_settings:
      fallbacks: [{{chta: [chat]}}]
    """
    assert "'chta' is not a model_name in model_list" in problems(tmp_path, text)


def _candidate(name: str, account: str) -> Candidate:
    return Candidate(name, ResolvedModel(None, parse_model_id(name)), account)


PRIMARY = _candidate(LLAMA3, "r8_test_a")
SAME_ACCOUNT = _candidate(LLAMA2, "r8_test_a")
OTHER_ACCOUNT = _candidate(LLAMA2, "r8_test_b")


@pytest.mark.parametrize(
    ("error", "fallback", "expected"),
    [
        (Unavailable("503", reason="REPLICATE_UNAVAILABLE"), SAME_ACCOUNT, "unavailable"),
        (Unavailable("reset", reason="REPLICATE_UNREACHABLE"), SAME_ACCOUNT, "unavailable"),
        # Our own store failing closed is not an upstream fault another model could fix.
        (Unavailable("redis", reason="STATE_STORE_UNAVAILABLE"), SAME_ACCOUNT, None),
        (NotFound("404", reason="REPLICATE_NOT_FOUND"), SAME_ACCOUNT, "not_found"),
        (NotFound("alias", reason="UNKNOWN_ALIAS"), SAME_ACCOUNT, None),
        (FailedPrecondition("oom", reason="PREDICTION_FAILED"), SAME_ACCOUNT, None),
        (ResourceExhausted("429", reason="REPLICATE_RATE_LIMITED"), SAME_ACCOUNT, None),
        (ResourceExhausted("429", reason="REPLICATE_RATE_LIMITED"), OTHER_ACCOUNT, "rate_limited"),
        (ResourceExhausted("b", reason="RATE_BUDGET_EXHAUSTED"), OTHER_ACCOUNT, "rate_limited"),
        (ResourceExhausted("slots", reason="ALIAS_CONCURRENCY_LIMIT"), OTHER_ACCOUNT, None),
        (InvalidArgument("bad", reason="REPLICATE_INVALID_INPUT"), OTHER_ACCOUNT, None),
        (InvalidArgument("bad", reason="INPUT_NOT_ACCEPTED"), OTHER_ACCOUNT, None),
    ],
)
def test_fallback_reasons(error: GatewayError, fallback: Candidate, expected: str | None) -> None:
    assert fallback_reason(error, alias=None, failed=PRIMARY, fallback=fallback) == expected


@pytest.mark.parametrize(
    ("minute", "left"),
    [(6 * 60 + 59, 0.0), (7 * 60, 12 * 3600.0), (18 * 60 + 30, 1800.0), (19 * 60, 0.0)],
)
def test_warm_hours_within_a_day(minute: int, left: float) -> None:
    assert WarmSchedule(1, 7 * 60, 19 * 60).seconds_left(minute) == left


@pytest.mark.parametrize(("minute", "left"), [(23 * 60, 3 * 3600.0), (60, 3600.0), (12 * 60, 0.0)])
def test_warm_hours_past_midnight(minute: int, left: float) -> None:
    assert WarmSchedule(1, 22 * 60, 2 * 60).seconds_left(minute) == left


@pytest.mark.parametrize(
    ("spec", "fragment"),
    [
        (f"model: {LLAMA3}\n    warm: {{hours: '07:00-19:00'}}", "deployments only"),
        ("model: deployments/acme/x\n    warm: {hours: '7-19'}", 'expected "HH:MM-HH:MM"'),
        ("model: deployments/acme/x\n    warm: {hours: '07:00-25:00'}", "not a window"),
        (
            "model: deployments/acme/x\n    warm: {min_instances: 9, hours: '07:00-08:00'}",
            "at most 5",
        ),
    ],
)
def test_bad_warm_hours_are_refused(tmp_path: Path, spec: str, fragment: str) -> None:
    assert fragment in problems(tmp_path, f"aliases:\n  chat:\n    {spec}\n")


def test_check_config_shows_routing(tmp_path: Path) -> None:
    path = tmp_path / "gateway.yaml"
    path.write_text(
        textwrap.dedent(
            f"""
            aliases:
              chat:
                model: deployments/acme/llama3-prod
                fallbacks: [{LLAMA2}]
                hedge_after_seconds: 5
                warm: {{min_instances: 2, hours: "22:00-02:00"}}
            """
        ),
        encoding="utf-8",
    )
    shown = describe_config(load_config(path, {}), {})
    assert LLAMA2 in shown
    assert "after 5 s booting, at most 10 a minute" in shown
    assert "22:00-02:00 UTC, min_instances 2" in shown
