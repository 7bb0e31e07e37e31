"""The servicer only maps protobuf to plain Python and back; the core does the work."""

from __future__ import annotations

import hashlib
import math
import uuid
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import aclosing
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar, cast

import grpc
from google.longrunning import operations_pb2
from google.protobuf import any_pb2, duration_pb2, message_factory, struct_pb2, timestamp_pb2
from google.protobuf.descriptor import ServiceDescriptor
from google.protobuf.message import DecodeError, Message

from inference_gateway.accounting import UsageReport
from inference_gateway.config import CallerConfig
from inference_gateway.core import Gateway
from inference_gateway.domain import (
    CacheMode,
    ImageRequest,
    ImageResult,
    InputImage,
    PredictionSummary,
    RequestId,
    StreamEnd,
    StreamProgress,
    StreamStart,
    TextRequest,
    TextResult,
)
from inference_gateway.errors import FieldViolation, InvalidArgument
from inference_gateway.grpc_api.auth import Identify, Metadata
from inference_gateway.grpc_api.status import status_proto
from inference_gateway.model_ids import EndpointKind, Task
from inference_gateway.operations import Operations, OperationView
from inference_gateway.pricing import Cost, format_amount
from inference_gateway.prompts import ChatMessage
from inference_gateway.schemas import whole_number
from inference_gateway.warmup import WarmRequest
from inference_gateway_protos.inference.gateway.v1 import gateway_pb2 as pb
from inference_gateway_protos.inference.gateway.v1 import gateway_pb2_grpc as pb_grpc

__all__ = [
    "InferenceGatewayServicer",
    "Undecodable",
    "add_to_server",
    "decoded",
    "duration_seconds",
    "image_request",
    "operation_message",
    "text_request",
]

_M = TypeVar("_M", bound=Message)

if TYPE_CHECKING:  # grpc's generics exist only in its type stubs
    from inference_gateway.grpc_api._types import Context

_TEXT_PARAMETERS = (
    "temperature",
    "max_length",
    "max_new_tokens",
    "top_p",
    "top_k",
    "repetition_penalty",
    "system_prompt",
    "seed",
)
_IMAGE_PARAMETERS = ("width", "height", "refine", "apply_watermark", "num_inference_steps")
_STATUS = {
    "starting": pb.PREDICTION_STATUS_STARTING,
    "processing": pb.PREDICTION_STATUS_PROCESSING,
    "succeeded": pb.PREDICTION_STATUS_SUCCEEDED,
    "failed": pb.PREDICTION_STATUS_FAILED,
    "canceled": pb.PREDICTION_STATUS_CANCELED,
    "aborted": pb.PREDICTION_STATUS_ABORTED,
}
_ENDPOINT_KIND = {
    EndpointKind.OFFICIAL_MODEL: pb.ENDPOINT_KIND_OFFICIAL_MODEL,
    EndpointKind.VERSION: pb.ENDPOINT_KIND_VERSION,
    EndpointKind.DEPLOYMENT: pb.ENDPOINT_KIND_DEPLOYMENT,
}
_TASK = {Task.TEXT: pb.TASK_TEXT, Task.IMAGE: pb.TASK_IMAGE}
_ROLE = {
    "primary": pb.PREDICTION_ROLE_PRIMARY,
    "fallback": pb.PREDICTION_ROLE_FALLBACK,
    "hedge": pb.PREDICTION_ROLE_HEDGE,
}
_CACHE_MODE = {
    pb.CACHE_MODE_UNSPECIFIED: CacheMode.DEFAULT,
    pb.CACHE_MODE_USE: CacheMode.USE,
    pb.CACHE_MODE_BYPASS: CacheMode.BYPASS,
}


# protobuf parses at most 100 nested messages; each level of an extra_input object or list
# is three of them (Struct, its map entry, Value).
_STRUCT_LEVELS = 32


@dataclass(frozen=True, slots=True)
class Undecodable:
    """A request message protobuf could not parse, handed to the servicer to refuse.

    Raised inside gRPC's deserializer, the DecodeError would reach the caller as UNKNOWN
    before any handler ran; here it becomes an INVALID_ARGUMENT that says what to fix.
    """

    message_type: str
    detail: str

    def error(self) -> InvalidArgument:
        if "MaxDepth" in self.detail:
            return InvalidArgument(
                f"extra_input nests deeper than protobuf can parse (100 nested messages, "
                f"about {_STRUCT_LEVELS} levels of objects and lists); flatten it",
                reason="EXTRA_INPUT_TOO_DEEP",
                violations=(FieldViolation("extra_input", "nested too deeply to parse"),),
            )
        return InvalidArgument(
            f"the request is not a valid {self.message_type}: {self.detail}. Check the client "
            "sends this service's messages (strings must be UTF-8)",
            reason="UNDECODABLE_REQUEST",
            metadata={"messageType": self.message_type},
        )


def _decoder(message_class: type[Message]) -> Callable[[bytes], Message | Undecodable]:
    def decode(data: bytes) -> Message | Undecodable:
        try:
            return message_class.FromString(data)
        except DecodeError as error:
            return Undecodable(message_class.DESCRIPTOR.full_name, str(error))

    return decode


def decoded(request: _M | Undecodable) -> _M:
    if isinstance(request, Undecodable):
        raise request.error()
    return request


def add_to_server(
    servicer: object,
    server: grpc.aio.Server,
    service: ServiceDescriptor = pb.DESCRIPTOR.services_by_name["InferenceGateway"],
) -> None:
    """Registers a service as the generated code does, with decoders that hand a message
    protobuf cannot parse to the handler (as Undecodable) instead of failing inside gRPC."""
    handlers = {}
    for method in service.methods:
        request_class = message_factory.GetMessageClass(method.input_type)
        response_class = message_factory.GetMessageClass(method.output_type)
        make = (
            grpc.unary_stream_rpc_method_handler
            if method.server_streaming
            else grpc.unary_unary_rpc_method_handler
        )
        handlers[method.name] = make(
            getattr(servicer, method.name),
            request_deserializer=_decoder(request_class),
            response_serializer=response_class.SerializeToString,
        )
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler(service.full_name, handlers),)
    )


def _finite(number: float, where: str) -> float:
    """JSON, and so Replicate, has no NaN or infinity: refuse them here, by field."""
    if not math.isfinite(number):
        raise InvalidArgument(
            f"{where} is {number}; Replicate takes finite numbers only",
            reason="NON_FINITE_NUMBER",
            violations=(FieldViolation(where, "not a finite number"),),
        )
    return number


class _NotFinite(Exception):
    """A NaN or infinity inside a Struct; `path` grows as it leaves each container."""

    def __init__(self, number: float) -> None:
        super().__init__(number)
        self.number = number
        self.path = ""


def _plain(value: struct_pb2.Value) -> object:
    """A Struct value as JSON. Struct numbers are all doubles: whole ones a double holds
    exactly become integers, the rest stay floats (the model's schema has the last word).

    No path is built on the way down: a Struct may hold millions of values, and only a
    refusal needs to say where one sits.
    """
    kind = value.WhichOneof("kind")
    if kind == "number_value":
        number = value.number_value
        if not math.isfinite(number):
            raise _NotFinite(number)
        whole = whole_number(number)
        return number if whole is None else whole
    if kind == "list_value":
        items: list[object] = []
        try:
            for item in value.list_value.values:
                items.append(_plain(item))
        except _NotFinite as bad:
            bad.path = f"[{len(items)}]{bad.path}"
            raise
        return items
    if kind == "struct_value":
        return _fields(value.struct_value)
    if kind == "string_value":
        return value.string_value
    if kind == "bool_value":
        return value.bool_value
    return None


def _fields(message: struct_pb2.Struct) -> dict[str, object]:
    plain: dict[str, object] = {}
    for key, item in message.fields.items():
        try:
            plain[key] = _plain(item)
        except _NotFinite as bad:
            bad.path = f".{key}{bad.path}"
            raise
    return plain


def _struct(message: struct_pb2.Struct, where: str) -> dict[str, object]:
    try:
        return _fields(message)
    except _NotFinite as bad:
        _finite(bad.number, where + bad.path)
        raise  # not reached: _finite refuses what is not finite


# google.protobuf.Duration's range: about 10,000 years either way.
_MAX_DURATION_SECONDS = 315_576_000_000


def duration_seconds(duration: duration_pb2.Duration, field: str) -> float:
    """A Duration field in seconds; one outside protobuf's range is refused here, since
    ToTimedelta() would overflow on it into an internal error."""
    if abs(duration.seconds) > _MAX_DURATION_SECONDS or abs(duration.nanos) > 999_999_999:
        raise InvalidArgument(
            f"{field} is not a valid google.protobuf.Duration (seconds within "
            f"±{_MAX_DURATION_SECONDS}, nanos within ±999,999,999)",
            reason="INVALID_DURATION",
            metadata={"field": field},
            violations=(FieldViolation(field, "outside the range of a Duration"),),
        )
    return duration.seconds + duration.nanos / 1e9


def _set_fields(message: Any, names: tuple[str, ...]) -> dict[str, object]:
    values = {name: getattr(message, name) for name in names if message.HasField(name)}
    for name, value in values.items():
        if isinstance(value, float):
            _finite(value, name)
    return values


def _optional(message: Any, name: str) -> str | None:
    return str(getattr(message, name)) if message.HasField(name) else None


def _chat_message(index: int, message: pb.ChatMessage) -> ChatMessage:
    if message.content and message.parts:
        field = f"messages[{index}]"
        raise InvalidArgument(
            f"{field} has both content and parts; give one of them",
            reason="INVALID_MESSAGE",
            violations=(FieldViolation(field, "both content and parts are set"),),
        )
    content = message.content or "".join(part.text for part in message.parts)
    return ChatMessage(role=message.role, content=content)


def text_request(
    message: pb.GenerateTextRequest | Undecodable, caller: CallerConfig
) -> TextRequest:
    request = decoded(message)
    parameters = _set_fields(request, _TEXT_PARAMETERS)
    if request.stop_sequences:
        parameters["stop_sequences"] = list(request.stop_sequences)
    return TextRequest(
        model=request.model,
        prompt=request.prompt or None,
        messages=tuple(_chat_message(i, m) for i, m in enumerate(request.messages)),
        parameters=parameters,
        extra_input=_struct(request.extra_input, "extra_input"),
        prefix=_optional(request, "prefix"),
        suffix=_optional(request, "suffix"),
        template=request.template or None,
        caller=caller,
        request_id=_request_id(request),
        no_fallbacks=request.disable_fallbacks,
        cache=_CACHE_MODE[request.cache],
    )


def _request_id(request: pb.GenerateTextRequest | pb.GenerateImageRequest) -> RequestId | None:
    """The request_id, checked to be a UUID (AIP-155), and a digest of the rest.

    The digest covers every other field, in protobuf's deterministic encoding, and the
    message type: a GenerateText repeated as StreamText is the same request, an image
    request under a text request's id is not.
    """
    if not request.request_id:
        return None
    try:
        value = uuid.UUID(request.request_id)
    except ValueError:
        raise InvalidArgument(
            "request_id must be a UUID (for example from uuid4()), or empty for a call "
            "that is not retried safely",
            reason="INVALID_REQUEST_ID",
            violations=(FieldViolation("request_id", "not a UUID"),),
        ) from None
    rest = type(request).FromString(request.SerializeToString())
    rest.ClearField("request_id")
    digest = hashlib.sha256(request.DESCRIPTOR.full_name.encode() + b"\0")
    digest.update(rest.SerializeToString(deterministic=True))
    return RequestId(str(value), digest.hexdigest())


def image_request(
    message: pb.GenerateImageRequest | Undecodable, caller: CallerConfig
) -> ImageRequest:
    request = decoded(message)
    return ImageRequest(
        model=request.model,
        prompt=request.prompt,
        parameters=_set_fields(request, _IMAGE_PARAMETERS),
        extra_input=_struct(request.extra_input, "extra_input"),
        input_images=tuple(
            InputImage(
                input_name=image.input_name or "image",
                uri=image.uri or None,
                data=image.data or None,
                mime_type=image.mime_type or None,
            )
            for image in request.input_images
        ),
        include_data=request.include_data,
        caller=caller,
        request_id=_request_id(request),
        no_fallbacks=request.disable_fallbacks,
        cache=_CACHE_MODE[request.cache],
    )


def seconds(value: float) -> duration_pb2.Duration:
    duration = duration_pb2.Duration()
    duration.FromNanoseconds(round(value * 1e9))
    return duration


def status_enum(status: str) -> pb.PredictionStatus.ValueType:
    return _STATUS.get(status, pb.PREDICTION_STATUS_UNSPECIFIED)


def text_response(result: TextResult) -> pb.GenerateTextResponse:
    response = pb.GenerateTextResponse(
        text=result.text, template=result.template, cost=cost_message(result.prediction.cost)
    )
    _fill_prediction(response.prediction, result.prediction)
    return response


def image_response(result: ImageResult) -> pb.GenerateImageResponse:
    return pb.GenerateImageResponse(
        images=[
            pb.Image(uri=image.uri, mime_type=image.mime_type, data=image.data or b"")
            for image in result.images
        ],
        prediction=prediction_message(result.prediction),
        cost=cost_message(result.prediction.cost),
    )


def cost_message(cost: Cost | None) -> pb.Cost | None:
    if cost is None:
        return None
    amount = cost.amount
    return pb.Cost(
        amount="" if amount is None else format_amount(amount),
        currency=cost.currency,
        known=amount is not None,
        items=[
            pb.CostItem(
                unit=item.unit.value,
                quantity=f"{item.quantity:f}",
                price=f"{item.price:f}",
                amount=format_amount(item.amount),
            )
            for item in cost.items
        ],
        hardware=cost.hardware or "",
        cache_hit=cost.cache_hit,
    )


def usage_response(report: UsageReport) -> pb.GetUsageResponse:
    remaining = report.remaining
    return pb.GetUsageResponse(
        caller=report.caller,
        period=report.period.name,
        period_start=_timestamp(report.period.start.timestamp()),
        resets_at=_timestamp(report.period.end.timestamp()),
        spent=format_amount(report.spent),
        reserved=format_amount(report.reserved),
        limit="" if report.limit is None else format_amount(report.limit),
        remaining="" if remaining is None else format_amount(remaining),
        currency=report.currency,
    )


def prediction_message(summary: PredictionSummary) -> pb.Prediction:
    message = pb.Prediction()
    _fill_prediction(message, summary)
    return message


def _fill_prediction(message: pb.Prediction, summary: PredictionSummary) -> None:
    """Written in place, where the reply holds it: building the timing, its durations and
    the usage as messages of their own, then copying each into its parent, cost about as
    much again."""
    message.id = summary.id
    message.model = summary.model
    message.version = summary.version
    message.status = status_enum(summary.status)
    timing = message.timing
    timing.total_duration.FromNanoseconds(round(summary.total_seconds * 1e9))
    timing.cold_boot = summary.cold_boot
    if summary.queue_seconds is not None:
        timing.queue_duration.FromNanoseconds(round(summary.queue_seconds * 1e9))
    if summary.predict_seconds is not None:
        timing.predict_duration.FromNanoseconds(round(summary.predict_seconds * 1e9))
    usage = message.usage
    usage.SetInParent()  # present, as before, even with no counts
    if summary.input_tokens is not None:
        usage.input_token_count = summary.input_tokens
    if summary.output_tokens is not None:
        usage.output_token_count = summary.output_tokens
    message.answered_by = summary.answered_by
    message.role = _ROLE.get(summary.role, pb.PREDICTION_ROLE_UNSPECIFIED)


def progress_message(progress: StreamProgress) -> pb.BootProgress:
    return pb.BootProgress(
        prediction_id=progress.prediction_id,
        status=status_enum(progress.status),
        waiting=seconds(progress.seconds),
        model=progress.model,
        role=_ROLE.get(progress.role, pb.PREDICTION_ROLE_UNSPECIFIED),
    )


def _timestamp(seconds: float) -> timestamp_pb2.Timestamp:
    stamp = timestamp_pb2.Timestamp()
    stamp.FromNanoseconds(round(seconds * 1e9))
    return stamp


def _packed(message: object) -> any_pb2.Any:
    packed = any_pb2.Any()
    packed.Pack(message)  # type: ignore[arg-type]
    return packed


def operation_message(view: OperationView) -> operations_pb2.Operation:
    timing = pb.Timing(total_duration=seconds(view.total_seconds), cold_boot=view.cold_boot)
    if view.queue_seconds is not None:
        timing.queue_duration.CopyFrom(seconds(view.queue_seconds))
    if view.predict_seconds is not None:
        timing.predict_duration.CopyFrom(seconds(view.predict_seconds))
    metadata = pb.OperationMetadata(
        prediction_ids=view.prediction_ids,
        model=view.model,
        status=status_enum(view.status),
        timing=timing,
        create_time=_timestamp(view.created),
        deadline=_timestamp(view.deadline),
        data_removed=view.data_removed,
    )
    if view.ended is not None:
        metadata.end_time.CopyFrom(_timestamp(view.ended))
    operation = operations_pb2.Operation(name=view.name, metadata=_packed(metadata), done=view.done)
    if view.error is not None:
        operation.error.CopyFrom(status_proto(view.error))
    elif isinstance(view.result, TextResult):
        operation.response.CopyFrom(_packed(text_response(view.result)))
    elif isinstance(view.result, ImageResult):
        operation.response.CopyFrom(_packed(image_response(view.result)))
    return operation


def _defaults_struct(defaults: Mapping[str, object]) -> struct_pb2.Struct:
    struct = struct_pb2.Struct()
    values: dict[str, Any] = {k: v for k, v in defaults.items() if v is not None}
    struct.update(values)
    return struct


class InferenceGatewayServicer(pb_grpc.InferenceGatewayServicer):
    """Each call's caller, named by its metadata, goes into the core's request with it."""

    def __init__(self, gateway: Gateway, identify: Identify, operations: Operations) -> None:
        self._gateway = gateway
        self._identify = identify
        self._operations = operations

    def _caller(self, context: Context) -> CallerConfig:
        return self._identify(cast("Metadata | None", context.invocation_metadata()))

    async def GenerateText(
        self, request: pb.GenerateTextRequest | Undecodable, context: Context
    ) -> pb.GenerateTextResponse:
        result = await self._gateway.generate_text(
            text_request(request, self._caller(context)), time_remaining=context.time_remaining()
        )
        return text_response(result)

    async def StreamText(
        self, request: pb.GenerateTextRequest | Undecodable, context: Context
    ) -> AsyncIterator[pb.StreamTextResponse]:
        stream = self._gateway.stream_text(
            text_request(request, self._caller(context)), time_remaining=context.time_remaining()
        )
        async with aclosing(stream):
            async for item in stream:
                if isinstance(item, StreamStart):
                    yield pb.StreamTextResponse(template=item.template)
                elif isinstance(item, StreamEnd):
                    yield pb.StreamTextResponse(
                        prediction=prediction_message(item.prediction),
                        cost=cost_message(item.prediction.cost),
                    )
                elif isinstance(item, StreamProgress):
                    yield pb.StreamTextResponse(progress=progress_message(item))
                else:
                    yield pb.StreamTextResponse(text=item.text)

    async def GenerateImage(
        self, request: pb.GenerateImageRequest | Undecodable, context: Context
    ) -> pb.GenerateImageResponse:
        result = await self._gateway.generate_image(
            image_request(request, self._caller(context)), time_remaining=context.time_remaining()
        )
        return image_response(result)

    async def WarmModel(
        self, request: pb.WarmModelRequest | Undecodable, context: Context
    ) -> pb.WarmModelResponse:
        message = decoded(request)
        result = await self._gateway.warm(
            WarmRequest(
                model=message.model,
                min_instances=message.min_instances if message.HasField("min_instances") else 1,
                seconds=duration_seconds(message.duration, "duration"),
                dry_run=message.dry_run,
                caller=self._caller(context),
            ),
            time_remaining=context.time_remaining(),
        )
        return pb.WarmModelResponse(
            deployment=result.deployment,
            min_instances=result.min_instances,
            previous_min_instances=result.previous_min_instances,
            warm_until=_timestamp(result.until),
            changed=result.changed,
            dry_run=result.dry_run,
        )

    async def ListModels(
        self, request: pb.ListModelsRequest, context: Context
    ) -> pb.ListModelsResponse:
        return pb.ListModelsResponse(
            models=[
                pb.ModelAlias(
                    alias=info.alias,
                    model=info.model,
                    endpoint_kind=_ENDPOINT_KIND[info.endpoint_kind],
                    task=_TASK[info.task],
                    defaults=_defaults_struct(info.defaults),
                    template=info.template,
                )
                for info in self._gateway.list_models(self._caller(context))
            ]
        )

    async def GetUsage(
        self, request: pb.GetUsageRequest | Undecodable, context: Context
    ) -> pb.GetUsageResponse:
        decoded(request)
        report = await self._gateway.usage(
            self._caller(context), time_remaining=context.time_remaining()
        )
        return usage_response(report)

    async def SubmitText(
        self, request: pb.SubmitTextRequest | Undecodable, context: Context
    ) -> operations_pb2.Operation:
        submit = decoded(request)
        view = await self._operations.submit(
            text_request(submit.request, self._caller(context)),
            deadline_seconds=_deadline(submit),
            time_remaining=context.time_remaining(),
        )
        return operation_message(view)

    async def SubmitImage(
        self, request: pb.SubmitImageRequest | Undecodable, context: Context
    ) -> operations_pb2.Operation:
        submit = decoded(request)
        view = await self._operations.submit(
            image_request(submit.request, self._caller(context)),
            deadline_seconds=_deadline(submit),
            time_remaining=context.time_remaining(),
        )
        return operation_message(view)


def _deadline(request: pb.SubmitTextRequest | pb.SubmitImageRequest) -> float | None:
    if not request.HasField("deadline"):
        return None
    return duration_seconds(request.deadline, "deadline")
