"""The simulator in a process of its own, under uvloop, as the bench needs it.

Unlike `inference-gateway simulate`, it binds a free port and says which on its
first line of output (no port guessing, no polling for readiness), and it keeps
aiohttp's access log off: one log line per request would be simulator work charged
to whichever server is being measured.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
from collections.abc import Sequence
from pathlib import Path

import uvloop

from replicate_simulator import SimulatorConfig, start_simulator

__all__ = ["main"]


async def _serve(config: SimulatorConfig) -> None:
    running = await start_simulator(config, "127.0.0.1", 0)
    print(json.dumps({"base_url": running.base_url}), flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await running.stop()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.simulator_process", description=__doc__)
    parser.add_argument("--config", type=Path, required=True, help="simulator YAML config")
    args = parser.parse_args(argv)
    uvloop.run(_serve(SimulatorConfig.from_file(args.config)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
