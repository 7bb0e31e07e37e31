"""Figure 6: from process start to a health check answering SERVING.

A replica that starts slowly scales out slowly. Both servers start from the same
interpreter; the gateway through `inference-gateway serve` (every import, the
configuration, the metrics endpoint), the baseline with only grpc and aiohttp.
"""

from __future__ import annotations

import statistics

from bench.catalogue import INSTANT
from bench.lab import Lab
from bench.plan import Plan
from bench.report import Figure, Row

__all__ = ["measure"]

NUMBER = 6
TITLE = "Start-up to SERVING"
TARGET_SECONDS = 1.0


async def measure(lab: Lab, plan: Plan) -> Figure:
    gateway: list[float] = []
    forwarder: list[float] = []
    async with lab.simulator("startup", [INSTANT]) as simulator:
        for _ in range(plan.startup_runs):
            async with lab.gateway(simulator) as server:
                gateway.append(server.startup_seconds)
            async with lab.forwarder(simulator) as server:
                forwarder.append(server.startup_seconds)
    target = f"< {TARGET_SECONDS:g} s"
    return Figure(
        number=NUMBER,
        title=TITLE,
        baseline="the minimal grpc.aio + aiohttp forwarder, started the same way",
        rows=(
            Row(
                "median",
                statistics.median(gateway),
                statistics.median(forwarder),
                "s",
                target,
                statistics.median(gateway) < TARGET_SECONDS,
            ),
            Row(
                "slowest", max(gateway), max(forwarder), "s", target, max(gateway) < TARGET_SECONDS
            ),
        ),
        notes=(
            f"{plan.startup_runs} starts of each, alternating; gateway: "
            + ", ".join(f"{s:.3f}" for s in gateway)
            + " s; forwarder: "
            + ", ".join(f"{s:.3f}" for s in forwarder)
            + " s.",
        ),
    )
