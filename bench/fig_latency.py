"""Figure 1: latency the gateway adds to one call, against the same create sent directly.

The simulator answers at once, so what remains is the cost of the path itself:
gRPC in, the gateway's work, HTTP out and back. One call at a time, alternating
gateway and direct calls so both meet the same machine state. The minimal
forwarder is timed the same way, for the floor any Python gRPC-to-HTTP hop pays.
"""

from __future__ import annotations

from bench.catalogue import INSTANT
from bench.jobs import LatencyJob, LatencyResult
from bench.lab import GrpcServer, Lab, Simulator
from bench.plan import Plan
from bench.report import Figure, Row
from bench.stats import percentile

__all__ = ["measure"]

NUMBER = 1
TITLE = "Added latency (1 call at a time)"
# Added milliseconds allowed at each percentile.
TARGETS = {50: 1.0, 99: 2.0}


async def _timed(lab: Lab, plan: Plan, simulator: Simulator, server: GrpcServer) -> LatencyResult:
    job = LatencyJob(
        grpc_target=server.target,
        http_base=simulator.base_url,
        token=lab.token,
        model=INSTANT.name,
        calls=plan.latency_calls,
        warmup=plan.latency_warmup,
    )
    async with lab.loadgen(job) as run:
        return await run.result(LatencyResult)


def _rows(result: LatencyResult, label: str, *, judged: bool) -> list[Row]:
    """p50 and p99 beside the direct calls; only the gateway's are held to the targets."""
    rows = []
    for q, allowed in TARGETS.items():
        through = percentile(result.gateway_seconds, q) * 1000
        direct = percentile(result.direct_seconds, q) * 1000
        added = through - direct
        rows.append(
            Row(
                f"p{q}{label}",
                through,
                direct,
                "ms",
                f"≤ +{allowed:g} ms" if judged else "(the floor)",
                added <= allowed and not result.errors if judged else None,
                detail=f"added {added:+.2f} ms",
            )
        )
    return rows


async def measure(lab: Lab, plan: Plan) -> Figure:
    async with (
        lab.simulator("latency", [INSTANT]) as simulator,
        lab.gateway(simulator) as gateway,
        lab.forwarder(simulator) as forwarder,
    ):
        through_gateway = await _timed(lab, plan, simulator, gateway)
        through_forwarder = await _timed(lab, plan, simulator, forwarder)
    rows = _rows(through_gateway, "", judged=True) + _rows(
        through_forwarder, ", minimal forwarder", judged=False
    )
    notes = [
        f"{plan.latency_calls} calls each way after {plan.latency_warmup} warm-up calls, for "
        "the gateway and then the forwarder, each against its own direct calls; the "
        "simulator answers with zero predict time, one token, no pacing.",
    ]
    for name, result in (("gateway", through_gateway), ("forwarder", through_forwarder)):
        if result.errors:
            notes.append(f"Wrong answers through the {name}: " + "; ".join(result.errors))
    return Figure(
        number=NUMBER,
        title=TITLE,
        baseline="the same create (`Prefer: wait`) sent straight to the simulator with aiohttp",
        rows=tuple(rows),
        notes=tuple(notes),
    )
