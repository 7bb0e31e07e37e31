"""Figure 5: what StreamText adds to the first token and to the gaps between tokens.

The baseline reads the simulator's SSE stream directly: create without waiting,
open `urls.stream`, time each `output` event. The gateway does the same two
requests, then relays each event as a gRPC message; the difference is its cost.
"""

from __future__ import annotations

from bench.catalogue import BenchModel
from bench.jobs import StreamJob, StreamResult
from bench.lab import Lab
from bench.plan import Plan
from bench.report import Figure, Row
from bench.stats import percentile

__all__ = ["measure"]

NUMBER = 5
TITLE = "Streaming"
TARGET_ADDED_MS = 1.5


async def measure(lab: Lab, plan: Plan) -> Figure:
    model = BenchModel(
        "bench/paced",
        output_tokens=plan.stream_tokens,
        token_interval_seconds=plan.stream_token_interval,
    )
    async with lab.simulator("stream", [model]) as simulator, lab.gateway(simulator) as gateway:
        job = StreamJob(
            grpc_target=gateway.target,
            http_base=simulator.base_url,
            token=lab.token,
            model=model.name,
            runs=plan.stream_runs,
            warmup=plan.stream_warmup,
        )
        async with lab.loadgen(job) as run:
            result = await run.result(StreamResult)
    rows = []
    for label, through, direct in (
        ("time to first token", result.gateway_first_token, result.direct_first_token),
        ("gap between tokens", result.gateway_gaps, result.direct_gaps),
    ):
        for q in (50, 99):
            ms, base = percentile(through, q) * 1000, percentile(direct, q) * 1000
            tested = q == 50
            rows.append(
                Row(
                    f"{label} p{q}",
                    ms,
                    base,
                    "ms",
                    f"≤ +{TARGET_ADDED_MS:g} ms" if tested else "(informative)",
                    (ms - base <= TARGET_ADDED_MS and not result.errors) if tested else None,
                    detail=f"added {ms - base:+.2f} ms",
                )
            )
    notes = [
        f"{plan.stream_runs} streams each way after {plan.stream_warmup} warm-up; "
        f"{plan.stream_tokens} tokens {plan.stream_token_interval * 1000:g} ms apart, "
        "no predict time.",
    ]
    if result.errors:
        notes.append("Mismatches: " + "; ".join(result.errors))
    return Figure(
        number=NUMBER,
        title=TITLE,
        baseline="the simulator's SSE stream read directly (create, then GET urls.stream)",
        rows=tuple(rows),
        notes=tuple(notes),
    )
