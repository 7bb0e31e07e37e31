"""Start and stop the simulator: in process for tests, or blocking for the CLI."""

from __future__ import annotations

import asyncio
import ssl
from dataclasses import dataclass

from aiohttp import web

from ._app import build_app
from ._config import SimulatorConfig
from ._state import STATE_KEY, SimulatorState

__all__ = ["RunningSimulator", "run_simulator", "start_simulator"]

# Waiters are released at shutdown, so handlers finish at once; this only bounds stragglers.
_SHUTDOWN_TIMEOUT = 1.0
# Thousands of clients may connect at once (held sync requests); a short accept queue
# would make the kernel drop their SYNs and retry a second later.
_LISTEN_BACKLOG = 8192


@dataclass
class RunningSimulator:
    """A simulator listening on a socket."""

    base_url: str
    """Scheme, host and port, without `/v1` (what `REPLICATE_BASE_URL` wants)."""
    state: SimulatorState
    loop: asyncio.AbstractEventLoop
    """The loop it runs on; call state methods that touch predictions from there."""
    _runner: web.AppRunner

    async def stop(self) -> None:
        """Cancel every prediction and timer, release waiting clients, close the socket."""
        await self._runner.cleanup()


async def start_simulator(
    config: SimulatorConfig | None = None, host: str = "127.0.0.1", port: int = 0
) -> RunningSimulator:
    """Serve a simulator on `host:port` (port 0 picks a free one) from the running loop."""
    config = config if config is not None else SimulatorConfig()
    app = build_app(config)
    runner = web.AppRunner(
        app, handler_cancellation=True, shutdown_timeout=_SHUTDOWN_TIMEOUT, access_log=None
    )
    await runner.setup()
    site = web.TCPSite(
        runner, host, port, ssl_context=_ssl_context(config), backlog=_LISTEN_BACKLOG
    )
    try:
        await site.start()
    except BaseException:
        await runner.cleanup()
        raise
    bound_port = _bound_port(runner)
    scheme = "https" if config.tls_certfile is not None else "http"
    shown_host = f"[{host}]" if ":" in host else host
    return RunningSimulator(
        base_url=f"{scheme}://{shown_host}:{bound_port}",
        state=app[STATE_KEY],
        loop=asyncio.get_running_loop(),
        _runner=runner,
    )


def run_simulator(config: SimulatorConfig, host: str, port: int) -> None:
    """Serve until interrupted (the `simulate` command), on uvloop where it is installed."""
    web.run_app(
        build_app(config),
        loop=_new_event_loop(),
        host=host,
        port=port,
        ssl_context=_ssl_context(config),
        handler_cancellation=True,
        shutdown_timeout=_SHUTDOWN_TIMEOUT,
        backlog=_LISTEN_BACKLOG,
    )


def _new_event_loop() -> asyncio.AbstractEventLoop:
    try:
        import uvloop
    except ImportError:  # not built for Windows
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


def _ssl_context(config: SimulatorConfig) -> ssl.SSLContext | None:
    if config.tls_certfile is None or config.tls_keyfile is None:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(config.tls_certfile, config.tls_keyfile)
    return context


def _bound_port(runner: web.AppRunner) -> int:
    for address in runner.addresses:
        if isinstance(address, tuple):
            return int(address[1])
    raise RuntimeError("the simulator's socket has no TCP address")
