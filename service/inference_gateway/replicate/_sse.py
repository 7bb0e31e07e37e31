"""An incremental Server-Sent Events decoder (the WHATWG event-stream format).

Replicate's stream endpoint speaks SSE; we decode it ourselves because the format
is small and we need the event ids to resume a dropped stream without repeating text.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterable, AsyncIterator
from dataclasses import dataclass

__all__ = ["SSEDecoder", "ServerSentEvent", "iter_events", "iter_lines"]

_LINE_BREAK = re.compile(r"\r\n|\r|\n")


@dataclass(frozen=True, slots=True)
class ServerSentEvent:
    event: str
    data: str
    id: str | None
    retry_ms: int | None = None


class SSEDecoder:
    """Turns lines into events; one instance per connection."""

    def __init__(self) -> None:
        self._event = ""
        self._data: list[str] = []
        self._id: str | None = None
        self._retry: int | None = None
        self._seen_field = False

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


async def iter_events(lines: AsyncIterable[str]) -> AsyncIterator[ServerSentEvent]:
    """Decodes a stream of lines into events; an unterminated last event is dropped."""
    decoder = SSEDecoder()
    async for raw in lines:
        event = decoder.feed_line(raw.rstrip("\r\n"))
        if event is not None:
            yield event


async def iter_lines(chunks: AsyncIterable[str]) -> AsyncIterator[str]:
    """Splits decoded text into lines at CRLF, LF or CR, the only breaks the format has.

    httpx's aiter_lines also breaks at form feeds, U+2028 and other Unicode line
    boundaries, which would cut a model's output in two and lose the second half.
    """
    pending = ""
    first = True
    async for chunk in chunks:
        if first and chunk:
            chunk, first = chunk.removeprefix("\ufeff"), False
        buffer = pending + chunk
        # A CR at the end may be the first half of a CRLF: decide with the next chunk.
        held = buffer.endswith("\r")
        *lines, pending = _LINE_BREAK.split(buffer[:-1] if held else buffer)
        for line in lines:
            yield line
        if held:
            pending += "\r"
    if pending.endswith("\r"):
        yield pending[:-1]
