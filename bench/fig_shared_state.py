"""Figure 7: what sharing state through Redis costs, against the in-process back end.

With `GATEWAY_REDIS_URL` every call spends its rate budget in Redis (one Lua script to
take a token; a second only when the server's ratelimit headers report fewer requests left
than the bucket holds) instead of in process memory.
The same gateway is measured both ways in the same run, one call at a time for the added
latency and in a closed loop for the rate, against a Redis on loopback: what remains is
the cost of the round trips and the scripts, not of a network.
"""

from __future__ import annotations

from bench.catalogue import INSTANT
from bench.jobs import LatencyJob, LatencyResult, ThroughputJob, ThroughputResult
from bench.lab import GrpcServer, Lab, Simulator
from bench.plan import Plan
from bench.report import Figure, Row
from bench.stats import percentile

__all__ = ["measure"]

NUMBER = 7
TITLE = "Shared state in Redis"
# Added milliseconds allowed at each percentile, and the rate kept.
TARGETS = {50: 1.0, 99: 2.0}
TARGET_RATIO = 0.8


async def _latency(lab: Lab, plan: Plan, simulator: Simulator, server: GrpcServer) -> list[float]:
    job = LatencyJob(
        grpc_target=server.target,
        http_base=simulator.base_url,
        token=lab.token,
        model=INSTANT.name,
        calls=plan.latency_calls,
        warmup=plan.latency_warmup,
    )
    async with lab.loadgen(job) as run:
        result = await run.result(LatencyResult)
    if result.errors:
        raise RuntimeError("wrong answers: " + "; ".join(result.errors[:3]))
    return result.gateway_seconds


async def _rate(lab: Lab, plan: Plan, server: GrpcServer, concurrency: int) -> float:
    job = ThroughputJob(
        grpc_target=server.target,
        model=INSTANT.name,
        concurrency=concurrency,
        warmup_seconds=plan.throughput_warmup_seconds,
        measure_seconds=plan.throughput_seconds,
    )
    async with lab.loadgen(job) as run:
        result = await run.result(ThroughputResult)
    return result.completed / result.measure_seconds


async def measure(lab: Lab, plan: Plan) -> Figure:
    concurrency = plan.throughput_concurrency[-1]
    async with lab.redis() as redis_url, lab.simulator("shared-state", [INSTANT]) as simulator:
        async with lab.gateway(simulator) as local:
            local_latency = await _latency(lab, plan, simulator, local)
            local_rate = await _rate(lab, plan, local, concurrency)
        async with lab.gateway(simulator, {"GATEWAY_REDIS_URL": redis_url}) as shared:
            shared_latency = await _latency(lab, plan, simulator, shared)
            shared_rate = await _rate(lab, plan, shared, concurrency)
    rows = []
    for q, allowed in TARGETS.items():
        through_redis = percentile(shared_latency, q) * 1000
        in_process = percentile(local_latency, q) * 1000
        added = through_redis - in_process
        rows.append(
            Row(
                f"p{q} latency",
                through_redis,
                in_process,
                "ms",
                f"≤ +{allowed:g} ms",
                added <= allowed,
                detail=f"added {added:+.2f} ms",
            )
        )
    ratio = shared_rate / local_rate if local_rate else 0.0
    rows.append(
        Row(
            f"requests per second, c={concurrency}",
            shared_rate,
            local_rate,
            "req/s",
            f"≥ {TARGET_RATIO:g}x in process",
            ratio >= TARGET_RATIO,
            detail=f"{ratio:.2f}x",
        )
    )
    return Figure(
        number=NUMBER,
        title=TITLE,
        baseline="the same gateway with its state in process (no GATEWAY_REDIS_URL)",
        rows=tuple(rows),
        notes=(
            f"{plan.latency_calls} single calls after {plan.latency_warmup} warm-up calls, then "
            f"{plan.throughput_seconds:g} s at {concurrency} concurrent calls, each way; "
            "redis-server on loopback, no persistence; instant predictions.",
        ),
    )
