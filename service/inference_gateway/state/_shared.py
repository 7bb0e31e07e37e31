"""The state store as the gateway uses it: bounded in time, with a policy for outages.

Every call to the store is bounded by the smaller of the store timeout and what is left
of the caller's deadline, so no request hangs on the store. When the store fails, each
guarantee follows its own policy: `fail-open` serves from this replica's own state (the
guarantee then holds per replica, as with no store at all) and says so in a metric and a
log line; `fail-closed` answers UNAVAILABLE. After a failure the store is left alone for
`retry_interval` seconds, so an outage costs one timeout per interval, not one per call.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from enum import StrEnum
from typing import Protocol, TypeVar

from inference_gateway.deadlines import Deadline
from inference_gateway.errors import DeadlineExceeded, Unavailable
from inference_gateway.state._store import StateStore, StoreError
from inference_gateway.state.memory import MemoryStore

__all__ = [
    "DEFAULT_POLICIES",
    "FailurePolicy",
    "Guarantee",
    "Lease",
    "SharedState",
    "StoreObserver",
    "parse_policies",
]

_log = logging.getLogger("inference_gateway.state")
T = TypeVar("T")


class _OutOfTime(StoreError):
    """The caller's deadline, shorter than the store timeout, passed during the call."""


class Guarantee(StrEnum):
    BUDGET = "budget"
    CONCURRENCY = "concurrency"
    QUOTA = "quota"
    IDEMPOTENCY = "idempotency"
    OPERATIONS = "operations"
    SPEND = "spend"


class FailurePolicy(StrEnum):
    FAIL_OPEN = "fail-open"
    FAIL_CLOSED = "fail-closed"


# Limits fail open (a replica keeps serving within its own share); an idempotent request
# fails closed, since serving it on one replica's records could create a prediction twice.
# An operation recorded on one replica's own state is one no other replica can answer for.
# A caller's spend limit is money: per replica it would multiply by the replica count.
DEFAULT_POLICIES = (
    "budget=fail-open,concurrency=fail-open,quota=fail-open,idempotency=fail-closed,"
    "operations=fail-closed,spend=fail-closed"
)


def parse_policies(text: str) -> dict[Guarantee, FailurePolicy]:
    """`fail-open`, `fail-closed`, or `guarantee=policy,...` over the defaults.

    Raises ValueError naming what is accepted.
    """
    word = text.strip()
    if word in {policy.value for policy in FailurePolicy}:
        return dict.fromkeys(Guarantee, FailurePolicy(word))
    policies = _parse(DEFAULT_POLICIES)
    policies.update(_parse(text))
    return policies


def _parse(text: str) -> dict[Guarantee, FailurePolicy]:
    policies: dict[Guarantee, FailurePolicy] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, _, value = part.partition("=")
        try:
            policies[Guarantee(name.strip())] = FailurePolicy(value.strip())
        except ValueError:
            raise ValueError(
                f"{part!r} is not GUARANTEE=POLICY with GUARANTEE one of "
                f"{', '.join(Guarantee)} and POLICY fail-open or fail-closed"
            ) from None
    return policies


class StoreObserver(Protocol):
    def store_call(self, backend: str, op: str, seconds: float, ok: bool) -> None: ...

    def store_fail_open(self, guarantee: str) -> None: ...


class _Quiet:
    def store_call(self, backend: str, op: str, seconds: float, ok: bool) -> None:
        pass

    def store_fail_open(self, guarantee: str) -> None:
        pass


class SharedState:
    """The one way the gateway reaches shared state."""

    def __init__(
        self,
        store: StateStore,
        *,
        timeout: float = 0.25,
        policies: Mapping[Guarantee, FailurePolicy] | None = None,
        observer: StoreObserver | None = None,
        retry_interval: float = 1.0,
    ) -> None:
        self.store = store
        # Per-replica state for fail-open; a memory store never fails, so needs none.
        self.fallback: StateStore = store if isinstance(store, MemoryStore) else MemoryStore()
        self._timeout = timeout
        self._policies = {**parse_policies(DEFAULT_POLICIES), **(policies or {})}
        self._observer: StoreObserver = observer if observer is not None else _Quiet()
        self._retry_interval = retry_interval
        self._down_until = 0.0

    @property
    def backend(self) -> str:
        return self.store.backend

    def policy(self, guarantee: Guarantee) -> FailurePolicy:
        return self._policies[guarantee]

    async def call(
        self,
        guarantee: Guarantee,
        op: str,
        deadline: Deadline | None,
        fn: Callable[[StateStore], Awaitable[T]],
    ) -> T:
        """Runs `fn` on the shared store, or as the guarantee's policy says when it fails."""
        return (await self.call_served(guarantee, op, deadline, fn))[0]

    async def call_served(
        self,
        guarantee: Guarantee,
        op: str,
        deadline: Deadline | None,
        fn: Callable[[StateStore], Awaitable[T]],
    ) -> tuple[T, StateStore]:
        """As `call`, also naming the store that answered, for state tied to it (a lease)."""
        if self.store is self.fallback:
            return await fn(self.store), self.store
        if time.monotonic() >= self._down_until:
            try:
                return await self.call_on(self.store, op, deadline, fn), self.store
            except _OutOfTime:
                # The caller's deadline, not the store, ran out: no outage.
                if self.policy(guarantee) is FailurePolicy.FAIL_CLOSED:
                    raise DeadlineExceeded(
                        f"the call's deadline passed while waiting for the shared state "
                        f"store ({self.backend})",
                        reason="DEADLINE_EXCEEDED",
                        metadata={"guarantee": str(guarantee)},
                    ) from None
            except StoreError as exc:
                self._went_down(exc)
        if self.policy(guarantee) is FailurePolicy.FAIL_CLOSED:
            raise Unavailable(
                f"the shared state store ({self.backend}) is unreachable and the {guarantee} "
                "guarantee is fail-closed (GATEWAY_REDIS_ON_FAILURE); retry shortly",
                reason="STATE_STORE_UNAVAILABLE",
                metadata={"guarantee": str(guarantee), "backend": self.backend},
                retry_after_seconds=self._retry_interval,
            )
        self._observer.store_fail_open(str(guarantee))
        return await fn(self.fallback), self.fallback

    async def call_on(
        self,
        store: StateStore,
        op: str,
        deadline: Deadline | None,
        fn: Callable[[StateStore], Awaitable[T]],
    ) -> T:
        """Runs `fn` on `store` within the time bound; StoreError when it cannot."""
        if store is self.fallback:
            return await fn(store)
        if deadline is not None and deadline.expired:
            raise _OutOfTime("the caller's deadline has passed")
        budget = self._timeout if deadline is None else min(self._timeout, deadline.remaining())
        started = time.perf_counter()
        try:
            async with asyncio.timeout(budget):
                result = await fn(store)
        except (StoreError, TimeoutError) as exc:
            self._observer.store_call(store.backend, op, time.perf_counter() - started, False)
            if not isinstance(exc, TimeoutError):
                raise
            kind = _OutOfTime if budget < self._timeout else StoreError
            raise kind(f"no answer within {budget:.3f}s") from exc
        self._observer.store_call(store.backend, op, time.perf_counter() - started, True)
        if self._down_until:
            self._down_until = 0.0
            _log.warning("state store %s answers again: shared state resumes", self.backend)
        return result

    def _went_down(self, exc: StoreError) -> None:
        if not self._down_until:
            opened = [str(g) for g in Guarantee if self.policy(g) is FailurePolicy.FAIL_OPEN]
            _log.warning(
                "state store %s failed (%s): fail-open guarantees (%s) serve on this "
                "replica's own state, fail-closed ones answer UNAVAILABLE, until it answers",
                self.backend,
                exc,
                ", ".join(opened) or "none",
            )
        self._down_until = time.monotonic() + self._retry_interval

    async def acquire_lease(
        self, guarantee: Guarantee, key: str, limit: int, ttl: float, deadline: Deadline | None
    ) -> Lease | None:
        """A held slot, refreshed in the background until released; None when all are taken."""
        holder = uuid.uuid4().hex
        granted, store = await self.call_served(
            guarantee, "acquire_lease", deadline, lambda s: s.acquire_lease(key, holder, limit, ttl)
        )
        return Lease(self, store, key, holder, ttl) if granted else None

    async def close(self) -> None:
        await self.store.close()


class Lease:
    """A slot held on one store; refreshed every third of its TTL while the call runs."""

    def __init__(
        self, shared: SharedState, store: StateStore, key: str, holder: str, ttl: float
    ) -> None:
        self._shared = shared
        self._store = store
        self._key = key
        self._holder = holder
        self._ttl = ttl
        self._refresher = asyncio.create_task(self._refresh())

    async def _refresh(self) -> None:
        while True:
            await asyncio.sleep(self._ttl / 3)
            try:
                held = await self._shared.call_on(
                    self._store,
                    "refresh_lease",
                    None,
                    lambda s: s.refresh_lease(self._key, self._holder, self._ttl),
                )
            except StoreError as exc:
                _log.warning("could not refresh a lease on %s: %s", self._key, exc)
                continue
            if not held:
                _log.warning("a lease on %s expired before it was refreshed", self._key)

    async def release(self) -> None:
        self._refresher.cancel()
        try:
            await self._shared.call_on(
                self._store,
                "release_lease",
                None,
                lambda s: s.release_lease(self._key, self._holder),
            )
        except StoreError as exc:
            # It expires by itself within its TTL.
            _log.warning("could not release a lease on %s: %s", self._key, exc)
