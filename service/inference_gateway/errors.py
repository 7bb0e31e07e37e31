"""The gateway's exception tree and its one error table.

Every failure a caller can see is one of these classes, and each class names the
gRPC status it becomes; grpc_api/status.py is the only place one becomes a status.
The functions at the end are the table that turns each upstream outcome (an HTTP
error, a transport fault, a failed or canceled prediction) into one of them. Other
modules raise these classes for refusals of their own (bad input, a limit, a passed
deadline), so the class they pick is the status they choose.

    GatewayError
    ├── InvalidArgument       bad input: fix the request         (INVALID_ARGUMENT)
    ├── NotFound              unknown alias, model or deployment (NOT_FOUND)
    ├── Unauthenticated       caller token missing or wrong      (UNAUTHENTICATED)
    ├── PermissionDenied      caller may not use this model      (PERMISSION_DENIED)
    ├── ResourceExhausted     a limit or rate budget is spent    (RESOURCE_EXHAUSTED)
    ├── FailedPrecondition    the prediction failed or billing   (FAILED_PRECONDITION)
    ├── Aborted               the prediction was canceled/aborted upstream (ABORTED)
    ├── DeadlineExceeded      the caller's deadline passed       (DEADLINE_EXCEEDED)
    ├── Cancelled             the caller went away               (CANCELLED)
    ├── Unavailable           Replicate unreachable or 5xx       (UNAVAILABLE)
    ├── Unimplemented         a method the gateway does not offer (UNIMPLEMENTED)
    └── Internal              our fault or an upstream protocol fault (INTERNAL)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar

import grpc

__all__ = [
    "Aborted",
    "Cancelled",
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
    "Unimplemented",
]


@dataclass(frozen=True, slots=True)
class FieldViolation:
    """One bad field, as google.rpc.BadRequest reports it."""

    field: str
    description: str


@dataclass(eq=False)
class GatewayError(Exception):
    """Base of every error the gateway reports to a caller.

    `message` is developer-facing English that says what to fix; `reason` is a
    stable UPPER_SNAKE_CASE code for google.rpc.ErrorInfo; `metadata` carries the
    dynamic values named in the message (never a secret).
    """

    grpc_code: ClassVar[grpc.StatusCode] = grpc.StatusCode.INTERNAL

    message: str
    reason: str = "GATEWAY_ERROR"
    metadata: Mapping[str, str] = field(default_factory=dict)
    retry_after_seconds: float | None = None
    violations: tuple[FieldViolation, ...] = ()

    def __post_init__(self) -> None:
        super().__init__(self.message)

    def __str__(self) -> str:
        return self.message


class InvalidArgument(GatewayError):
    """The request cannot be served as written."""

    grpc_code = grpc.StatusCode.INVALID_ARGUMENT


class NotFound(GatewayError):
    """The named alias, model, version or deployment does not exist."""

    grpc_code = grpc.StatusCode.NOT_FOUND


class Unauthenticated(GatewayError):
    """The caller's token is missing or wrong."""

    grpc_code = grpc.StatusCode.UNAUTHENTICATED


class PermissionDenied(GatewayError):
    """The caller may not use what it asked for."""

    grpc_code = grpc.StatusCode.PERMISSION_DENIED


class ResourceExhausted(GatewayError):
    """A limit or a rate budget is spent; `retry_after_seconds` says when to try again."""

    grpc_code = grpc.StatusCode.RESOURCE_EXHAUSTED


class FailedPrecondition(GatewayError):
    """The request was valid but the prediction could not produce an answer."""

    grpc_code = grpc.StatusCode.FAILED_PRECONDITION


class Aborted(GatewayError):
    """The prediction was canceled or aborted on Replicate's side."""

    grpc_code = grpc.StatusCode.ABORTED


class DeadlineExceeded(GatewayError):
    """The caller's deadline passed before the prediction finished."""

    grpc_code = grpc.StatusCode.DEADLINE_EXCEEDED


class Cancelled(GatewayError):
    """The caller canceled the call."""

    grpc_code = grpc.StatusCode.CANCELLED


class Unavailable(GatewayError):
    """Replicate could not be reached or answered with a transient fault."""

    grpc_code = grpc.StatusCode.UNAVAILABLE


class Unimplemented(GatewayError):
    """The method exists in the contract but the gateway does not offer it."""

    grpc_code = grpc.StatusCode.UNIMPLEMENTED


class Internal(GatewayError):
    """Something broke that the caller cannot fix; details go to the log only."""

    grpc_code = grpc.StatusCode.INTERNAL


# --- The upstream error table ---------------------------------------------------------------
#
# | Replicate outcome                         | class              | reason                    |
# |-------------------------------------------|--------------------|---------------------------|
# | 400 bad request                           | InvalidArgument    | REPLICATE_BAD_REQUEST     |
# | 401 / 403 (the gateway's own token)       | FailedPrecondition | REPLICATE_AUTH_FAILED     |
# | 402 billing required                      | FailedPrecondition | REPLICATE_BILLING_REQUIRED|
# | 404 unknown model, deployment, prediction | NotFound           | REPLICATE_NOT_FOUND       |
# | 413 payload too large                     | InvalidArgument    | REPLICATE_PAYLOAD_TOO_LARGE|
# | 422 unknown version or no permission      | NotFound           | REPLICATE_VERSION_NOT_FOUND|
# | 422 invalid input (with invalid_fields)   | InvalidArgument    | REPLICATE_INVALID_INPUT   |
# | 429 throttled                             | ResourceExhausted  | REPLICATE_RATE_LIMITED    |
# | 5xx                                       | Unavailable        | REPLICATE_UNAVAILABLE     |
# | other 4xx                                 | Internal           | REPLICATE_UNEXPECTED_STATUS|
# | connection refused / reset / timed out    | Unavailable        | REPLICATE_UNREACHABLE     |
# | malformed response                        | Internal           | REPLICATE_BAD_RESPONSE    |
# | prediction failed                         | FailedPrecondition | PREDICTION_FAILED         |
# | prediction canceled upstream              | Aborted            | PREDICTION_CANCELED       |
# | prediction canceled at its Cancel-After   | DeadlineExceeded   | DEADLINE_EXCEEDED         |
# | prediction aborted (Cancel-After passed)  | DeadlineExceeded   | PREDICTION_ABORTED        |
# | the caller's deadline passed              | DeadlineExceeded   | DEADLINE_EXCEEDED         |
# | a deadline too short for any prediction   | InvalidArgument    | DEADLINE_TOO_SHORT        |
# | the caller canceled                       | Cancelled          | CALLER_CANCELLED          |

ERROR_DOMAIN = "inference-gateway"
# Replicate refused a token the gateway sent: start-up and every call report it the same.
REPLICATE_AUTH_FAILED = "REPLICATE_AUTH_FAILED"
# A call this replica ended because its shutdown grace ran out (see from_prediction_outcome).
GATEWAY_SHUTTING_DOWN = "GATEWAY_SHUTTING_DOWN"
_LOG_TAIL_LINES = 5
_MAX_DETAIL = 2000


def _problem_detail(body: Mapping[str, Any] | None) -> str:
    """Replicate's problem+json `detail` (or `title`), trimmed for a status message."""
    if not body:
        return ""
    text = body.get("detail") or body.get("title") or ""
    return str(text).strip()[:_MAX_DETAIL]


def _invalid_fields(body: Mapping[str, Any] | None) -> tuple[FieldViolation, ...]:
    fields = body.get("invalid_fields") if body else None
    if not isinstance(fields, list):
        return ()
    violations = []
    for item in fields:
        if isinstance(item, Mapping):
            name = str(item.get("field") or "input")
            violations.append(FieldViolation(name, str(item.get("description") or "")))
    return tuple(violations)


def from_http_error(
    status: int,
    body: Mapping[str, Any] | None,
    *,
    endpoint: str,
    retry_after_seconds: float | None = None,
) -> GatewayError:
    """The error a caller sees for an HTTP error status from Replicate."""
    detail = _problem_detail(body)
    meta = {"endpoint": endpoint, "httpStatus": str(status)}
    said = f": {detail}" if detail else ""
    if status == 400:
        return InvalidArgument(
            f"Replicate rejected the request{said}", reason="REPLICATE_BAD_REQUEST", metadata=meta
        )
    if status in (401, 403):
        # Not INTERNAL: nothing broke inside the gateway, and the fix is a setting.
        return FailedPrecondition(
            f"Replicate rejected the gateway's API token (HTTP {status}); the operators must "
            "set a valid REPLICATE_API_TOKEN, or fix the alias's api_key variable",
            reason=REPLICATE_AUTH_FAILED,
            metadata={**meta, "setting": "REPLICATE_API_TOKEN"},
        )
    if status == 402:
        return FailedPrecondition(
            f"Replicate requires billing to be set up for this account{said}",
            reason="REPLICATE_BILLING_REQUIRED",
            metadata=meta,
        )
    if status == 404:
        return NotFound(
            f"Replicate has no such {endpoint_subject(endpoint)}{said}",
            reason="REPLICATE_NOT_FOUND",
            metadata=meta,
        )
    if status == 413:
        return InvalidArgument(
            f"the request is too large for Replicate{said}",
            reason="REPLICATE_PAYLOAD_TOO_LARGE",
            metadata=meta,
        )
    if status == 422:
        title = str(body.get("title") or "") if body else ""
        if "version" in title.lower():
            return NotFound(
                f"Replicate does not know this version, or the token may not use it{said}",
                reason="REPLICATE_VERSION_NOT_FOUND",
                metadata=meta,
            )
        return InvalidArgument(
            f"Replicate rejected the model input{said}",
            reason="REPLICATE_INVALID_INPUT",
            metadata=meta,
            violations=_invalid_fields(body),
        )
    if status == 429:
        wait = f"; retry in {retry_after_seconds:.0f}s" if retry_after_seconds else ""
        return ResourceExhausted(
            f"Replicate throttled the gateway's requests{wait}",
            reason="REPLICATE_RATE_LIMITED",
            metadata=meta,
            retry_after_seconds=retry_after_seconds,
        )
    if status >= 500:
        return Unavailable(
            f"Replicate answered HTTP {status}{said}",
            reason="REPLICATE_UNAVAILABLE",
            metadata=meta,
        )
    return Internal(
        f"Replicate answered an unexpected HTTP {status}{said}",
        reason="REPLICATE_UNEXPECTED_STATUS",
        metadata=meta,
    )


def endpoint_subject(endpoint: str) -> str:
    return {
        "create": "model or deployment",
        "deployment": "deployment",
        "model": "model",
        "version": "model version",
    }.get(endpoint, "prediction")


def from_transport_fault(*, endpoint: str, detail: str, sent: bool) -> Unavailable:
    """A request that got no HTTP answer: refused, reset or timed out; `sent` when the
    connection failed after the request went out (a create may then have run)."""
    return Unavailable(
        f"Replicate could not be reached ({detail})",
        reason="REPLICATE_UNREACHABLE",
        metadata={"endpoint": endpoint, "requestSent": "true" if sent else "false"},
    )


def bad_response(*, endpoint: str, detail: str) -> Internal:
    return Internal(
        f"Replicate sent a response the gateway cannot read ({detail})",
        reason="REPLICATE_BAD_RESPONSE",
        metadata={"endpoint": endpoint},
    )


def from_prediction_outcome(
    status: str,
    *,
    prediction_id: str,
    error: object,
    logs: object,
    at_deadline: bool = False,
    at_shutdown: bool = False,
) -> GatewayError:
    """The error for a prediction that ended without succeeding.

    `at_deadline`: Replicate canceled it at the Cancel-After the gateway set to the
    caller's deadline, which is the caller's deadline passing, not someone's cancel.
    `at_shutdown`: this process canceled it when its shutdown grace ended; UNAVAILABLE,
    as the server's own abort of a call would be, but saying what the retry costs.
    """
    meta = {"predictionId": prediction_id, "predictionStatus": status}
    if status == "canceled" and at_shutdown:
        return Unavailable(
            f"the gateway replica shut down before prediction {prediction_id} finished and "
            "canceled it on Replicate (billed for its run so far); a retry runs the request "
            "again as a new, billed prediction",
            reason=GATEWAY_SHUTTING_DOWN,
            metadata=meta,
        )
    if status == "canceled" and at_deadline:
        return DeadlineExceeded(
            f"the call's deadline passed while prediction {prediction_id} was running; "
            "Replicate canceled it at that deadline (Cancel-After)",
            reason="DEADLINE_EXCEEDED",
            metadata=meta,
        )
    if status == "canceled":
        return Aborted(
            f"prediction {prediction_id} was canceled on Replicate before it finished",
            reason="PREDICTION_CANCELED",
            metadata=meta,
        )
    if status == "aborted":
        return DeadlineExceeded(
            f"prediction {prediction_id} was aborted: its Cancel-After deadline passed "
            "before a worker started it",
            reason="PREDICTION_ABORTED",
            metadata=meta,
        )
    text = str(error).strip()[:_MAX_DETAIL] if error else "no error message"
    tail = ""
    if isinstance(logs, str) and logs.strip():
        last = logs.strip().splitlines()[-_LOG_TAIL_LINES:]
        tail = "; last log lines:\n" + "\n".join(last)
    return FailedPrecondition(
        f"prediction {prediction_id} failed: {text}{tail}",
        reason="PREDICTION_FAILED",
        metadata=meta,
    )


def shut_down_during_create(*, sent: bool = True) -> Unavailable:
    """The shutdown's grace ended before the call's prediction had an id: Replicate still
    held its create (`sent`; the runner cancels it once the create answers), or the create
    was not yet sent, and never will be."""
    if sent:
        what = (
            "while Replicate still held the create of this call's prediction; the prediction "
            "is canceled as soon as Replicate answers (billed for its run so far)"
        )
    else:
        what = "before this call's prediction was created (nothing ran)"
    return Unavailable(
        f"the gateway replica shut down {what}; a retry runs the request again"
        + (" as a new, billed prediction" if sent else ""),
        reason=GATEWAY_SHUTTING_DOWN,
    )


def about_prediction(error: GatewayError, prediction_id: str) -> GatewayError:
    """`error` naming the prediction it befell: once a prediction exists, every error
    says which (the caller can look it up, and accounting knows one was made)."""
    if "predictionId" in error.metadata:
        return error
    return replace(error, metadata={**error.metadata, "predictionId": prediction_id})


def deadline_exceeded(*, prediction_id: str, last_status: str) -> DeadlineExceeded:
    """The caller's deadline passed while its prediction was still running."""
    hint = " (still waiting for a worker: a cold boot)" if last_status == "starting" else ""
    return DeadlineExceeded(
        f"the call's deadline passed while prediction {prediction_id} was "
        f"{last_status}{hint}; the gateway canceled it on Replicate",
        reason="DEADLINE_EXCEEDED",
        metadata={"predictionId": prediction_id, "predictionStatus": last_status},
    )


def deadline_too_short(*, seconds: float, minimum: float, source: str) -> InvalidArgument:
    """A deadline too short to create a prediction and read its answer, refused before
    anything is spent: retrying with the same deadline cannot help, hence not
    DEADLINE_EXCEEDED."""
    return InvalidArgument(
        f"{source} leaves {seconds:.2f}s, too short to run a prediction: give a deadline of "
        f"at least {minimum:g}s (the gateway's minimum, GATEWAY_MIN_DEADLINE)",
        reason="DEADLINE_TOO_SHORT",
        metadata={
            "deadlineSeconds": f"{seconds:.3f}",
            "minimumSeconds": f"{minimum:g}",
            "setting": "GATEWAY_MIN_DEADLINE",
        },
    )


def deadline_passed(doing: str) -> DeadlineExceeded:
    """The caller's deadline passed in a step with no prediction left running."""
    return DeadlineExceeded(
        f"the call's deadline passed while {doing}",
        reason="DEADLINE_EXCEEDED",
    )
