"""The one module that talks HTTP to Replicate: requests, retries, rate budgets and SSE.

Which failures are retried, and how long to wait, is `_retry`'s rule; this module
sends the attempts, reads the answers within bounds, and reports to the observer.
An upstream's body is read up to a bound (`ClientSettings.max_body_bytes`,
`max_error_body_bytes`, `max_event_bytes`): a misbehaving upstream costs bounded
memory and gets a clear error, never an unbounded buffer.
"""

from __future__ import annotations

import functools
import json
import logging
import random
import time
from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping
from contextlib import aclosing
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

import httpx

from inference_gateway import __version__, call_events
from inference_gateway.deadlines import Deadline
from inference_gateway.errors import (
    DeadlineExceeded,
    GatewayError,
    bad_response,
    from_http_error,
    from_transport_fault,
)
from inference_gateway.replicate._aiohttp_transport import AiohttpTransport
from inference_gateway.replicate._budget import AccountBudgets, Bucket, RateBudget
from inference_gateway.replicate._prediction import Prediction
from inference_gateway.replicate._retry import (
    Fault,
    Kind,
    Retry,
    RetryPolicy,
    fault_of,
    fault_of_status,
    retry_after,
    retrying,
    retrying_call,
)
from inference_gateway.replicate._sse import (
    MAX_EVENT_BYTES,
    EventTooLarge,
    ServerSentEvent,
    iter_events,
)
from inference_gateway.state import MemoryStore, SharedState

__all__ = [
    "ClientSettings",
    "FileResponse",
    "ReplicateClient",
    "StreamUnavailable",
    "UpstreamObserver",
]

_LOGGER = logging.getLogger(__name__)
# Create URLs kept parsed: one per model called, the least recently used forgotten first.
_CREATE_URLS = 1024
# The methods httpx sends a Content-Length with even without a body.
_BODIED = frozenset({"POST", "PUT", "PATCH"})
T = TypeVar("T")


class UpstreamObserver(Protocol):
    """What the client reports, so metrics stay out of the HTTP code."""

    def request_done(self, endpoint: str, status_class: str, seconds: float) -> None: ...
    def retried(self, endpoint: str) -> None: ...
    def rate_limit_waited(self, bucket: str, seconds: float) -> None: ...
    def rate_limit_rejected(self, bucket: str) -> None: ...


class _NoObserver:
    def request_done(self, endpoint: str, status_class: str, seconds: float) -> None:
        pass

    def retried(self, endpoint: str) -> None:
        pass

    def rate_limit_waited(self, bucket: str, seconds: float) -> None:
        pass

    def rate_limit_rejected(self, bucket: str) -> None:
        pass


@dataclass(frozen=True, slots=True)
class FileResponse:
    """A file's bytes and type, or where a redirect points (its caller decides whether to go)."""

    data: bytes = b""
    content_type: str = ""
    redirect: str | None = None


class StreamUnavailable(Exception):
    """The SSE stream could not be (re)opened; the caller falls back to polling."""


@dataclass(frozen=True, slots=True)
class ClientSettings:
    # The first four come from the gateway's Settings (grpc_api/server.py), their one home.
    base_url: str
    # Each held `Prefer: wait` create occupies one connection for up to a minute.
    max_connections: int
    create_per_minute: int
    other_per_minute: int
    connect_timeout: float = 5.0
    write_timeout: float = 30.0
    backoff_initial: float = 0.25
    backoff_max: float = 8.0
    max_attempts: int = 6
    stream_reconnects: int = 5
    # Bounds on what one upstream answer may make the gateway hold. A prediction's JSON
    # carries its output and logs; an error body is read only for its `detail`.
    max_body_bytes: int = 32 << 20
    max_error_body_bytes: int = 64 << 10
    max_event_bytes: int = MAX_EVENT_BYTES
    # Event ids kept per stream to skip a replay after a reconnect (about 100 bytes each).
    max_stream_event_ids: int = 10_000


def _bucket(kind: Kind) -> Bucket:
    """Replicate rate-limits creates apart from everything else."""
    return Bucket.CREATE if kind is Kind.CREATE else Bucket.OTHER


def _status_class(status: int) -> str:
    return f"{status // 100}xx"


def _json_object(body: bytes | None) -> Mapping[str, Any] | None:
    """The body as a JSON object, or None when it is absent, not JSON or not an object."""
    if body is None:
        return None
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):  # not JSON, not UTF-8, or nested too deep
        return None
    return data if isinstance(data, Mapping) else None


def _failed_exchange(exc: httpx.RequestError, *, endpoint: str, deadline: Deadline) -> Retry:
    """The one translation of httpx's exceptions: how the exchange failed, and what to say."""
    fault = fault_of(exc)
    if fault is Fault.MALFORMED:
        error: GatewayError = bad_response(endpoint=endpoint, detail=str(exc))
    elif isinstance(exc, httpx.TimeoutException) and deadline.expired:
        error = DeadlineExceeded(
            f"the call's deadline passed while waiting for Replicate ({endpoint})",
            reason="DEADLINE_EXCEEDED",
            metadata={"endpoint": endpoint},
        )
    else:
        error = from_transport_fault(
            endpoint=endpoint, detail=type(exc).__name__, sent=fault is not Fault.NOT_SENT
        )
    return Retry(fault, error)


async def _observe_limits(budget: RateBudget, response: httpx.Response) -> None:
    await budget.observe_headers(
        response.headers.get("ratelimit-remaining"), response.headers.get("ratelimit-reset")
    )


async def _read_at_most(response: httpx.Response, limit: int) -> bytes | None:
    """The body, or None once it would exceed `limit` (the rest is never read)."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_bytes():
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


class _Counting:
    """Passes reports to the observer, and each request to the call that made it."""

    def __init__(self, observer: UpstreamObserver) -> None:
        self._observer = observer

    def request_done(self, endpoint: str, status_class: str, seconds: float) -> None:
        call_events.report().upstream_request()
        self._observer.request_done(endpoint, status_class, seconds)

    def retried(self, endpoint: str) -> None:
        self._observer.retried(endpoint)

    def rate_limit_waited(self, bucket: str, seconds: float) -> None:
        self._observer.rate_limit_waited(bucket, seconds)

    def rate_limit_rejected(self, bucket: str) -> None:
        self._observer.rate_limit_rejected(bucket)


class _NoCookies(httpx.Cookies):
    """A jar that keeps nothing: the gateway serves many callers with one token, so a
    cookie one response sets must not ride along on later requests; and reading each
    response's headers into http.cookiejar cost about 4 % of a call's CPU."""

    def extract_cookies(self, response: httpx.Response) -> None:
        pass


class _CookielessClient(httpx.AsyncClient):
    """httpx's client, whose jar (read and written on every exchange) keeps no cookies."""

    _NO_COOKIES = _NoCookies()

    @property
    def cookies(self) -> httpx.Cookies:
        return self._NO_COOKIES

    @cookies.setter
    def cookies(self, cookies: object) -> None:
        raise TypeError("the Replicate client keeps no cookies")


class ReplicateClient:
    """Replicate's HTTP API over one shared connection pool."""

    def __init__(
        self,
        settings: ClientSettings,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        observer: UpstreamObserver | None = None,
        jitter: Callable[[], float] = random.random,
        state: SharedState | None = None,
    ) -> None:
        self._settings = settings
        self._observer: UpstreamObserver = _Counting(observer or _NoObserver())
        attempts = {kind: settings.max_attempts for kind in Kind}
        attempts[Kind.STREAM] = settings.stream_reconnects + 1
        self._policy = RetryPolicy(
            initial=settings.backoff_initial,
            maximum=settings.backoff_max,
            attempts=attempts,
            jitter=jitter,
        )
        self.budgets = AccountBudgets(
            state if state is not None else SharedState(MemoryStore()),
            create_per_minute=settings.create_per_minute,
            other_per_minute=settings.other_per_minute,
        )
        self._http = _CookielessClient(
            base_url=settings.base_url.rstrip("/"),
            transport=transport or AiohttpTransport(max_connections=settings.max_connections),
            timeout=httpx.Timeout(None, connect=settings.connect_timeout),
            headers={"User-Agent": f"inference-gateway/{__version__}"},
            follow_redirects=False,
        )
        # Parsing a path and joining it to the base URL was httpx's dearest step of
        # building a request (about 4 % of a call's CPU); a model's create URL is reused.
        self._create_url = functools.lru_cache(maxsize=_CREATE_URLS)(self._absolute)
        # The client's own headers (User-Agent, httpx's Accept...), encoded once for `_build`.
        self._client_headers = tuple(
            (key, key.lower(), value) for key, value in self._http.headers.raw
        )

    @property
    def base_url(self) -> str:
        return str(self._http.base_url)

    def _absolute(self, path: str) -> httpx.URL:
        """`path` under the base URL, as httpx's client joins a relative one."""
        base = self._http.base_url
        return base.copy_with(raw_path=base.raw_path + httpx.URL(path).raw_path.lstrip(b"/"))

    def _build(
        self,
        method: str,
        path: str | httpx.URL,
        headers: Mapping[str, str],
        content: bytes | None,
        timeout: httpx.Timeout,
    ) -> httpx.Request:
        """The request the client's `build_request` makes, built without its copies.

        The same headers in the same order: Host, the client's own but those the request
        names again, the request's, then the body's Content-Length (a POST without a body
        gets its "0" just after Host, as httpx adds it). Merging and copying header lists
        three times over was most of what building a request cost, about a tenth of a
        call's CPU outside gRPC and aiohttp.
        """
        url = path if isinstance(path, httpx.URL) else httpx.URL(path)
        if url.is_relative_url:
            url = self._absolute(str(url))
        given = {name.lower().encode() for name in headers}
        merged: list[tuple[bytes, bytes]] = []
        if b"host" not in given and url.host:
            merged.append((b"Host", url.netloc))
        length = b"content-length" in given
        body = b"" if content is None else content
        if not body and not length and method in _BODIED:
            merged.append((b"Content-Length", b"0"))
        merged += [
            (key, value) for key, lowered, value in self._client_headers if lowered not in given
        ]
        merged += [(name.encode("ascii"), value.encode("ascii")) for name, value in headers.items()]
        if body and not length:
            merged.append((b"Content-Length", str(len(body)).encode()))
        request = httpx.Request(
            method,
            url,
            headers=merged,
            stream=httpx.ByteStream(body),
            extensions={"timeout": timeout.as_dict()},
        )
        request.read()
        return request

    async def aclose(self) -> None:
        await self._http.aclose()

    # --- predictions -----------------------------------------------------------------------

    async def create_prediction(
        self,
        path: str,
        body: Mapping[str, Any],
        *,
        token: str,
        deadline: Deadline,
        wait_seconds: int | None,
        cancel_after: Callable[[], int] | None,
    ) -> Prediction:
        """Creates a prediction, holding the request up to `wait_seconds` for its output.

        `cancel_after` gives the Cancel-After seconds, asked again for every attempt:
        Replicate counts them from the creation, so time spent on a rate budget or a
        retry must come off them.
        """
        headers = {"Content-Type": "application/json"}
        if wait_seconds is not None:
            headers["Prefer"] = f"wait={wait_seconds}"
        # The server answers a held create after wait_seconds; allow it time to do so.
        read = (wait_seconds or 0) + 15.0
        answer = await self._request(
            "POST",
            self._create_url(path),
            kind=Kind.CREATE,
            endpoint="create",
            token=token,
            deadline=deadline,
            headers=headers,
            content=json.dumps(body, separators=(",", ":")).encode(),
            read_timeout=read,
            fresh_headers=(
                None if cancel_after is None else lambda: {"Cancel-After": f"{cancel_after()}s"}
            ),
        )
        return Prediction.parse(answer, endpoint="create")

    async def get_prediction(
        self, prediction_id: str, *, token: str, deadline: Deadline
    ) -> Prediction:
        body = await self._request(
            "GET",
            f"/v1/predictions/{prediction_id}",
            kind=Kind.READ,
            endpoint="get",
            token=token,
            deadline=deadline,
        )
        return Prediction.parse(body, endpoint="get")

    async def cancel_prediction(
        self, prediction_id: str, *, token: str, deadline: Deadline
    ) -> Prediction:
        body = await self._request(
            "POST",
            f"/v1/predictions/{prediction_id}/cancel",
            kind=Kind.CANCEL,
            endpoint="cancel",
            token=token,
            deadline=deadline,
        )
        return Prediction.parse(body, endpoint="cancel")

    async def get_json(
        self, path: str, *, endpoint: str, token: str, deadline: Deadline
    ) -> Mapping[str, Any]:
        """GETs a model, version or deployment object."""
        body = await self._request(
            "GET",
            path,
            kind=Kind.READ,
            endpoint=endpoint,
            token=token,
            deadline=deadline,
        )
        if body is None:
            raise bad_response(endpoint=endpoint, detail="the body is not a JSON object")
        return body

    async def update_deployment(
        self, deployment: str, changes: Mapping[str, Any], *, token: str, deadline: Deadline
    ) -> Mapping[str, Any]:
        """PATCHes a deployment ("owner/name"): each update makes a new release."""
        body = await self._request(
            "PATCH",
            f"/v1/deployments/{deployment}",
            kind=Kind.UPDATE,
            endpoint="deployment_update",
            token=token,
            deadline=deadline,
            headers={"Content-Type": "application/json"},
            content=json.dumps(changes).encode(),
        )
        if body is None:
            raise bad_response(endpoint="deployment_update", detail="the body is not a JSON object")
        return body

    async def download(
        self,
        url: str,
        *,
        token: str | None,
        deadline: Deadline,
        charge: Callable[[int], None],
    ) -> FileResponse:
        """GETs one URL as given, passing each chunk's size to `charge`, which raises to stop.

        A redirect comes back unread and unfollowed: the caller vets every hop's URL.
        """
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        timeout = self._timeout(deadline, read=deadline.remaining())
        started = time.monotonic()
        status_class = "error"
        try:
            async with self._http.stream("GET", url, headers=headers, timeout=timeout) as response:
                status = response.status_code
                status_class = _status_class(status)
                if 300 <= status < 400:
                    # Any 3xx, with or without a Location: the caller's rule decides.
                    return FileResponse(redirect=response.headers.get("location", ""))
                if status >= 300:
                    raise from_http_error(status, None, endpoint="file")
                chunks: list[bytes] = []
                async for chunk in response.aiter_bytes():
                    charge(len(chunk))
                    chunks.append(chunk)
                kind = response.headers.get("content-type", "application/octet-stream")
                return FileResponse(b"".join(chunks), kind.split(";")[0].strip())
        except httpx.RequestError as exc:
            raise _failed_exchange(exc, endpoint="file", deadline=deadline).error from exc
        finally:
            self._observer.request_done("file", status_class, time.monotonic() - started)

    def stream_events(
        self, url: str, *, token: str, deadline: Deadline
    ) -> AsyncGenerator[ServerSentEvent, None]:
        """Yields a prediction's SSE events until `done`, reconnecting with Last-Event-ID.

        A reconnect that replays events already seen is tolerated: they are skipped by id.
        The ids remembered for that are bounded (max_stream_event_ids); a stream that
        drops after more events than that is not resumed, since a replay could not be
        told from new events, and the caller reads the prediction instead.
        Raises StreamUnavailable when the stream cannot be opened or resumed, or sends
        an event over max_event_bytes, so the caller can fall back to reading the
        prediction's output.
        """
        last_id: str | None = None
        seen: set[str] = set()
        remembered_all = True

        async def attempt() -> AsyncGenerator[ServerSentEvent, None]:
            nonlocal last_id, remembered_all
            if not remembered_all:
                raise StreamUnavailable(
                    f"the stream dropped after more than {self._settings.max_stream_event_ids} "
                    "events, too many to resume without repeating some"
                )
            headers = {"Accept": "text/event-stream", "Cache-Control": "no-store"}
            if last_id is not None:
                headers["Last-Event-ID"] = last_id
            await self._spend(_bucket(Kind.STREAM), token, deadline)
            started = time.monotonic()
            status_class = "error"
            try:
                # Not `self._http.stream()`: its context manager is a generator more,
                # kept for as long as the stream is followed.
                request = self._build("GET", url, headers, None, self._timeout(deadline, read=None))
                response = await self._http.send(request, stream=True)
                try:
                    status = response.status_code
                    status_class = _status_class(status)
                    await _observe_limits(self.budgets(token, _bucket(Kind.STREAM)), response)
                    if status != 200:
                        after = retry_after(response.headers, None)
                        unavailable = StreamUnavailable(f"the stream answered HTTP {status}")
                        raise Retry(fault_of_status(status), unavailable, after=after)
                    chunks = response.aiter_bytes()
                    limit = self._settings.max_event_bytes
                    # Closing the response (the `finally` below) frees the connection;
                    # httpx's own generators under `chunks` hold nothing once it is.
                    async with aclosing(iter_events(chunks, max_event_bytes=limit)) as events:
                        async for event in events:
                            # An empty id (a reset) names no event, so it cannot mark one
                            # as seen.
                            if event.id:
                                if event.id in seen:
                                    continue
                                if len(seen) < self._settings.max_stream_event_ids:
                                    seen.add(event.id)
                                else:
                                    remembered_all = False
                                last_id = event.id
                            yield event
                            if event.event == "done":
                                return
                finally:
                    await response.aclose()
            except httpx.RequestError as exc:
                dropped = StreamUnavailable(f"the stream failed ({type(exc).__name__}: {exc})")
                raise Retry(fault_of(exc), dropped) from exc
            except EventTooLarge as exc:
                _LOGGER.warning("stream %s: %s; reading the prediction instead", url, exc)
                raise Retry(Fault.MALFORMED, StreamUnavailable(str(exc))) from exc
            finally:
                self._observer.request_done("stream", status_class, time.monotonic() - started)
            # The connection ended cleanly but before `done`: resume where it stopped.
            raise Retry(Fault.LOST, StreamUnavailable("the stream ended before its done event"))

        # The retrying generator itself, not one that re-yields it: a frame fewer held for
        # as long as the stream is followed.
        return self._retrying(attempt, Kind.STREAM, "stream", token, deadline)

    # --- one attempt, and the loop around it -------------------------------------------------

    def _timeout(self, deadline: Deadline, *, read: float | None) -> httpx.Timeout:
        left = max(deadline.remaining(), 0.001)
        return httpx.Timeout(
            connect=min(self._settings.connect_timeout, left),
            read=left if read is None else min(read, left),
            write=min(self._settings.write_timeout, left),
            pool=left,
        )

    async def _spend(self, bucket: Bucket, token: str, deadline: Deadline) -> None:
        try:
            waited = await self.budgets(token, bucket).acquire(deadline)
        except GatewayError:
            self._observer.rate_limit_rejected(bucket.value)
            raise
        if waited:
            self._observer.rate_limit_waited(bucket.value, waited)

    def _retrying(
        self,
        attempt: Callable[[], AsyncGenerator[T, None]],
        kind: Kind,
        endpoint: str,
        token: str,
        deadline: Deadline,
    ) -> AsyncGenerator[T, None]:
        on_failure, on_retry = self._retry_hooks(kind, endpoint, token)
        return retrying(
            attempt,
            kind=kind,
            policy=self._policy,
            allows=deadline.allows,
            on_failure=on_failure,
            on_retry=on_retry,
        )

    def _retry_hooks(
        self, kind: Kind, endpoint: str, token: str
    ) -> tuple[Callable[[Retry, float], Awaitable[None]], Callable[[Retry, float], None]]:
        """What a failed attempt does: a 429 holds the account's bucket; a retry is logged
        and counted."""
        budget = self.budgets(token, _bucket(kind))

        async def on_failure(failure: Retry, delay: float) -> None:
            if failure.fault is Fault.THROTTLED:
                # Every caller of this account's bucket waits, not just this one.
                await budget.block_for(delay)

        def on_retry(failure: Retry, delay: float) -> None:
            _LOGGER.info("%s: %s; trying again in %.2fs", endpoint, failure, delay)
            self._observer.retried(endpoint)

        return on_failure, on_retry

    async def _request(
        self,
        method: str,
        path: str | httpx.URL,
        *,
        kind: Kind,
        endpoint: str,
        token: str,
        deadline: Deadline,
        headers: Mapping[str, str] | None = None,
        content: bytes | None = None,
        read_timeout: float | None = None,
        fresh_headers: Callable[[], Mapping[str, str]] | None = None,
    ) -> Mapping[str, Any] | None:
        """Sends one logical request; returns its JSON object (None if it is not one).

        `fresh_headers` are made again for each attempt, just before it is sent.
        """
        all_headers = {"Authorization": f"Bearer {token}", **(headers or {})}
        bucket = _bucket(kind)

        async def attempt() -> Mapping[str, Any] | None:
            if deadline.expired:
                raise DeadlineExceeded(
                    f"the call's deadline passed before Replicate answered ({endpoint})",
                    reason="DEADLINE_EXCEEDED",
                    metadata={"endpoint": endpoint},
                )
            await self._spend(bucket, token, deadline)
            fresh = fresh_headers() if fresh_headers is not None else {}
            request = self._build(
                method,
                path,
                {**all_headers, **fresh},
                content,
                self._timeout(deadline, read=read_timeout),
            )
            return await self._exchange(
                request, endpoint=endpoint, budget=self.budgets(token, bucket), deadline=deadline
            )

        on_failure, on_retry = self._retry_hooks(kind, endpoint, token)
        return await retrying_call(
            attempt,
            kind=kind,
            policy=self._policy,
            allows=deadline.allows,
            on_failure=on_failure,
            on_retry=on_retry,
        )

    async def _exchange(
        self, request: httpx.Request, *, endpoint: str, budget: RateBudget, deadline: Deadline
    ) -> Mapping[str, Any] | None:
        """One attempt on the wire: the answer's JSON object, or Retry saying what failed."""
        started = time.monotonic()
        status_class = "error"
        try:
            response = await self._http.send(request, stream=True)
            try:
                status = response.status_code
                limit = (
                    self._settings.max_body_bytes
                    if status < 400
                    else self._settings.max_error_body_bytes
                )
                raw = await _read_at_most(response, limit)
            finally:
                await response.aclose()
            status_class = _status_class(status)
        except httpx.RequestError as exc:
            raise _failed_exchange(exc, endpoint=endpoint, deadline=deadline) from exc
        finally:
            self._observer.request_done(endpoint, status_class, time.monotonic() - started)
        await _observe_limits(budget, response)
        if status >= 400:
            # An error body over its bound is not read: the status alone decides.
            body = _json_object(raw)
            after = retry_after(response.headers, body)
            error = from_http_error(status, body, endpoint=endpoint, retry_after_seconds=after)
            raise Retry(fault_of_status(status), error, after=after)
        if raw is None:
            raise Retry(
                Fault.MALFORMED,
                bad_response(
                    endpoint=endpoint,
                    detail=f"the body is larger than {self._settings.max_body_bytes} bytes",
                ),
            )
        return _json_object(raw)
