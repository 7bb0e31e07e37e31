"""Scripted faults: the errors, dropped connections and delays a test asks for.

A fault matches requests by endpoint kind and, optionally, by model; it fires for
the next `times` matching requests (or until cleared when `times` is None). Faults
are checked in the order they were added. The queue is guarded by a lock because a
test thread may add faults while the simulator's loop consumes them.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ._fields import coerce_fields
from ._problems import ApiProblem, canned_problem

__all__ = ["ENDPOINT_KINDS", "Fault", "FaultError", "FaultQueue"]

ENDPOINT_KINDS = (
    "create", "get", "cancel", "stream", "model", "version", "deployment",
    "deployment_update", "file", "account",
)  # fmt: skip


class FaultError(ValueError):
    """A fault definition is incomplete or contradictory."""


@dataclass
class Fault:
    """One scripted misbehaviour. Set at least one effect: status, drop, delay or a stream fault."""

    kind: str | None = None
    """Endpoint kind to hit (one of ENDPOINT_KINDS); None hits every API request."""
    model: str | None = None
    """Only requests about this model ("owner/name"); None for any."""
    times: int | None = 1
    """How many matching requests it affects; None until cleared."""
    status: int | None = None
    """Answer with this HTTP error status and a problem+json body."""
    body: dict[str, Any] | None = None
    """Replace the canned problem body."""
    headers: dict[str, str] = field(default_factory=dict)
    """Extra response headers."""
    retry_after: int | None = None
    """For 429: the body's `retry_after` (seconds) and the wording of `detail`."""
    retry_after_header: bool = False
    """Also send `Retry-After: <retry_after>`."""
    drop_connection: bool = False
    """Close the connection without answering."""
    delay_seconds: float = 0.0
    """Wait this long first (alone: a slow but otherwise normal response)."""
    stream_cut_after_events: int | None = None
    """Streams only: drop the SSE connection after this many events."""
    stream_endless_line_after_events: int | None = None
    """Streams only: after this many events, send a data line that never ends."""
    id: int = field(default=0, init=False)
    fired: int = field(default=0, init=False)
    endless_line_bytes: int = field(default=0, init=False)
    """Bytes of the endless line written before the client hung up."""

    def __post_init__(self) -> None:
        if self.kind is not None and self.kind not in ENDPOINT_KINDS:
            raise FaultError(
                f"fault kind {self.kind!r} is unknown; use one of {', '.join(ENDPOINT_KINDS)}"
            )
        if self.times is not None and self.times < 1:
            raise FaultError(f"fault times must be >= 1 (or null for unlimited), got {self.times}")
        if self.status is not None and not 400 <= self.status <= 599:
            raise FaultError(
                f"fault status must be an HTTP error status (400-599), got {self.status}"
            )
        if not self.delay_seconds >= 0:
            raise FaultError(f"fault delay_seconds must be >= 0, got {self.delay_seconds}")
        endings = [
            self.status is not None,
            self.drop_connection,
            self.stream_cut_after_events is not None,
            self.stream_endless_line_after_events is not None,
        ]
        if sum(endings) > 1:
            raise FaultError(
                "a fault takes at most one of status, drop_connection, stream_cut_after_events "
                "and stream_endless_line_after_events"
            )
        if not any(endings) and self.delay_seconds == 0:
            raise FaultError(
                "a fault needs an effect: status, drop_connection, delay_seconds, "
                "stream_cut_after_events or stream_endless_line_after_events"
            )
        for name in ("stream_cut_after_events", "stream_endless_line_after_events"):
            count = getattr(self, name)
            if count is not None and (self.kind != "stream" or count < 0):
                raise FaultError(f"{name} needs kind 'stream' and a count >= 0")
        if not all(isinstance(k, str) and isinstance(v, str) for k, v in self.headers.items()):
            raise FaultError("fault headers must map header names to string values")
        if self.retry_after_header and self.retry_after is None:
            raise FaultError("retry_after_header needs retry_after (seconds)")

    def matches(self, kind: str, model: str | None) -> bool:
        return (self.kind is None or self.kind == kind) and (
            self.model is None or self.model == model
        )

    def problem(self) -> ApiProblem | None:
        """The error response of a status fault, or None for other faults."""
        if self.status is None:
            return None
        canned = canned_problem(self.status, self.retry_after)
        headers = dict(self.headers)
        if self.retry_after_header and self.retry_after is not None:
            headers["Retry-After"] = str(self.retry_after)
        body = self.body if self.body is not None else canned.body
        return ApiProblem.verbatim(self.status, body, headers)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind,
            "model": self.model,
            "times": self.times,
            "status": self.status,
            "body": self.body,
            "headers": self.headers,
            "retry_after": self.retry_after,
            "retry_after_header": self.retry_after_header,
            "drop_connection": self.drop_connection,
            "delay_seconds": self.delay_seconds,
            "stream_cut_after_events": self.stream_cut_after_events,
            "stream_endless_line_after_events": self.stream_endless_line_after_events,
            "fired": self.fired,
            "endless_line_bytes": self.endless_line_bytes,
        }


class FaultQueue:
    """Pending faults, first added first matched."""

    def __init__(self) -> None:
        self._faults: list[Fault] = []
        self._ids = itertools.count(1)
        self._lock = threading.Lock()

    def add(self, fault: Fault | None = None, /, **settings: Any) -> Fault:
        """Arm `fault`, or one built from keyword settings; returns it (its `fired` counts hits)."""
        if fault is None:
            fault = Fault(**settings)
        elif settings:
            raise FaultError("pass either a Fault or keyword settings, not both")
        with self._lock:
            fault.id = next(self._ids)
            self._faults.append(fault)
        return fault

    def add_from_mapping(self, settings: Mapping[str, object]) -> Fault:
        """Arm a fault described by a JSON/YAML mapping (the control route's body)."""
        return self.add(Fault(**coerce_fields(Fault, settings, where="fault", error=FaultError)))

    def take(self, kind: str, model: str | None) -> Fault | None:
        """The first fault matching this request, counted as fired."""
        with self._lock:
            for fault in self._faults:
                if fault.matches(kind, model):
                    fault.fired += 1
                    if fault.times is not None and fault.fired >= fault.times:
                        self._faults.remove(fault)
                    return fault
        return None

    def pending(self) -> list[Fault]:
        with self._lock:
            return list(self._faults)

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()
