"""Client-side rate budgets for Replicate's limits (600 creates and 3,000 other requests a minute).

Spending a slot locally costs nothing; a 429 costs a round trip and, for a create,
a slot of the account's budget. The limits are per account, so the buckets live in the
shared state store (every replica spends the same pair, keyed by a hash of the account's
token, never the token), and follow the server's own count through the
`ratelimit-remaining` / `ratelimit-reset` headers and any 429's retry delay.
"""

from __future__ import annotations

import asyncio
import hashlib
import math
from enum import Enum

from inference_gateway.deadlines import Deadline
from inference_gateway.errors import ResourceExhausted
from inference_gateway.state import Guarantee, MemoryStore, SharedState

__all__ = ["ANSWER_MARGIN_SECONDS", "AccountBudgets", "Bucket", "RateBudget", "account_id"]

_MAX_RESET_SECONDS = 60.0
# A slot is worth waiting for only if the request still has time to be answered after it:
# a caller whose deadline would pass during the request is told RESOURCE_EXHAUSTED (with
# when to retry) at once, rather than DEADLINE_EXCEEDED after waiting for nothing.
ANSWER_MARGIN_SECONDS = 2.0


class Bucket(Enum):
    CREATE = "create"
    OTHER = "other"


def account_id(token: str) -> str:
    """Names an account in keys and logs: a digest of its token, never the token."""
    return hashlib.sha256(token.encode()).hexdigest()[:16]


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
        state: SharedState | None = None,
        account: str = "default",
    ) -> None:
        if per_minute <= 0:
            raise ValueError(f"{bucket.value} rate must be positive, got {per_minute}")
        self.bucket = bucket
        self._rate = per_minute / 60.0
        self._capacity = float(burst if burst is not None else max(1, per_minute // 6))
        self._state = state if state is not None else SharedState(MemoryStore())
        self._key = f"budget:{account}:{bucket.value}"

    async def reserve(self, deadline: Deadline | None = None) -> float:
        """Takes a token; returns how many seconds the caller must wait before using it."""
        return await self._state.call(
            Guarantee.BUDGET,
            "reserve",
            deadline,
            lambda s: s.reserve(self._key, self._rate, self._capacity),
        )

    async def refund(self) -> None:
        await self._state.call(
            Guarantee.BUDGET,
            "refund",
            None,
            lambda s: s.refund(self._key, self._rate, self._capacity),
        )

    async def acquire(self, deadline: Deadline) -> float:
        """Waits for a slot within the deadline; returns the seconds waited."""
        wait = await self.reserve(deadline)
        if wait <= 0.0:
            return 0.0
        if not deadline.allows(wait + ANSWER_MARGIN_SECONDS):
            await self.refund()
            raise ResourceExhausted(
                f"Replicate's {self.bucket.value} rate budget is spent and the next slot is "
                f"{wait:.1f}s away, too close to the call's deadline; retry later",
                reason="RATE_BUDGET_EXHAUSTED",
                metadata={"bucket": self.bucket.value, "retryAfterSeconds": f"{wait:.1f}"},
                retry_after_seconds=wait,
            )
        try:
            await asyncio.sleep(wait)
        except asyncio.CancelledError:
            await self.refund()  # a caller that went away leaves its slot to the next
            raise
        return wait

    async def observe_headers(self, remaining: str | None, reset: str | None) -> None:
        """Lowers the shared balance to the server's count; never raises it."""
        if remaining is None:
            return
        try:
            left = float(remaining)
            reset_seconds = float(reset) if reset is not None else 1.0
        except ValueError:
            return
        if not (math.isfinite(left) and math.isfinite(reset_seconds)):
            return
        if left >= self._capacity:
            # The balance never exceeds the capacity, so this count cannot lower it (nor
            # block it): skip the store's round trip, which with Redis every call paid.
            return
        # Replicate's windows are a minute long; never block longer on a header's word.
        reset_seconds = min(reset_seconds, _MAX_RESET_SECONDS)
        await self._state.call(
            Guarantee.BUDGET,
            "lower",
            None,
            lambda s: s.lower(self._key, self._rate, self._capacity, left, reset_seconds),
        )

    async def block_for(self, seconds: float) -> None:
        """After a 429, nobody (on any replica) spends this bucket until the delay has passed."""
        await self._state.call(
            Guarantee.BUDGET,
            "block",
            None,
            lambda s: s.block(self._key, self._rate, self._capacity, seconds),
        )


class AccountBudgets:
    """The create and other buckets of each Replicate account the gateway spends."""

    def __init__(self, state: SharedState, *, create_per_minute: int, other_per_minute: int):
        self._state = state
        # Replicate's limits are the same for every account.
        self._per_minute = {Bucket.CREATE: create_per_minute, Bucket.OTHER: other_per_minute}
        # Keyed by token (one token, one account): the digest that names the account is
        # taken once per account, not twice per request.
        self._budgets: dict[tuple[str, Bucket], RateBudget] = {}

    def __call__(self, token: str, bucket: Bucket) -> RateBudget:
        budget = self._budgets.get((token, bucket))
        if budget is None:
            budget = RateBudget(
                bucket, self._per_minute[bucket], state=self._state, account=account_id(token)
            )
            self._budgets[token, bucket] = budget
        return budget
