"""Sends LiteLLM's Replicate requests to the bench's simulator instead of api.replicate.com.

LiteLLM's Replicate provider ignores `api_base` (its create URL is hard-coded to
https://api.replicate.com), so the bench puts this directory on the proxy's PYTHONPATH:
Python imports `sitecustomize` at start-up, and this one rewrites, in httpx's `send`
(under whatever transport LiteLLM mounts), the scheme, host and port of any request to
api.replicate.com to those of BENCH_REPLICATE_BASE_URL. Path, query, headers and body
are untouched, so LiteLLM behaves exactly as it does against Replicate.
"""

from __future__ import annotations

import os
from typing import Any

import httpx

_TARGET = httpx.URL(os.environ["BENCH_REPLICATE_BASE_URL"])
_REPLICATE_HOST = "api.replicate.com"


def _redirect(request: httpx.Request) -> None:
    if request.url.host == _REPLICATE_HOST:
        request.url = request.url.copy_with(
            scheme=_TARGET.scheme, host=_TARGET.host, port=_TARGET.port
        )
        request.headers["Host"] = request.url.netloc.decode()


_async_send = httpx.AsyncClient.send
_sync_send = httpx.Client.send


async def _send_async(self: httpx.AsyncClient, request: httpx.Request, **kwargs: Any) -> Any:
    _redirect(request)
    return await _async_send(self, request, **kwargs)


def _send_sync(self: httpx.Client, request: httpx.Request, **kwargs: Any) -> Any:
    _redirect(request)
    return _sync_send(self, request, **kwargs)


httpx.AsyncClient.send = _send_async  # type: ignore[method-assign]
httpx.Client.send = _send_sync  # type: ignore[method-assign]
