"""The upstream error table, and how each error reaches a caller as a rich gRPC status."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, cast

import grpc
import pytest
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status
from hypothesis import example, given
from hypothesis import strategies as st

from inference_gateway.errors import (
    ERROR_DOMAIN,
    Aborted,
    Cancelled,
    DeadlineExceeded,
    FailedPrecondition,
    FieldViolation,
    GatewayError,
    Internal,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    ResourceExhausted,
    Unauthenticated,
    Unavailable,
    bad_response,
    deadline_exceeded,
    from_http_error,
    from_prediction_outcome,
    from_transport_fault,
)
from inference_gateway.grpc_api.status import INTERNAL_ERROR, to_rpc_status

# --- HTTP errors ----------------------------------------------------------------------------

VERSION_422 = {
    "title": "Invalid version or not permitted",
    "detail": "The specified version does not exist (or perhaps you don't have permission)",
    "status": 422,
}
INPUT_422 = {
    "title": "Input validation failed",
    "detail": "- Additional property signal is not allowed\n",
    "status": 422,
    "invalid_fields": [
        {"type": "additional_property_not_allowed", "field": "", "description": "signal"},
        {"field": "top_k", "description": "Must be >= 0"},
        "not a field",
    ],
}
BILLING_402 = {"title": "Billing required", "detail": "You need to set up billing.", "status": 402}


@pytest.mark.parametrize(
    ("status", "body", "kind", "reason", "code"),
    [
        (400, {"detail": "bad"}, InvalidArgument, "REPLICATE_BAD_REQUEST", "INVALID_ARGUMENT"),
        (401, None, FailedPrecondition, "REPLICATE_AUTH_FAILED", "FAILED_PRECONDITION"),
        (403, None, FailedPrecondition, "REPLICATE_AUTH_FAILED", "FAILED_PRECONDITION"),
        (402, BILLING_402, FailedPrecondition, "REPLICATE_BILLING_REQUIRED", "FAILED_PRECONDITION"),
        (404, None, NotFound, "REPLICATE_NOT_FOUND", "NOT_FOUND"),
        (413, None, InvalidArgument, "REPLICATE_PAYLOAD_TOO_LARGE", "INVALID_ARGUMENT"),
        (422, VERSION_422, NotFound, "REPLICATE_VERSION_NOT_FOUND", "NOT_FOUND"),
        (422, INPUT_422, InvalidArgument, "REPLICATE_INVALID_INPUT", "INVALID_ARGUMENT"),
        (429, None, ResourceExhausted, "REPLICATE_RATE_LIMITED", "RESOURCE_EXHAUSTED"),
        (500, None, Unavailable, "REPLICATE_UNAVAILABLE", "UNAVAILABLE"),
        (503, None, Unavailable, "REPLICATE_UNAVAILABLE", "UNAVAILABLE"),
        (418, None, Internal, "REPLICATE_UNEXPECTED_STATUS", "INTERNAL"),
        (409, None, Internal, "REPLICATE_UNEXPECTED_STATUS", "INTERNAL"),
    ],
)
def test_http_error_table(
    status: int, body: Mapping[str, Any] | None, kind: type[GatewayError], reason: str, code: str
) -> None:
    error = from_http_error(status, body, endpoint="create")
    assert type(error) is kind
    assert error.reason == reason
    assert error.grpc_code is getattr(grpc.StatusCode, code)
    setting = {"setting": "REPLICATE_API_TOKEN"} if reason == "REPLICATE_AUTH_FAILED" else {}
    assert error.metadata == {"endpoint": "create", "httpStatus": str(status), **setting}


def test_replicates_detail_is_quoted_and_falls_back_to_the_title() -> None:
    assert from_http_error(402, BILLING_402, endpoint="create").message == (
        "Replicate requires billing to be set up for this account: You need to set up billing."
    )
    titled = from_http_error(400, {"title": "Bad input"}, endpoint="create")
    assert titled.message == "Replicate rejected the request: Bad input"
    long = from_http_error(400, {"detail": "x" * 5_000}, endpoint="create")
    assert long.message.count("x") == 2_000


def test_an_auth_failure_blames_the_gateways_token_and_hides_the_detail() -> None:
    error = from_http_error(401, {"detail": "token r8_abc is invalid"}, endpoint="get")
    assert "r8_abc" not in error.message
    assert "REPLICATE_API_TOKEN" in error.message


@pytest.mark.parametrize(
    ("endpoint", "subject"),
    [
        ("create", "model or deployment"),
        ("deployment", "deployment"),
        ("model", "model"),
        ("version", "model version"),
        ("get", "prediction"),
        ("cancel", "prediction"),
    ],
)
def test_not_found_names_what_was_missing(endpoint: str, subject: str) -> None:
    error = from_http_error(404, {"detail": "Not found."}, endpoint=endpoint)
    assert error.message == f"Replicate has no such {subject}: Not found."


def test_invalid_input_carries_replicates_field_violations() -> None:
    error = from_http_error(422, INPUT_422, endpoint="create")
    assert error.violations == (
        FieldViolation("input", "signal"),
        FieldViolation("top_k", "Must be >= 0"),
    )


def test_a_rate_limit_says_when_to_retry_only_when_known() -> None:
    timed = from_http_error(429, None, endpoint="create", retry_after_seconds=12)
    assert timed.retry_after_seconds == 12
    assert timed.message.endswith("; retry in 12s")
    untimed = from_http_error(429, None, endpoint="create")
    assert untimed.retry_after_seconds is None
    assert "retry in" not in untimed.message


_BODIES = st.none() | st.dictionaries(
    st.sampled_from(["title", "detail", "status", "invalid_fields", "retry_after"]),
    st.none() | st.integers() | st.text() | st.lists(st.dictionaries(st.text(), st.text())),
)


@given(status=st.integers(400, 599), body=_BODIES)
def test_every_error_status_maps_to_a_failure(status: int, body: dict[str, Any] | None) -> None:
    error = from_http_error(status, body, endpoint="get")
    assert error.grpc_code is not grpc.StatusCode.OK
    assert error.metadata["httpStatus"] == str(status)
    assert (status >= 500) == isinstance(error, Unavailable)


def test_transport_faults_and_unreadable_responses() -> None:
    fault = from_transport_fault(endpoint="get", detail="ConnectError", sent=False)
    assert (type(fault), fault.reason) == (Unavailable, "REPLICATE_UNREACHABLE")
    assert fault.message == "Replicate could not be reached (ConnectError)"
    bad = bad_response(endpoint="create", detail="the prediction has no id")
    assert (type(bad), bad.reason) == (Internal, "REPLICATE_BAD_RESPONSE")
    assert bad.metadata == {"endpoint": "create"}


# --- prediction outcomes ----------------------------------------------------------------------


def test_a_canceled_prediction_is_aborted() -> None:
    error = from_prediction_outcome("canceled", prediction_id="p1", error=None, logs=None)
    assert (type(error), error.reason) == (Aborted, "PREDICTION_CANCELED")
    assert error.metadata == {"predictionId": "p1", "predictionStatus": "canceled"}


def test_an_aborted_prediction_ran_out_of_time_before_starting() -> None:
    error = from_prediction_outcome("aborted", prediction_id="p1", error=None, logs="")
    assert (type(error), error.reason) == (DeadlineExceeded, "PREDICTION_ABORTED")
    assert "Cancel-After" in error.message


def test_a_failed_prediction_quotes_its_error_and_the_last_five_log_lines() -> None:
    logs = "\n".join(f"line {n}" for n in range(1, 9)) + "\n\n"
    error = from_prediction_outcome("failed", prediction_id="p1", error="CUDA OOM", logs=logs)
    assert (type(error), error.reason) == (FailedPrecondition, "PREDICTION_FAILED")
    assert error.message == (
        "prediction p1 failed: CUDA OOM; last log lines:\nline 4\nline 5\nline 6\nline 7\nline 8"
    )


@pytest.mark.parametrize("logs", [None, "", "   \n", 42])
def test_a_failed_prediction_without_error_or_logs_says_so(logs: object) -> None:
    error = from_prediction_outcome("failed", prediction_id="p1", error=None, logs=logs)
    assert error.message == "prediction p1 failed: no error message"


def test_a_deadline_while_starting_points_at_a_cold_boot() -> None:
    cold = deadline_exceeded(prediction_id="p1", last_status="starting")
    assert "cold boot" in cold.message
    assert cold.metadata == {"predictionId": "p1", "predictionStatus": "starting"}
    warm = deadline_exceeded(prediction_id="p1", last_status="processing")
    assert "cold boot" not in warm.message


# --- the rich gRPC status -------------------------------------------------------------------


@dataclass
class _FinishedCall:
    """What grpc_status reads from a finished call, built from the status we would send."""

    status: grpc.Status

    def code(self) -> grpc.StatusCode:
        return self.status.code

    def details(self) -> str:
        return self.status.details

    def trailing_metadata(self) -> Any:
        return self.status.trailing_metadata


def decoded(error: GatewayError) -> tuple[status_pb2.Status, dict[str, Any]]:
    # grpc_status only reads code(), details() and trailing_metadata() from the call.
    rich = rpc_status.from_call(cast(grpc.Call, _FinishedCall(to_rpc_status(error))))
    assert rich is not None
    found: dict[str, Any] = {}
    for detail in rich.details:
        for kind in (
            error_details_pb2.ErrorInfo,
            error_details_pb2.BadRequest,
            error_details_pb2.RetryInfo,
        ):
            if detail.Is(kind.DESCRIPTOR):
                message = kind()
                detail.Unpack(message)
                found[kind.__name__] = message
    assert len(found) == len(rich.details)
    return rich, found


@pytest.mark.parametrize(
    ("kind", "code"),
    [
        (InvalidArgument, code_pb2.INVALID_ARGUMENT),
        (NotFound, code_pb2.NOT_FOUND),
        (Unauthenticated, code_pb2.UNAUTHENTICATED),
        (PermissionDenied, code_pb2.PERMISSION_DENIED),
        (ResourceExhausted, code_pb2.RESOURCE_EXHAUSTED),
        (FailedPrecondition, code_pb2.FAILED_PRECONDITION),
        (Aborted, code_pb2.ABORTED),
        (DeadlineExceeded, code_pb2.DEADLINE_EXCEEDED),
        (Cancelled, code_pb2.CANCELLED),
        (Unavailable, code_pb2.UNAVAILABLE),
        (Internal, code_pb2.INTERNAL),
        (GatewayError, code_pb2.INTERNAL),
    ],
)
def test_each_error_class_becomes_its_status_code_with_error_info(
    kind: type[GatewayError], code: int
) -> None:
    rich, details = decoded(kind("what to fix", reason="SOME_REASON", metadata={"k": "v"}))
    assert (rich.code, rich.message) == (code, "what to fix")
    info = details["ErrorInfo"]
    assert (info.reason, info.domain, dict(info.metadata)) == (
        "SOME_REASON",
        ERROR_DOMAIN,
        {"k": "v"},
    )
    assert set(details) == {"ErrorInfo"}


def test_field_violations_become_bad_request() -> None:
    error = InvalidArgument(
        "fix the inputs",
        reason="INPUT_NOT_ACCEPTED",
        violations=(FieldViolation("seed", "not accepted"), FieldViolation("top_k", "too big")),
    )
    _, details = decoded(error)
    assert [(v.field, v.description) for v in details["BadRequest"].field_violations] == [
        ("seed", "not accepted"),
        ("top_k", "too big"),
    ]


@pytest.mark.parametrize(
    ("seconds", "expected"),
    [(12, (12, 0)), (0.25, (0, 250_000_000)), (1e-10, (0, 1)), (0, (0, 0))],
)
def test_a_retry_delay_becomes_retry_info_rounded_up(
    seconds: float, expected: tuple[int, int]
) -> None:
    _, details = decoded(
        ResourceExhausted("slow down", reason="REPLICATE_RATE_LIMITED", retry_after_seconds=seconds)
    )
    delay = details["RetryInfo"].retry_delay
    assert (delay.seconds, delay.nanos) == expected


def test_the_generic_internal_error_says_nothing_more() -> None:
    rich, details = decoded(INTERNAL_ERROR)
    assert rich.code == code_pb2.INTERNAL
    assert details["ErrorInfo"].reason == "INTERNAL_ERROR"
    assert dict(details["ErrorInfo"].metadata) == {}


@given(
    message=st.text(),
    seconds=st.none() | st.floats(min_value=0, max_value=1e6),
    violations=st.lists(st.tuples(st.text(), st.text()), max_size=3),
)
# A float product rounded this delay's nanoseconds down, below the delay asked for.
@example(message="", seconds=562950.5833577251, violations=[])
def test_any_message_and_delay_survive_the_round_trip(
    message: str, seconds: float | None, violations: list[tuple[str, str]]
) -> None:
    error = Unavailable(
        message,
        reason="X",
        retry_after_seconds=seconds,
        violations=tuple(FieldViolation(f, d) for f, d in violations),
    )
    rich, details = decoded(error)
    assert rich.message == message
    assert ("RetryInfo" in details) == (seconds is not None)
    assert ("BadRequest" in details) == bool(violations)
    if seconds is not None:
        delay = details["RetryInfo"].retry_delay
        assert 0 <= delay.seconds + delay.nanos / 1e9 - seconds < 1e-6


def test_a_megabyte_message_is_priced_only_as_far_as_it_can_be_kept(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Was: every character of an echoed 1 MiB model id or template name was priced, a
    # quarter second of the event loop per refusal.
    from inference_gateway.grpc_api import status as status_module

    priced = 0
    real_cost = status_module._cost

    def counting_cost(char: str, *, percent_encoded: bool) -> int:
        nonlocal priced
        priced += 1
        return real_cost(char, percent_encoded=percent_encoded)

    monkeypatch.setattr(status_module, "_cost", counting_cost)
    error = InvalidArgument("x" * (1 << 20), reason="R", metadata={"k": "v" * (1 << 20)})
    status = to_rpc_status(error)
    assert len(status.details) < 2000
    assert status.details.endswith("…")
    assert priced < 10_000
