"""httpx over aiohttp: what the Replicate client relies on, against a real loopback server.

Requests must arrive as httpx built them, responses must read as httpx would read
them (streamed, decoded once), and each failure must surface as the httpx exception
that the client's retry rules are written for.
"""

from __future__ import annotations

import asyncio
import gzip
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import httpx
import pytest
from aiohttp import web
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from inference_gateway.replicate._aiohttp_transport import INFLATE_PIECE, AiohttpTransport

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@asynccontextmanager
async def serving(handler: Handler) -> AsyncIterator[httpx.AsyncClient]:
    """A loopback server answering every path with `handler`, and a client over it."""
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handler)
    runner = web.AppRunner(app, handler_cancellation=True, shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    transport = AiohttpTransport(max_connections=10)
    try:
        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{port}", transport=transport
        ) as client:
            yield client
    finally:
        await runner.cleanup()


async def test_a_request_arrives_as_httpx_built_it() -> None:
    seen: dict[str, object] = {}

    async def echo(request: web.Request) -> web.Response:
        seen.update(
            method=request.method,
            path_qs=request.path_qs,
            body=await request.read(),
            agent=request.headers.get("User-Agent"),
            custom=request.headers.getall("X-Custom"),
            length=request.headers.get("Content-Length"),
        )
        return web.Response(status=201, body=b'{"ok": true}', headers={"X-Reply": "yes"})

    async with serving(echo) as client:
        client.headers["User-Agent"] = "inference-gateway/test"
        response = await client.post(
            "/v1/predictions?x=1",
            content=b'{"input": {}}',
            headers=[("X-Custom", "a"), ("X-Custom", "b")],
        )
    assert seen == {
        "method": "POST",
        "path_qs": "/v1/predictions?x=1",
        "body": b'{"input": {}}',
        "agent": "inference-gateway/test",
        "custom": ["a", "b"],
        "length": "13",
    }
    assert response.status_code == 201
    assert response.headers["x-reply"] == "yes"
    assert response.json() == {"ok": True}
    assert response.http_version == "HTTP/1.1"
    assert response.reason_phrase == "Created"


@settings(max_examples=25, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.binary(max_size=70_000))
def test_any_body_makes_the_round_trip(body: bytes) -> None:
    async def mirror(request: web.Request) -> web.Response:
        return web.Response(body=await request.read())

    async def exchange() -> bytes:
        async with serving(mirror) as client:
            return (await client.post("/", content=body)).content

    assert asyncio.run(exchange()) == body


async def test_a_compressed_body_is_decoded_once_by_httpx() -> None:
    text = "Once upon a time " * 200

    async def compressed(request: web.Request) -> web.Response:
        return web.Response(body=gzip.compress(text.encode()), headers={"Content-Encoding": "gzip"})

    async with serving(compressed) as client:
        response = await client.get("/")
    assert response.text == text


async def test_a_compressed_body_is_inflated_a_bounded_piece_at_a_time() -> None:
    """64 MiB of zeros gzip to about 64 KiB: no piece handed on may be larger than the bound."""
    size = 64 << 20
    bomb = gzip.compress(bytes(size), compresslevel=9)
    offered: list[str] = []

    async def compressed(request: web.Request) -> web.Response:
        offered.append(request.headers.get("Accept-Encoding", ""))
        return web.Response(body=bomb, headers={"Content-Encoding": "gzip"})

    largest = total = 0
    async with serving(compressed) as client, client.stream("GET", "/") as response:
        assert "content-encoding" not in response.headers  # inflated once, here
        async for piece in response.aiter_bytes():
            largest, total = max(largest, len(piece)), total + len(piece)
    assert total == size
    assert largest <= INFLATE_PIECE
    assert offered == ["gzip, deflate"]  # only what the transport inflates itself


async def test_a_corrupt_compressed_body_is_a_decoding_error() -> None:
    async def corrupt(request: web.Request) -> web.Response:
        body = gzip.compress(b"x" * 1000)
        damaged = body[:20] + b"garbage" + body[27:]
        return web.Response(body=damaged, headers={"Content-Encoding": "gzip"})

    async with serving(corrupt) as client:
        with pytest.raises(httpx.DecodingError):
            await client.get("/")


async def test_a_streamed_body_arrives_as_it_is_written() -> None:
    first_read = asyncio.Event()

    async def stream(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        await response.write(b"event: output\ndata: one\n\n")
        await first_read.wait()  # the second part only once the first was read
        await response.write(b"event: done\ndata: {}\n\n")
        await response.write_eof()
        return response

    chunks = []
    async with serving(stream) as client, client.stream("GET", "/stream") as response:
        async for chunk in response.aiter_bytes():
            chunks.append(chunk)
            first_read.set()
    assert b"".join(chunks) == b"event: output\ndata: one\n\nevent: done\ndata: {}\n\n"
    assert chunks[0] == b"event: output\ndata: one\n\n"


async def test_a_connection_is_reused_once_its_body_is_read() -> None:
    peers = []

    async def where(request: web.Request) -> web.Response:
        assert request.transport is not None
        peers.append(request.transport.get_extra_info("peername"))
        return web.Response(text="ok")

    async with serving(where) as client:
        for _ in range(3):
            await client.get("/")
    assert len(set(peers)) == 1


async def test_redirects_are_returned_not_followed() -> None:
    async def redirect(request: web.Request) -> web.Response:
        return web.Response(status=302, headers={"Location": "http://example.invalid/"})

    async with serving(redirect) as client:
        response = await client.get("/")
    assert response.status_code == 302


async def test_a_refused_connection_is_a_connect_error() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # closed again before the request: nothing listens
    transport = AiohttpTransport(max_connections=1)
    async with httpx.AsyncClient(transport=transport) as client:
        with pytest.raises(httpx.ConnectError):
            await client.get(f"http://127.0.0.1:{port}/")


async def test_an_answer_that_never_comes_is_a_read_timeout() -> None:
    never = asyncio.Event()

    async def silent(request: web.Request) -> web.Response:
        await never.wait()
        raise AssertionError("unreachable")

    async with serving(silent) as client:
        with pytest.raises(httpx.ReadTimeout):
            await client.get("/", timeout=httpx.Timeout(5.0, read=0.1))


async def test_a_body_cut_short_is_a_protocol_error() -> None:
    async def cut(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Length": "100"})
        await response.prepare(request)
        await response.write(b"only ten b")
        assert request.transport is not None
        request.transport.close()
        return response

    async with serving(cut) as client:
        with pytest.raises(httpx.RemoteProtocolError):
            await client.get("/")
