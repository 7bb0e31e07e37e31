"""A minimal server-sent-events reader for the direct baseline, independent of the gateway's.

The baseline must not share the code it is compared with, so this follows the
WHATWG event-stream rules directly: comments skipped, `data:` lines joined with
newlines, an event dispatched at a blank line.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["EventReader", "SseEvent"]


@dataclass(frozen=True, slots=True)
class SseEvent:
    event: str
    data: str
    id: str


@dataclass
class EventReader:
    """Feed it decoded lines (without their line break); it returns each event as it ends."""

    _event: str = ""
    _data: list[str] = field(default_factory=list)
    _id: str = ""

    def feed(self, line: str) -> SseEvent | None:
        if not line:
            return self._dispatch()
        if line.startswith(":"):
            return None
        name, colon, value = line.partition(":")
        if colon and value.startswith(" "):
            value = value[1:]
        if name == "event":
            self._event = value
        elif name == "data":
            self._data.append(value)
        elif name == "id" and "\0" not in value:
            self._id = value
        return None

    def _dispatch(self) -> SseEvent | None:
        if not self._data:
            self._event = ""
            return None
        event = SseEvent(self._event or "message", "\n".join(self._data), self._id)
        self._event, self._data = "", []
        return event
