"""Building a prediction's `input`: precedence, prompt formatting and schema checks.

Precedence is the request, then the alias configuration, then the environment; an
unset parameter is not sent, and an explicit zero wins. With the model's schema at
hand, a default the model does not take is dropped (so a global REPLICATE_SEED does
not break models without `seed`), a length limit is renamed to the model's own name
for it, and a parameter the caller asked for that the model cannot take is refused
before any prediction is created.
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Mapping
from dataclasses import dataclass

from inference_gateway.domain import InputImage
from inference_gateway.errors import FieldViolation, InvalidArgument
from inference_gateway.schemas import InputSchema

__all__ = [
    "LENGTH_INPUTS",
    "ModelInput",
    "apply_schema",
    "image_data_uri",
    "layer_inputs",
]

_LOGGER = logging.getLogger(__name__)
# The names models use for the same generation limit; renamed to whichever a schema takes.
LENGTH_INPUTS = ("max_new_tokens", "max_tokens", "max_length")
MAX_DATA_URI_BYTES = 1024 * 1024
_MAX_LISTED = 40


@dataclass(frozen=True, slots=True)
class ModelInput:
    """An input under construction: the values, and which of them the caller asked for."""

    values: dict[str, object]
    explicit: frozenset[str]


def _normalise(value: object) -> object:
    # Stop sequences travel as Replicate's LLMs expect them: one comma-separated string.
    if isinstance(value, list | tuple) and all(isinstance(item, str) for item in value):
        return ",".join(value)
    return value


def layer_inputs(explicit: Mapping[str, object], *defaults: Mapping[str, object]) -> ModelInput:
    """Layers explicit values over defaults (earlier defaults win over later ones)."""
    values: dict[str, object] = {}
    for layer in reversed(defaults):
        values.update(layer)
    values.update(explicit)
    if "stop_sequences" in values:
        values["stop_sequences"] = _normalise(values["stop_sequences"])
    return ModelInput(values, frozenset(explicit))


def _listing(schema: InputSchema) -> str:
    names = schema.names()
    shown = ", ".join(names[:_MAX_LISTED])
    return shown + (f" and {len(names) - _MAX_LISTED} more" if len(names) > _MAX_LISTED else "")


def apply_schema(model_input: ModelInput, schema: InputSchema, *, model: str) -> dict[str, object]:
    """Fits an input to the model's schema, or refuses what the caller asked for by name."""
    values = dict(model_input.values)
    explicit = set(model_input.explicit)
    # The caller's own limit goes first, and may take the place of a default.
    for name in sorted(LENGTH_INPUTS, key=lambda n: n not in explicit):
        if name in values and not schema.accepts(name):
            mine = name in explicit
            target = next(
                (
                    n
                    for n in LENGTH_INPUTS
                    if schema.accepts(n) and (n not in values or (mine and n not in explicit))
                ),
                None,
            )
            if target is not None:
                values[target] = values.pop(name)
                if mine:
                    explicit.discard(name)
                    explicit.add(target)
    violations: list[FieldViolation] = []
    for name in list(values):
        field = schema.fields.get(name)
        problem = (
            f"model {model} does not accept {name!r}; it accepts: {_listing(schema)}"
            if field is None
            else None
        )
        if field is not None:
            detail = field.problem(values[name])
            problem = f"{name} {detail}" if detail else None
        if problem is None:
            continue
        if name in explicit:
            violations.append(FieldViolation(name, problem))
        else:
            _LOGGER.debug("dropping default %s for %s: %s", name, model, problem)
            del values[name]
    if violations:
        raise InvalidArgument(
            "; ".join(v.description for v in violations),
            reason="INPUT_NOT_ACCEPTED",
            metadata={"model": model, "fields": ",".join(v.field for v in violations)},
            violations=tuple(violations),
        )
    return values


def image_data_uri(image: InputImage, index: int) -> str:
    """An input image as Replicate takes it: its https URL, or its bytes as a data URI."""
    field = f"input_images[{index}]"
    if image.uri and image.data:
        raise InvalidArgument(
            f"{field}: give either uri or data, not both",
            reason="INVALID_INPUT_IMAGE",
            violations=(FieldViolation(field, "both uri and data are set"),),
        )
    if image.uri:
        if not image.uri.startswith(("https://", "data:")):
            raise InvalidArgument(
                f"{field}.uri must be an https:// or data: URI",
                reason="INVALID_INPUT_IMAGE",
                violations=(FieldViolation(f"{field}.uri", "not an https or data URI"),),
            )
        return image.uri
    if not image.data:
        raise InvalidArgument(
            f"{field}: give the image as uri or data",
            reason="INVALID_INPUT_IMAGE",
            violations=(FieldViolation(field, "neither uri nor data is set"),),
        )
    if len(image.data) > MAX_DATA_URI_BYTES:
        raise InvalidArgument(
            f"{field}.data is {len(image.data)} bytes; Replicate takes inline images up to "
            f"{MAX_DATA_URI_BYTES} bytes: pass a URL for larger ones",
            reason="INPUT_IMAGE_TOO_LARGE",
            violations=(FieldViolation(f"{field}.data", "too large for a data URI"),),
        )
    mime = image.mime_type or "application/octet-stream"
    return f"data:{mime};base64,{base64.b64encode(image.data).decode()}"
