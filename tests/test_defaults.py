"""REPLICATE_* defaults: parsed whole and range-checked, or refused by name."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from inference_gateway.defaults import (
    ENV_VARIABLES,
    EnvDefaultsError,
    api_key_from_env,
    check_input_default,
    env_defaults,
)

NUMERIC = {
    "REPLICATE_MAX_LENGTH": int,
    "REPLICATE_MAX_NEW_TOKENS": int,
    "REPLICATE_TEMPERATURE": float,
    "REPLICATE_REPETITION_PENALTY": float,
    "REPLICATE_TOP_P": float,
    "REPLICATE_TOP_K": int,
    "REPLICATE_SEED": int,
}


@pytest.mark.parametrize(
    ("variable", "text", "input_name", "value"),
    [
        ("REPLICATE_MAX_LENGTH", "100", "max_length", 100),
        ("REPLICATE_MAX_LENGTH", "2147483647", "max_length", 2147483647),
        ("REPLICATE_MAX_NEW_TOKENS", " 12 ", "max_new_tokens", 12),
        ("REPLICATE_MAX_NEW_TOKENS", "1", "max_new_tokens", 1),
        ("REPLICATE_TEMPERATURE", "0.5", "temperature", 0.5),
        ("REPLICATE_TEMPERATURE", "0", "temperature", 0.0),
        ("REPLICATE_TEMPERATURE", "2", "temperature", 2.0),
        ("REPLICATE_REPETITION_PENALTY", "1.15", "repetition_penalty", 1.15),
        ("REPLICATE_TOP_P", "1e-1", "top_p", 0.1),
        ("REPLICATE_TOP_P", ".5", "top_p", 0.5),
        ("REPLICATE_TOP_P", "1", "top_p", 1.0),
        ("REPLICATE_TOP_P", "0", "top_p", 0.0),
        ("REPLICATE_TOP_K", "50", "top_k", 50),
        ("REPLICATE_TOP_K", "0", "top_k", 0),
        ("REPLICATE_TOP_K", "-1", "top_k", -1),
        ("REPLICATE_SEED", "-7", "seed", -7),
        ("REPLICATE_SEED", "+42", "seed", 42),
        ("REPLICATE_SEED", "9223372036854775807", "seed", 2**63 - 1),
        ("REPLICATE_STOP_SEQUENCES", "a, b,c", "stop_sequences", "a, b,c"),
        ("REPLICATE_STOP_SEQUENCES", "", "stop_sequences", ""),
        ("REPLICATE_SYSTEM_PROMPT", "  Be brief.\n", "system_prompt", "  Be brief.\n"),
        ("REPLICATE_SYSTEM_PROMPT", "", "system_prompt", ""),
    ],
)
def test_each_variable_sets_its_input(
    variable: str, text: str, input_name: str, value: object
) -> None:
    defaults = env_defaults({variable: text})
    assert defaults == {input_name: value}
    assert type(defaults[input_name]) is type(value)


def test_all_variables_together_and_nothing_else() -> None:
    environ = {
        "REPLICATE_MAX_LENGTH": "100",
        "REPLICATE_MAX_NEW_TOKENS": "12",
        "REPLICATE_TEMPERATURE": "0.5",
        "REPLICATE_REPETITION_PENALTY": "1.1",
        "REPLICATE_TOP_P": "0.9",
        "REPLICATE_TOP_K": "40",
        "REPLICATE_SEED": "7",
        "REPLICATE_STOP_SEQUENCES": "</s>",
        "REPLICATE_SYSTEM_PROMPT": "env sys",
        "REPLICATE_API_TOKEN": "r8_not_an_input",
        "REPLICATE_UNKNOWN": "1",
        "PATH": "/usr/bin",
    }
    assert env_defaults(environ) == {
        "max_length": 100,
        "max_new_tokens": 12,
        "temperature": 0.5,
        "repetition_penalty": 1.1,
        "top_p": 0.9,
        "top_k": 40,
        "seed": 7,
        "stop_sequences": "</s>",
        "system_prompt": "env sys",
    }


@pytest.mark.parametrize("variable", sorted(NUMERIC))
@pytest.mark.parametrize("text", ["", "   ", "\t\n"])
def test_empty_numeric_variables_count_as_unset(variable: str, text: str) -> None:
    assert env_defaults({variable: text}) == {}


@pytest.mark.parametrize(
    ("variable", "text", "accepted"),
    [
        ("REPLICATE_TEMPERATURE", "abc", "a number >= 0"),
        ("REPLICATE_TEMPERATURE", "0.5xyz", "a number >= 0"),
        ("REPLICATE_TEMPERATURE", "-0.1", "a number >= 0"),
        ("REPLICATE_TEMPERATURE", "nan", "a number >= 0"),
        ("REPLICATE_TEMPERATURE", "inf", "a number >= 0"),
        ("REPLICATE_TEMPERATURE", "1e999", "a number >= 0"),
        ("REPLICATE_TEMPERATURE", "1_0", "a number >= 0"),
        ("REPLICATE_TOP_P", "2", "a number from 0 to 1"),
        ("REPLICATE_TOP_P", "-0.5", "a number from 0 to 1"),
        ("REPLICATE_MAX_LENGTH", "12abc", "an integer from 1"),
        ("REPLICATE_MAX_LENGTH", "0", "an integer from 1"),
        ("REPLICATE_MAX_LENGTH", "100.9", "an integer from 1"),
        ("REPLICATE_MAX_LENGTH", "2147483648", "an integer from 1 to 2147483647"),
        ("REPLICATE_MAX_NEW_TOKENS", "-5", "an integer from 1"),
        ("REPLICATE_MAX_NEW_TOKENS", "١٢", "an integer from 1"),
        ("REPLICATE_REPETITION_PENALTY", "0", "a number > 0"),
        ("REPLICATE_TOP_K", "-2", "an integer from -1"),
        ("REPLICATE_TOP_K", "abc", "an integer from -1"),
        ("REPLICATE_SEED", "1.5", "a 64-bit integer"),
        ("REPLICATE_SEED", "9223372036854775808", "a 64-bit integer"),
        ("REPLICATE_SEED", "4 2", "a 64-bit integer"),
    ],
)
def test_bad_values_name_the_variable_value_and_range(
    variable: str, text: str, accepted: str
) -> None:
    with pytest.raises(EnvDefaultsError) as caught:
        env_defaults({variable: text})
    message = str(caught.value)
    assert message.startswith(f"{variable}={text!r}")
    assert accepted in message
    assert (caught.value.variable, caught.value.value) == (variable, text)


def test_the_first_bad_variable_stops_loading() -> None:
    with pytest.raises(EnvDefaultsError, match="REPLICATE_TOP_P"):
        env_defaults({"REPLICATE_TEMPERATURE": "0.5", "REPLICATE_TOP_P": "7"})


def test_every_documented_variable_is_handled() -> None:
    assert set(ENV_VARIABLES) == set(NUMERIC) | {
        "REPLICATE_STOP_SEQUENCES",
        "REPLICATE_SYSTEM_PROMPT",
    }


@pytest.mark.parametrize(
    ("environ", "key"),
    [
        ({"REPLICATE_API_TOKEN": "r8_token", "REPLICATE_API_KEY": "r8_key"}, "r8_token"),
        ({"REPLICATE_API_KEY": "r8_key"}, "r8_key"),
        ({"REPLICATE_API_TOKEN": "", "REPLICATE_API_KEY": "r8_key"}, "r8_key"),
        ({"REPLICATE_API_TOKEN": "", "REPLICATE_API_KEY": ""}, None),
        ({}, None),
    ],
)
def test_api_key_prefers_the_token_variable(environ: dict[str, str], key: str | None) -> None:
    assert api_key_from_env(environ) == key


@pytest.mark.parametrize(
    ("name", "value", "fine"),
    [
        ("temperature", 0.7, True),
        ("temperature", 1, True),
        ("temperature", -1, False),
        ("temperature", "hot", False),
        ("temperature", True, False),
        ("max_new_tokens", 256, True),
        ("max_new_tokens", 256.0, False),
        ("max_new_tokens", 0, False),
        ("top_p", 1.5, False),
        ("top_k", -1, True),
        ("seed", 2**64, False),
        ("stop_sequences", "a,b", True),
        ("stop_sequences", ["a", "b"], False),
        ("system_prompt", None, False),
        ("num_inference_steps", "anything", True),
    ],
)
def test_check_input_default_uses_the_same_ranges(name: str, value: object, fine: bool) -> None:
    problem = check_input_default(name, value)
    assert (problem is None) is fine
    if problem is not None:
        assert problem.startswith("expected ")


# --- properties --------------------------------------------------------------------------

number_like = st.text(alphabet="0123456789+-.eE _xa\t ", max_size=12)


@given(variable=st.sampled_from(sorted(NUMERIC)), text=st.one_of(st.text(), number_like))
def test_numeric_values_parse_whole_or_raise(variable: str, text: str) -> None:
    outcome: dict[str, object] | EnvDefaultsError
    try:
        outcome = env_defaults({variable: text})
    except EnvDefaultsError as error:
        outcome = error
    if isinstance(outcome, EnvDefaultsError):
        assert str(outcome).startswith(variable)
        return
    defaults = outcome
    if not defaults:
        assert not text.strip()
        return
    (value,) = defaults.values()
    # No half-parsing: Python reads the whole (stripped) text as the same number.
    assert value == NUMERIC[variable](text.strip())


@given(value=st.integers(min_value=1, max_value=2**31 - 1))
def test_every_integer_in_range_is_read_exactly(value: int) -> None:
    assert env_defaults({"REPLICATE_MAX_NEW_TOKENS": str(value)}) == {"max_new_tokens": value}


@given(value=st.floats(min_value=0, max_value=1))
def test_every_top_p_in_range_is_read_exactly(value: float) -> None:
    assert env_defaults({"REPLICATE_TOP_P": repr(value)}) == {"top_p": value}


@given(text=st.text())
def test_text_variables_are_sent_verbatim(text: str) -> None:
    environ = {"REPLICATE_STOP_SEQUENCES": text, "REPLICATE_SYSTEM_PROMPT": text}
    assert env_defaults(environ) == {"stop_sequences": text, "system_prompt": text}
