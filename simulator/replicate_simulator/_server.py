"""Start and stop the simulator: in process for tests, or blocking for the CLI."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from aiohttp import web

from ._app import LISTEN_BACKLOG, bound_port, build_app, origin_of, ssl_context
from ._config import SimulatorConfig
from ._state import STATE_KEY, SimulatorState

__all__ = ["RunningSimulator", "run_simulator", "start_simulator"]

# Waiters are released at shutdown, so handlers finish at once; this only bounds stragglers.
_SHUTDOWN_TIMEOUT = 1.0


@dataclass
class RunningSimulator:
    """A simulator listening on a socket."""

    base_url: str
    """Scheme, host and port, without `/v1` (what `REPLICATE_BASE_URL` wants)."""
    files_url: str
    """The origin output files are served from (what `GATEWAY_OUTPUT_FILE_ORIGINS` wants)."""
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
    app = build_app(config, host=host)
    runner = web.AppRunner(
        app, handler_cancellation=True, shutdown_timeout=_SHUTDOWN_TIMEOUT, access_log=None
    )
    await runner.setup()
    site = web.TCPSite(runner, host, port, ssl_context=ssl_context(config), backlog=LISTEN_BACKLOG)
    try:
        await site.start()
    except BaseException:
        await runner.cleanup()
        raise
    state = app[STATE_KEY]
    assert state.files_base_url is not None  # set when the runner set the app up
    return RunningSimulator(
        base_url=origin_of(config, host, bound_port(runner)),
        files_url=state.files_base_url,
        state=state,
        loop=asyncio.get_running_loop(),
        _runner=runner,
    )


def run_simulator(config: SimulatorConfig, host: str, port: int) -> None:
    """Serve until interrupted (the `simulate` command), on uvloop where it is installed."""
    web.run_app(
        build_app(config, host=host),
        loop=_new_event_loop(),
        host=host,
        port=port,
        ssl_context=ssl_context(config),
        handler_cancellation=True,
        shutdown_timeout=_SHUTDOWN_TIMEOUT,
        backlog=LISTEN_BACKLOG,
    )


def _new_event_loop() -> asyncio.AbstractEventLoop:
    try:
        import uvloop
    except ImportError:  # not built for Windows
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()
