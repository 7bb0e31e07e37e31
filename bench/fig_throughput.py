"""Figure 2: requests per second the gateway sustains, against a minimal forwarder.

Each measurement gets a fresh simulator and a fresh server, so no run inherits
another's heap or connections; the same load generator drives both servers, in
alternating order from round to round. The simulator answers at once, so the
server under test is what limits the rate.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager, AsyncExitStack
from dataclasses import dataclass
from functools import partial

from bench.catalogue import INSTANT
from bench.jobs import ThroughputJob, ThroughputResult
from bench.lab import GrpcServer, Lab, LabError, Simulator
from bench.plan import Plan
from bench.report import Figure, Row
from bench.stats import percentile

__all__ = ["Contender", "Run", "Start", "measure", "measure_runs", "median"]

NUMBER = 2
TITLE = "Throughput"
TARGET_RATIO = 0.75
TARGET_FLATNESS = 0.9

Start = Callable[[Simulator], AbstractAsyncContextManager[GrpcServer]]
_CONNECTIONS = 8
"""Client connections for the production-like runs: the kernel spreads connections, not
calls, over processes sharing a port, so one connection would reach one process."""


@dataclass(frozen=True)
class Contender:
    """A server measured in the figure, and how the load generator reaches it."""

    name: str
    start: Start
    channels: int = 1
    caller_token: str = ""


class Run:
    """One server at one concurrency: its rate and its CPU cost per call."""

    def __init__(self, result: ThroughputResult, server_cpu_seconds: float) -> None:
        self.result = result
        self.rps = result.completed / result.measure_seconds
        self.cpu_us_per_call = server_cpu_seconds / max(1, result.total_calls) * 1e6


async def _one_run(lab: Lab, plan: Plan, contender: Contender, concurrency: int) -> Run:
    stem = f"throughput-{len(contender.name)}-{concurrency}"
    async with (
        lab.simulator(stem, [INSTANT]) as simulator,
        contender.start(simulator) as server,
    ):
        job = ThroughputJob(
            grpc_target=server.target,
            model=INSTANT.name,
            concurrency=concurrency,
            warmup_seconds=plan.throughput_warmup_seconds,
            measure_seconds=plan.throughput_seconds,
            channels=contender.channels,
            caller_token=contender.caller_token,
        )
        cpu_before = server.cpu_seconds()
        async with lab.loadgen(job) as run:
            result = await run.result(ThroughputResult)
        cpu = server.cpu_seconds() - cpu_before
    return Run(result, cpu)


async def measure_runs(
    lab: Lab, plan: Plan, contenders: Sequence[Contender], concurrencies: Sequence[int]
) -> dict[tuple[str, int], list[Run]]:
    """Every server at every concurrency, `plan.throughput_rounds` times, in alternating order."""
    runs: dict[tuple[str, int], list[Run]] = defaultdict(list)
    for round_number in range(plan.throughput_rounds):
        order = contenders if round_number % 2 == 0 else contenders[::-1]
        for concurrency in concurrencies:
            for contender in order:
                run = await _one_run(lab, plan, contender, concurrency)
                runs[contender.name, concurrency].append(run)
    return runs


def median(runs: list[Run], value: Callable[[Run], float]) -> float:
    """Over rounds: one round slowed by a noisy neighbour should not move the figure."""
    return statistics.median(value(run) for run in runs)


async def measure(lab: Lab, plan: Plan) -> Figure:
    low, high = plan.throughput_concurrency
    contenders = [Contender("gateway", lab.gateway), Contender("forwarder", lab.forwarder)]
    async with AsyncExitStack() as stack:
        missing = ""
        try:
            production = await stack.enter_async_context(lab.production_like())
        except LabError as exc:
            missing = f"Production-like runs not measured: {exc}"
        else:
            contenders += [
                Contender(
                    _production_name(count),
                    partial(lab.gateways, count=count, settings=production.settings),
                    channels=_CONNECTIONS,
                    caller_token=production.caller_token,
                )
                for count in (1, 2)
            ]
        runs = await measure_runs(lab, plan, contenders, (low, high))
    rps = {key: median(found, lambda run: run.rps) for key, found in runs.items()}
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
    if not missing:
        rows += _production_rows(rps, (low, high))
    notes = [
        f"{plan.throughput_rounds} round(s) of {plan.throughput_warmup_seconds:g} s warm-up + "
        f"{plan.throughput_seconds:g} s measured per server and concurrency, each on a fresh "
        "simulator and server; req/s is the median over rounds.",
        missing
        or "Production-like: shared state in Redis (a redis-server on loopback), a `callers:` "
        "file (every call authenticated), tracing on (OTLP/gRPC to a loopback receiver); "
        f"{_CONNECTIONS} client connections. Two processes share the port with "
        "`GATEWAY_REUSE_PORT`, the same Redis and operations key; the load generator and "
        "the simulator share the same two cores.",
    ]
    for (name, c), found in sorted(runs.items()):
        latencies = [x for run in found for x in run.result.latencies]
        errors = {k: v for run in found for k, v in run.result.errors.items()}
        notes.append(
            f"{name} c={c}: server CPU {median(found, lambda run: run.cpu_us_per_call):,.0f} "
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


def _production_name(processes: int) -> str:
    return f"production-like, {processes} process{'es' if processes > 1 else ''}"


def _production_rows(rps: dict[tuple[str, int], float], concurrencies: Sequence[int]) -> list[Row]:
    """The production-like gateway against the forwarder, and 2 processes against 1."""
    one, two = _production_name(1), _production_name(2)
    rows = [
        Row(f"c={c} req/s, production-like", rps[one, c], rps["forwarder", c], "req/s", "", None)
        for c in concurrencies
    ]
    rows += [
        Row(
            f"c={c} req/s, 2 processes vs 1 (production-like)",
            rps[two, c],
            rps[one, c],
            "req/s",
            "",
            None,
        )
        for c in concurrencies
    ]
    return rows
