"""httpx's interface over aiohttp's connection pool.

httpx's own pool (httpcore) scans every connection for each request it places, so
its CPU cost grows with the connections open: with thousands of `Prefer: wait`
creates held, that scan was most of the gateway's CPU (see bench/results). aiohttp
keeps idle connections per host and hands one over in constant time. The client
keeps httpx's requests, responses, timeouts and exception types; only the wire
moves.

With tracing on, each exchange is a client span, started here and ended when its body
is closed, so a stream's span lasts as long as the stream (httpx's instrumentation wraps
only httpx's own transports); a short body read at once is closed here.

Compressed bodies are inflated here, never more than `INFLATE_PIECE` bytes per step: a
64 KiB gzip chunk can expand to 64 MiB in one call, past every bound the client sets
on what it reads.
"""

from __future__ import annotations

import zlib
from collections.abc import AsyncGenerator, AsyncIterator
from typing import TYPE_CHECKING

import aiohttp
import httpx

from inference_gateway import tracing

if TYPE_CHECKING:
    from opentelemetry.trace import Span

__all__ = ["INFLATE_PIECE", "AiohttpTransport"]

INFLATE_PIECE = 64 << 10
"""The most one step of inflating a compressed body produces."""
READ_AT_ONCE = 64 << 10
"""A body up to this long, its length declared and not encoded, is read with the headers."""

# Headers aiohttp writes itself from the body it is given, and the one this transport sets.
_BODY_HEADERS = frozenset({b"content-length", b"transfer-encoding", b"accept-encoding"})
# The encodings inflated here (gzip, or deflate in its zlib wrapping), so offered upstream.
_ACCEPT_ENCODING = "gzip, deflate"
_INFLATED = frozenset({"gzip", "x-gzip", "deflate"})
# What no longer describes a body once it is inflated.
_ENCODED_BODY_HEADERS = frozenset({"content-encoding", "content-length"})


def _timeout(request: httpx.Request) -> aiohttp.ClientTimeout:
    """httpx's four timeouts, in aiohttp's terms (it has no write timeout)."""
    timeouts = request.extensions.get("timeout", {})
    return aiohttp.ClientTimeout(
        total=None,
        connect=timeouts.get("pool"),
        sock_connect=timeouts.get("connect"),
        sock_read=timeouts.get("read"),
    )


def _translate(exc: Exception, request: httpx.Request) -> httpx.TransportError:
    """The httpx exception that means the same as an aiohttp failure.

    Only faults where nothing can have reached the server become ConnectError or
    ConnectTimeout; `_retry.fault_of` is what reads them as "not sent".
    """
    message = str(exc) or type(exc).__name__
    if isinstance(exc, aiohttp.ConnectionTimeoutError):
        return httpx.ConnectTimeout(message, request=request)
    if isinstance(exc, aiohttp.ServerTimeoutError | TimeoutError):
        return httpx.ReadTimeout(message, request=request)
    if isinstance(exc, aiohttp.ClientConnectorError):
        return httpx.ConnectError(message, request=request)
    if isinstance(exc, aiohttp.ServerDisconnectedError | aiohttp.ClientPayloadError):
        return httpx.RemoteProtocolError(message, request=request)
    if isinstance(exc, aiohttp.ClientResponseError):
        return httpx.RemoteProtocolError(message, request=request)
    return httpx.ReadError(message, request=request)


class _ResponseBody(httpx.AsyncByteStream):
    """The body as aiohttp reads it; closing it returns (or drops) the connection."""

    def __init__(
        self,
        response: aiohttp.ClientResponse,
        request: httpx.Request,
        *,
        inflate: bool,
        span: Span | None,
    ) -> None:
        self._response = response
        self._request = request
        self._inflate = inflate
        self._span = span
        self._reading: AsyncGenerator[bytes, None] | None = None

    def __aiter__(self) -> AsyncIterator[bytes]:
        # Kept, so closing the body closes its reader too: a caller that stops early
        # (an abandoned stream) leaves nothing for the garbage collector.
        self._reading = self._chunks()
        return self._reading

    async def _chunks(self) -> AsyncGenerator[bytes, None]:
        # gzip or zlib framing, told apart by the header (wbits + 32).
        inflater = zlib.decompressobj(zlib.MAX_WBITS | 32) if self._inflate else None
        try:
            async for chunk in self._response.content.iter_any():
                if inflater is None:
                    yield chunk
                    continue
                while chunk:
                    piece = inflater.decompress(chunk, INFLATE_PIECE)
                    chunk = inflater.unconsumed_tail
                    if piece:
                        yield piece
        except (aiohttp.ClientError, TimeoutError) as exc:
            error = _translate(exc, self._request)
            _span_failed(self._span, error)
            raise error from exc
        except zlib.error as exc:
            message = f"a compressed body is corrupt ({exc})"
            raise httpx.DecodingError(message, request=self._request) from exc

    async def aclose(self) -> None:
        if self._reading is not None:
            await self._reading.aclose()
        # Back to the pool if the body was read to the end, otherwise closed.
        self._response.release()
        if self._span is not None:
            self._span.end()
            self._span = None


def _exchange_span(request: httpx.Request) -> Span | None:
    """The exchange's client span (HTTP semantic conventions), or None with tracing off.

    The URL has no query (none of Replicate's carry one that matters) and no header is
    recorded: the token travels in one.
    """
    if not tracing.enabled():
        return None
    url = request.url
    full = str(url)
    if "?" in full:
        # httpx parses the whole URL again to drop the query (about 30 us): only when
        # there is one.
        full = str(url.copy_with(query=None))
    return tracing.client_span(
        request.method,
        {
            "http.request.method": request.method,
            "url.full": full,
            "server.address": url.host,
            "server.port": url.port or (443 if url.scheme == "https" else 80),
        },
    )


def _span_failed(span: Span | None, error: BaseException) -> None:
    if span is None:
        return
    from opentelemetry.trace import StatusCode

    span.set_attribute("error.type", type(error).__name__)
    span.set_status(StatusCode.ERROR, str(error))


class AiohttpTransport(httpx.AsyncBaseTransport):
    """One aiohttp session, opened on first use so it belongs to the running loop."""

    def __init__(self, *, max_connections: int, keepalive_seconds: float = 5.0) -> None:
        self._max_connections = max_connections
        self._keepalive_seconds = keepalive_seconds
        self._session: aiohttp.ClientSession | None = None

    def _open(self) -> aiohttp.ClientSession:
        if self._session is None:
            connector = aiohttp.TCPConnector(
                limit=self._max_connections,
                limit_per_host=0,
                keepalive_timeout=self._keepalive_seconds,
                # The certificates httpx would trust (certifi), not whatever the OS has.
                ssl=httpx.create_ssl_context(),
            )
            self._session = aiohttp.ClientSession(
                connector=connector,
                # httpx decodes Content-Encoding itself, and keeps no cookies.
                auto_decompress=False,
                cookie_jar=aiohttp.DummyCookieJar(),
                # Reading ~/.netrc and proxy variables costs a thread hop per request.
                trust_env=False,
            )
        return self._session

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        headers = [
            (name.decode("latin-1"), value.decode("latin-1"))
            for name, value in request.headers.raw
            if name.lower() not in _BODY_HEADERS
        ]
        headers.append(("Accept-Encoding", _ACCEPT_ENCODING))
        body = await request.aread()
        span = _exchange_span(request)
        try:
            try:
                response = await self._open().request(
                    request.method,
                    str(request.url),
                    headers=headers,
                    data=body or None,
                    allow_redirects=False,
                    timeout=_timeout(request),
                )
            except (aiohttp.ClientError, TimeoutError) as exc:
                raise _translate(exc, request) from exc
        except BaseException as error:  # a cancel ends the span too
            _span_failed(span, error)
            if span is not None:
                span.end()
            raise
        if span is not None:
            span.set_attribute("http.response.status_code", response.status)
        encoding = response.headers.get("Content-Encoding")
        length = response.content_length
        if encoding is None and length is not None and length <= READ_AT_ONCE:
            return await _read_at_once(response, request, span)
        inflate = (encoding or "").strip().lower() in _INFLATED
        response_headers = [
            (name, value)
            for name, value in response.raw_headers
            if not (inflate and name.decode("latin-1").lower() in _ENCODED_BODY_HEADERS)
        ]
        return httpx.Response(
            status_code=response.status,
            headers=response_headers,
            stream=_ResponseBody(response, request, inflate=inflate, span=span),
            extensions=_extensions(response),
            request=request,
        )

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


async def _read_at_once(
    response: aiohttp.ClientResponse, request: httpx.Request, span: Span | None
) -> httpx.Response:
    """A short body read whole, its connection released and its span ended at once.

    What Replicate answers to a create or a read is a few KiB with its length declared:
    handing it to httpx as content spares each call a stream of async generators
    (aiohttp's reader, this transport's, httpx's) to carry one chunk. At most
    READ_AT_ONCE bytes are read so, whatever the client's own bounds on a body (it still
    applies them to what this returns).
    """
    try:
        body = await response.read()
    except (aiohttp.ClientError, TimeoutError) as exc:
        error = _translate(exc, request)
        _span_failed(span, error)
        raise error from exc
    finally:
        response.release()
        if span is not None:
            span.end()
    return httpx.Response(
        status_code=response.status,
        headers=response.raw_headers,
        content=body,
        extensions=_extensions(response),
        request=request,
    )


def _extensions(response: aiohttp.ClientResponse) -> dict[str, object]:
    return {
        "http_version": b"HTTP/1.1",
        "reason_phrase": (response.reason or "").encode("latin-1"),
    }
