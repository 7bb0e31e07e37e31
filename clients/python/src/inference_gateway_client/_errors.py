"""A failed call as a typed exception carrying the status's google.rpc details."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import grpc
from google.rpc import error_details_pb2, status_pb2

__all__ = [
    "Aborted",
    "DeadlineExceeded",
    "FailedPrecondition",
    "FieldViolation",
    "GatewayError",
    "Internal",
    "InvalidArgument",
    "NotFound",
    "PermissionDenied",
    "ResourceExhausted",
    "Unauthenticated",
    "Unavailable",
    "error_from",
]

_DETAILS_KEY = "grpc-status-details-bin"


@dataclass(frozen=True)
class FieldViolation:
    """One BadRequest field violation: which request field, and what to fix."""

    field: str
    description: str


class GatewayError(Exception):
    """A call the gateway (or gRPC) ended with a status other than OK.

    `reason`, `domain` and `metadata` come from the ErrorInfo (the gateway sends one with
    every failure it decides; gRPC's own, such as a connection refused, have none);
    `retry_delay` from RetryInfo, `field_violations` from BadRequest.
    """

    def __init__(
        self,
        code: grpc.StatusCode,
        message: str,
        *,
        reason: str | None = None,
        domain: str | None = None,
        metadata: Mapping[str, str] | None = None,
        retry_delay: float | None = None,
        field_violations: tuple[FieldViolation, ...] = (),
    ) -> None:
        super().__init__(f"{code.name}: {message}")
        self.code = code
        self.message = message
        self.reason = reason
        self.domain = domain
        self.metadata: Mapping[str, str] = dict(metadata or {})
        self.retry_delay = retry_delay
        self.field_violations = field_violations

    @property
    def prediction_id(self) -> str | None:
        """The Replicate prediction the failure is about, when there is one."""
        return self.metadata.get("predictionId")


class InvalidArgument(GatewayError):
    """The request is wrong: the message and field_violations say what to fix."""


class NotFound(GatewayError):
    """An unknown alias, model or version."""


class Unauthenticated(GatewayError):
    """No caller token, or one the gateway does not know."""


class PermissionDenied(GatewayError):
    """The caller may not use that alias or model."""


class ResourceExhausted(GatewayError):
    """A rate budget, quota or concurrency limit: wait retry_delay, then call again."""


class FailedPrecondition(GatewayError):
    """The prediction failed, or the gateway's Replicate account cannot run it."""


class Aborted(GatewayError):
    """The prediction was canceled on Replicate by someone else."""


class Unavailable(GatewayError):
    """The gateway or Replicate was out of reach; retried by the channel already."""


class DeadlineExceeded(GatewayError):
    """The call's deadline passed (the gateway canceled the prediction)."""


class Internal(GatewayError):
    """Something the gateway did not expect, or an answer it could not read."""


_BY_CODE: Mapping[grpc.StatusCode, type[GatewayError]] = {
    grpc.StatusCode.INVALID_ARGUMENT: InvalidArgument,
    grpc.StatusCode.NOT_FOUND: NotFound,
    grpc.StatusCode.UNAUTHENTICATED: Unauthenticated,
    grpc.StatusCode.PERMISSION_DENIED: PermissionDenied,
    grpc.StatusCode.RESOURCE_EXHAUSTED: ResourceExhausted,
    grpc.StatusCode.FAILED_PRECONDITION: FailedPrecondition,
    grpc.StatusCode.ABORTED: Aborted,
    grpc.StatusCode.UNAVAILABLE: Unavailable,
    grpc.StatusCode.DEADLINE_EXCEEDED: DeadlineExceeded,
    grpc.StatusCode.INTERNAL: Internal,
}


def _details(trailers: Iterable[Any] | None) -> status_pb2.Status | None:
    for key, value in trailers or ():
        if key == _DETAILS_KEY and isinstance(value, bytes):
            status = status_pb2.Status()
            status.ParseFromString(value)
            return status
    return None


def error_from(error: grpc.aio.AioRpcError) -> GatewayError:
    """The typed exception for a failed call, its details unpacked."""
    code = error.code()
    info = error_details_pb2.ErrorInfo()
    retry = error_details_pb2.RetryInfo()
    bad = error_details_pb2.BadRequest()
    found_info = found_retry = False
    status = _details(error.trailing_metadata())
    for detail in status.details if status is not None else ():
        if detail.Is(info.DESCRIPTOR):
            found_info = detail.Unpack(info)
        elif detail.Is(retry.DESCRIPTOR):
            found_retry = detail.Unpack(retry)
        elif detail.Is(bad.DESCRIPTOR):
            detail.Unpack(bad)
    return _BY_CODE.get(code, GatewayError)(
        code,
        error.details() or "",
        reason=info.reason if found_info else None,
        domain=info.domain if found_info else None,
        metadata=dict(info.metadata),
        retry_delay=retry.retry_delay.ToTimedelta().total_seconds() if found_retry else None,
        field_violations=tuple(
            FieldViolation(v.field, v.description) for v in bad.field_violations
        ),
    )
