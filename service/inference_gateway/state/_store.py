"""The shared-state interface: the few atomic operations the gateway's guarantees need.

Each operation is atomic on its back end (one Lua script on Redis, one uninterrupted
step on the event loop in memory), so replicas sharing a store never read-modify-write
each other's state. Times are seconds; a back end measures them on its own clock (the
Redis server's, so replicas with skewed clocks agree).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Protocol

__all__ = ["Claim", "ClaimOutcome", "StateStore", "StoreError", "window_retry_after"]


class StoreError(Exception):
    """The store could not answer (unreachable, timed out, or refused the command)."""


class ClaimOutcome(Enum):
    # This holder owns the record and must create the prediction.
    CLAIMED = "claimed"
    # This holder took over a record whose owner's lease expired, or whose owner's caller
    # left, after it recorded a prediction id: it follows that prediction instead of
    # creating another.
    ADOPTED = "adopted"
    # Another holder owns it and its lease is live: attach (or wait for the prediction id).
    RUNNING = "running"
    # Finished within the retention window: replay the stored response.
    DONE = "done"
    # The same key was first used for a different request.
    MISMATCH = "mismatch"


@dataclass(frozen=True, slots=True)
class Claim:
    outcome: ClaimOutcome
    prediction_id: str | None = None
    response: bytes | None = None


class StateStore(Protocol):
    """Token buckets, leases, window counters and idempotency records, by key."""

    @property
    def backend(self) -> str:
        """`memory` or `redis`, for metrics and logs."""
        ...

    # Token buckets that run into debt: a caller takes a token at once and waits out the
    # debt, so callers queue in order without polling.
    async def reserve(self, key: str, rate: float, capacity: float) -> float:
        """Takes a token; returns the seconds to wait before using it."""
        ...

    async def refund(self, key: str, rate: float, capacity: float) -> None:
        """Gives back a token taken by `reserve` and never used."""
        ...

    async def lower(
        self, key: str, rate: float, capacity: float, remaining: float, reset: float
    ) -> None:
        """Lowers the balance to `remaining` (never raises it); at 0, blocks for `reset` s."""
        ...

    async def block(self, key: str, rate: float, capacity: float, seconds: float) -> None:
        """Nobody spends the bucket for `seconds` (a 429's retry delay)."""
        ...

    # Leases: at most `limit` live holders per key; a holder that stops refreshing
    # (a replica killed mid-call) drops out after `ttl`.
    async def acquire_lease(self, key: str, holder: str, limit: int, ttl: float) -> bool: ...

    async def refresh_lease(self, key: str, holder: str, ttl: float) -> bool:
        """Extends a held lease; False when it had already expired (and was not renewed)."""
        ...

    async def release_lease(self, key: str, holder: str) -> None: ...

    # Sliding-window counters (the weighted sum of this window and the last).
    async def hit_window(self, key: str, limit: int, window: float) -> float:
        """Counts a hit within `limit`; returns 0, or the seconds until one would fit."""
        ...

    # Idempotency records: claimed under a lease while the create is in flight, then
    # holding the prediction id, then the final response for `retention` seconds.
    async def claim(
        self, key: str, fingerprint: str, holder: str, lease: float, retention: float
    ) -> Claim:
        """Claims the record, or says who has it; a repeat that waits calls this again."""
        ...

    async def renew_claim(
        self, key: str, holder: str, lease: float, prediction_id: str | None = None
    ) -> bool:
        """Extends the holder's lease, recording the prediction id once known; False if lost."""
        ...

    async def complete(self, key: str, holder: str, response: bytes, retention: float) -> None:
        """Stores the final response for repeats, for `retention` seconds."""
        ...

    async def release_claim(self, key: str, holder: str) -> bool:
        """Drops a claim `holder` still owns and has not completed; whether it did.

        A create that failed is released so a repeat may create again; an abandoned
        record (holder "") is released when no repeat adopted it within its grace.
        """
        ...

    async def abandon_claim(self, key: str, holder: str, grace: float) -> bool:
        """The holder's caller left: the record waits `grace` seconds with no holder, and
        the first repeat adopts it at once. False when `holder` no longer owns it."""
        ...

    # Plain values that expire (operation records), and indexes of members that each
    # expire on their own (an owner's operations; the operations that need a follower).
    async def put(self, key: str, value: bytes, ttl: float) -> None: ...

    async def put_new(self, key: str, value: bytes, ttl: float) -> bool:
        """Stores `value` only if `key` holds nothing; True if it did (a once-only step)."""
        ...

    async def get(self, key: str) -> bytes | None: ...

    async def index_add(self, key: str, member: str, ttl: float) -> None: ...

    async def index_remove(self, key: str, member: str) -> None: ...

    async def index_members(self, key: str) -> list[str]:
        """Live members, oldest first."""
        ...

    # Spend records (budgets): settled spend and the reservations of calls in flight, each
    # reservation dropped when settled or, if its replica died, when it expires. Amounts
    # are integer nano-units of the price table's currency.
    async def spend_reserve(
        self, key: str, holder: str, amount: int, limit: int, hold: float, ttl: float
    ) -> tuple[bool, int, int]:
        """Reserves `amount` if settled + reserved + amount <= limit.

        Returns (granted, settled, reserved) as they stand after the call."""
        ...

    async def spend_settle(
        self, key: str, holder: str, amount: int, ttl: float, once: float = 0.0
    ) -> bool:
        """Drops the holder's reservation (if any) and adds `amount` to the settled spend.

        With `once` > 0, a marker beside the record, set in the same atomic step, makes
        the holder's settlement count once for `once` seconds: a repeat (two replicas
        settling one operation) changes nothing. Returns whether this call settled."""
        ...

    async def spend_read(self, key: str) -> tuple[int, int]:
        """(settled, reserved) now."""
        ...

    async def close(self) -> None: ...


def window_retry_after(
    previous: int, current: int, limit: int, elapsed: float, window: float
) -> float:
    """Seconds until the weighted count leaves room for one more hit.

    The previous window's weight falls linearly; if this window alone is full, room
    comes only when it becomes the previous one and starts to fall.
    """
    if current + 1 > limit:
        # Next window: weight w of `current` where current * (1 - f) + 1 <= limit.
        fraction = 1.0 - (limit - 1) / current if current else 0.0
        return (1.0 - elapsed) * window + max(fraction, 0.0) * window
    # previous * (1 - f) + current + 1 <= limit  =>  f >= 1 - (limit - 1 - current) / previous
    fraction = 1.0 - (limit - 1 - current) / previous
    return max(fraction - elapsed, 0.0) * window
