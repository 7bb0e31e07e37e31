"""An incremental, bounded Server-Sent Events decoder (the WHATWG event-stream format).

Replicate's stream endpoint speaks SSE; we decode it ourselves because the format
is small and we need the event ids to resume a dropped stream without repeating text.

The stream is an upstream's bytes, so the decoder holds at most `max_event_bytes` for
the event being assembled (its data lines plus the line still unterminated), and
looks at each received byte once: a line that never ends costs linear time and
bounded memory, then ends the stream with EventTooLarge.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncGenerator, AsyncIterable
from dataclasses import dataclass

__all__ = [
    "MAX_EVENT_BYTES",
    "EventTooLarge",
    "SSEDecoder",
    "ServerSentEvent",
    "iter_events",
]

MAX_EVENT_BYTES = 1 << 20
"""Default bound on one event: Replicate's are one token or one file URL each."""

# CR, LF and CRLF are the only line breaks the format has: not U+2028 nor form feeds,
# which httpx's aiter_lines would split at, cutting a model's output in two. In UTF-8
# the bytes 0x0D and 0x0A never occur inside a character, so splitting bytes is exact.
_LINE_BREAK = re.compile(rb"\r\n|\r|\n")
_BOM = "\ufeff".encode()


class EventTooLarge(Exception):
    """The upstream sent more than max_event_bytes for one event (or one line)."""


@dataclass(frozen=True, slots=True)
class ServerSentEvent:
    event: str
    data: str
    id: str | None
    retry_ms: int | None = None


class SSEDecoder:
    """Turns received bytes into events; one instance per connection."""

    def __init__(self, max_event_bytes: int = MAX_EVENT_BYTES) -> None:
        self._max = max_event_bytes
        self._partial: list[bytes] = []  # the unterminated line, as received
        self._partial_bytes = 0
        self._data_bytes = 0  # data lines held for the event in progress
        self._after_cr = False  # a LF opening the next chunk ends no new line
        self._first_line = True
        self._event = ""
        self._data: list[str] = []
        self._id: str | None = None
        self._retry: int | None = None
        self._seen_field = False

    @property
    def buffered(self) -> int:
        """Bytes held for the event being assembled; never above max_event_bytes."""
        return self._data_bytes + self._partial_bytes

    def feed(self, chunk: bytes) -> list[ServerSentEvent]:
        """Consumes the next bytes of the stream; returns the events they complete."""
        events: list[ServerSentEvent] = []
        start = 0
        if self._after_cr and chunk[:1] == b"\n":
            start = 1
        if chunk:
            self._after_cr = False
        for found in _LINE_BREAK.finditer(chunk, start):
            piece = chunk[start : found.start()]
            start = found.end()
            self._check(len(piece))
            if self._partial:
                self._partial.append(piece)
                line = b"".join(self._partial)
                self._partial, self._partial_bytes = [], 0
            else:
                line = piece
            event = self._feed_raw_line(line)
            if event is not None:
                events.append(event)
        if start < len(chunk):
            rest = chunk[start:]
            self._check(len(rest))
            self._partial.append(rest)
            self._partial_bytes += len(rest)
        elif chunk.endswith(b"\r"):
            self._after_cr = True  # it may be the first half of a CRLF split in two
        return events

    def _check(self, more: int) -> None:
        if self.buffered + more > self._max:
            raise EventTooLarge(
                f"an SSE event or line from Replicate exceeded {self._max} bytes "
                "(the gateway's bound for one event)"
            )

    def _feed_raw_line(self, raw: bytes) -> ServerSentEvent | None:
        if self._first_line:
            raw, self._first_line = raw.removeprefix(_BOM), False
        if raw.partition(b":")[0] == b"data":
            self._data_bytes += len(raw)
        return self.feed_line(raw.decode("utf-8", "replace"))

    def feed_line(self, line: str) -> ServerSentEvent | None:
        """Consumes one line (without its terminator); returns an event on a blank line."""
        if not line:
            return self._dispatch()
        if line.startswith(":"):
            return None
        name, sep, value = line.partition(":")
        if sep and value.startswith(" "):
            value = value[1:]
        self._seen_field = True
        if name == "event":
            self._event = value
        elif name == "data":
            self._data.append(value)
        elif name == "id":
            if "\0" not in value:
                self._id = value
        elif name == "retry" and value.isascii() and value.isdigit():
            self._retry = int(value)
        return None

    def _dispatch(self) -> ServerSentEvent | None:
        self._data_bytes = 0
        if not self._seen_field:
            return None
        event = ServerSentEvent(
            event=self._event or "message",
            data="\n".join(self._data),
            id=self._id,
            retry_ms=self._retry,
        )
        # The id persists across events, as the spec's "last event ID buffer" does.
        self._event, self._data, self._retry, self._seen_field = "", [], None, False
        return event


async def iter_events(
    chunks: AsyncIterable[bytes], *, max_event_bytes: int = MAX_EVENT_BYTES
) -> AsyncGenerator[ServerSentEvent, None]:
    """Decodes a byte stream into events; an unterminated last event is dropped.

    Yields to the event loop after every chunk: a reader whose bytes are already
    buffered never suspends, and one fast upstream must not hold up every other call.
    """
    decoder = SSEDecoder(max_event_bytes)
    async for chunk in chunks:
        for event in decoder.feed(chunk):
            yield event
        await asyncio.sleep(0)
