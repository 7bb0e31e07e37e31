"""Figure 1: latency the gateway adds to one call, against the same create sent directly.

The simulator answers at once, so what remains is the cost of the path itself:
gRPC in, the gateway's work, HTTP out and back. One call at a time, alternating
gateway and direct calls so both meet the same machine state. The minimal
forwarder is timed the same way, for the floor any Python gRPC-to-HTTP hop pays.

What tracing costs is measured in the same run, one call at a time in rotation so drift
hits all alike: a gateway with no OTEL_* variables at all, one with them set but tracing
off (`OTEL_TRACES_EXPORTER=none`), and one tracing every call (`otlp`, sampler
`always_on`) to a receiver on loopback, all three against the same direct calls. The
receiver's span count proves the traced one exported what it was sent.
"""

from __future__ import annotations

from contextlib import AsyncExitStack
from dataclasses import dataclass

from bench.catalogue import INSTANT
from bench.jobs import LatencyJob, LatencyResult
from bench.lab import GrpcServer, Lab, Simulator
from bench.plan import Plan
from bench.report import Figure, Row
from bench.stats import percentile

__all__ = ["SPANS_PER_CALL", "TracingComparison", "compare_tracing", "measure"]

NUMBER = 1
TITLE = "Added latency (1 call at a time)"
# Added milliseconds allowed at each percentile.
TARGETS = {50: 1.0, 99: 2.0}
# Milliseconds tracing every call may add over tracing off, at p50 (issue 17).
TRACING_ALLOWED = 0.3
# Milliseconds tracing off may differ from no OTEL_* variables at p50: noise, not cost.
OFF_ALLOWED = 0.1
# A GenerateText on the instant model: the RPC's server span, its create phase, and the
# create's HTTP exchange.
SPANS_PER_CALL = 3


async def _timed(
    lab: Lab, plan: Plan, simulator: Simulator, server: GrpcServer, *more: GrpcServer
) -> LatencyResult:
    job = LatencyJob(
        grpc_target=server.target,
        http_base=simulator.base_url,
        token=lab.token,
        model=INSTANT.name,
        calls=plan.latency_calls,
        warmup=plan.latency_warmup,
        more_targets=[other.target for other in more],
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


@dataclass(frozen=True)
class TracingComparison:
    """Three gateways' samples from one rotation, and what the receiver got."""

    absent: list[float]
    off: list[float]
    on: list[float]
    direct: list[float]
    spans: int
    traced_calls: int
    errors: list[str]

    @property
    def short(self) -> bool:
        """The receiver got fewer spans than the traced calls make: some were lost."""
        return self.spans < self.traced_calls * SPANS_PER_CALL


async def compare_tracing(lab: Lab, plan: Plan, simulator: Simulator) -> TracingComparison:
    """Gateways without OTEL_*, with tracing off, and tracing on, timed in one rotation."""
    async with AsyncExitStack() as stack:
        receiver = await stack.enter_async_context(lab.otlp_receiver())
        absent = await stack.enter_async_context(lab.gateway(simulator))
        off = await stack.enter_async_context(
            lab.gateway(simulator, {**receiver.settings, "OTEL_TRACES_EXPORTER": "none"})
        )
        on = await stack.enter_async_context(
            lab.gateway(simulator, {**receiver.settings, "OTEL_TRACES_EXPORTER": "otlp"})
        )
        result = await _timed(lab, plan, simulator, absent, off, on)
    # Every gateway has stopped, flushing its spans, and then the receiver, logging its count.
    return TracingComparison(
        absent=result.gateway_seconds,
        off=result.more_seconds[0],
        on=result.more_seconds[1],
        direct=result.direct_seconds,
        spans=receiver.spans_received(),
        traced_calls=plan.latency_warmup + plan.latency_calls,
        errors=result.errors,
    )


def _tracing_rows(found: TracingComparison) -> list[Row]:
    """On against off (the cost of tracing), off against absent (none when off)."""
    cost_rows, off_rows = [], []
    # A lost span or a wrong answer fails the comparison whatever the times say.
    sound = not found.short and not found.errors
    for q in TARGETS:
        ms = {
            name: percentile(samples, q) * 1000
            for name, samples in (
                ("absent", found.absent),
                ("off", found.off),
                ("on", found.on),
                ("direct", found.direct),
            )
        }
        cost = ms["on"] - ms["off"]
        drift = ms["off"] - ms["absent"]
        judged = q == 50
        cost_rows.append(
            Row(
                f"p{q}, tracing on (baseline: off)",
                ms["on"],
                ms["off"],
                "ms",
                f"≤ +{TRACING_ALLOWED:g} ms" if judged else "(informs)",
                cost <= TRACING_ALLOWED and sound if judged else None,
                detail=f"on minus off {cost:+.2f} ms; added over direct: on "
                f"{ms['on'] - ms['direct']:+.2f}, off {ms['off'] - ms['direct']:+.2f} ms",
            )
        )
        off_rows.append(
            Row(
                f"p{q}, tracing off (baseline: no OTEL_*)",
                ms["off"],
                ms["absent"],
                "ms",
                f"≤ +{OFF_ALLOWED:g} ms" if judged else "(informs)",
                drift <= OFF_ALLOWED and sound if judged else None,
                detail=f"off minus absent {drift:+.2f} ms; added over direct: absent "
                f"{ms['absent'] - ms['direct']:+.2f} ms",
            )
        )
    return cost_rows + off_rows


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
    errors = {"gateway": through_gateway.errors, "forwarder": through_forwarder.errors}
    if lab.tracing:
        # Every gateway of such a run traces: there is no untraced one to compare with.
        notes.append("Tracing on against off: not measured in a --tracing run.")
    else:
        async with lab.simulator("tracing", [INSTANT]) as simulator:
            tracing = await compare_tracing(lab, plan, simulator)
        rows += _tracing_rows(tracing)
        errors["gateways compared for tracing"] = tracing.errors
        notes.append(
            f"Tracing: {plan.latency_calls} rounds after {plan.latency_warmup} warm-up rounds, "
            "each one direct call and one call through each of three gateways (no OTEL_* "
            "variables; OTEL_TRACES_EXPORTER=none; otlp with the always_on sampler, exporting "
            "to a receiver on loopback), in rotating order. The receiver got "
            f"{tracing.spans:,} spans for {tracing.traced_calls:,} traced calls "
            f"(at least {SPANS_PER_CALL} each expected"
            + ("; SHORT: spans were lost, so on against off fails)." if tracing.short else ").")
        )
    for name, wrong in errors.items():
        if wrong:
            notes.append(f"Wrong answers through the {name}: " + "; ".join(wrong))
    return Figure(
        number=NUMBER,
        title=TITLE,
        baseline="the same create (`Prefer: wait`) sent straight to the simulator with aiohttp",
        rows=tuple(rows),
        notes=tuple(notes),
    )
