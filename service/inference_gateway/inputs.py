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
import re
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from inference_gateway.domain import InputImage
from inference_gateway.errors import FieldViolation, InvalidArgument
from inference_gateway.schemas import ModelSchema

__all__ = [
    "LENGTH_INPUTS",
    "ModelInput",
    "apply_schema",
    "image_data_uri",
    "is_data_uri",
    "layer_inputs",
]

_LOGGER = logging.getLogger(__name__)
# The names models use for the same generation limit; renamed to whichever a schema takes.
LENGTH_INPUTS = ("max_new_tokens", "max_tokens", "max_length")
_MAX_LISTED = 40
# A refusal describes this many bad inputs at most, and counts the rest.
_MAX_VIOLATIONS = 10
# RFC 6838: a type and a subtype of at most 127 characters each.
_MAX_MIME_CHARS = 255
_MIME_TYPE = re.compile(r"[A-Za-z0-9][\w!#$&^.+-]*/[A-Za-z0-9][\w!#$&^.+-]*", re.ASCII)
# The leading bytes of the image formats models take.
_SIGNATURES = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
)


@dataclass(frozen=True, slots=True)
class ModelInput:
    """An input under construction: the values, and which of them the caller asked for.

    `explicit` maps each input the caller set to the request field it came from
    (`max_new_tokens`, `messages`, `extra_input.seed`, `input_images[0]`), so a refusal
    names what the caller wrote even after the input is renamed for the model.
    """

    values: dict[str, object]
    explicit: Mapping[str, str]


def _normalise(value: object) -> object:
    # Stop sequences travel as Replicate's LLMs expect them: one comma-separated string.
    if isinstance(value, list | tuple) and all(isinstance(item, str) for item in value):
        return ",".join(value)
    return value


def layer_inputs(
    explicit: Mapping[str, object],
    *defaults: Mapping[str, object],
    fields: Mapping[str, str] | None = None,
) -> ModelInput:
    """Layers explicit values over defaults (earlier defaults win over later ones).

    `fields` names the request field each explicit input came from, where that is not
    the input's own name.
    """
    values: dict[str, object] = {}
    for layer in reversed(defaults):
        values.update(layer)
    values.update(explicit)
    if "stop_sequences" in values:
        values["stop_sequences"] = _normalise(values["stop_sequences"])
    named = fields or {}
    return ModelInput(values, {name: named.get(name, name) for name in explicit})


def _listing(schema: ModelSchema) -> str:
    names = schema.names()
    shown = ", ".join(names[:_MAX_LISTED])
    return shown + (f" and {len(names) - _MAX_LISTED} more" if len(names) > _MAX_LISTED else "")


def apply_schema(model_input: ModelInput, schema: ModelSchema, *, model: str) -> dict[str, object]:
    """Fits an input to the model's schema, or refuses what the caller asked for by name.

    Values that fit are sent in the field's JSON type (a Struct's whole doubles as ints
    for integer inputs, numbers as floats).
    """
    values = dict(model_input.values)
    explicit = dict(model_input.explicit)
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
                    explicit[target] = explicit.pop(name)
    violations: list[FieldViolation] = []
    refused = 0
    for name in list(values):
        field = schema.fields.get(name)
        where = explicit.get(name, name)
        if field is None:
            problem: str | None = (
                f"model {model} does not accept {name!r}; it accepts: {_listing(schema)}"
            )
        else:
            detail = field.problem(values[name])
            renamed = f" (this model's {name})" if where != name else ""
            problem = f"{where}{renamed} {detail}" if detail else None
        if problem is None:
            values[name] = field.typed(values[name]) if field is not None else values[name]
        elif name in explicit:
            refused += 1
            if len(violations) < _MAX_VIOLATIONS:  # a million bad keys make one short answer
                violations.append(FieldViolation(where, problem))
        else:
            _LOGGER.debug("dropping default %s for %s: %s", name, model, problem)
            del values[name]
    if violations:
        more = refused - len(violations)
        raise InvalidArgument(
            "; ".join(v.description for v in violations)
            + (f"; and {more} more inputs the model does not take" if more else ""),
            reason="INPUT_NOT_ACCEPTED",
            metadata={"model": model, "fields": ",".join(v.field for v in violations)},
            violations=tuple(violations),
        )
    return values


def image_data_uri(image: InputImage, index: int) -> str:
    """An input image as Replicate takes it: its https URL, or its bytes as a data URI.

    Its size was checked with the request's other limits (`RequestLimits`), before this.
    """
    field = f"input_images[{index}]"
    if image.uri and image.data:
        raise InvalidArgument(
            f"{field}: give either uri or data, not both",
            reason="INVALID_INPUT_IMAGE",
            violations=(FieldViolation(field, "both uri and data are set"),),
        )
    if image.uri:
        if not _is_https_url(image.uri) and not (is_data_uri(image.uri) and "," in image.uri):
            raise InvalidArgument(
                f"{field}.uri must be an https:// or data: URI (https://host/path.png)",
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
    if image.mime_type and (
        len(image.mime_type) > _MAX_MIME_CHARS or not _MIME_TYPE.fullmatch(image.mime_type)
    ):
        # It goes into the data URI's header, where a "," or ";" would corrupt the URI.
        raise InvalidArgument(
            f"{field}.mime_type {image.mime_type[:80]!r} is not a MIME type like image/png",
            reason="INVALID_INPUT_IMAGE",
            violations=(FieldViolation(f"{field}.mime_type", "not type/subtype"),),
        )
    mime = image.mime_type or _sniff_type(image.data)
    return f"data:{mime};base64,{base64.b64encode(image.data).decode()}"


def _is_https_url(uri: str) -> bool:
    try:
        parts = urlsplit(uri)
    except ValueError:
        return False
    return parts.scheme == "https" and bool(parts.hostname)


def is_data_uri(text: str) -> bool:
    """Whether `text` is a data: URI (RFC 2397; the scheme is case-insensitive)."""
    return text[:5].lower() == "data:"


def _sniff_type(data: bytes) -> str:
    """The image type `data` starts like, so bytes sent without mime_type still say it."""
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    for signature, mime in _SIGNATURES:
        if data.startswith(signature):
            return mime
    return "application/octet-stream"
