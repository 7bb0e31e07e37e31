"""The HTTP client against a scripted Replicate: retries, budgets, deadlines and the SSE stream.

The rule that matters most: a create is sent again only when the first one cannot have
reached Replicate (or was refused with a 429); anything else could run the model twice.
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any
from unittest.mock import Mock

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from inference_gateway import __version__, call_events
from inference_gateway.deadlines import Deadline
from inference_gateway.errors import (
    DeadlineExceeded,
    FailedPrecondition,
    GatewayError,
    Internal,
    InvalidArgument,
    NotFound,
    ResourceExhausted,
    Unavailable,
)
from inference_gateway.grpc_api.server import client_settings
from inference_gateway.replicate import (
    ClientSettings,
    FileResponse,
    Prediction,
    ReplicateClient,
    StreamUnavailable,
    parse_timestamp,
)
from inference_gateway.settings import Settings

BASE = "https://api.replicate.test"
CREATE_PATH = "/v1/models/meta/llama/predictions"
STREAM_URL = "https://stream.replicate.test/v1/streams/abc"
Reply = Callable[[httpx.Request], httpx.Response]
Step = Reply | Callable[[httpx.Request], Awaitable[httpx.Response]]


class Upstream:
    """A scripted Replicate: each request takes the next step and is recorded."""

    def __init__(self, *steps: Step) -> None:
        self._steps = deque(steps)
        self.requests: list[httpx.Request] = []

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        assert self._steps, f"unscripted request {request.method} {request.url}"
        result = self._steps.popleft()(request)
        return await result if isinstance(result, Awaitable) else result

    def count(self, method: str, path: str) -> int:
        return sum(1 for r in self.requests if r.method == method and r.url.path == path)


def reply(status: int, body: object = None, headers: dict[str, str] | None = None) -> Reply:
    def step(request: httpx.Request) -> httpx.Response:
        if body is None:
            return httpx.Response(status, headers=headers)
        return httpx.Response(status, json=body, headers=headers)

    return step


def prediction(status: str = "starting", pid: str = "p1", **extra: object) -> dict[str, object]:
    return {"id": pid, "status": status, "urls": {"get": f"{BASE}/v1/predictions/{pid}"}, **extra}


def ok(status: str = "starting") -> Reply:
    return reply(201, prediction(status))


def fault(kind: type[httpx.RequestError]) -> Reply:
    def step(request: httpx.Request) -> httpx.Response:
        raise kind("scripted fault", request=request)

    return step


@dataclass
class Recorder:
    """An UpstreamObserver that keeps what it is told."""

    done: list[tuple[str, str]] = field(default_factory=list)
    retries: list[str] = field(default_factory=list)
    waited: list[str] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)

    def request_done(self, endpoint: str, status_class: str, seconds: float) -> None:
        self.done.append((endpoint, status_class))

    def retried(self, endpoint: str) -> None:
        self.retries.append(endpoint)

    def rate_limit_waited(self, bucket: str, seconds: float) -> None:
        self.waited.append(bucket)

    def rate_limit_rejected(self, bucket: str) -> None:
        self.rejected.append(bucket)


FAST = replace(
    client_settings(Settings(base_url=BASE)), backoff_initial=0.01, backoff_max=0.05, max_attempts=4
)


@asynccontextmanager
async def connected(
    upstream: Upstream,
    settings: ClientSettings = FAST,
    *,
    observer: Recorder | None = None,
    jitter: float = 0.0,
) -> AsyncIterator[ReplicateClient]:
    client = ReplicateClient(
        settings,
        transport=httpx.MockTransport(upstream),
        observer=observer,
        jitter=lambda: jitter,
    )
    try:
        yield client
    finally:
        await client.aclose()


async def create(client: ReplicateClient, deadline: float = 5.0, **kwargs: Any) -> Prediction:
    options: dict[str, Any] = {"wait_seconds": None, "cancel_after": None, **kwargs}
    return await client.create_prediction(
        CREATE_PATH,
        {"input": {"prompt": "hi"}},
        token="r8_secret",
        deadline=Deadline.after(deadline),
        **options,
    )


async def get(client: ReplicateClient, deadline: float = 5.0) -> Prediction:
    return await client.get_prediction("p1", token="r8_secret", deadline=Deadline.after(deadline))


# --- creates ---------------------------------------------------------------------------------


async def test_create_sends_the_token_body_and_lifecycle_headers() -> None:
    upstream = Upstream(ok())
    async with connected(upstream) as client:
        created = await create(client, wait_seconds=30, cancel_after=lambda: 90)
    assert (created.id, created.status) == ("p1", "starting")
    (request,) = upstream.requests
    assert (request.method, str(request.url)) == ("POST", BASE + CREATE_PATH)
    assert request.headers["authorization"] == "Bearer r8_secret"
    assert request.headers["prefer"] == "wait=30"
    assert request.headers["cancel-after"] == "90s"
    assert request.headers["content-type"] == "application/json"
    assert request.headers["user-agent"] == f"inference-gateway/{__version__}"
    assert json.loads(request.content) == {"input": {"prompt": "hi"}}


async def test_a_cookie_replicate_sets_is_never_sent_back() -> None:
    """One token serves every caller: nothing one response sets may ride on the next."""
    set_cookie = {"Set-Cookie": "__cf_bm=abc; Path=/"}
    upstream = Upstream(reply(201, prediction(), set_cookie), reply(200, prediction()))
    async with connected(upstream) as client:
        await create(client)
        await get(client)
    assert [r.headers.get("cookie") for r in upstream.requests] == [None, None]


async def test_create_without_wait_or_deadline_sends_neither_header() -> None:
    upstream = Upstream(ok())
    async with connected(upstream) as client:
        await create(client)
    assert "prefer" not in upstream.requests[0].headers
    assert "cancel-after" not in upstream.requests[0].headers


async def test_create_after_429_waits_the_retry_after_header_then_sends_again() -> None:
    upstream = Upstream(reply(429, {"detail": "throttled"}, {"Retry-After": "0.2"}), ok())
    async with connected(upstream) as client:
        started = time.monotonic()
        created = await create(client)
    assert created.id == "p1"
    assert upstream.count("POST", CREATE_PATH) == 2
    # Backoff is zero here (no jitter), so only the header can explain the wait.
    assert time.monotonic() - started >= 0.19


async def test_create_after_429_honours_retry_after_in_the_body() -> None:
    upstream = Upstream(reply(429, {"status": 429, "retry_after": 0.2}), ok())
    async with connected(upstream) as client:
        started = time.monotonic()
        await create(client)
    assert upstream.count("POST", CREATE_PATH) == 2
    assert time.monotonic() - started >= 0.19


async def test_429_with_an_http_date_beyond_the_deadline_fails_fast_with_its_delay() -> None:
    when = email.utils.format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)
    upstream = Upstream(reply(429, {"detail": "slow down"}, {"Retry-After": when}))
    async with connected(upstream) as client:
        with pytest.raises(ResourceExhausted) as caught:
            await create(client, deadline=2)
    assert upstream.count("POST", CREATE_PATH) == 1
    assert caught.value.reason == "REPLICATE_RATE_LIMITED"
    assert caught.value.retry_after_seconds is not None
    assert 27 <= caught.value.retry_after_seconds <= 30


async def test_a_429_holds_later_creates_but_not_other_requests() -> None:
    recorder = Recorder()
    upstream = Upstream(reply(429, {"retry_after": 20}), reply(200, prediction()))
    async with connected(upstream, observer=recorder) as client:
        with pytest.raises(ResourceExhausted):
            await create(client, deadline=2)
        with pytest.raises(ResourceExhausted) as caught:
            await create(client, deadline=2)
        await get(client)
    assert caught.value.reason == "RATE_BUDGET_EXHAUSTED"
    assert caught.value.retry_after_seconds == pytest.approx(20, abs=1)
    assert upstream.count("POST", CREATE_PATH) == 1
    assert upstream.count("GET", "/v1/predictions/p1") == 1
    assert recorder.rejected == ["create"]


async def test_create_gives_up_on_429_after_max_attempts() -> None:
    upstream = Upstream(*[reply(429, {"retry_after": 0})] * 3)
    settings = replace(FAST, max_attempts=3)
    async with connected(upstream, settings) as client:
        with pytest.raises(ResourceExhausted) as caught:
            await create(client)
    assert upstream.count("POST", CREATE_PATH) == 3
    assert caught.value.retry_after_seconds == 0


@pytest.mark.parametrize("kind", [httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout])
async def test_create_is_sent_again_when_the_connection_was_never_made(
    kind: type[httpx.TransportError],
) -> None:
    upstream = Upstream(fault(kind), ok())
    async with connected(upstream) as client:
        assert (await create(client)).id == "p1"
    assert upstream.count("POST", CREATE_PATH) == 2


@pytest.mark.parametrize(
    "kind",
    [httpx.ReadTimeout, httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError],
)
async def test_create_is_never_sent_twice_once_it_may_have_arrived(
    kind: type[httpx.TransportError],
) -> None:
    upstream = Upstream(fault(kind), ok())
    async with connected(upstream) as client:
        with pytest.raises(Unavailable) as caught:
            await create(client)
    assert upstream.count("POST", CREATE_PATH) == 1
    assert caught.value.reason == "REPLICATE_UNREACHABLE"
    assert kind.__name__ in caught.value.message


@pytest.mark.parametrize("status", [500, 502, 503, 504])
async def test_create_is_never_sent_twice_after_a_5xx(status: int) -> None:
    upstream = Upstream(reply(status, {"detail": "upstream broke"}), ok())
    async with connected(upstream) as client:
        with pytest.raises(Unavailable) as caught:
            await create(client)
    assert upstream.count("POST", CREATE_PATH) == 1
    assert caught.value.reason == "REPLICATE_UNAVAILABLE"
    assert "upstream broke" in caught.value.message


async def test_create_422_becomes_invalid_argument_with_field_violations() -> None:
    body = {
        "title": "Input validation failed",
        "detail": "- top_k: Must be greater than or equal to 0\n",
        "status": 422,
        "invalid_fields": [{"field": "top_k", "description": "Must be >= 0"}],
    }
    upstream = Upstream(reply(422, body))
    async with connected(upstream) as client:
        with pytest.raises(InvalidArgument) as caught:
            await create(client)
    assert upstream.count("POST", CREATE_PATH) == 1
    assert [(v.field, v.description) for v in caught.value.violations] == [
        ("top_k", "Must be >= 0")
    ]


async def test_a_read_timeout_after_the_deadline_is_deadline_exceeded() -> None:
    deadline = Deadline.after(0.05)

    async def slow(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(deadline.remaining() + 0.01)  # the server outlives the deadline
        raise httpx.ReadTimeout("timed out", request=request)

    upstream = Upstream(slow)
    async with connected(upstream) as client:
        with pytest.raises(DeadlineExceeded):
            await client.create_prediction(
                CREATE_PATH,
                {"input": {}},
                token="t",
                deadline=deadline,
                wait_seconds=None,
                cancel_after=None,
            )
    assert len(upstream.requests) == 1


async def test_nothing_is_sent_once_the_deadline_has_passed() -> None:
    upstream = Upstream()
    async with connected(upstream) as client:
        with pytest.raises(DeadlineExceeded) as caught:
            await create(client, deadline=-1)
    assert upstream.requests == []
    assert caught.value.metadata == {"endpoint": "create"}


# --- gets and cancels ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "first",
    [
        reply(500),
        reply(503, {"detail": "busy"}),
        reply(429, {"retry_after": 0}),
        fault(httpx.ConnectError),
        fault(httpx.ReadTimeout),
        fault(httpx.RemoteProtocolError),
    ],
    ids=["500", "503", "429", "connect", "read-timeout", "dropped"],
)
async def test_get_is_retried_on_transient_faults(first: Step) -> None:
    recorder = Recorder()
    upstream = Upstream(first, reply(200, prediction("processing")))
    async with connected(upstream, observer=recorder) as client:
        fetched = await get(client)
    assert fetched.status == "processing"
    assert upstream.count("GET", "/v1/predictions/p1") == 2
    assert recorder.retries == ["get"]
    assert recorder.done[-1] == ("get", "2xx")


async def test_cancel_is_retried_on_5xx() -> None:
    upstream = Upstream(reply(502), reply(200, prediction("canceled")))
    async with connected(upstream) as client:
        canceled = await client.cancel_prediction("p1", token="t", deadline=Deadline.after(5))
    assert canceled.terminal
    assert upstream.count("POST", "/v1/predictions/p1/cancel") == 2


async def test_get_stops_after_max_attempts() -> None:
    upstream = Upstream(*[reply(503)] * 3)
    async with connected(upstream, replace(FAST, max_attempts=3)) as client:
        with pytest.raises(Unavailable):
            await get(client)
    assert len(upstream.requests) == 3


async def test_get_does_not_retry_past_the_deadline() -> None:
    upstream = Upstream(reply(503), reply(200, prediction()))
    slow = replace(FAST, backoff_initial=5.0, backoff_max=5.0)
    async with connected(upstream, slow, jitter=1.0) as client:
        with pytest.raises(Unavailable):
            await get(client, deadline=1)
    assert len(upstream.requests) == 1


@pytest.mark.parametrize(
    ("status", "error"), [(404, NotFound), (401, FailedPrecondition), (400, InvalidArgument)]
)
async def test_get_does_not_retry_a_client_error(status: int, error: type[GatewayError]) -> None:
    upstream = Upstream(reply(status, {"detail": "no"}))
    async with connected(upstream) as client:
        with pytest.raises(error):
            await get(client)
    assert len(upstream.requests) == 1


async def test_get_json_refuses_a_body_that_is_not_an_object() -> None:
    upstream = Upstream(reply(200, ["not", "an", "object"]))
    async with connected(upstream) as client:
        with pytest.raises(Internal) as caught:
            await client.get_json(
                "/v1/models/a/b", endpoint="model", token="t", deadline=Deadline.after(5)
            )
    assert caught.value.reason == "REPLICATE_BAD_RESPONSE"


# --- bounded bodies --------------------------------------------------------------------------


@dataclass
class Endless:
    """A body of `total` bytes in 64 KiB chunks that counts how much of it was read."""

    total: int
    pulled: int = 0

    async def chunks(self) -> AsyncIterator[bytes]:
        while self.pulled < self.total:
            self.pulled += 65536
            yield b"x" * 65536


async def test_a_json_body_over_the_bound_is_a_bad_response_read_no_further() -> None:
    body = Endless(total=4 * FAST.max_body_bytes)
    upstream = Upstream(lambda r: httpx.Response(200, content=body.chunks()))
    async with connected(upstream) as client:
        with pytest.raises(Internal, match=f"larger than {FAST.max_body_bytes} bytes") as caught:
            await get(client)
    assert caught.value.reason == "REPLICATE_BAD_RESPONSE"
    assert body.pulled <= FAST.max_body_bytes + 65536
    assert len(upstream.requests) == 1  # the same answer would come again


async def test_an_error_body_over_its_bound_is_not_read_and_the_status_still_decides() -> None:
    huge = Endless(total=100 * FAST.max_error_body_bytes)
    upstream = Upstream(
        lambda r: httpx.Response(503, content=huge.chunks()), reply(200, prediction("processing"))
    )
    async with connected(upstream) as client:
        assert (await get(client)).status == "processing"
    assert huge.pulled <= FAST.max_error_body_bytes + 65536
    assert len(upstream.requests) == 2


async def test_a_body_nested_too_deep_for_the_parser_is_a_bad_response() -> None:
    upstream = Upstream(lambda r: httpx.Response(200, content=b"[" * 100_000))
    async with connected(upstream) as client:
        with pytest.raises(Internal) as caught:
            await get(client)
    assert caught.value.reason == "REPLICATE_BAD_RESPONSE"


async def test_a_5xx_retry_after_is_honoured_too() -> None:
    upstream = Upstream(reply(503, {"detail": "busy"}, {"Retry-After": "30"}), ok())
    async with connected(upstream) as client:
        with pytest.raises(Unavailable):
            await get(client, deadline=2)  # the server's 30 s does not fit; 10 ms backoff would
    assert len(upstream.requests) == 1


async def test_a_body_that_cannot_be_decoded_is_a_bad_response_not_retried() -> None:
    upstream = Upstream(fault(httpx.DecodingError), reply(200, prediction()))
    async with connected(upstream) as client:
        with pytest.raises(Internal) as caught:
            await get(client)
    assert caught.value.reason == "REPLICATE_BAD_RESPONSE"
    assert len(upstream.requests) == 1


# --- rate budgets through the client -----------------------------------------------------------


async def test_an_exhausted_remaining_header_fails_the_next_request_fast() -> None:
    recorder = Recorder()
    headers = {"ratelimit-remaining": "0", "ratelimit-reset": "30"}
    upstream = Upstream(reply(200, prediction(), headers))
    async with connected(upstream, observer=recorder) as client:
        await get(client)
        with pytest.raises(ResourceExhausted) as caught:
            await get(client, deadline=2)
    assert len(upstream.requests) == 1
    assert caught.value.retry_after_seconds == pytest.approx(30, abs=1)
    assert caught.value.metadata["bucket"] == "other"
    assert recorder.rejected == ["other"]


async def test_a_short_reset_makes_the_next_request_wait_then_go() -> None:
    recorder = Recorder()
    headers = {"ratelimit-remaining": "0", "ratelimit-reset": "0.1"}
    upstream = Upstream(reply(200, prediction(), headers), reply(200, prediction()))
    async with connected(upstream, observer=recorder) as client:
        await get(client)
        started = time.monotonic()
        await get(client)
    assert time.monotonic() - started >= 0.09
    assert recorder.waited == ["other"]
    assert len(upstream.requests) == 2


async def test_every_attempt_is_reported_to_the_call() -> None:
    upstream = Upstream(reply(503), reply(200, prediction()))
    listener = Mock()
    token = call_events.listen(listener)
    try:
        async with connected(upstream) as client:
            await get(client)
    finally:
        call_events.stop_listening(token)
    assert listener.upstream_request.call_count == 2


# --- file downloads --------------------------------------------------------------------------


async def test_download_returns_the_bytes_and_their_media_type() -> None:
    upstream = Upstream(
        lambda r: httpx.Response(200, content=b"\x89PNG", headers={"content-type": "image/png; q"})
    )
    charged: list[int] = []
    async with connected(upstream) as client:
        fetched = await client.download(
            "https://replicate.delivery/x/out.png",
            token="t",
            deadline=Deadline.after(5),
            charge=charged.append,
        )
    assert fetched == FileResponse(b"\x89PNG", "image/png")
    assert sum(charged) == 4
    assert upstream.requests[0].headers["authorization"] == "Bearer t"


async def test_download_stops_when_its_charge_refuses_more_bytes() -> None:
    upstream = Upstream(lambda r: httpx.Response(200, content=b"x" * 11))

    def charge(size: int) -> None:
        raise FailedPrecondition("over", reason="OUTPUT_FILE_TOO_LARGE")

    async with connected(upstream) as client:
        with pytest.raises(FailedPrecondition, match="over"):
            await client.download(
                "https://replicate.delivery/big",
                token=None,
                deadline=Deadline.after(5),
                charge=charge,
            )
    assert "authorization" not in upstream.requests[0].headers


@pytest.mark.parametrize(
    ("status", "location"),
    [(301, "http://169.254.169.254/"), (302, "/x"), (303, "a"), (307, "b"), (308, "c"), (304, "")],
)
async def test_download_returns_a_redirect_unfollowed(status: int, location: str) -> None:
    headers = {"location": location} if location else {}
    upstream = Upstream(reply(status, headers=headers))
    async with connected(upstream) as client:
        fetched = await client.download(
            "https://replicate.delivery/f",
            token="t",
            deadline=Deadline.after(5),
            charge=lambda _: None,
        )
    assert fetched == FileResponse(redirect=location)
    assert len(upstream.requests) == 1


@pytest.mark.parametrize(
    ("step", "error"),
    [(reply(404), NotFound), (reply(500), Unavailable), (fault(httpx.ConnectError), Unavailable)],
    ids=["404", "500", "unreachable"],
)
async def test_download_failures(step: Step, error: type[GatewayError]) -> None:
    upstream = Upstream(step)
    async with connected(upstream) as client:
        with pytest.raises(error):
            await client.download(
                "https://replicate.delivery/f",
                token=None,
                deadline=Deadline.after(5),
                charge=lambda _: None,
            )
    assert len(upstream.requests) == 1


async def test_a_file_that_cannot_be_decoded_is_a_bad_response() -> None:
    upstream = Upstream(fault(httpx.DecodingError))
    async with connected(upstream) as client:
        with pytest.raises(Internal) as caught:
            await client.download(
                "https://replicate.delivery/f",
                token=None,
                deadline=Deadline.after(5),
                charge=lambda _: None,
            )
    assert caught.value.reason == "REPLICATE_BAD_RESPONSE"


# --- the SSE stream --------------------------------------------------------------------------


def sse(event: str, eid: str, data: str) -> bytes:
    return f"event: {event}\nid: {eid}\ndata: {data}\n\n".encode()


def stream_reply(
    parts: Iterable[bytes],
    *,
    then: type[httpx.TransportError] | None = None,
    status: int = 200,
    headers: dict[str, str] | None = None,
) -> Reply:
    def step(request: httpx.Request) -> httpx.Response:
        async def body() -> AsyncIterator[bytes]:
            for part in parts:
                yield part
            if then is not None:
                raise then("connection dropped", request=request)

        head = {"content-type": "text/event-stream", **(headers or {})}
        return httpx.Response(status, headers=head, content=body())

    return step


async def collect(
    client: ReplicateClient, deadline: float = 5.0, into: list[tuple[str, str]] | None = None
) -> list[tuple[str, str]]:
    """The stream's (event, data) pairs; `into` keeps those that came before a failure."""
    events = [] if into is None else into
    async for event in client.stream_events(
        STREAM_URL, token="r8_test_stream", deadline=Deadline.after(deadline)
    ):
        events.append((event.event, event.data))
    return events


async def test_a_dropped_stream_resumes_from_the_last_event_id_without_repeats() -> None:
    def replay(request: httpx.Request) -> httpx.Response:
        assert request.headers["last-event-id"] == "t:1"
        # This server replays from the start; the client must skip what it has seen.
        parts = [
            sse("output", "t:0", "Once "),
            sse("output", "t:1", "upon "),
            sse("output", "t:2", "a time"),
            sse("done", "t:3", "{}"),
        ]
        return stream_reply(parts)(request)

    upstream = Upstream(
        stream_reply([sse("output", "t:0", "Once "), sse("output", "t:1", "upon ")]),
        replay,
    )
    async with connected(upstream) as client:
        events = await collect(client)
    assert events == [
        ("output", "Once "),
        ("output", "upon "),
        ("output", "a time"),
        ("done", "{}"),
    ]
    assert len(upstream.requests) == 2
    first = upstream.requests[0]
    assert "last-event-id" not in first.headers
    assert first.headers["accept"] == "text/event-stream"


async def test_a_connection_error_mid_stream_is_resumed() -> None:
    upstream = Upstream(
        stream_reply(
            [sse("output", "1", "a"), b"event: output\nid: 2\nda"], then=httpx.RemoteProtocolError
        ),
        stream_reply([sse("output", "2", "b"), sse("done", "3", "{}")]),
    )
    async with connected(upstream) as client:
        assert await collect(client) == [("output", "a"), ("output", "b"), ("done", "{}")]
    assert upstream.requests[1].headers["last-event-id"] == "1"


async def test_events_split_across_chunks_with_crlf_and_unicode_breaks_arrive_whole() -> None:
    text = (
        "event: output\r\nid: 1\r\ndata: one\u2028two\x0cthree\r\n\r\n"
        "event: done\rid: 2\rdata: {}\r\r"
    )
    raw = text.encode()
    upstream = Upstream(stream_reply([raw[i : i + 3] for i in range(0, len(raw), 3)]))
    async with connected(upstream) as client:
        assert await collect(client) == [("output", "one\u2028two\x0cthree"), ("done", "{}")]


async def test_a_stream_that_keeps_dropping_is_given_up() -> None:
    upstream = Upstream(*[stream_reply([b": hi\n\n"])] * 3)
    async with connected(upstream, replace(FAST, stream_reconnects=2)) as client:
        with pytest.raises(StreamUnavailable, match="ended before its done event"):
            await collect(client)
    assert len(upstream.requests) == 3


async def test_a_stream_making_progress_may_drop_any_number_of_times() -> None:
    drops = [stream_reply([sse("output", str(n), str(n))]) for n in range(4)]
    upstream = Upstream(*drops, stream_reply([sse("done", "4", "{}")]))
    async with connected(upstream, replace(FAST, stream_reconnects=1)) as client:
        events = await collect(client)
    assert [data for _, data in events] == ["0", "1", "2", "3", "{}"]


@pytest.mark.parametrize("status", [429, 500, 503])
async def test_the_stream_is_retried_on_429_and_5xx(status: int) -> None:
    upstream = Upstream(
        stream_reply([], status=status),
        stream_reply([sse("output", "1", "a"), sse("done", "2", "{}")]),
    )
    async with connected(upstream) as client:
        assert await collect(client) == [("output", "a"), ("done", "{}")]
    assert len(upstream.requests) == 2


async def test_a_stream_that_is_not_found_is_unavailable_at_once() -> None:
    upstream = Upstream(stream_reply([], status=404))
    async with connected(upstream) as client:
        with pytest.raises(StreamUnavailable, match="HTTP 404"):
            await collect(client)
    assert len(upstream.requests) == 1


async def test_a_stream_is_not_resumed_past_the_deadline() -> None:
    upstream = Upstream(stream_reply([sse("output", "1", "a")]))
    slow = replace(FAST, backoff_initial=5.0, backoff_max=5.0)
    events: list[tuple[str, str]] = []
    async with connected(upstream, slow, jitter=1.0) as client:
        with pytest.raises(StreamUnavailable, match="ended before its done event"):
            await collect(client, deadline=1, into=events)
    assert events == [("output", "a")]
    assert len(upstream.requests) == 1  # the 5 s backoff did not fit the 1 s deadline


async def test_events_after_an_empty_id_are_not_taken_for_repeats() -> None:
    stream = b"id:\ndata: a\n\ndata: b\n\nevent: done\ndata: {}\n\n"
    upstream = Upstream(stream_reply([stream]))
    async with connected(upstream) as client:
        assert await collect(client) == [("message", "a"), ("message", "b"), ("done", "{}")]


async def test_an_event_over_the_bound_ends_the_stream_without_resuming_it() -> None:
    settings = replace(FAST, max_event_bytes=1000)
    parts = [sse("output", "1", "kept"), b"event: output\nid: 2\ndata: ", b"y" * 600, b"y" * 600]
    upstream = Upstream(stream_reply(parts))
    events: list[tuple[str, str]] = []
    async with connected(upstream, settings) as client:
        with pytest.raises(StreamUnavailable, match="exceeded 1000 bytes"):
            await collect(client, into=events)
    assert events == [("output", "kept")]
    assert len(upstream.requests) == 1  # a resumed stream would send the same event again


async def test_a_stream_that_drops_after_more_events_than_remembered_is_not_resumed() -> None:
    settings = replace(FAST, max_stream_event_ids=3)
    upstream = Upstream(stream_reply([sse("output", str(n), str(n)) for n in range(4)]))
    events: list[tuple[str, str]] = []
    async with connected(upstream, settings) as client:
        with pytest.raises(StreamUnavailable, match="more than 3 events"):
            await collect(client, into=events)
    assert [data for _, data in events] == ["0", "1", "2", "3"]
    assert len(upstream.requests) == 1  # a replay could not be told from new events


async def test_a_stream_within_the_remembered_ids_is_resumed_without_repeats() -> None:
    settings = replace(FAST, max_stream_event_ids=3)
    replayed = [sse("output", str(n), str(n)) for n in range(3)] + [sse("done", "3", "{}")]
    upstream = Upstream(
        stream_reply([sse("output", str(n), str(n)) for n in range(3)]), stream_reply(replayed)
    )
    async with connected(upstream, settings) as client:
        events = await collect(client)
    assert [data for _, data in events] == ["0", "1", "2", "{}"]


async def test_a_429_on_the_stream_holds_its_rate_bucket_for_the_delay() -> None:
    recorder = Recorder()
    upstream = Upstream(stream_reply([], status=429, headers={"Retry-After": "20"}))
    async with connected(upstream, observer=recorder) as client:
        # The server asks for 20 s; the deadline allows 2: the stream gives up at once,
        with pytest.raises(StreamUnavailable, match="HTTP 429"):
            await collect(client, deadline=2)
        # and the account's other bucket stays closed to every caller for those 20 s.
        with pytest.raises(ResourceExhausted, match="rate budget"):
            await client.get_prediction("p1", token="r8_test_stream", deadline=Deadline.after(2))
    assert len(upstream.requests) == 1
    assert recorder.rejected == ["other"]


# --- the prediction view ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ([], "not a JSON object"),
        ({"status": "starting"}, "has no id"),
        ({"id": "", "status": "starting"}, "has no id"),
        ({"id": "p", "status": "queued"}, "unknown prediction status 'queued'"),
    ],
)
def test_a_prediction_that_cannot_be_read_is_a_bad_response(body: object, problem: str) -> None:
    with pytest.raises(Internal, match=problem):
        Prediction.parse(body, endpoint="get")


def test_queue_time_spans_mixed_timestamp_precisions() -> None:
    view = Prediction.parse(
        prediction(created_at="2024-10-08T11:46:16.0649Z", started_at="2024-10-08T11:46:17Z"),
        endpoint="get",
    )
    assert view.queue_seconds == pytest.approx(0.9351)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2024-10-08T11:46:16.36078514Z", datetime(2024, 10, 8, 11, 46, 16, 360785, UTC)),
        ("2024-10-08T11:46:16.0649Z", datetime(2024, 10, 8, 11, 46, 16, 64900, UTC)),
        ("2024-10-08T11:46:16Z", datetime(2024, 10, 8, 11, 46, 16, tzinfo=UTC)),
        ("2024-10-08T17:16:16.5+05:30", datetime(2024, 10, 8, 11, 46, 16, 500000, UTC)),
        ("2024-10-08T11:46:16", datetime(2024, 10, 8, 11, 46, 16, tzinfo=UTC)),
    ],
)
def test_timestamps_as_replicate_writes_them(text: str, expected: datetime) -> None:
    assert parse_timestamp(text) == expected


@pytest.mark.parametrize("value", [None, 17, "", "yesterday", "2024-13-01T00:00:00Z"])
def test_what_is_not_a_timestamp_is_none(value: object) -> None:
    assert parse_timestamp(value) is None


@given(st.text() | st.from_regex(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d*)?(Z|[+-]\d\d:\d\d)?"))
def test_parse_timestamp_never_raises_and_is_always_zone_aware(text: str) -> None:
    parsed = parse_timestamp(text)
    assert parsed is None or parsed.tzinfo is not None
