"""The one retry rule for every request to Replicate, and the one loop that applies it.

What may be sent again follows from what cannot duplicate work. A create that may
have reached Replicate must never be re-sent (it would run, and bill, the model
twice), so a create is retried only after a 429 or when the connection failed before
the request went out. A GET, a cancel and an SSE stream change nothing on the server,
so they are also retried after a 5xx or a connection lost mid-answer. Waits are
truncated exponential backoff with full jitter, or the server's Retry-After; the
attempts and the caller's deadline bound everything.

Every request kind goes through `retrying`, as google-api-core's retry_async does: a
unary request is an attempt that yields one value, a stream one that yields many.
`fault_of` and `fault_of_status` are the one place a failure is classified.
"""

from __future__ import annotations

import asyncio
import email.utils
import random
import time
from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping
from contextlib import aclosing
from dataclasses import dataclass
from enum import Enum
from typing import Any, TypeVar

import httpx

__all__ = [
    "Fault",
    "Kind",
    "Retry",
    "RetryPolicy",
    "fault_of",
    "fault_of_status",
    "retry_after",
    "retrying",
    "retrying_call",
]

T = TypeVar("T")

RETRY_AFTER_CAP = 60.0
"""Replicate's rate windows are a minute long; never wait longer on a server's word."""


class Kind(Enum):
    """Request kinds, by what sending one twice would do."""

    CREATE = "create"  # runs (and bills) a model
    READ = "read"  # GETs a prediction, model, version or deployment
    CANCEL = "cancel"  # idempotent: a canceled prediction stays canceled
    UPDATE = "update"  # idempotent: sets a deployment's fields to the values sent
    STREAM = "stream"  # resumable with Last-Event-ID


class Fault(Enum):
    """How an attempt failed, as far as retrying is concerned."""

    THROTTLED = "throttled"  # 429: nothing was done
    NOT_SENT = "not_sent"  # the connection failed before the request went out
    SERVER_ERROR = "server_error"  # 5xx: a create may have been accepted regardless
    LOST = "lost"  # the connection failed after the request may have arrived
    REFUSED = "refused"  # another 4xx: the same request would be refused again
    MALFORMED = "malformed"  # an unreadable or oversized answer: it would come again


_RETRYABLE: Mapping[Kind, frozenset[Fault]] = {
    Kind.CREATE: frozenset({Fault.THROTTLED, Fault.NOT_SENT}),
    Kind.READ: frozenset({Fault.THROTTLED, Fault.NOT_SENT, Fault.SERVER_ERROR, Fault.LOST}),
    Kind.CANCEL: frozenset({Fault.THROTTLED, Fault.NOT_SENT, Fault.SERVER_ERROR, Fault.LOST}),
    Kind.UPDATE: frozenset({Fault.THROTTLED, Fault.NOT_SENT, Fault.SERVER_ERROR, Fault.LOST}),
    Kind.STREAM: frozenset({Fault.THROTTLED, Fault.NOT_SENT, Fault.SERVER_ERROR, Fault.LOST}),
}

# Raised before a byte of the request was written (a pool wait is a wait for a connection).
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)


def fault_of(exc: httpx.RequestError) -> Fault:
    """Whether a failed exchange may have reached Replicate, or got an unreadable answer."""
    if isinstance(exc, httpx.DecodingError):
        return Fault.MALFORMED
    return Fault.NOT_SENT if isinstance(exc, _NOT_SENT) else Fault.LOST


def fault_of_status(status: int) -> Fault:
    """What an HTTP error status (or a stream's non-200) means for retrying."""
    if status == 429:
        return Fault.THROTTLED
    return Fault.SERVER_ERROR if status >= 500 else Fault.REFUSED


def retry_after(headers: httpx.Headers, body: Mapping[str, Any] | None) -> float | None:
    """Seconds from `Retry-After` (seconds or an HTTP date) or the body's `retry_after`."""
    header = headers.get("retry-after")
    if header:
        header = header.strip()
        if header.isascii() and header.replace(".", "", 1).isdigit():
            return min(float(header), RETRY_AFTER_CAP)
        try:
            when = email.utils.parsedate_to_datetime(header)
        except (TypeError, ValueError):
            when = None
        if when is not None:
            return min(max(0.0, when.timestamp() - time.time()), RETRY_AFTER_CAP)
    value = body.get("retry_after") if body else None
    if isinstance(value, int | float) and not isinstance(value, bool) and value >= 0:
        return min(float(value), RETRY_AFTER_CAP)
    return None


class Retry(Exception):
    """One attempt failed; `error` is what the caller gets if it is not tried again."""

    def __init__(self, fault: Fault, error: Exception, *, after: float | None = None) -> None:
        super().__init__(str(error))
        self.fault = fault
        self.error = error
        self.after = after  # the server's own retry delay, if it gave one


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """What is retried for which kind, how long to wait, and how many attempts in a row.

    Built from ClientSettings, where the numbers' defaults are written.
    """

    initial: float
    maximum: float
    attempts: Mapping[Kind, int]
    jitter: Callable[[], float] = random.random

    def retries(self, kind: Kind, fault: Fault) -> bool:
        return fault in _RETRYABLE[kind]

    def backoff(self, failures: int) -> float:
        """Truncated exponential backoff with full jitter, after `failures` in a row."""
        ceiling = min(self.maximum, self.initial * 2.0 ** (failures - 1))
        return ceiling * self.jitter()

    def delay(self, failure: Retry, failures: int) -> float:
        return failure.after if failure.after is not None else self.backoff(failures)


async def retrying(
    attempt: Callable[[], AsyncGenerator[T, None]],
    *,
    kind: Kind,
    policy: RetryPolicy,
    allows: Callable[[float], bool],
    on_failure: Callable[[Retry, float], Awaitable[None]],
    on_retry: Callable[[Retry, float], None],
) -> AsyncGenerator[T, None]:
    """Yields what the attempts yield, starting a new attempt after each retryable failure.

    An attempt signals a failure by raising Retry; anything else ends the loop as it
    is. Each value yielded is progress and resets the count, so a stream that keeps
    delivering may be resumed any number of times. `allows(delay)` says whether the
    caller's deadline leaves room to wait; `on_failure` sees every failure with the
    delay chosen for it (a 429 holds the rate budget for that long), `on_retry`
    every failure that is tried again.
    """
    failures = 0
    while True:
        try:
            async with aclosing(attempt()) as values:
                async for value in values:
                    failures = 0
                    yield value
            return
        except Retry as failure:
            failures += 1
            delay = await _delay(failure, failures, kind, policy, allows, on_failure, on_retry)
        await asyncio.sleep(delay)


async def retrying_call(
    attempt: Callable[[], Awaitable[T]],
    *,
    kind: Kind,
    policy: RetryPolicy,
    allows: Callable[[float], bool],
    on_failure: Callable[[Retry, float], Awaitable[None]],
    on_retry: Callable[[Retry, float], None],
) -> T:
    """`retrying` for an attempt with one answer: the same rule, as a plain coroutine.

    A request with one answer (a create, a read) needs none of a stream's generators
    around each attempt, which were a visible share of a unary call's CPU.
    """
    failures = 0
    while True:
        try:
            return await attempt()
        except Retry as failure:
            failures += 1
            delay = await _delay(failure, failures, kind, policy, allows, on_failure, on_retry)
        await asyncio.sleep(delay)


async def _delay(
    failure: Retry,
    failures: int,
    kind: Kind,
    policy: RetryPolicy,
    allows: Callable[[float], bool],
    on_failure: Callable[[Retry, float], Awaitable[None]],
    on_retry: Callable[[Retry, float], None],
) -> float:
    """How long to wait before the next attempt, or the failure's error when none follows."""
    delay = policy.delay(failure, failures)
    await on_failure(failure, delay)
    if (
        not policy.retries(kind, failure.fault)
        or failures >= policy.attempts[kind]
        or not allows(delay)
    ):
        raise failure.error from failure.__cause__
    on_retry(failure, delay)
    return delay
