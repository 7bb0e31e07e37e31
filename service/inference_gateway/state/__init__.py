"""Shared state behind one interface: in process by default, in Redis across replicas."""

from __future__ import annotations

from inference_gateway.state._shared import (
    DEFAULT_POLICIES,
    FailurePolicy,
    Guarantee,
    Lease,
    SharedState,
    StoreObserver,
    parse_policies,
)
from inference_gateway.state._store import Claim, ClaimOutcome, StateStore, StoreError
from inference_gateway.state.memory import MemoryStore

__all__ = [
    "DEFAULT_POLICIES",
    "Claim",
    "ClaimOutcome",
    "FailurePolicy",
    "Guarantee",
    "Lease",
    "MemoryStore",
    "SharedState",
    "StateStore",
    "StoreError",
    "StoreObserver",
    "open_store",
    "parse_policies",
]


def open_store(url: str | None, *, prefix: str, timeout: float) -> StateStore:
    """The Redis store for `url`, or the in-process one when there is none."""
    if not url:
        return MemoryStore()
    from inference_gateway.state.redis import RedisStore

    return RedisStore(url, prefix=prefix, timeout=timeout)
