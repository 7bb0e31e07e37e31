"""Client-side rate budgets for Replicate's limits (600 creates and 3,000 other requests a minute).

Spending a slot locally costs nothing; a 429 costs a round trip and, for a create,
a slot of the account's budget. The buckets follow the server's own count through
the `ratelimit-remaining` / `ratelimit-reset` headers and any 429's retry delay.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable
from enum import Enum

from inference_gateway.deadlines import Deadline
from inference_gateway.errors import ResourceExhausted

__all__ = ["Bucket", "RateBudget"]

_MAX_RESET_SECONDS = 60.0


class Bucket(Enum):
    CREATE = "create"
    OTHER = "other"


class RateBudget:
    """A token bucket whose debt queues callers in order without a polling loop.

    A caller takes a token at once, possibly driving the balance below zero; the
    debt says how long it waits for the refill. A caller whose deadline cannot cover
    its wait gives the token back and fails fast.
    """

    def __init__(
        self,
        bucket: Bucket,
        per_minute: int,
        *,
        burst: int | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if per_minute <= 0:
            raise ValueError(f"{bucket.value} rate must be positive, got {per_minute}")
        self.bucket = bucket
        self._rate = per_minute / 60.0
        self._capacity = float(burst if burst is not None else max(1, per_minute // 6))
        self._tokens = self._capacity
        self._clock = clock
        self._updated = clock()
        self._blocked_until = 0.0

    def _refill(self) -> float:
        now = self._clock()
        elapsed = now - self._updated
        self._updated = now
        self._tokens = min(self._capacity, self._tokens + elapsed * self._rate)
        return now

    def reserve(self) -> float:
        """Takes a token; returns how many seconds the caller must wait before using it."""
        now = self._refill()
        self._tokens -= 1.0
        wait = max(0.0, -self._tokens / self._rate)
        return max(wait, self._blocked_until - now)

    def refund(self) -> None:
        self._tokens = min(self._capacity, self._tokens + 1.0)

    async def acquire(self, deadline: Deadline) -> float:
        """Waits for a slot within the deadline; returns the seconds waited."""
        wait = self.reserve()
        if wait <= 0.0:
            return 0.0
        if not deadline.allows(wait):
            self.refund()
            raise ResourceExhausted(
                f"Replicate's {self.bucket.value} rate budget is spent and the next slot is "
                f"{wait:.1f}s away, beyond the call's deadline; retry later",
                reason="RATE_BUDGET_EXHAUSTED",
                metadata={"bucket": self.bucket.value, "retryAfterSeconds": f"{wait:.1f}"},
                retry_after_seconds=wait,
            )
        try:
            await asyncio.sleep(wait)
        except asyncio.CancelledError:
            self.refund()  # a caller that went away leaves its slot to the next
            raise
        return wait

    def observe_headers(self, remaining: str | None, reset: str | None) -> None:
        """Lowers the local balance to the server's count; never raises it."""
        if remaining is None:
            return
        try:
            left = float(remaining)
            reset_seconds = float(reset) if reset is not None else 1.0
        except ValueError:
            return
        if not (math.isfinite(left) and math.isfinite(reset_seconds)):
            return
        # Replicate's windows are a minute long; never block longer on a header's word.
        reset_seconds = min(reset_seconds, _MAX_RESET_SECONDS)
        now = self._refill()
        if left <= 0:
            self._blocked_until = max(self._blocked_until, now + max(reset_seconds, 0.0))
        self._tokens = min(self._tokens, left)

    def block_for(self, seconds: float) -> None:
        """After a 429, nobody spends this bucket until the server's retry delay has passed."""
        self._blocked_until = max(self._blocked_until, self._clock() + seconds)
