"""One prediction's observable state: status, timestamps, output, logs and its SSE events.

The lifecycle driver moves it along; handlers only read it. Every change appends to
`events` (the SSE history, replayable after `Last-Event-ID`) and wakes whoever waits
on `wait_for_change`, so streams and `Prefer: wait` requests await events instead
of polling.
"""

from __future__ import annotations

import asyncio
import json
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from ._catalogue import ModelSpec

__all__ = ["TERMINAL_STATUSES", "Prediction", "StreamEvent", "new_prediction_id", "rfc3339"]

_ID_ALPHABET = "abcdefghijklmnopqrstuvwxyz234567"
TERMINAL_STATUSES = frozenset({"succeeded", "failed", "canceled", "aborted"})
_DONE_DATA = {
    "succeeded": "{}",
    "failed": json.dumps({"reason": "error"}),
    # Only "canceled" and "error" are documented reasons; an abort is a cancellation too.
    "canceled": json.dumps({"reason": "canceled"}),
    "aborted": json.dumps({"reason": "canceled"}),
}


def rfc3339(timestamp: float) -> str:
    """Replicate's timestamp format: UTC, microseconds, `Z`."""
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def new_prediction_id() -> str:
    """A 26-character lowercase base32 id, shaped like Replicate's."""
    return "".join(_ID_ALPHABET[byte & 31] for byte in secrets.token_bytes(26))


@dataclass(frozen=True, slots=True)
class StreamEvent:
    """One server-sent event in a prediction's history."""

    seq: int
    event: str
    data: str
    time: float

    @property
    def id(self) -> str:
        """`<unix-ts>:<seq>`, the format of the docs' example."""
        return f"{int(self.time)}:{self.seq}"


class Prediction:
    """A prediction and the asyncio hooks its waiters use."""

    def __init__(
        self,
        *,
        model: ModelSpec,
        version: str,
        input: dict[str, Any],
        base_url: str,
        created_at: float,
        streams: bool,
        single_output: bool,
        deadline: float | None = None,
        deployment: str | None = None,
        input_token_count: int | None = None,
    ) -> None:
        self.id = new_prediction_id()
        self.model = model
        self.version = version
        self.input = input
        self.base_url = base_url
        self.created_at = created_at
        self.streams = streams
        self.single_output = single_output
        self.deadline = deadline
        self.deployment = deployment
        self.input_token_count = input_token_count
        self.status = "starting"
        self.output: list[str] | str | None = None
        self.output_count = 0
        self.logs = ""
        self.error: str | None = None
        self.started_at: float | None = None
        self.completed_at: float | None = None
        self.first_output_at: float | None = None
        self.data_removed = False
        self.removal_timer: asyncio.TimerHandle | None = None
        self.events: list[StreamEvent] = []
        self.task: asyncio.Task[None] | None = None
        self.deadline_timer: asyncio.TimerHandle | None = None
        self.settled = asyncio.Event()
        """Set when the prediction is terminal, or when the simulator shuts down."""
        self._changed = asyncio.Event()

    @property
    def is_terminal(self) -> bool:
        return self.status in TERMINAL_STATUSES

    def start(self, now: float) -> None:
        self.status = "processing"
        self.started_at = now
        self._notify()

    def add_output(self, chunk: str, now: float) -> None:
        if self.single_output:
            self.output = chunk
        elif isinstance(self.output, list):
            self.output.append(chunk)
        else:
            self.output = [chunk]
        self.output_count += 1
        if self.first_output_at is None:
            self.first_output_at = now
        self._emit("output", chunk, now)

    def add_logs(self, text: str, now: float) -> None:
        self.logs += text
        self._emit("logs", text, now)

    def finish(self, status: str, now: float, error: str | None = None) -> None:
        """Move to a terminal status and release waiters; the caller stops the driver."""
        self.status = status
        self.error = error
        self.completed_at = now
        if self.deadline_timer is not None:
            self.deadline_timer.cancel()
        if error is not None:
            self._emit("error", error, now)
        self._emit("done", _DONE_DATA[status], now)
        self.settled.set()

    def remove_data(self) -> None:
        """What Replicate does about an hour after the end: input, output and logs go."""
        self.data_removed = True
        self.input = {}
        self.output = None
        self.logs = ""
        self._notify()

    def wake(self) -> None:
        """Release every waiter (used at shutdown)."""
        self.settled.set()
        self._notify()

    async def wait_for_change(self) -> None:
        await self._changed.wait()

    def _emit(self, event: str, data: str, now: float) -> None:
        self.events.append(StreamEvent(len(self.events), event, data, now))
        self._notify()

    def _notify(self) -> None:
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    def to_json(self, *, as_starting: bool = False, lagging: bool = False) -> dict[str, Any]:
        """The API body. `as_starting` shows it as still starting (a sync wait that ran out);
        `lagging` shows a finished prediction as still `processing`, as the API may for a
        moment after the stream's `done`."""
        body: dict[str, Any] = {
            "id": self.id,
            "model": self.model.full_name,
            "version": self.version,
            "input": self.input,
            "logs": "" if as_starting else self.logs,
            "output": None if as_starting else _copy(self.output),
            "data_removed": self.data_removed,
            "error": None if as_starting else self.error,
            "status": "starting" if as_starting else self.status,
            "created_at": rfc3339(self.created_at),
            "source": "api",
            "urls": self._urls(),
        }
        if self.deadline is not None:
            body["deadline"] = rfc3339(self.deadline)
        if self.deployment is not None:
            body["deployment"] = self.deployment
        if not as_starting:
            if self.started_at is not None:
                body["started_at"] = rfc3339(self.started_at)
            if self.completed_at is not None:
                body["completed_at"] = rfc3339(self.completed_at)
                body["metrics"] = self._metrics(self.completed_at)
        if lagging and self.completed_at is not None:
            body.update(status="processing", error=None)
            body.pop("completed_at", None)
            body.pop("metrics", None)
        return body

    def _urls(self) -> dict[str, str]:
        urls = {
            "get": f"{self.base_url}/v1/predictions/{self.id}",
            "cancel": f"{self.base_url}/v1/predictions/{self.id}/cancel",
            "web": f"https://replicate.com/p/{self.id}",
        }
        if self.streams:
            urls["stream"] = f"{self.base_url}/v1/streams/{self.id}"
        return urls

    def _metrics(self, completed_at: float) -> dict[str, Any]:
        predict_time = completed_at - self.started_at if self.started_at is not None else 0.0
        metrics: dict[str, Any] = {
            "predict_time": round(predict_time, 6),
            "total_time": round(completed_at - self.created_at, 6),
        }
        if self.model.kind == "text":
            metrics["input_token_count"] = self.input_token_count or 0
            metrics["output_token_count"] = self.output_count
            if self.first_output_at is not None and self.started_at is not None:
                metrics["time_to_first_token"] = round(self.first_output_at - self.started_at, 6)
            if predict_time > 0:
                metrics["tokens_per_second"] = round(self.output_count / predict_time, 3)
        elif self.model.official:
            # Official image models are billed per image, and report how many they made.
            metrics["image_count"] = self.output_count
        return metrics


def _copy(output: list[str] | str | None) -> list[str] | str | None:
    return list(output) if isinstance(output, list) else output
