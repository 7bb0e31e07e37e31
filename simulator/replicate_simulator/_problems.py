"""Replicate's error bodies (RFC 7807 problem details), as recorded from the real API.

Handlers raise `ApiProblem`; the app turns it into an `application/problem+json`
response. The canned bodies copy what NOTES.md §9 and §6 record, so clients that
parse `title`, `detail` and `status` see what they would see from Replicate.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from ._validation import InvalidField

__all__ = [
    "ApiProblem",
    "canned_problem",
    "invalid_version",
    "not_found",
    "throttled",
    "unauthenticated",
    "validation_failed",
]

_CANNED: dict[int, tuple[str | None, str]] = {
    400: ("Bad Request", "The request could not be understood."),
    401: ("Unauthenticated", "You did not pass a valid authentication token"),
    402: (
        "Billing required",
        "You need to set up billing to run this model. Go to "
        "https://replicate.com/account/billing#billing to set it up. If you have recently "
        "set up billing, please wait a few minutes before trying again.",
    ),
    403: ("Forbidden", "You do not have permission to perform this action."),
    404: (None, "The requested resource could not be found."),
    409: ("Conflict", "The request conflicts with the current state of the resource."),
    413: (None, "Files must be less than 100MB in size"),
    500: ("Internal Server Error", "An unexpected error occurred."),
    502: ("Bad Gateway", "The upstream service returned an invalid response."),
    503: ("Service Unavailable", "The service is temporarily unavailable. Please try again later."),
    504: ("Gateway Timeout", "The upstream service did not respond in time."),
}


class ApiProblem(Exception):
    """An HTTP error response in Replicate's problem+json shape."""

    def __init__(
        self,
        status: int,
        detail: str,
        *,
        title: str | None = None,
        extra: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.body: dict[str, Any] = {"detail": detail, "status": status}
        if title is not None:
            self.body["title"] = title
        self.body.update(extra or {})
        self.headers = dict(headers or {})

    @classmethod
    def verbatim(
        cls, status: int, body: Mapping[str, Any], headers: Mapping[str, str]
    ) -> ApiProblem:
        """A problem whose body is exactly `body` (a scripted fault's)."""
        problem = cls(status, str(body.get("detail", "")), headers=headers)
        problem.body = dict(body)
        return problem


def canned_problem(status: int, retry_after: int | None = None) -> ApiProblem:
    """The usual body for `status`; 429 gets Replicate's throttling wording."""
    if status == 429:
        return throttled(retry_after if retry_after is not None else 10)
    title, detail = _CANNED.get(status, ("Error", f"The request failed with status {status}."))
    return ApiProblem(status, detail, title=title)


def not_found() -> ApiProblem:
    return canned_problem(404)


def unauthenticated() -> ApiProblem:
    return canned_problem(401)


def throttled(retry_after: int) -> ApiProblem:
    """Replicate's 429: the wait is in the body; no source shows a `Retry-After` header."""
    return ApiProblem(
        429,
        f"Request was throttled. Your rate limit resets in ~{retry_after}s.",
        extra={"retry_after": retry_after},
    )


def invalid_version() -> ApiProblem:
    return ApiProblem(
        422,
        "The specified version does not exist (or perhaps you don't have permission to use it?)",
        title="Invalid version or not permitted",
    )


def validation_failed(fields: Iterable[InvalidField]) -> ApiProblem:
    problems = list(fields)
    return ApiProblem(
        422,
        "".join(f"{field.detail_line()}\n" for field in problems),
        title="Input validation failed",
        extra={"invalid_fields": [field.to_json() for field in problems]},
    )
