"""The SSE endpoint at `urls.stream`, in the wire format Replicate's clients parse.

Each event carries `event:` and `id:` (the Python client drops events without an
id), multi-line data is split over several `data:` lines, and a stream opened late,
or re-opened with `Last-Event-ID`, replays the history it missed before following
live events up to `done`.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from aiohttp import web

from ._prediction import Prediction, StreamEvent

__all__ = ["OpenStreams", "encode_event", "first_event_after", "serve_stream"]

_HELLO = b": hi\n\n"  # nchan opens Replicate's streams with this comment
_ENDLESS_CHUNK = b"x" * 65536
_KEEPALIVE = b": ping\n\n"
_LINE_BREAK = re.compile(r"\r\n|\r|\n")


class OpenStreams:
    """How many stream responses are being served, so a test can await a client closing
    its streams (a response ends when the client hangs up, or at `done`)."""

    def __init__(self) -> None:
        self.count = 0
        self._changed: list[asyncio.Future[None]] = []

    @contextmanager
    def serving(self) -> Iterator[None]:
        self.count += 1
        try:
            yield
        finally:
            self.count -= 1
            changed, self._changed = self._changed, []
            for waiter in changed:
                if not waiter.done():
                    waiter.set_result(None)

    async def wait_for_at_most(self, count: int) -> None:
        """Returns once `count` or fewer are open; call on the simulator's loop."""
        while self.count > count:
            waiter = asyncio.get_running_loop().create_future()
            self._changed.append(waiter)
            await waiter


def encode_event(event: StreamEvent) -> bytes:
    lines = [f"event: {event.event}", f"id: {event.id}"]
    lines += [f"data: {line}" for line in _LINE_BREAK.split(event.data)]
    return ("\n".join(lines) + "\n\n").encode()


def first_event_after(last_event_id: str | None) -> int:
    """Index of the first event to send, given the client's `Last-Event-ID` (if any)."""
    if not last_event_id:
        return 0
    seq = last_event_id.rsplit(":", 1)[-1].strip()
    return int(seq) + 1 if seq.isascii() and seq.isdigit() else 0


async def serve_stream(
    request: web.Request,
    prediction: Prediction,
    *,
    cut_after: int | None,
    closing: Callable[[], bool],
    endless_after: int | None = None,
    on_endless_bytes: Callable[[int], None] = lambda sent: None,
    keepalive: float | None = None,
) -> web.StreamResponse:
    """Stream `prediction`'s events; drop the connection after `cut_after` events if set.

    With `endless_after`, send that many events, then one data line that never ends
    (counted through `on_endless_bytes`) until the client hangs up or the simulator stops.
    With `keepalive`, a comment line goes out whenever that long passes without an event.
    """
    response = web.StreamResponse(
        headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
    )
    await response.prepare(request)
    await response.write(_HELLO)
    cursor = first_event_after(request.headers.get("Last-Event-ID"))
    sent = 0
    try:
        while True:
            while cursor < len(prediction.events):
                if cut_after is not None and sent >= cut_after:
                    return _drop(request, response)
                if endless_after is not None and sent >= endless_after:
                    await response.write(b"event: output\nid: endless\ndata: ")
                    while not closing():
                        await response.write(_ENDLESS_CHUNK)
                        on_endless_bytes(len(_ENDLESS_CHUNK))
                    return _drop(request, response)
                event = prediction.events[cursor]
                await response.write(encode_event(event))
                cursor += 1
                sent += 1
                if event.event == "done":
                    await response.write_eof()
                    return response
            if closing():
                return _drop(request, response)
            if keepalive is None:
                await prediction.wait_for_change()
                continue
            try:
                await asyncio.wait_for(prediction.wait_for_change(), keepalive)
            except TimeoutError:
                await response.write(_KEEPALIVE)
    except ConnectionResetError:  # the client went away
        return response


def _drop(request: web.Request, response: web.StreamResponse) -> web.StreamResponse:
    """Close the socket mid-body: the client sees the stream end without `done`."""
    if request.transport is not None:
        request.transport.close()
    return response
