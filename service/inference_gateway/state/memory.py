"""The in-process back end: the default, so one replica (and `make run`) needs no store.

Every operation runs without an `await` inside, so on one event loop each is atomic.
Expired entries are dropped as they are touched and by a sweep every so many
operations, so memory stays bounded by what is live.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from inference_gateway.state._store import Claim, ClaimOutcome, window_retry_after

__all__ = ["MemoryStore"]

_SWEEP_EVERY = 1024


@dataclass(slots=True)
class _Bucket:
    tokens: float
    updated: float
    blocked_until: float = 0.0


@dataclass(slots=True)
class _Window:
    index: int
    current: int = 0
    previous: int = 0


@dataclass(slots=True)
class _Record:
    fingerprint: str
    holder: str
    lease_until: float
    expires: float
    prediction_id: str | None = None
    response: bytes | None = None


@dataclass(slots=True)
class _Spend:
    expires: float
    settled: int = 0
    # holder -> (amount, expiry)
    held: dict[str, tuple[int, float]] = field(default_factory=dict)
    # holder -> expiry of its settle-once marker
    settled_once: dict[str, float] = field(default_factory=dict)

    def reserved(self, now: float) -> int:
        self.held = {h: (n, until) for h, (n, until) in self.held.items() if until > now}
        return sum(n for n, _ in self.held.values())


@dataclass(slots=True)
class _Tables:
    buckets: dict[str, _Bucket] = field(default_factory=dict)
    leases: dict[str, dict[str, float]] = field(default_factory=dict)
    windows: dict[str, _Window] = field(default_factory=dict)
    records: dict[str, _Record] = field(default_factory=dict)
    # key -> (value, expiry); index key -> {member: (added, expiry)}
    values: dict[str, tuple[bytes, float]] = field(default_factory=dict)
    indexes: dict[str, dict[str, tuple[float, float]]] = field(default_factory=dict)
    spends: dict[str, _Spend] = field(default_factory=dict)


class MemoryStore:
    """State for one process; `clock` is injectable so tests can move time."""

    backend = "memory"

    def __init__(self, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._t = _Tables()
        self._ops = 0

    def _now(self) -> float:
        self._ops += 1
        now = self._clock()
        if self._ops % _SWEEP_EVERY == 0:
            self._sweep(now)
        return now

    def _sweep(self, now: float) -> None:
        t = self._t
        for key in [k for k, r in t.records.items() if r.expires <= now]:
            del t.records[key]
        for key in [k for k, (_, expires) in t.values.items() if expires <= now]:
            del t.values[key]
        for key in list(t.indexes):
            self._live_members(key, now)
        for key in [k for k, spend in t.spends.items() if spend.expires <= now]:
            del t.spends[key]
        for key, holders in list(t.leases.items()):
            live = {h: until for h, until in holders.items() if until > now}
            if live:
                t.leases[key] = live
            else:
                del t.leases[key]

    def _bucket(self, key: str, rate: float, capacity: float, now: float) -> _Bucket:
        bucket = self._t.buckets.get(key)
        if bucket is None:
            bucket = self._t.buckets[key] = _Bucket(capacity, now)
        bucket.tokens = min(capacity, bucket.tokens + (now - bucket.updated) * rate)
        bucket.updated = now
        return bucket

    async def reserve(self, key: str, rate: float, capacity: float) -> float:
        now = self._now()
        bucket = self._bucket(key, rate, capacity, now)
        bucket.tokens -= 1.0
        return max(0.0, -bucket.tokens / rate, bucket.blocked_until - now)

    async def refund(self, key: str, rate: float, capacity: float) -> None:
        bucket = self._bucket(key, rate, capacity, self._now())
        bucket.tokens = min(capacity, bucket.tokens + 1.0)

    async def lower(
        self, key: str, rate: float, capacity: float, remaining: float, reset: float
    ) -> None:
        now = self._now()
        bucket = self._bucket(key, rate, capacity, now)
        if remaining <= 0:
            bucket.blocked_until = max(bucket.blocked_until, now + max(reset, 0.0))
        bucket.tokens = min(bucket.tokens, remaining)

    async def block(self, key: str, rate: float, capacity: float, seconds: float) -> None:
        now = self._now()
        bucket = self._bucket(key, rate, capacity, now)
        bucket.blocked_until = max(bucket.blocked_until, now + seconds)

    async def acquire_lease(self, key: str, holder: str, limit: int, ttl: float) -> bool:
        now = self._now()
        holders = {h: until for h, until in self._t.leases.get(key, {}).items() if until > now}
        self._t.leases[key] = holders
        if holder not in holders and len(holders) >= limit:
            return False
        holders[holder] = now + ttl
        return True

    async def refresh_lease(self, key: str, holder: str, ttl: float) -> bool:
        now = self._now()
        holders = self._t.leases.get(key, {})
        if holders.get(holder, 0.0) <= now:
            holders.pop(holder, None)
            return False
        holders[holder] = now + ttl
        return True

    async def release_lease(self, key: str, holder: str) -> None:
        self._now()
        holders = self._t.leases.get(key)
        if holders is not None:
            holders.pop(holder, None)
            if not holders:
                del self._t.leases[key]

    async def hit_window(self, key: str, limit: int, window: float) -> float:
        now = self._now()
        index = int(now // window)
        counter = self._t.windows.get(key)
        if counter is None or counter.index < index - 1:
            counter = self._t.windows[key] = _Window(index)
        elif counter.index == index - 1:
            counter.index, counter.previous, counter.current = index, counter.current, 0
        elapsed = now / window - index
        weighted = counter.previous * (1.0 - elapsed) + counter.current
        if weighted + 1 <= limit:
            counter.current += 1
            return 0.0
        return window_retry_after(counter.previous, counter.current, limit, elapsed, window)

    async def claim(
        self, key: str, fingerprint: str, holder: str, lease: float, retention: float
    ) -> Claim:
        now = self._now()
        record = self._t.records.get(key)
        if record is not None and record.expires <= now:
            record = None
        if record is None:
            self._t.records[key] = _Record(fingerprint, holder, now + lease, now + retention)
            return Claim(ClaimOutcome.CLAIMED)
        if record.fingerprint != fingerprint:
            return Claim(ClaimOutcome.MISMATCH)
        if record.response is not None:
            return Claim(ClaimOutcome.DONE, record.prediction_id, record.response)
        if record.holder not in (holder, "") and record.lease_until > now:
            return Claim(ClaimOutcome.RUNNING, record.prediction_id)
        record.holder, record.lease_until = holder, now + lease
        if record.prediction_id is None:
            return Claim(ClaimOutcome.CLAIMED)
        return Claim(ClaimOutcome.ADOPTED, record.prediction_id)

    async def renew_claim(
        self, key: str, holder: str, lease: float, prediction_id: str | None = None
    ) -> bool:
        now = self._now()
        record = self._t.records.get(key)
        if record is None or record.holder != holder or record.response is not None:
            return False
        record.lease_until = now + lease
        record.expires = max(record.expires, now + lease)
        if prediction_id is not None:
            record.prediction_id = prediction_id
        return True

    async def complete(self, key: str, holder: str, response: bytes, retention: float) -> None:
        now = self._now()
        record = self._t.records.get(key)
        if record is not None and record.holder == holder:
            record.response, record.expires = response, now + retention

    async def release_claim(self, key: str, holder: str) -> bool:
        self._now()
        record = self._t.records.get(key)
        if record is None or record.holder != holder or record.response is not None:
            return False
        del self._t.records[key]
        return True

    async def abandon_claim(self, key: str, holder: str, grace: float) -> bool:
        now = self._now()
        record = self._t.records.get(key)
        if record is None or record.holder != holder or record.response is not None:
            return False
        record.holder, record.lease_until = "", now + grace
        record.expires = max(record.expires, now + grace)
        return True

    async def put(self, key: str, value: bytes, ttl: float) -> None:
        self._t.values[key] = (value, self._now() + ttl)

    async def put_new(self, key: str, value: bytes, ttl: float) -> bool:
        now = self._now()
        held = self._t.values.get(key)
        if held is not None and held[1] > now:
            return False
        self._t.values[key] = (value, now + ttl)
        return True

    async def get(self, key: str) -> bytes | None:
        now = self._now()
        held = self._t.values.get(key)
        if held is None or held[1] <= now:
            self._t.values.pop(key, None)
            return None
        return held[0]

    async def index_add(self, key: str, member: str, ttl: float) -> None:
        now = self._now()
        members = self._t.indexes.setdefault(key, {})
        added = members[member][0] if member in members else now
        members[member] = (added, now + ttl)

    async def index_remove(self, key: str, member: str) -> None:
        self._now()
        self._t.indexes.get(key, {}).pop(member, None)

    async def index_members(self, key: str) -> list[str]:
        members = self._live_members(key, self._now())
        return sorted(members, key=lambda member: members[member][0])

    def _live_members(self, key: str, now: float) -> dict[str, tuple[float, float]]:
        members = {m: times for m, times in self._t.indexes.get(key, {}).items() if times[1] > now}
        if members:
            self._t.indexes[key] = members
        else:
            self._t.indexes.pop(key, None)
        return members

    def _spend(self, key: str, now: float, ttl: float = 0.0) -> _Spend:
        spend = self._t.spends.get(key)
        if spend is None or spend.expires <= now:
            spend = self._t.spends[key] = _Spend(now + ttl)
        spend.expires = max(spend.expires, now + ttl)
        return spend

    async def spend_reserve(
        self, key: str, holder: str, amount: int, limit: int, hold: float, ttl: float
    ) -> tuple[bool, int, int]:
        now = self._now()
        spend = self._spend(key, now, ttl)
        reserved = spend.reserved(now)
        if spend.settled + reserved + amount > limit:
            return False, spend.settled, reserved
        spend.held[holder] = (amount, now + hold)
        return True, spend.settled, reserved + amount

    async def spend_settle(
        self, key: str, holder: str, amount: int, ttl: float, once: float = 0.0
    ) -> bool:
        now = self._now()
        spend = self._spend(key, now, ttl)
        spend.settled_once = {h: until for h, until in spend.settled_once.items() if until > now}
        if once > 0 and holder in spend.settled_once:
            return False
        spend.held.pop(holder, None)
        spend.settled += amount
        if once > 0:
            spend.settled_once[holder] = now + once
        return True

    async def spend_read(self, key: str) -> tuple[int, int]:
        now = self._now()
        spend = self._t.spends.get(key)
        if spend is None or spend.expires <= now:
            return 0, 0
        return spend.settled, spend.reserved(now)

    async def close(self) -> None:
        self._t = _Tables()
