"""Plain requests and results: what the core takes and gives, free of protobuf and HTTP."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from inference_gateway.config import CallerConfig
from inference_gateway.model_ids import EndpointKind, Task
from inference_gateway.prompts import ChatMessage

__all__ = [
    "AliasInfo",
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
]


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
