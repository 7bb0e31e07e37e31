"""Figure 4: thousands of long predictions held in flight at once.

Behind `Prefer: wait`, the real load on a replica is not requests per second but
calls waiting: each holds a gRPC call and an upstream connection for as long as the
model runs. The simulator holds every prediction for `hold_seconds`. Calls start at
a steady rate, all within the first third of the hold; once the simulator has every
create, the orchestrator reads the server's resident memory and times health checks
on a connection of their own. Then the same number start at once (a burst), which
tests the gRPC server's queue of calls not yet handed to the application. The
forwarder, held the same ways, is the baseline.
"""

from __future__ import annotations

import asyncio
import contextlib
import resource
import time
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from bench.catalogue import INSTANT, BenchModel
from bench.jobs import HoldJob, HoldResult, LatencyJob, LatencyResult
from bench.lab import GrpcServer, Lab, Simulator
from bench.plan import Plan
from bench.report import Figure, Row
from bench.stats import percentile

__all__ = ["measure"]

NUMBER = 4
TITLE = "Calls held in flight"
TARGET_KB_PER_CALL = 35.0
TARGET_HEALTH_P99_MS = 50.0
HEALTH_INTERVAL_SECONDS = 0.02
HEALTH_TIMEOUT_SECONDS = 5.0
_WARMUP_CALLS = 50
# Room each process needs beyond one descriptor per held connection.
_SPARE_DESCRIPTORS = 1000

Start = Callable[[Simulator], AbstractAsyncContextManager[GrpcServer]]


@dataclass(frozen=True)
class _Session:
    """One server holding `calls` calls: paced first, then (optionally) as a burst."""

    paced: HoldResult
    all_in_flight: bool
    held: int
    """Calls the simulator was holding when the server's memory was read."""
    ramp_seconds: float
    """From the first create reaching the simulator to the last."""
    kb_per_call: float
    peak_kb_per_call: float
    health_ms: list[float]
    idle_health_ms: list[float]
    burst: HoldResult | None


def _p(samples: list[float], q: float) -> float:
    """The percentile, or NaN (shown as n/a) when nothing was measured."""
    return percentile(samples, q) if samples else float("nan")


async def _health_samples(target: str, seconds: float) -> list[float]:
    """Times Check calls on a channel of their own, one every HEALTH_INTERVAL_SECONDS.

    A check that fails (it timed out, most likely) counts with the time it took: an
    overloaded server's health check is a result, not a crash of the bench.
    """
    samples: list[float] = []
    async with grpc.aio.insecure_channel(target) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        request = health_pb2.HealthCheckRequest(service="")
        end = time.perf_counter() + seconds
        while time.perf_counter() < end:
            started = time.perf_counter()
            with contextlib.suppress(grpc.aio.AioRpcError):
                await stub.Check(request, timeout=HEALTH_TIMEOUT_SECONDS)
            samples.append((time.perf_counter() - started) * 1000)
            await asyncio.sleep(HEALTH_INTERVAL_SECONDS)
    return samples


async def _warm_up(lab: Lab, simulator: Simulator, server: GrpcServer) -> None:
    """A few calls, so imports, caches and pools exist before the idle memory is read."""
    job = LatencyJob(server.target, simulator.base_url, lab.token, INSTANT.name, _WARMUP_CALLS, 0)
    async with lab.loadgen(job) as run:
        await run.result(LatencyResult)


async def _arrivals(simulator: Simulator, model: str, calls: int, hold: float) -> list[float]:
    """Creates the simulator has received: all `calls`, or those in by two thirds of the hold.

    Calls start over the first third; by two thirds, none has finished yet, so what has
    arrived is still held. Asked 60 times per hold at most: each answer lists every
    create, which costs the simulator more the more there are.
    """
    give_up = time.monotonic() + hold * 2 / 3
    while True:
        arrivals = await simulator.control.request_times(model, "create")
        if len(arrivals) >= calls or time.monotonic() > give_up:
            return arrivals
        await asyncio.sleep(hold / 60)


async def _session(
    lab: Lab, plan: Plan, start: Start, name: str, calls: int, burst: bool
) -> _Session:
    model = BenchModel("bench/hold", predict_seconds=plan.hold_seconds)
    timeout = plan.hold_seconds * 3 + 60
    async with (
        lab.simulator(f"hold-{name}-{calls}", [INSTANT, model]) as simulator,
        start(simulator) as server,
    ):
        await _warm_up(lab, simulator, server)
        idle_health = await _health_samples(server.target, plan.health_window_seconds / 2)
        idle_rss = server.child.rss_bytes()
        rate = calls / (plan.hold_seconds / 3)
        async with lab.loadgen(HoldJob(server.target, model.name, calls, timeout, rate)) as run:
            await run.progress("issued")
            arrivals = await _arrivals(simulator, model.name, calls, plan.hold_seconds)
            held_rss = server.child.rss_bytes()
            # Creates still held now (each is held hold_seconds from its arrival).
            held = sum(1 for at in arrivals if at > time.time() - plan.hold_seconds)
            ramp = max(arrivals) - min(arrivals) if arrivals else float("inf")
            all_in = len(arrivals) == calls and ramp < plan.hold_seconds
            health = await _health_samples(server.target, plan.health_window_seconds)
            paced = await run.result(HoldResult)
        peak_rss = server.child.peak_rss_bytes()
        bursting = None
        if burst:
            async with lab.loadgen(HoldJob(server.target, model.name, calls, timeout)) as run:
                await run.progress("issued")
                bursting = await run.result(HoldResult)
    return _Session(
        paced=paced,
        all_in_flight=all_in,
        held=held,
        ramp_seconds=ramp,
        kb_per_call=(held_rss - idle_rss) / max(1, held) / 1024,
        peak_kb_per_call=(peak_rss - idle_rss) / calls / 1024,
        health_ms=health,
        idle_health_ms=idle_health,
        burst=bursting,
    )


def _rows(calls: int, stretch: str, gateway: _Session, forwarder: _Session) -> list[Row]:
    health = _p(gateway.health_ms, 99)
    rows = [
        Row(
            f"{calls:,} held{stretch}: succeeded",
            gateway.paced.succeeded,
            forwarder.paced.succeeded,
            "calls",
            f"all {calls:,}, at once",
            gateway.paced.succeeded == calls and gateway.all_in_flight,
        ),
        Row(
            f"{calls:,} held{stretch}: memory per call",
            gateway.kb_per_call,
            forwarder.kb_per_call,
            "KB",
            f"≤ {TARGET_KB_PER_CALL:g} KB",
            gateway.kb_per_call <= TARGET_KB_PER_CALL,
        ),
        Row(
            f"{calls:,} held{stretch}: health check p99",
            health,
            _p(forwarder.health_ms, 99),
            "ms",
            f"≤ {TARGET_HEALTH_P99_MS:g} ms",
            health <= TARGET_HEALTH_P99_MS,
        ),
    ]
    if gateway.burst is not None and forwarder.burst is not None:
        rows.append(
            Row(
                f"{calls:,} started at once: succeeded",
                gateway.burst.succeeded,
                forwarder.burst.succeeded,
                "calls",
                "(informative)",
                None,
            )
        )
    return rows


def _describe(name: str, calls: int, session: _Session) -> str:
    paced = session.paced
    text = (
        f"{name}, {calls:,} calls: all in flight at once: "
        f"{'yes' if session.all_in_flight else 'NO'} (creates reached the simulator over "
        f"{session.ramp_seconds:.1f} s; {session.held:,} held when memory was read); peak "
        f"memory {session.peak_kb_per_call:.1f} KB/call; "
        f"health p99 idle {_p(session.idle_health_ms, 99):.1f} ms, held "
        f"{_p(session.health_ms, 99):.1f} ms ({len(session.health_ms)} checks); call "
        f"latency p50 {_p(paced.latencies, 50):.2f} s, max {_p(paced.latencies, 100):.2f} s"
    )
    if paced.errors:
        text += f"; errors {paced.errors}"
    if session.burst is not None and session.burst.errors:
        text += f"; started at once: errors {session.burst.errors}"
    return text + "."


async def measure(lab: Lab, plan: Plan) -> Figure:
    limit = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    rows: list[Row] = []
    notes = [
        f"Each prediction is held {plan.hold_seconds:g} s by the simulator; calls start "
        f"evenly over the first {plan.hold_seconds / 3:g} s. Memory is resident memory with "
        "every call held, minus resident memory after a few warm-up calls, per call held. "
        f"Health checks are timed every {HEALTH_INTERVAL_SECONDS * 1000:g} ms on a separate "
        "connection once the calls are in (or the first is done).",
    ]
    for index, calls in enumerate(plan.hold_calls):
        if calls + _SPARE_DESCRIPTORS > limit:
            notes.append(f"{calls:,} calls skipped: the open-file limit is {limit}.")
            continue
        burst = index == 0
        gateway = await _session(lab, plan, lab.gateway, "gateway", calls, burst)
        forwarder = await _session(lab, plan, lab.forwarder, "forwarder", calls, burst)
        rows += _rows(calls, " (stretch)" if index else "", gateway, forwarder)
        notes += [_describe("gateway", calls, gateway), _describe("forwarder", calls, forwarder)]
    return Figure(
        number=NUMBER,
        title=TITLE,
        baseline="the minimal grpc.aio + aiohttp forwarder, held the same way",
        rows=tuple(rows),
        notes=tuple(notes),
    )
