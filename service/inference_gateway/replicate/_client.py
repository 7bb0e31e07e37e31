"""The one module that talks HTTP to Replicate: requests, retries, rate budgets and SSE.

Retry rules follow what cannot duplicate work: a create (POST) is retried only on a
429 or when the connection failed before the request was sent; a GET, a cancel and a
stream are retried on 429, 5xx and connection faults with truncated exponential
backoff and full jitter. Every wait fits inside the caller's deadline.
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import logging
import random
import time
from collections.abc import AsyncGenerator, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import httpx

from inference_gateway import __version__
from inference_gateway.deadlines import Deadline
from inference_gateway.errors import (
    DeadlineExceeded,
    GatewayError,
    bad_response,
    from_http_error,
    from_transport_fault,
)
from inference_gateway.replicate._aiohttp_transport import AiohttpTransport
from inference_gateway.replicate._budget import AccountBudgets, Bucket
from inference_gateway.replicate._prediction import Prediction
from inference_gateway.replicate._sse import ServerSentEvent, iter_events, iter_lines
from inference_gateway.request_log import current_record
from inference_gateway.state import MemoryStore, SharedState

__all__ = [
    "ClientSettings",
    "FileResponse",
    "ReplicateClient",
    "StreamUnavailable",
    "UpstreamObserver",
]

_LOGGER = logging.getLogger(__name__)

# Faults where nothing reached the server, so even a create may be sent again.
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
_RETRY_AFTER_CAP = 60.0
_REDIRECTS = frozenset({301, 302, 303, 307, 308})


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
    base_url: str = "https://api.replicate.com"
    # Each held `Prefer: wait` create occupies one connection for up to a minute.
    max_connections: int = 10_000
    connect_timeout: float = 5.0
    write_timeout: float = 30.0
    create_per_minute: int = 600
    other_per_minute: int = 3_000
    backoff_initial: float = 0.25
    backoff_max: float = 8.0
    max_attempts: int = 6
    stream_reconnects: int = 5


def _status_class(status: int) -> str:
    return f"{status // 100}xx"


def _retry_after(response: httpx.Response, body: Mapping[str, Any] | None) -> float | None:
    """Seconds from `Retry-After` (seconds or an HTTP date) or the body's `retry_after`."""
    header = response.headers.get("retry-after")
    if header:
        header = header.strip()
        if header.isascii() and header.replace(".", "", 1).isdigit():
            return min(float(header), _RETRY_AFTER_CAP)
        try:
            when = email.utils.parsedate_to_datetime(header)
        except (TypeError, ValueError):
            when = None
        if when is not None:
            return min(max(0.0, when.timestamp() - time.time()), _RETRY_AFTER_CAP)
    value = body.get("retry_after") if body else None
    if isinstance(value, int | float) and not isinstance(value, bool) and value >= 0:
        return min(float(value), _RETRY_AFTER_CAP)
    return None


def _json_body(response: httpx.Response) -> Mapping[str, Any] | None:
    try:
        data = response.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None
    return data if isinstance(data, Mapping) else None


class _Counting:
    """Passes reports to the observer and counts upstream requests in the request's record."""

    def __init__(self, observer: UpstreamObserver) -> None:
        self._observer = observer

    def request_done(self, endpoint: str, status_class: str, seconds: float) -> None:
        record = current_record()
        if record is not None:
            record.upstream_requests += 1
        self._observer.request_done(endpoint, status_class, seconds)

    def retried(self, endpoint: str) -> None:
        self._observer.retried(endpoint)

    def rate_limit_waited(self, bucket: str, seconds: float) -> None:
        self._observer.rate_limit_waited(bucket, seconds)

    def rate_limit_rejected(self, bucket: str) -> None:
        self._observer.rate_limit_rejected(bucket)


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
        self._jitter = jitter
        self.budgets = AccountBudgets(
            state if state is not None else SharedState(MemoryStore()),
            create_per_minute=settings.create_per_minute,
            other_per_minute=settings.other_per_minute,
        )
        self._http = httpx.AsyncClient(
            base_url=settings.base_url.rstrip("/"),
            transport=transport or AiohttpTransport(max_connections=settings.max_connections),
            timeout=httpx.Timeout(None, connect=settings.connect_timeout),
            headers={"User-Agent": f"inference-gateway/{__version__}"},
            follow_redirects=False,
        )

    @property
    def base_url(self) -> str:
        return str(self._http.base_url)

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
        cancel_after_seconds: int | None,
    ) -> Prediction:
        """Creates a prediction, holding the request up to `wait_seconds` for its output."""
        headers = {"Content-Type": "application/json"}
        if wait_seconds is not None:
            headers["Prefer"] = f"wait={wait_seconds}"
        if cancel_after_seconds is not None:
            headers["Cancel-After"] = f"{cancel_after_seconds}s"
        # The server answers a held create after wait_seconds; allow it time to do so.
        read = (wait_seconds or 0) + 15.0
        response = await self._send(
            "POST",
            path,
            endpoint="create",
            bucket=Bucket.CREATE,
            token=token,
            deadline=deadline,
            headers=headers,
            content=json.dumps(body, separators=(",", ":")).encode(),
            idempotent=False,
            read_timeout=read,
        )
        return Prediction.parse(_json_body(response), endpoint="create")

    async def get_prediction(
        self, prediction_id: str, *, token: str, deadline: Deadline
    ) -> Prediction:
        response = await self._send(
            "GET",
            f"/v1/predictions/{prediction_id}",
            endpoint="get",
            bucket=Bucket.OTHER,
            token=token,
            deadline=deadline,
        )
        return Prediction.parse(_json_body(response), endpoint="get")

    async def cancel_prediction(
        self, prediction_id: str, *, token: str, deadline: Deadline
    ) -> Prediction:
        response = await self._send(
            "POST",
            f"/v1/predictions/{prediction_id}/cancel",
            endpoint="cancel",
            bucket=Bucket.OTHER,
            token=token,
            deadline=deadline,
        )
        return Prediction.parse(_json_body(response), endpoint="cancel")

    async def get_json(
        self, path: str, *, endpoint: str, token: str, deadline: Deadline
    ) -> Mapping[str, Any]:
        """GETs a model, version or deployment object."""
        response = await self._send(
            "GET", path, endpoint=endpoint, bucket=Bucket.OTHER, token=token, deadline=deadline
        )
        body = _json_body(response)
        if body is None:
            raise bad_response(endpoint=endpoint, detail="the body is not a JSON object")
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
                if status in _REDIRECTS:
                    return FileResponse(redirect=response.headers.get("location", ""))
                if status >= 300:
                    raise from_http_error(status, None, endpoint="file")
                chunks: list[bytes] = []
                async for chunk in response.aiter_bytes():
                    charge(len(chunk))
                    chunks.append(chunk)
                kind = response.headers.get("content-type", "application/octet-stream")
                return FileResponse(b"".join(chunks), kind.split(";")[0].strip())
        except httpx.TransportError as exc:
            raise from_transport_fault(endpoint="file", detail=type(exc).__name__) from exc
        finally:
            self._observer.request_done("file", status_class, time.monotonic() - started)

    async def stream_events(
        self, url: str, *, token: str, deadline: Deadline
    ) -> AsyncGenerator[ServerSentEvent, None]:
        """Yields a prediction's SSE events until `done`, reconnecting with Last-Event-ID.

        A reconnect that replays events already seen is tolerated: they are skipped by id.
        Raises StreamUnavailable when the stream cannot be opened or resumed, so the
        caller can fall back to reading the prediction's output.
        """
        last_id: str | None = None
        seen: set[str] = set()
        failures = 0
        while True:
            retry_after: float | None = None
            headers = {"Accept": "text/event-stream", "Cache-Control": "no-store"}
            if last_id is not None:
                headers["Last-Event-ID"] = last_id
            await self._spend(Bucket.OTHER, token, deadline)
            started = time.monotonic()
            status_class = "error"
            try:
                async with self._http.stream(
                    "GET", url, headers=headers, timeout=self._timeout(deadline, read=None)
                ) as response:
                    status = response.status_code
                    status_class = _status_class(status)
                    if status == 429 or status >= 500:
                        retry_after = _retry_after(response, None)
                        _LOGGER.info("stream answered HTTP %d; retrying", status)
                    elif status != 200:
                        raise StreamUnavailable(f"stream answered HTTP {status}")
                    else:
                        async for event in iter_events(iter_lines(response.aiter_text())):
                            # An empty id (a reset) names no event, so it cannot mark one as seen.
                            if event.id:
                                if event.id in seen:
                                    continue
                                seen.add(event.id)
                                last_id = event.id
                            failures = 0
                            yield event
                            if event.event == "done":
                                return
            except httpx.TransportError as exc:
                _LOGGER.info("stream dropped (%s); resuming", type(exc).__name__)
            finally:
                self._observer.request_done("stream", status_class, time.monotonic() - started)
            # The connection ended before `done`: resume where it stopped.
            failures += 1
            if failures > self._settings.stream_reconnects:
                raise StreamUnavailable("the stream kept dropping")
            delay = retry_after if retry_after is not None else self._backoff(failures)
            if not deadline.allows(delay):
                raise StreamUnavailable("no time left to resume the stream")
            self._observer.retried("stream")
            await asyncio.sleep(delay)

    # --- the request loop ------------------------------------------------------------------

    def _timeout(self, deadline: Deadline, *, read: float | None) -> httpx.Timeout:
        left = max(deadline.remaining(), 0.001)
        return httpx.Timeout(
            connect=min(self._settings.connect_timeout, left),
            read=left if read is None else min(read, left),
            write=min(self._settings.write_timeout, left),
            pool=left,
        )

    def _backoff(self, attempt: int) -> float:
        """Truncated exponential backoff with full jitter."""
        ceiling = min(
            self._settings.backoff_max, self._settings.backoff_initial * 2.0 ** (attempt - 1)
        )
        return ceiling * self._jitter()

    async def _spend(self, bucket: Bucket, token: str, deadline: Deadline) -> None:
        try:
            waited = await self.budgets(token, bucket).acquire(deadline)
        except GatewayError:
            self._observer.rate_limit_rejected(bucket.value)
            raise
        if waited:
            self._observer.rate_limit_waited(bucket.value, waited)

    async def _send(
        self,
        method: str,
        path: str,
        *,
        endpoint: str,
        bucket: Bucket,
        token: str,
        deadline: Deadline,
        headers: Mapping[str, str] | None = None,
        content: bytes | None = None,
        idempotent: bool = True,
        read_timeout: float | None = None,
    ) -> httpx.Response:
        """Sends one logical request, retrying only where that cannot duplicate work."""
        all_headers = {"Authorization": f"Bearer {token}", **(headers or {})}
        attempt = 0
        while True:
            attempt += 1
            if deadline.expired:
                raise DeadlineExceeded(
                    f"the call's deadline passed before Replicate answered ({endpoint})",
                    reason="DEADLINE_EXCEEDED",
                    metadata={"endpoint": endpoint},
                )
            await self._spend(bucket, token, deadline)
            started = time.monotonic()
            try:
                response = await self._http.request(
                    method,
                    path,
                    headers=all_headers,
                    content=content,
                    timeout=self._timeout(deadline, read=read_timeout),
                )
            except httpx.TransportError as exc:
                self._observer.request_done(endpoint, "error", time.monotonic() - started)
                may_retry = idempotent or isinstance(exc, _NOT_SENT)
                delay = self._backoff(attempt)
                if may_retry and attempt < self._settings.max_attempts and deadline.allows(delay):
                    self._observer.retried(endpoint)
                    await asyncio.sleep(delay)
                    continue
                if isinstance(exc, httpx.TimeoutException) and deadline.expired:
                    raise DeadlineExceeded(
                        f"the call's deadline passed while waiting for Replicate ({endpoint})",
                        reason="DEADLINE_EXCEEDED",
                        metadata={"endpoint": endpoint},
                    ) from exc
                raise from_transport_fault(endpoint=endpoint, detail=type(exc).__name__) from exc
            self._observer.request_done(
                endpoint, _status_class(response.status_code), time.monotonic() - started
            )
            budget = self.budgets(token, bucket)
            await budget.observe_headers(
                response.headers.get("ratelimit-remaining"), response.headers.get("ratelimit-reset")
            )
            status = response.status_code
            if status < 400:
                return response
            body = _json_body(response)
            retry_after = _retry_after(response, body) if status == 429 else None
            if status == 429:
                delay = retry_after if retry_after is not None else self._backoff(attempt)
                await budget.block_for(delay)
            elif status >= 500 and idempotent:
                delay = self._backoff(attempt)
            else:
                raise from_http_error(status, body, endpoint=endpoint)
            if attempt < self._settings.max_attempts and deadline.allows(delay):
                self._observer.retried(endpoint)
                await asyncio.sleep(delay)
                continue
            raise from_http_error(status, body, endpoint=endpoint, retry_after_seconds=retry_after)
