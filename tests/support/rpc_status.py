"""The google.rpc details the gateway attaches to a refused call, read as a client reads them."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, TypeVar, cast

from google.protobuf.message import Message
from google.rpc import error_details_pb2, status_pb2

DetailT = TypeVar("DetailT", bound=Message)


class FailedCall(Protocol):
    """What both the synchronous and the asyncio stubs raise for a failed call."""

    def trailing_metadata(self) -> object: ...


def rich_status(error: FailedCall) -> status_pb2.Status | None:
    """The `grpc-status-details-bin` trailer, decoded; None when the status has none."""
    metadata = cast(Sequence[tuple[str, bytes]], error.trailing_metadata() or ())
    found = [value for key, value in metadata if key == "grpc-status-details-bin"]
    assert len(found) <= 1, "more than one grpc-status-details-bin trailer"
    return status_pb2.Status.FromString(found[0]) if found else None


def has_detail(error: FailedCall, kind: type[Message]) -> bool:
    status = rich_status(error)
    return status is not None and any(d.Is(kind.DESCRIPTOR) for d in status.details)


def status_detail(error: FailedCall, kind: type[DetailT]) -> DetailT:
    """The one detail of type `kind` in the status the gateway attached to an error."""
    status = rich_status(error)
    assert status is not None, "the status carries no details"
    [packed] = [d for d in status.details if d.Is(kind.DESCRIPTOR)]
    detail: DetailT = kind()
    packed.Unpack(detail)
    return detail


def error_info(error: FailedCall) -> error_details_pb2.ErrorInfo:
    return status_detail(error, error_details_pb2.ErrorInfo)


def retry_delay_seconds(error: FailedCall) -> float:
    info = status_detail(error, error_details_pb2.RetryInfo)
    return float(info.retry_delay.ToTimedelta().total_seconds())
