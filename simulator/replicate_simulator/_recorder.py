"""A log of every API request the simulator received, for tests to assert on.

Requests are recorded when they arrive (so a test can see a create that is still
held open by `Prefer: wait`); the response status is filled in when it is sent, and
stays None for a dropped connection. A lock makes the log safe to read from a test
thread while the simulator's loop appends to it; `wait_for` lets an in-process test
await requests (say, a client's third poll) instead of sleeping.
"""

from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass
from typing import Any

__all__ = ["RecordedRequest", "RequestLog"]


@dataclass
class RecordedRequest:
    """One API request as the simulator saw it."""

    kind: str
    """Endpoint kind: create, get, cancel, stream, model, version, deployment,
    deployment_update, file or other."""
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    """Header names lower-cased; repeated headers joined with ", "."""
    body: Any
    """The parsed JSON body, or None when there was none or it was not JSON."""
    time: float
    """Arrival, seconds since the epoch."""
    model: str | None = None
    """The model the request concerned, when the simulator could tell ("owner/name")."""
    response_status: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "method": self.method,
            "path": self.path,
            "query": self.query,
            "headers": self.headers,
            "body": self.body,
            "time": self.time,
            "model": self.model,
            "response_status": self.response_status,
        }


class RequestLog:
    """Recorded requests in arrival order, filterable by endpoint kind and model."""

    def __init__(self) -> None:
        self._requests: list[RecordedRequest] = []
        self._lock = threading.Lock()
        self._waiters: list[asyncio.Future[None]] = []

    def append(self, request: RecordedRequest) -> None:
        """Record a request (on the simulator's loop) and wake `wait_for` callers."""
        with self._lock:
            self._requests.append(request)
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    async def wait_for(
        self, count: int, kind: str | None = None, model: str | None = None
    ) -> list[RecordedRequest]:
        """Wait until `count` matching requests have arrived; call on the simulator's loop."""
        while len(found := self.matching(kind, model)) < count:
            waiter = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            await waiter
        return found

    def matching(self, kind: str | None = None, model: str | None = None) -> list[RecordedRequest]:
        with self._lock:
            return [
                request
                for request in self._requests
                if (kind is None or request.kind == kind)
                and (model is None or request.model == model)
            ]

    def count(self, kind: str | None = None, model: str | None = None) -> int:
        return len(self.matching(kind, model))

    def clear(self) -> None:
        with self._lock:
            self._requests.clear()
