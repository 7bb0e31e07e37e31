"""The simulator's pure parts: header parsers, text, input validation, budgets, config."""

from __future__ import annotations

import argparse
import re
import textwrap
from pathlib import Path
from typing import Any

import jsonschema  # type: ignore[import-untyped]
import pytest
from hypothesis import given
from hypothesis import strategies as st

from replicate_simulator import (
    BehaviourError,
    CatalogueError,
    ConfigError,
    HeaderError,
    ModelBehaviour,
    SimulatorConfig,
    SimulatorState,
    StateError,
    add_simulate_arguments,
    config_from_args,
    default_catalogue,
    load_catalogue,
    parse_cancel_after,
    parse_prefer,
)
from replicate_simulator._clock import SimClock
from replicate_simulator._ratelimit import RateLimiter
from replicate_simulator._text import answer_length, generate_tokens
from replicate_simulator._validation import validate_object
from tests.support.models import LLAMA2, LLAMA3, SDXL

# The pattern from Replicate's OpenAPI document (components.parameters.parameters_prefer_header).
SPEC_PREFER = re.compile(r"^wait(=([1-9]|[1-9][0-9]|60))?$")


# -- Prefer --------------------------------------------------------------------------------


@given(st.integers(min_value=1, max_value=99))
def test_prefer_wait_n_is_honoured_up_to_60(seconds: int) -> None:
    parsed = parse_prefer(f"wait={seconds}")

    assert parsed is not None
    assert parsed.seconds == min(seconds, 60)
    assert parsed.applied == f"wait={min(seconds, 60)}"


def test_bare_prefer_wait_means_60_seconds() -> None:
    assert parse_prefer("wait") == parse_prefer(" wait ")
    parsed = parse_prefer("wait")
    assert parsed is not None
    assert (parsed.seconds, parsed.applied) == (60, "wait")


@given(
    st.one_of(
        st.text(max_size=12),
        st.builds(lambda n: f"wait={n}", st.integers(min_value=-5, max_value=500)),
        st.builds(lambda s: f"wait={s}", st.text(max_size=4)),
    )
)
def test_prefer_is_honoured_exactly_when_the_spec_pattern_matches(value: str) -> None:
    parsed = parse_prefer(value)

    assert (parsed is not None) == bool(SPEC_PREFER.match(value.strip()))
    if parsed is not None:
        assert 1 <= parsed.seconds <= 60


def test_absent_prefer_is_none() -> None:
    assert parse_prefer(None) is None


# -- Cancel-After -----------------------------------------------------------------------------

_UNIT = {"h": 3600, "m": 60, "s": 1}


@given(st.lists(st.tuples(st.integers(0, 500), st.sampled_from("hms")), min_size=1, max_size=4))
def test_cancel_after_sums_its_units(parts: list[tuple[int, str]]) -> None:
    text = "".join(f"{amount}{unit}" for amount, unit in parts)
    total = sum(amount * _UNIT[unit] for amount, unit in parts)

    if total >= 5:
        assert parse_cancel_after(text) == total
    else:
        with pytest.raises(HeaderError, match="minimum is 5 s"):
            parse_cancel_after(text)


@given(st.integers(min_value=5, max_value=10**6))
def test_bare_cancel_after_is_seconds(seconds: int) -> None:
    assert parse_cancel_after(str(seconds)) == seconds
    assert parse_cancel_after(f" {seconds}s ") == seconds


@pytest.mark.parametrize(
    ("value", "seconds"),
    [("30s", 30), ("5m", 300), ("1h", 3600), ("1h30m45s", 5445), ("2.5m", 150)],
)
def test_cancel_after_examples_from_the_spec(value: str, seconds: float) -> None:
    assert parse_cancel_after(value) == seconds


BARE_NUMBER = re.compile(r"\s*(\d+(?:\.\d+)?)\s*", re.ASCII)
UNIT_DURATION = re.compile(r"\s*(?:\d+(?:\.\d+)?[hms])+\s*", re.ASCII)


def oracle_seconds(value: str) -> float | None:
    """What the spec's description makes of `value`, or None if it is no duration."""
    if bare := BARE_NUMBER.fullmatch(value):
        return float(bare.group(1))
    if UNIT_DURATION.fullmatch(value):
        parts = re.findall(r"(\d+(?:\.\d+)?)([hms])", value)
        return sum(float(amount) * _UNIT[unit] for amount, unit in parts)
    return None


@given(st.text(alphabet="0123456789.hms xd-", max_size=12) | st.text(max_size=8))
def test_cancel_after_accepts_exactly_the_spec_durations(value: str) -> None:
    expected = oracle_seconds(value)

    if expected is None:
        with pytest.raises(HeaderError, match="not a duration"):
            parse_cancel_after(value)
    elif expected < 5:
        with pytest.raises(HeaderError, match="minimum is 5 s"):
            parse_cancel_after(value)
    else:
        assert parse_cancel_after(value) == pytest.approx(expected)


@pytest.mark.parametrize("value", ["", "5 m", "m5", "1d", "ten", "-30", "٣٠"])
def test_cancel_after_rejects_what_is_not_a_duration(value: str) -> None:
    with pytest.raises(HeaderError, match="not a duration"):
        parse_cancel_after(value)


# -- text generation -------------------------------------------------------------------


@given(st.text(max_size=30), st.integers(min_value=0, max_value=80))
def test_shorter_answers_are_prefixes_of_longer_ones(prompt: str, max_tokens: int) -> None:
    full = generate_tokens(LLAMA3, {"prompt": prompt}, 80)
    capped = generate_tokens(LLAMA3, {"prompt": prompt, "max_tokens": max_tokens}, 80)

    assert capped == full[:max_tokens]


def test_answers_depend_on_model_and_input_and_are_repeatable() -> None:
    base = generate_tokens(LLAMA3, {"prompt": "hello"}, 24)

    assert generate_tokens(LLAMA3, {"prompt": "hello"}, 24) == base
    assert generate_tokens(LLAMA3, {"prompt": "hello", "temperature": 0.1}, 24) != base
    assert generate_tokens(LLAMA2, {"prompt": "hello"}, 24) != base
    assert base[0][0].isupper()


@pytest.mark.parametrize(
    ("input", "length"),
    [
        ({}, 24),
        ({"max_tokens": 5}, 5),
        ({"max_new_tokens": 100}, 24),
        ({"max_length": 0}, 0),
        ({"min_tokens": 40}, 40),
        ({"min_new_tokens": 40, "max_new_tokens": 30}, 30),
        ({"min_new_tokens": -1}, 24),
        ({"max_tokens": -1}, 24),
        ({"max_tokens": True}, 24),
        ({"min_tokens": 10**9}, 4096),
    ],
)
def test_answer_length_follows_the_length_inputs(input: dict[str, Any], length: int) -> None:
    assert answer_length(input, 24) == length
    assert len(generate_tokens(LLAMA3, input, 24)) == length


def test_expected_text_refuses_image_and_unknown_models() -> None:
    state = SimulatorState(SimulatorConfig())

    with pytest.raises(StateError, match="image model"):
        state.expected_text(SDXL, {})
    with pytest.raises(StateError, match="unknown model 'no/such'"):
        state.expected_text("no/such", {})


# -- input validation, against jsonschema as the oracle -------------------------------------

scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(10**6), 10**6)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=5)
)
json_values = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3)
    ),
    max_leaves=6,
)


def _strict_json_schema(model: str) -> dict[str, Any]:
    """The model's Input schema as plain JSON Schema, extra properties forbidden."""
    version = default_catalogue().models[model].latest_version
    return {
        **version.input_schema,
        "additionalProperties": False,
        "components": {"schemas": dict(version.components)},
    }


def _inputs_for(model: str) -> st.SearchStrategy[dict[str, Any]]:
    names = list(default_catalogue().models[model].latest_version.input_schema["properties"])
    keys = st.sampled_from([*names, "unknown_field"])
    return st.dictionaries(keys, json_values, max_size=4)


@pytest.mark.parametrize("model", [SDXL, LLAMA2, LLAMA3])
@given(data=st.data())
def test_validation_agrees_with_jsonschema(model: str, data: st.DataObject) -> None:
    input = data.draw(_inputs_for(model))
    version = default_catalogue().models[model].latest_version
    oracle = jsonschema.Draft7Validator(_strict_json_schema(model))

    problems = validate_object(
        input,
        version.input_schema,
        components=version.components,
        field="input",
        forbid_additional=True,
    )

    assert (problems == []) == oracle.is_valid(input), (input, problems)
    for problem in problems:
        assert problem.field == "input" or problem.field.split(".")[1] in input


# -- rate limits -------------------------------------------------------------------------------


def test_rate_limiter_allows_a_minute_of_burst_then_refills() -> None:
    now = [0.0]
    limiter = RateLimiter(60, SimClock(monotonic=lambda: now[0]))

    decisions = [limiter.take("a") for _ in range(61)]

    assert all(d.allowed for d in decisions[:60])
    assert [d.remaining for d in decisions[:3]] == [59, 58, 57]
    assert not decisions[60].allowed
    assert decisions[60].remaining == 0
    assert decisions[60].reset_seconds == 1
    assert limiter.take("b").allowed  # budgets are per key
    now[0] = 2.5
    assert [limiter.take("a").allowed for _ in range(3)] == [True, True, False]


def test_rate_limiter_reset_is_the_wait_for_one_more_request() -> None:
    limiter = RateLimiter(2, SimClock(monotonic=lambda: 0.0))
    limiter.take("a")
    limiter.take("a")

    refused = limiter.take("a")

    assert (refused.allowed, refused.reset_seconds) == (False, 30)
    assert limiter.peek("a") == refused


# -- behaviour, config, CLI ------------------------------------------------------------------------


def test_behaviour_patches_are_checked() -> None:
    base = ModelBehaviour()

    assert (
        base.patched({"output_tokens": 3, "token_interval_seconds": 1}).token_interval_seconds
        == 1.0
    )
    with pytest.raises(BehaviourError, match="unknown key"):
        base.patched({"tokens": 3})
    with pytest.raises(BehaviourError, match="must be an integer"):
        base.patched({"output_tokens": "3"})
    with pytest.raises(BehaviourError, match="must be >= 0"):
        base.patched({"predict_seconds": -1})
    with pytest.raises(BehaviourError, match="must be a boolean"):
        base.patched({"never_finishes": 1})


def test_config_file(tmp_path: Path) -> None:
    (tmp_path / "extra.yaml").write_text("models: []\n")
    config_path = tmp_path / "sim.yaml"
    config_path.write_text(
        textwrap.dedent(
            """
            catalogue_path: extra.yaml
            latency_seconds: 0.5
            require_token: false
            valid_tokens: [r8_a, r8_b]
            create_rate_per_minute: 10
            model_behaviour:
              stability-ai/sdxl: {predict_seconds: 0.1}
            """
        )
    )

    config = SimulatorConfig.from_file(config_path)

    assert config.catalogue_path == tmp_path / "extra.yaml"
    assert (config.latency_seconds, config.require_token, config.create_rate_per_minute) == (
        0.5,
        False,
        10,
    )
    assert config.valid_tokens == frozenset({"r8_a", "r8_b"})
    assert SimulatorState(config).behaviour(SDXL).predict_seconds == 0.1


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("latency: 1\n", "unknown key"),
        ("latency_seconds: fast\n", "latency_seconds must be a number"),
        ("latency_seconds: -1\n", "latency_seconds must be >= 0"),
        ("create_rate_per_minute: 0\n", "at least 1"),
        ("tls_certfile: cert.pem\n", "together"),
        ("- a list\n", "must be a mapping"),
        ("valid_tokens: r8_a\n", "list of strings"),
        ("key: [unclosed\n", "cannot read"),
    ],
)
def test_bad_config_files_say_what_to_fix(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "sim.yaml"
    path.write_text(text)

    with pytest.raises(ConfigError, match=message):
        SimulatorConfig.from_file(path)


def test_config_names_unknown_models_and_bad_behaviour() -> None:
    with pytest.raises(ConfigError, match="not in the catalogue"):
        SimulatorState(SimulatorConfig(model_behaviour={"no/such": {}}))
    with pytest.raises(ConfigError, match="output_tokens"):
        SimulatorState(SimulatorConfig(model_behaviour={SDXL: {"output_tokens": "many"}}))


def test_cli_flags_layer_over_the_config_file(tmp_path: Path) -> None:
    config_path = tmp_path / "sim.yaml"
    config_path.write_text("latency_seconds: 0.5\ncold_boot_seconds: 3\n")
    parser = argparse.ArgumentParser()
    add_simulate_arguments(parser)

    args = parser.parse_args(
        ["--config", str(config_path), "--cold-boot-seconds", "7", "--token-interval", "0.001",
         "--no-auth", "--token", "r8_a", "--token", "r8_b", "--port", "9000"]
    )  # fmt: skip
    config = config_from_args(args)

    assert (args.host, args.port) == ("127.0.0.1", 9000)
    assert config.latency_seconds == 0.5  # from the file
    assert config.cold_boot_seconds == 7  # the flag wins
    assert config.token_interval_seconds == 0.001
    assert config.require_token is False
    assert config.valid_tokens == frozenset({"r8_a", "r8_b"})


def test_cli_defaults_match_the_config_defaults() -> None:
    parser = argparse.ArgumentParser()
    add_simulate_arguments(parser)

    args = parser.parse_args([])

    assert config_from_args(args) == SimulatorConfig()
    assert (args.host, args.port) == ("127.0.0.1", 8080)


# -- catalogue -------------------------------------------------------------------------------

_EXTRA_MODEL = """
models:
  - name: acme/echo
    kind: text
    official: true
    behaviour: {output_tokens: 4, streams: false}
    versions:
      - id: "%s"
        created_at: "2024-01-01T00:00:00Z"
        cog_version: "0.9.0"
        input:
          type: object
          properties:
            prompt: {type: string}
        output: {type: array, items: {type: string}}
deployments:
  - name: acme/echo-prod
    model: acme/echo
  - name: acme/sdxl-too
    model: stability-ai/sdxl
"""


def test_a_catalogue_file_adds_models_and_deployments(tmp_path: Path) -> None:
    path = tmp_path / "catalogue.yaml"
    path.write_text(_EXTRA_MODEL % ("ab" * 32))

    catalogue = load_catalogue(path)

    echo = catalogue.models["acme/echo"]
    assert (echo.official, echo.behaviour.output_tokens, echo.behaviour.streams) == (True, 4, False)
    assert catalogue.deployments["acme/echo-prod"].version == "ab" * 32
    sdxl_version = catalogue.models[SDXL].latest_version.id
    assert catalogue.deployments["acme/sdxl-too"].version == sdxl_version
    assert LLAMA3 in catalogue.models  # the defaults stay


@pytest.mark.parametrize(
    ("replace", "message"),
    [
        (("ab" * 32, "AB" * 32), "64 lowercase hex"),
        (("kind: text", "kind: audio"), "kind must be 'text' or 'image'"),
        (("model: acme/echo", "model: acme/missing"), "acme/missing is not in the catalogue"),
        (("{output_tokens: 4, streams: false}", "{tokens: 4}"), "unknown key"),
        (("{type: string}", "{allOf: [{$ref: '#/components/schemas/Nope'}]}"), "unresolvable"),
        (("official: true", "oficial: true"), "unknown key"),
        (("name: acme/echo\n", "name: echo\n"), "owner/name"),
    ],
)  # fmt: skip
def test_bad_catalogue_files_say_what_to_fix(
    tmp_path: Path, replace: tuple[str, str], message: str
) -> None:
    path = tmp_path / "catalogue.yaml"
    path.write_text((_EXTRA_MODEL % ("ab" * 32)).replace(*replace, 1))

    with pytest.raises(CatalogueError, match=message):
        load_catalogue(path)


def test_a_version_id_may_belong_to_one_model_only(tmp_path: Path) -> None:
    path = tmp_path / "catalogue.yaml"
    llama3_version = default_catalogue().models[LLAMA3].latest_version.id
    path.write_text(_EXTRA_MODEL % llama3_version)

    with pytest.raises(CatalogueError, match="listed under both"):
        load_catalogue(path)
