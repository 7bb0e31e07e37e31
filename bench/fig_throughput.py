"""Figure 2: requests per second the gateway sustains, against a minimal forwarder.

Each measurement gets a fresh simulator and a fresh server, so no run inherits
another's heap or connections; the same load generator drives both servers, in
alternating order from round to round. The simulator answers at once, so the
server under test is what limits the rate.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager

from bench.catalogue import INSTANT
from bench.jobs import ThroughputJob, ThroughputResult
from bench.lab import GrpcServer, Lab, Simulator
from bench.plan import Plan
from bench.report import Figure, Row
from bench.stats import percentile

__all__ = ["measure"]

NUMBER = 2
TITLE = "Throughput"
TARGET_RATIO = 0.7
TARGET_FLATNESS = 0.9

Start = Callable[[Simulator], AbstractAsyncContextManager[GrpcServer]]


class _Run:
    """One server at one concurrency: its rate and its CPU cost per call."""

    def __init__(self, result: ThroughputResult, server_cpu_seconds: float) -> None:
        self.result = result
        self.rps = result.completed / result.measure_seconds
        self.cpu_us_per_call = server_cpu_seconds / max(1, result.total_calls) * 1e6


async def _one_run(lab: Lab, plan: Plan, start: Start, name: str, concurrency: int) -> _Run:
    async with (
        lab.simulator(f"throughput-{name}-{concurrency}", [INSTANT]) as simulator,
        start(simulator) as server,
    ):
        job = ThroughputJob(
            grpc_target=server.target,
            model=INSTANT.name,
            concurrency=concurrency,
            warmup_seconds=plan.throughput_warmup_seconds,
            measure_seconds=plan.throughput_seconds,
        )
        cpu_before = server.child.cpu_seconds()
        async with lab.loadgen(job) as run:
            result = await run.result(ThroughputResult)
        cpu = server.child.cpu_seconds() - cpu_before
    return _Run(result, cpu)


async def _rounds(lab: Lab, plan: Plan) -> dict[tuple[str, int], list[_Run]]:
    servers: list[tuple[str, Start]] = [("gateway", lab.gateway), ("forwarder", lab.forwarder)]
    runs: dict[tuple[str, int], list[_Run]] = defaultdict(list)
    for round_number in range(plan.throughput_rounds):
        order = servers if round_number % 2 == 0 else servers[::-1]
        for concurrency in plan.throughput_concurrency:
            for name, start in order:
                runs[name, concurrency].append(await _one_run(lab, plan, start, name, concurrency))
    return runs


def _median(runs: list[_Run], value: Callable[[_Run], float]) -> float:
    """Over rounds: one round slowed by a noisy neighbour should not move the figure."""
    return statistics.median(value(run) for run in runs)


async def measure(lab: Lab, plan: Plan) -> Figure:
    runs = await _rounds(lab, plan)
    low, high = plan.throughput_concurrency
    rps = {key: _median(found, lambda run: run.rps) for key, found in runs.items()}
    rows = [
        Row(
            f"c={c} req/s",
            rps["gateway", c],
            rps["forwarder", c],
            "req/s",
            f"≥ {TARGET_RATIO:g}x baseline",
            rps["gateway", c] >= TARGET_RATIO * rps["forwarder", c]
            and not any(run.result.errors for run in runs["gateway", c]),
        )
        for c in (low, high)
    ]
    gateway_flat = rps["gateway", high] / rps["gateway", low]
    forwarder_flat = rps["forwarder", high] / rps["forwarder", low]
    rows.append(
        Row(
            f"c={high} ÷ c={low}",
            gateway_flat,
            forwarder_flat,
            "x",
            f"≥ {TARGET_FLATNESS:g} (≤ 10 % lower)",
            gateway_flat >= TARGET_FLATNESS,
        )
    )
    notes = [
        f"{plan.throughput_rounds} round(s) of {plan.throughput_warmup_seconds:g} s warm-up + "
        f"{plan.throughput_seconds:g} s measured per server and concurrency, each on a fresh "
        "simulator and server; req/s is the median over rounds.",
    ]
    for (name, c), found in sorted(runs.items()):
        latencies = [x for run in found for x in run.result.latencies]
        errors = {k: v for run in found for k, v in run.result.errors.items()}
        notes.append(
            f"{name} c={c}: server CPU {_median(found, lambda run: run.cpu_us_per_call):,.0f} "
            f"µs/call; latency p50 {percentile(latencies, 50) * 1000:.1f} ms, "
            f"p99 {percentile(latencies, 99) * 1000:.1f} ms"
            + (f"; errors {errors}" if errors else "")
            + "; per round: "
            + ", ".join(f"{run.rps:,.0f}" for run in found)
            + " req/s."
        )
    return Figure(
        number=NUMBER,
        title=TITLE,
        baseline="a minimal grpc.aio server forwarding each call as one aiohttp POST, "
        "under uvloop, measured in turn with the same client",
        rows=tuple(rows),
        notes=tuple(notes),
    )
