"""Plain requests and results: what the core takes and gives, free of protobuf and HTTP."""

from __future__ import annotations

import base64
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from inference_gateway.config import CallerConfig
from inference_gateway.model_ids import EndpointKind, Task
from inference_gateway.pricing import Cost
from inference_gateway.prompts import ChatMessage

__all__ = [
    "AliasInfo",
    "CacheMode",
    "ImageOutput",
    "ImageRequest",
    "ImageResult",
    "InputImage",
    "PredictionSummary",
    "RequestId",
    "StreamEnd",
    "StreamProgress",
    "StreamStart",
    "TextDelta",
    "TextRequest",
    "TextResult",
    "dump_result",
    "load_result",
]


class CacheMode(Enum):
    # The alias decides (its `cache:` setting).
    DEFAULT = "default"
    # Cache this request though the alias does not opt in (still only when reproducible).
    USE = "use"
    # A fresh prediction, not stored either.
    BYPASS = "bypass"


@dataclass(frozen=True, slots=True)
class RequestId:
    """An AIP-155 request_id, with a digest of everything else its request says.

    Repeats are recognised by `value`; `fingerprint` tells a repeat from a different
    request that reuses the id.
    """

    value: str
    fingerprint: str


@dataclass(frozen=True, slots=True)
class TextRequest:
    model: str
    prompt: str | None = None
    messages: tuple[ChatMessage, ...] = ()
    # Typed parameters the caller set explicitly, by Replicate input name.
    parameters: Mapping[str, object] = field(default_factory=dict)
    extra_input: Mapping[str, object] = field(default_factory=dict)
    prefix: str | None = None
    suffix: str | None = None
    template: str | None = None
    # Who asks, as the transport authenticated it; the core refuses a request without one.
    caller: CallerConfig | None = None
    request_id: RequestId | None = None
    # Only the model asked for: no fallback, no hedge (evaluations, pinned versions).
    no_fallbacks: bool = False
    cache: CacheMode = CacheMode.DEFAULT


@dataclass(frozen=True, slots=True)
class InputImage:
    input_name: str
    uri: str | None = None
    data: bytes | None = None
    mime_type: str | None = None


@dataclass(frozen=True, slots=True)
class ImageRequest:
    model: str
    prompt: str
    parameters: Mapping[str, object] = field(default_factory=dict)
    extra_input: Mapping[str, object] = field(default_factory=dict)
    input_images: tuple[InputImage, ...] = ()
    include_data: bool = False
    # Who asks, as the transport authenticated it; the core refuses a request without one.
    caller: CallerConfig | None = None
    request_id: RequestId | None = None
    # Only the model asked for: no fallback, no hedge (evaluations, pinned versions).
    no_fallbacks: bool = False
    cache: CacheMode = CacheMode.DEFAULT


@dataclass(frozen=True, slots=True)
class PredictionSummary:
    id: str
    model: str
    version: str
    status: str
    queue_seconds: float | None
    predict_seconds: float | None
    total_seconds: float
    cold_boot: bool
    input_tokens: int | None = None
    output_tokens: int | None = None
    # The alias or model id that answered, and whether as asked, a fallback or a hedge.
    answered_by: str = ""
    role: str = "primary"
    # What the call cost: the prediction's estimate, or nothing for a cache hit.
    cost: Cost | None = None


@dataclass(frozen=True, slots=True)
class TextResult:
    text: str
    prediction: PredictionSummary
    template: str


@dataclass(frozen=True, slots=True)
class StreamStart:
    template: str


@dataclass(frozen=True, slots=True)
class TextDelta:
    text: str


@dataclass(frozen=True, slots=True)
class StreamProgress:
    """Where a prediction stands before its first text: starting (booting) or processing."""

    prediction_id: str
    status: str
    # Since the gateway created it.
    seconds: float
    model: str
    role: str


@dataclass(frozen=True, slots=True)
class StreamEnd:
    prediction: PredictionSummary


@dataclass(frozen=True, slots=True)
class ImageOutput:
    uri: str
    mime_type: str
    data: bytes | None = None


@dataclass(frozen=True, slots=True)
class ImageResult:
    images: tuple[ImageOutput, ...]
    prediction: PredictionSummary


@dataclass(frozen=True, slots=True)
class AliasInfo:
    alias: str
    model: str
    endpoint_kind: EndpointKind
    task: Task
    defaults: Mapping[str, object]
    template: str


def dump_result(result: TextResult | ImageResult) -> dict[str, Any]:
    """A result as JSON, for the records that keep one (operations, the response cache)."""
    summary: dict[str, Any] = {
        name: getattr(result.prediction, name) for name in PredictionSummary.__dataclass_fields__
    }
    cost = result.prediction.cost
    summary["cost"] = None if cost is None else cost.to_json()
    if isinstance(result, TextResult):
        return {"text": result.text, "template": result.template, "prediction": summary}
    images = [
        {
            "uri": image.uri,
            "mime_type": image.mime_type,
            "data": None if image.data is None else base64.b64encode(image.data).decode(),
        }
        for image in result.images
    ]
    return {"images": images, "prediction": summary}


def load_result(data: Mapping[str, Any]) -> TextResult | ImageResult:
    fields = dict(data["prediction"])
    cost = fields.pop("cost", None)
    summary = PredictionSummary(**fields, cost=None if cost is None else Cost.from_json(cost))
    if "text" in data:
        return TextResult(data["text"], summary, data["template"])
    images = tuple(
        ImageOutput(
            uri=image["uri"],
            mime_type=image["mime_type"],
            data=None if image["data"] is None else base64.b64decode(image["data"]),
        )
        for image in data["images"]
    )
    return ImageResult(images, summary)
