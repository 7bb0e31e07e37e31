"""GatewayError -> gRPC status with google.rpc details (ErrorInfo always, BadRequest, RetryInfo)."""

from __future__ import annotations

import collections
import math
from fractions import Fraction

import grpc
from google.protobuf import any_pb2, duration_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from inference_gateway.errors import ERROR_DOMAIN, GatewayError, Internal

__all__ = ["INTERNAL_ERROR", "status_proto", "to_rpc_status"]

INTERNAL_ERROR = Internal(
    "the gateway hit an internal error; it has been logged", reason="INTERNAL_ERROR"
)
# A caller's gRPC library may refuse trailing metadata over 8 KiB (and always does over
# 16 KiB), which would turn a precise status into its own RESOURCE_EXHAUSTED. Messages can
# echo what the caller sent, and travel twice (grpc-message, percent-encoded, and in the
# details, base64-encoded), so every part is clipped to keep the whole well under 8 KiB.
_MESSAGE_COST = 1600
_VALUE_BYTES = 128
_VIOLATIONS = 5
_FIELD_BYTES = 100
_DESCRIPTION_BYTES = 160
_ELLIPSIS = "…"


def _cost(char: str, *, percent_encoded: bool) -> int:
    size = len(char.encode("utf-8", "replace"))
    # grpc-message keeps printable ASCII other than "%" and encodes each other byte as %XX.
    if percent_encoded and not (" " <= char <= "~" and char != "%"):
        return 3 * size
    return size


def _clip(text: str, budget: int, *, percent_encoded: bool = False) -> str:
    """`text`, cut with an ellipsis where its encoded size would pass `budget`."""
    # Every character costs at least a byte: what lies past `budget` characters is cut
    # anyway, and pricing a megabyte echoed from a request would stall the event loop.
    text = text[: budget + 1]
    costs = [_cost(char, percent_encoded=percent_encoded) for char in text]
    if sum(costs) <= budget:
        return text
    room = budget - _cost(_ELLIPSIS, percent_encoded=percent_encoded)
    used = 0
    for index, cost in enumerate(costs):
        used += cost
        if used > room:
            return text[:index] + _ELLIPSIS
    return text


def _pack(message: object) -> any_pb2.Any:
    packed = any_pb2.Any()
    packed.Pack(message)  # type: ignore[arg-type]
    return packed


def to_rpc_status(error: GatewayError) -> grpc.Status:
    """The status a caller receives; its message and details never carry a secret."""
    status = rpc_status.to_status(status_proto(error))
    if error.retry_after_seconds is None:
        return status
    # gRPC's built-in retry policy reads only this trailer, never RetryInfo.
    pushback = ("grpc-retry-pushback-ms", str(_ceil_units(error.retry_after_seconds, 1000)))
    return _Status(status.code, status.details, (*status.trailing_metadata, pushback))


def _ceil_units(seconds: float, per_second: int) -> int:
    """`seconds` in whole units, rounded up exactly: a float product may round below the
    delay asked for (562950.5833577251 s became ...725 ns, not ...726)."""
    return math.ceil(Fraction(seconds) * per_second)


def status_proto(error: GatewayError) -> status_pb2.Status:
    """The google.rpc.Status of `error`: a call's status, or a failed operation's error."""
    code: grpc.StatusCode = error.grpc_code
    metadata = {key: _clip(value, _VALUE_BYTES) for key, value in error.metadata.items()}
    details = [
        _pack(
            error_details_pb2.ErrorInfo(reason=error.reason, domain=ERROR_DOMAIN, metadata=metadata)
        )
    ]
    if error.violations:
        details.append(
            _pack(
                error_details_pb2.BadRequest(
                    field_violations=[
                        error_details_pb2.BadRequest.FieldViolation(
                            field=_clip(v.field, _FIELD_BYTES),
                            description=_clip(v.description, _DESCRIPTION_BYTES),
                        )
                        for v in error.violations[:_VIOLATIONS]
                    ]
                )
            )
        )
    if error.retry_after_seconds is not None:
        delay = duration_pb2.Duration()
        delay.FromNanoseconds(_ceil_units(error.retry_after_seconds, 10**9))
        details.append(_pack(error_details_pb2.RetryInfo(retry_delay=delay)))
    return status_pb2.Status(
        code=getattr(code_pb2, code.name),
        message=_clip(error.message, _MESSAGE_COST, percent_encoded=True),
        details=details,
    )


class _Status(
    collections.namedtuple("_Status", ("code", "details", "trailing_metadata")), grpc.Status
):
    """grpc.Status is abstract; this is grpc_status's own shape, with trailers of ours."""
