"""Building a prediction's input: precedence, length names, schema checks and image URIs."""

from __future__ import annotations

import base64

import pytest
from hypothesis import given
from hypothesis import strategies as st

from inference_gateway.domain import InputImage
from inference_gateway.errors import InvalidArgument
from inference_gateway.inputs import (
    LENGTH_INPUTS,
    ModelInput,
    apply_schema,
    image_data_uri,
    layer_inputs,
)
from inference_gateway.schemas import InputField, ModelSchema


def schema_of(*fields: InputField) -> ModelSchema:
    return ModelSchema({f.name: f for f in fields})


LLAMA = schema_of(
    InputField("prompt", "string"),
    InputField("max_new_tokens", "integer", minimum=1),
    InputField("temperature", "number", minimum=0, maximum=5),
    InputField("top_p", "number", minimum=0, maximum=1),
)
MODEL = "meta/llama"

# --- precedence -----------------------------------------------------------------------------

_KEYS = st.sampled_from(["prompt", "seed", "top_k", "temperature", "max_length", "x"])
_VALUES = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text()
_LAYER = st.dictionaries(_KEYS, _VALUES, max_size=6)


@given(explicit=_LAYER, defaults=st.lists(_LAYER, max_size=4))
def test_explicit_beats_earlier_defaults_which_beat_later_ones(
    explicit: dict[str, object], defaults: list[dict[str, object]]
) -> None:
    layered = layer_inputs(explicit, *defaults)
    expected: dict[str, object] = {}
    for layer in [explicit, *defaults]:
        for key, value in layer.items():
            expected.setdefault(key, value)
    assert layered.values == expected
    assert layered.explicit == {name: name for name in explicit}


def test_an_explicit_zero_wins_and_unset_parameters_are_not_invented() -> None:
    layered = layer_inputs({"temperature": 0, "seed": 0}, {"temperature": 0.7}, {"top_p": 0.9})
    assert layered.values == {"temperature": 0, "seed": 0, "top_p": 0.9}


@pytest.mark.parametrize(
    ("stop", "sent"),
    [(["</s>", "\n\n"], "</s>,\n\n"), ([], ""), ("a,b", "a,b"), ([1, "a"], [1, "a"])],
)
def test_stop_sequences_travel_as_one_comma_separated_string(stop: object, sent: object) -> None:
    assert layer_inputs({"stop_sequences": stop}).values["stop_sequences"] == sent
    assert layer_inputs({}, {"stop_sequences": stop}).values["stop_sequences"] == sent


# --- schema application ---------------------------------------------------------------------


def test_defaults_the_model_does_not_take_are_dropped() -> None:
    model_input = layer_inputs({"prompt": "hi"}, {"seed": 42, "temperature": 0.7})
    assert apply_schema(model_input, LLAMA, model=MODEL) == {"prompt": "hi", "temperature": 0.7}
    assert model_input.values == {"prompt": "hi", "seed": 42, "temperature": 0.7}


def test_an_explicit_input_the_model_does_not_take_is_refused_with_the_accepted_names() -> None:
    model_input = layer_inputs({"prompt": "hi", "seed": 42, "top_k": 5})
    with pytest.raises(InvalidArgument) as caught:
        apply_schema(model_input, LLAMA, model=MODEL)
    error = caught.value
    assert error.reason == "INPUT_NOT_ACCEPTED"
    assert error.metadata == {"model": MODEL, "fields": "seed,top_k"}
    assert [v.field for v in error.violations] == ["seed", "top_k"]
    accepted = "max_new_tokens, prompt, temperature, top_p"
    assert error.message == (
        f"model meta/llama does not accept 'seed'; it accepts: {accepted}; "
        f"model meta/llama does not accept 'top_k'; it accepts: {accepted}"
    )


def test_bad_values_are_refused_when_asked_for_and_dropped_when_defaulted() -> None:
    with pytest.raises(InvalidArgument) as caught:
        apply_schema(layer_inputs({"temperature": 9}), LLAMA, model=MODEL)
    assert caught.value.violations[0].description == "temperature must be at most 5"
    defaulted = layer_inputs({"prompt": "hi"}, {"temperature": 9, "top_p": "high"})
    assert apply_schema(defaulted, LLAMA, model=MODEL) == {"prompt": "hi"}


def test_the_accepted_names_are_cut_short_in_a_long_listing() -> None:
    wide = schema_of(*(InputField(f"in{n:02d}", None) for n in range(45)))
    with pytest.raises(InvalidArgument) as caught:
        apply_schema(layer_inputs({"nope": 1}), wide, model=MODEL)
    assert caught.value.message.endswith("in39 and 5 more")
    assert "in40" not in caught.value.message


def test_a_refusal_names_the_request_field_the_caller_used() -> None:
    takes_max_tokens = schema_of(InputField("max_tokens", "integer", minimum=1))
    model_input = layer_inputs(
        {"max_new_tokens": -3, "seed": 1}, fields={"seed": "extra_input.seed"}
    )
    with pytest.raises(InvalidArgument) as caught:
        apply_schema(model_input, takes_max_tokens, model=MODEL)
    described = {v.field: v.description for v in caught.value.violations}
    assert set(caught.value.metadata["fields"].split(",")) == set(described)
    assert (
        described["max_new_tokens"] == "max_new_tokens (this model's max_tokens) must be at least 1"
    )
    assert described["extra_input.seed"].startswith("model meta/llama does not accept 'seed'")


def test_a_million_unknown_inputs_make_one_short_refusal() -> None:
    model_input = layer_inputs({f"k{i}": i for i in range(100_000)})
    with pytest.raises(InvalidArgument) as caught:
        apply_schema(model_input, LLAMA, model=MODEL)
    assert len(caught.value.violations) == 10
    assert caught.value.message.endswith("and 99990 more inputs the model does not take")


@pytest.mark.parametrize(
    ("field", "value", "sent"),
    [
        (InputField("n", "integer"), 7.0, 7),
        (InputField("n", "integer"), 2.0**53, 2**53),
        (InputField("t", "number"), 1, 1.0),
        (InputField("t", "number"), True, True),  # refused by the type check, not turned
        (InputField("s", "string"), "7", "7"),
    ],
)
def test_a_value_that_fits_is_sent_in_the_fields_json_type(
    field: InputField, value: object, sent: object
) -> None:
    typed = field.typed(value)
    assert typed == sent
    assert type(typed) is type(sent)


@pytest.mark.parametrize("asked", [n for n in LENGTH_INPUTS if n != "max_new_tokens"])
def test_a_length_limit_takes_the_models_own_name(asked: str) -> None:
    values = apply_schema(layer_inputs({asked: 100}), LLAMA, model=MODEL)
    assert values == {"max_new_tokens": 100}
    defaulted = apply_schema(layer_inputs({}, {asked: 100}), LLAMA, model=MODEL)
    assert defaulted == {"max_new_tokens": 100}


def test_an_asked_for_length_replaces_a_default_under_the_models_name() -> None:
    model_input = layer_inputs({"max_length": 100}, {}, {"max_new_tokens": 512})
    assert apply_schema(model_input, LLAMA, model=MODEL) == {"max_new_tokens": 100}


def test_an_asked_for_length_wins_over_a_default_competing_for_the_same_name() -> None:
    takes_max_tokens = schema_of(InputField("max_tokens", "integer"))
    model_input = layer_inputs({"max_length": 100}, {"max_new_tokens": 512})
    assert apply_schema(model_input, takes_max_tokens, model=MODEL) == {"max_tokens": 100}


def test_a_default_length_never_replaces_an_asked_for_one() -> None:
    model_input = layer_inputs({"max_new_tokens": 100}, {"max_length": 512})
    assert apply_schema(model_input, LLAMA, model=MODEL) == {"max_new_tokens": 100}


def test_two_asked_for_lengths_for_one_name_refuse_the_second() -> None:
    model_input = layer_inputs({"max_length": 100, "max_tokens": 200})
    with pytest.raises(InvalidArgument) as caught:
        apply_schema(model_input, LLAMA, model=MODEL)
    assert [v.field for v in caught.value.violations] == ["max_length"]


def test_a_model_taking_several_length_names_gets_them_as_given() -> None:
    both = schema_of(InputField("max_length", "integer"), InputField("max_new_tokens", "integer"))
    model_input = layer_inputs({"max_length": 100}, {"max_new_tokens": 512})
    assert apply_schema(model_input, both, model=MODEL) == {
        "max_length": 100,
        "max_new_tokens": 512,
    }


_SCHEMAS = st.lists(
    st.builds(
        InputField,
        name=st.sampled_from(["prompt", "seed", "temperature", *LENGTH_INPUTS]),
        type=st.sampled_from([None, "integer", "number", "string"]),
        minimum=st.none() | st.integers(-5, 5).map(float),
    ),
    max_size=6,
).map(lambda fields: schema_of(*fields))
_INPUT_VALUES = st.integers(-10, 10) | st.text(max_size=3) | st.booleans()
_INPUTS = st.dictionaries(st.sampled_from(["prompt", "seed", *LENGTH_INPUTS]), _INPUT_VALUES)


def _applied(model_input: ModelInput, schema: ModelSchema) -> dict[str, object] | InvalidArgument:
    try:
        return apply_schema(model_input, schema, model=MODEL)
    except InvalidArgument as error:
        return error


@given(schema=_SCHEMAS, explicit=_INPUTS, defaults=_INPUTS)
def test_what_is_sent_always_fits_the_schema(
    schema: ModelSchema, explicit: dict[str, object], defaults: dict[str, object]
) -> None:
    result = _applied(layer_inputs(explicit, defaults), schema)
    if isinstance(result, InvalidArgument):
        # Only what the caller asked for is refused (a length under the model's name for it).
        asked = set(explicit) | (
            set(LENGTH_INPUTS) if set(explicit) & set(LENGTH_INPUTS) else set()
        )
        assert {v.field for v in result.violations} <= asked
        return
    for name, value in result.items():
        assert schema.accepts(name)
        assert schema.fields[name].problem(value) is None
    for name, value in explicit.items():
        if schema.accepts(name) and name not in LENGTH_INPUTS:
            assert result[name] == value


# --- input images ---------------------------------------------------------------------------


@pytest.mark.parametrize("uri", ["https://example.com/cat.png", "data:image/png;base64,iVBO"])
def test_an_image_uri_is_passed_through(uri: str) -> None:
    assert image_data_uri(InputImage("image", uri=uri), 0) == uri


def test_image_bytes_become_a_base64_data_uri() -> None:
    image = InputImage("image", data=b"\x89PNG\r\n", mime_type="image/png")
    assert image_data_uri(image, 0) == "data:image/png;base64,iVBORw0K"
    untyped = image_data_uri(InputImage("image", data=b"abc"), 0)
    assert untyped == "data:application/octet-stream;base64," + base64.b64encode(b"abc").decode()


@pytest.mark.parametrize(
    ("image", "reason", "field", "hint"),
    [
        (
            InputImage("image", uri="https://x/a.png", data=b"1"),
            "INVALID_INPUT_IMAGE",
            "input_images[2]",
            "not both",
        ),
        (
            InputImage("image", uri="http://x/a.png"),
            "INVALID_INPUT_IMAGE",
            "input_images[2].uri",
            "https:// or data:",
        ),
        (
            InputImage("image", uri="file:///etc/passwd"),
            "INVALID_INPUT_IMAGE",
            "input_images[2].uri",
            "https:// or data:",
        ),
        (
            InputImage("image", data=b"1", mime_type="image/" + "p" * 250),
            "INVALID_INPUT_IMAGE",
            "input_images[2].mime_type",
            "MIME type",
        ),
        (InputImage("image"), "INVALID_INPUT_IMAGE", "input_images[2]", "as uri or data"),
        (InputImage("image", data=b""), "INVALID_INPUT_IMAGE", "input_images[2]", "uri or data"),
    ],
)
def test_unusable_images_are_refused_by_position(
    image: InputImage, reason: str, field: str, hint: str
) -> None:
    with pytest.raises(InvalidArgument) as caught:
        image_data_uri(image, 2)
    assert caught.value.reason == reason
    assert [v.field for v in caught.value.violations] == [field]
    assert hint in caught.value.message


def test_model_input_is_a_plain_value() -> None:
    assert ModelInput({"a": 1}, {"a": "a"}) == ModelInput({"a": 1}, {"a": "a"})
