"""Replicate's per-minute request budgets, as token buckets per API token.

Replicate allows short bursts above the published rate (600 creates and 3000 other
requests a minute), which a token bucket of one minute's capacity models. Every
response reports `ratelimit-remaining` and `ratelimit-reset`; an empty bucket means
429 with `retry_after`, the whole seconds until one request is allowed again. The
minute is a simulated one; the waits are reported in real seconds (see `_clock`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ._clock import SimClock

__all__ = ["RateDecision", "RateLimiter"]


@dataclass(frozen=True, slots=True)
class RateDecision:
    allowed: bool
    remaining: int
    reset_seconds: int
    """Whole real seconds until the bucket holds one more request (at least 1)."""


class RateLimiter:
    """One token bucket per key, refilled continuously at `per_minute` / 60 a second."""

    def __init__(self, per_minute: int, clock: SimClock | None = None) -> None:
        if per_minute < 1:
            raise ValueError(
                f"a rate limit must allow at least 1 request a minute, got {per_minute}"
            )
        self._capacity = float(per_minute)
        self._per_second = per_minute / 60.0
        self._clock = clock if clock is not None else SimClock()
        self._buckets: dict[str, tuple[float, float]] = {}

    def take(self, key: str) -> RateDecision:
        """Spend one request from `key`'s bucket if it has one."""
        return self._decide(key, spend=True)

    def peek(self, key: str) -> RateDecision:
        """What `take` would report, without spending (for responses that are not counted)."""
        return self._decide(key, spend=False)

    def reset(self) -> None:
        self._buckets.clear()

    def _decide(self, key: str, *, spend: bool) -> RateDecision:
        now = self._clock.monotonic()
        level, then = self._buckets.get(key, (self._capacity, now))
        level = min(self._capacity, level + (now - then) * self._per_second)
        allowed = level >= 1.0
        if spend and allowed:
            level -= 1.0
        self._buckets[key] = (level, now)
        wait = (math.floor(level) + 1.0 - level) / self._per_second
        return RateDecision(
            allowed=allowed,
            remaining=int(level),
            reset_seconds=self._clock.real_whole_seconds(wait),
        )
