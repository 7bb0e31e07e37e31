"""The SSE decoder against a reference written from the WHATWG event-stream rules.

The reference reads the stream one character at a time, the way the spec's parsing
section is phrased, so it shares no line-splitting or field-parsing code with the
decoder under test.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from inference_gateway.replicate._sse import (
    EventTooLarge,
    ServerSentEvent,
    SSEDecoder,
    iter_events,
)

Event = tuple[str, str, str | None, int | None]


@dataclass
class _SpecParser:
    """WHATWG HTML §9.2.6, with one deliberate deviation (`dispatch_dataless`).

    The spec drops a block that set no data. The gateway dispatches any block that
    had a field, so that a bare `event: done` still ends a stream; the flag lets the
    tests say which rule they mean.
    """

    dispatch_dataless: bool = True

    def parse(self, stream: str) -> list[Event]:
        if stream.startswith("\ufeff"):
            stream = stream[1:]
        events: list[Event] = []
        event_type, data, last_id = "", "", None
        retry: int | None = None
        had_field = False
        line: list[str] = []
        position = 0
        while position < len(stream):
            char = stream[position]
            position += 1
            if char not in "\r\n":
                line.append(char)
                continue
            if char == "\r" and stream[position : position + 1] == "\n":
                position += 1
            text = "".join(line)
            line = []
            if text == "":
                if data or (self.dispatch_dataless and had_field):
                    body = data[:-1] if data.endswith("\n") else data
                    events.append((event_type or "message", body, last_id, retry))
                event_type, data, retry, had_field = "", "", None, False
                continue
            if text[0] == ":":
                continue
            had_field = True
            if ":" in text:
                colon = text.index(":")
                field, value = text[:colon], text[colon + 1 :]
                if value[:1] == " ":
                    value = value[1:]
            else:
                field, value = text, ""
            if field == "event":
                event_type = value
            elif field == "data":
                data += value + "\n"
            elif field == "id" and "\0" not in value:
                last_id = value
            elif field == "retry" and value and all(c in "0123456789" for c in value):
                retry = int(value)
        return events  # what is left after the last blank line is an incomplete event


def _as_tuple(event: ServerSentEvent) -> Event:
    return (event.event, event.data, event.id, event.retry_ms)


async def _chunks(parts: Iterable[bytes]) -> AsyncIterator[bytes]:
    for part in parts:
        yield part


def _decode(parts: Iterable[str | bytes]) -> list[Event]:
    chunks = [part.encode() if isinstance(part, str) else part for part in parts]

    async def collect() -> list[Event]:
        return [_as_tuple(e) async for e in iter_events(_chunks(chunks))]

    return asyncio.run(collect())


def _split(text: str, cuts: list[int]) -> list[bytes]:
    """The stream's UTF-8 bytes cut at `cuts`, so cuts may fall inside a character."""
    data = text.encode()
    points = sorted({min(c, len(data)) for c in cuts})
    return [data[a:b] for a, b in zip([0, *points], [*points, len(data)], strict=True)]


_ENDINGS = st.sampled_from(["\n", "\r", "\r\n"])
_VALUE = st.text(alphabet=st.sampled_from("ab :\0\t1²\u2028\x0c\x85\ufeff"), max_size=6)
_FIELD_LINE = st.builds(
    lambda name, sep, value: f"{name}{sep}{value}",
    st.sampled_from(["data", "event", "id", "retry", "", "dat", "Data", "foo"]),
    st.sampled_from([":", ": ", ":  ", ""]),
    _VALUE | st.sampled_from(["0", "15000", "done", "output"]),
)
_LINE = _FIELD_LINE | st.sampled_from(["", "", ": hi", ":"])


@st.composite
def _streams(draw: st.DrawFn) -> str:
    lines = draw(st.lists(_LINE, max_size=25))
    return "".join(line + draw(_ENDINGS) for line in lines) + draw(_VALUE)


@settings(max_examples=300, deadline=None)
@given(stream=_streams(), cuts=st.lists(st.integers(min_value=0, max_value=400), max_size=8))
def test_decoder_matches_the_reference_however_the_stream_is_chunked(
    stream: str, cuts: list[int]
) -> None:
    assert _decode(_split(stream, cuts)) == _SpecParser().parse(stream)


@settings(max_examples=200, deadline=None)
@given(stream=st.text(), cuts=st.lists(st.integers(min_value=0, max_value=200), max_size=5))
def test_arbitrary_text_never_raises_and_still_matches(stream: str, cuts: list[int]) -> None:
    assert _decode(_split(stream, cuts)) == _SpecParser().parse(stream)


def test_a_block_without_data_is_still_dispatched() -> None:
    """The one deviation from the spec: a bare `event: done` must still end a stream."""
    stream = "event: done\nid: 3\n\n: comment\n\n"
    assert _decode([stream]) == [("done", "", "3", None)]
    assert _SpecParser(dispatch_dataless=False).parse(stream) == []


def test_replicate_stream_with_leading_comment_and_done() -> None:
    stream = (
        ": hi\n\n"
        "event: output\nid: 1690212292:0\ndata: Once upon\n\n"
        "event: output\nid: 1690212292:1\ndata: a time\ndata: there was\n\n"
        "event: done\nid: 1690212292:2\ndata: {}\n\n"
    )
    assert _decode([stream]) == [
        ("output", "Once upon", "1690212292:0", None),
        ("output", "a time\nthere was", "1690212292:1", None),
        ("done", "{}", "1690212292:2", None),
    ]


def test_data_keeps_unicode_line_separators_and_form_feeds() -> None:
    # httpx's aiter_lines would split here and lose everything after the separator.
    assert _decode(["data: one\u2028two\x0cthree\x85four\n\n"]) == [
        ("message", "one\u2028two\x0cthree\x85four", None, None)
    ]


def test_crlf_split_between_chunks_is_one_line_break() -> None:
    assert _decode(["data: a\r", "\n", "\r", "\ndata: b\r\n\r\n"]) == [
        ("message", "a", None, None),
        ("message", "b", None, None),
    ]


def test_lone_cr_at_end_of_stream_ends_the_event() -> None:
    assert _decode(["data: a\r", "\r"]) == [("message", "a", None, None)]


def test_unterminated_last_event_is_dropped() -> None:
    assert _decode(["data: a\n\ndata: b\n"]) == [("message", "a", None, None)]


def test_only_one_space_after_the_colon_is_removed() -> None:
    assert _decode(["data:x\ndata:  y\ndata\n\n"]) == [("message", "x\n y\n", None, None)]


def test_id_persists_until_changed_and_ignores_nul() -> None:
    assert _decode(["id: 7\ndata: a\n\ndata: b\n\nid: 8\0\ndata: c\n\nid\ndata: d\n\n"]) == [
        ("message", "a", "7", None),
        ("message", "b", "7", None),
        ("message", "c", "7", None),
        ("message", "d", "", None),
    ]


def test_retry_takes_ascii_digits_only() -> None:
    decoder = SSEDecoder()
    for line in ("retry: ²", "retry: 1.5", "retry: 250", "data: x"):
        assert decoder.feed_line(line) is None
    assert decoder.feed_line("") == ServerSentEvent("message", "x", None, 250)
    for line in ("retry: ١٢", "data: y"):  # Arabic-Indic digits are digits, but not ASCII
        decoder.feed_line(line)
    assert decoder.feed_line("") == ServerSentEvent("message", "y", None, None)


def test_a_leading_byte_order_mark_is_ignored_once() -> None:
    assert _decode(["", "\ufeffdata: a\n\n"]) == [("message", "a", None, None)]
    # The second BOM belongs to the field name, so this is an unknown field, not data.
    assert _decode(["\ufeff\ufeffdata: a\n\n"]) == [("message", "", None, None)]


# --- bounds ----------------------------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(
    stream=_streams(),
    cuts=st.lists(st.integers(min_value=0, max_value=400), max_size=8),
    bound=st.integers(min_value=1, max_value=40),
)
def test_the_bound_holds_however_the_stream_is_chunked(
    stream: str, cuts: list[int], bound: int
) -> None:
    """Under any chunking the decoder holds at most `bound` bytes, and either decodes the
    stream as the reference does or refuses it, which it may only do for an oversized event."""
    decoder = SSEDecoder(max_event_bytes=bound)
    events: list[Event] = []
    try:
        for part in _split(stream, cuts):
            events += [_as_tuple(e) for e in decoder.feed(part)]
            assert decoder.buffered <= bound
    except EventTooLarge:
        assert decoder.buffered <= bound
        # Refused: some line, or the data lines of one event, went past the bound.
        blocks = stream.replace("\r\n", "\n").replace("\r", "\n").split("\n\n")
        assert any(len(block.encode()) > bound for block in blocks)
    else:
        assert events == _SpecParser().parse(stream)


def test_a_line_that_never_ends_is_refused_once_past_the_bound() -> None:
    decoder = SSEDecoder(max_event_bytes=1000)
    assert decoder.feed(b"event: output\nid: 1\ndata: a\n\n") != []
    fed = 0

    def endless_line() -> None:
        nonlocal fed
        while fed < 10_000:
            decoder.feed(b"x" * 7)
            fed += 7
            assert decoder.buffered <= 1000

    with pytest.raises(EventTooLarge, match="exceeded 1000 bytes"):
        endless_line()
    assert 1000 - 7 < fed <= 1000  # refused by the chunk that would have crossed it


def test_data_lines_of_one_event_count_together() -> None:
    decoder = SSEDecoder(max_event_bytes=100)
    for _ in range(9):
        decoder.feed(b"data: " + b"y" * 4 + b"\n")  # 10 bytes each: 90 held
    with pytest.raises(EventTooLarge):
        decoder.feed(b"data: " + b"y" * 10 + b"\n")


def test_a_dispatched_event_and_comments_free_their_bytes() -> None:
    decoder = SSEDecoder(max_event_bytes=100)
    for n in range(50):  # 50 events and keep-alives of ~60 bytes each, 3,000 in all
        decoder.feed(f": keep-alive {n}\ndata: {'z' * 30}\n\n".encode())
        assert decoder.buffered == 0


async def test_decoding_yields_to_the_loop_between_chunks() -> None:
    """Chunks already buffered never suspend their reader; other tasks must still run."""
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0)
            ticks += 1

    async def ready_chunks() -> AsyncIterator[bytes]:
        for n in range(200):
            yield f"data: {n}\n\n".encode()  # no await: as if every chunk had arrived

    task = asyncio.create_task(ticker())
    await asyncio.sleep(0)  # let it start
    try:
        events = [event async for event in iter_events(ready_chunks())]
    finally:
        task.cancel()
    assert len(events) == 200
    assert ticks >= 150  # about one turn of the loop per chunk
