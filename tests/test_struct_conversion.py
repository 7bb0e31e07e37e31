"""extra_input as protobuf carries it (a Struct of doubles) and as the gateway reads it."""

from __future__ import annotations

import math
from typing import Any

import pytest
from google.protobuf import struct_pb2
from hypothesis import given
from hypothesis import strategies as st

from inference_gateway.access import ANONYMOUS
from inference_gateway.errors import InvalidArgument
from inference_gateway.grpc_api.servicer import text_request
from inference_gateway_protos.inference.gateway.v1 import gateway_pb2 as pb

EXACT = 2**53  # the README: whole doubles within ±2^53 become integers

finite = st.floats(allow_nan=False, allow_infinity=False)
json_values = st.recursive(
    st.none() | st.booleans() | st.text(max_size=5) | finite | st.integers(-(2**60), 2**60),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=4), inner, max_size=4)
    ),
    max_leaves=25,
)


def expected(value: Any) -> Any:
    """What the gateway should read: a Struct holds every number as a double."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int | float):
        number = float(value)
        return int(number) if number.is_integer() and abs(number) <= EXACT else number
    if isinstance(value, list):
        return [expected(item) for item in value]
    return {key: expected(item) for key, item in value.items()}


def read(extra: dict[str, Any]) -> dict[str, object]:
    message = struct_pb2.Struct()
    message.update(extra)
    request = pb.GenerateTextRequest(model="m", prompt="p", extra_input=message)
    return dict(text_request(request, ANONYMOUS).extra_input)


@given(st.dictionaries(st.text(max_size=4), json_values, max_size=4))
def test_any_json_reads_back_with_exact_integers_and_floats_for_the_rest(
    extra: dict[str, Any],
) -> None:
    got = read(extra)
    assert got == expected(extra)
    # Types too: 1.0 == 1 would hide an integer sent as a float.
    assert typed(got) == typed(expected(extra))


def typed(value: Any) -> Any:
    if isinstance(value, dict):
        return sorted((key, typed(item)) for key, item in value.items())
    if isinstance(value, list):
        return [typed(item) for item in value]
    return (type(value).__name__, value)


def _with_nan_at(value: Any, path: list[int]) -> tuple[Any, str]:
    """`value` with NaN put at `path` (as far as it leads), and that path as written."""
    if not path or not isinstance(value, list | dict) or not value:
        return math.nan, ""
    step = path[0]
    if isinstance(value, list):
        index = step % len(value)
        copy = list(value)
        copy[index], rest = _with_nan_at(value[index], path[1:])
        return copy, f"[{index}]{rest}"
    keys = sorted(value)
    key = keys[step % len(keys)]
    inner, rest = _with_nan_at(value[key], path[1:])
    return {**value, key: inner}, f".{key}{rest}"


@given(
    extra=st.dictionaries(st.text(min_size=1, max_size=4), json_values, min_size=1, max_size=3),
    path=st.lists(st.integers(0, 10), max_size=6),
    bad=st.sampled_from([math.nan, math.inf, -math.inf]),
)
def test_a_non_finite_number_anywhere_is_refused_at_its_path(
    extra: dict[str, Any], path: list[int], bad: float
) -> None:
    placed, where = _with_nan_at(extra, path)
    if where == "":
        return  # nothing nested to place it in
    placed = _replace_nan(placed, bad)
    with pytest.raises(InvalidArgument) as caught:
        read(placed)
    assert caught.value.reason == "NON_FINITE_NUMBER"
    assert [v.field for v in caught.value.violations] == [f"extra_input{where}"]


def _replace_nan(value: Any, bad: float) -> Any:
    if isinstance(value, float) and math.isnan(value):
        return bad
    if isinstance(value, list):
        return [_replace_nan(item, bad) for item in value]
    if isinstance(value, dict):
        return {key: _replace_nan(item, bad) for key, item in value.items()}
    return value
