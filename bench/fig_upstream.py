"""Figure 3: HTTP requests each prediction costs upstream, counted by the simulator.

Replicate's rate limits (600 creates, 3,000 other requests a minute per account)
make requests per prediction the gateway's most expensive habit. The same
predictions run through the gateway on a streaming model and on one without a
stream, and through the official client's `run()` (the baseline), all at once, so
the long ones share their wait. Each client gets its own models, so the simulator's
log counts each separately.
"""

from __future__ import annotations

import asyncio
import math
from dataclasses import dataclass

from bench.catalogue import BenchModel
from bench.jobs import UpstreamCall, UpstreamJob, UpstreamOutcome, UpstreamResult
from bench.lab import Lab
from bench.plan import Plan
from bench.report import Figure, Row

__all__ = ["measure"]

NUMBER = 3
TITLE = "Upstream requests per prediction"
STREAM_LIMIT = 3
POLL_EVERY_SECONDS = 5.0
# The requests that belong to one prediction (schema look-ups are per model and cached).
_PREDICTION_KINDS = ("create", "get", "stream", "cancel")
_CALL_MARGIN_SECONDS = 120.0


@dataclass(frozen=True)
class _Case:
    label: str
    seconds: float
    cold_boot: bool

    def model(self, client: str) -> BenchModel:
        name = f"bench/upstream-{client}-{self.label}"
        if self.cold_boot:  # the time goes in `starting`; the run itself is instant
            return BenchModel(name, streams=client == "stream")
        return BenchModel(name, streams=client == "stream", predict_seconds=self.seconds)


_CLIENTS = ("stream", "poll", "official")


def _cases(plan: Plan) -> tuple[_Case, ...]:
    within, cold, long = plan.upstream_seconds
    return (_Case("within", within, False), _Case("cold", cold, True), _Case("long", long, False))


def _poll_limit(seconds: float, wait: int) -> int:
    """The create, then at most one request per 5 s past the sync wait."""
    return 1 + math.ceil(max(0.0, seconds - wait) / POLL_EVERY_SECONDS)


async def measure(lab: Lab, plan: Plan, issued: asyncio.Event) -> Figure:
    """Sets `issued` once every prediction has been sent, so other figures may start."""
    cases = _cases(plan)
    models = [case.model(client) for case in cases for client in _CLIENTS]
    wait = plan.sync_wait_seconds
    async with (
        lab.simulator("upstream", models) as simulator,
        lab.gateway(simulator, {"GATEWAY_MAX_WAIT": str(wait)}) as gateway,
    ):
        for case in cases:
            if case.cold_boot:
                for client in _CLIENTS:
                    await simulator.control.cold_boot(case.model(client).name, case.seconds)
        calls = [
            UpstreamCall(
                client="official" if client == "official" else "gateway",
                model=case.model(client).name,
                timeout_seconds=case.seconds + wait + _CALL_MARGIN_SECONDS,
            )
            for case in cases
            for client in _CLIENTS
        ]
        job = UpstreamJob(gateway.target, simulator.base_url, lab.token, calls, wait)
        async with lab.loadgen(job) as run:
            await run.progress("issued")
            issued.set()
            result = await run.result(UpstreamResult)
        counts = {m.name: await simulator.control.request_kinds(m.name) for m in models}
    outcomes = {outcome.model: outcome for outcome in result.outcomes}
    rows: list[Row] = []
    notes = [
        f"Sync wait {wait} s (`Prefer: wait`); the official client (replicate "
        "`async_run`, default 0.5 s polling) is the baseline for both gateway rows.",
    ]
    for case in cases:
        official = case.model("official").name
        baseline = _prediction_requests(counts[official])
        for client, kind in (("stream", "streaming model"), ("poll", "model without a stream")):
            name = case.model(client).name
            measured = _prediction_requests(counts[name])
            if case.seconds <= wait:
                limit, target = 1, "= 1 (within the sync wait)"
            elif client == "stream":
                limit, target = STREAM_LIMIT, f"≤ {STREAM_LIMIT}"
            else:
                limit = _poll_limit(case.seconds, wait)
                target = f"≤ {limit} (1 per {POLL_EVERY_SECONDS:g} s past the wait)"
            ok = outcomes[name].ok and outcomes[official].ok
            rows.append(
                Row(
                    f"{case.seconds:g} s{' cold boot' if case.cold_boot else ''}, {kind}",
                    measured,
                    baseline,
                    "requests",
                    target,
                    ok and measured <= limit,
                )
            )
            notes.append(_describe(name, counts[name], outcomes[name]))
        notes.append(_describe(official, counts[official], outcomes[official]))
    return Figure(
        number=NUMBER,
        title=TITLE,
        baseline="the official Python client's `run()` on the same prediction",
        rows=tuple(rows),
        notes=tuple(notes),
    )


def _prediction_requests(kinds: dict[str, int]) -> int:
    return sum(kinds.get(kind, 0) for kind in _PREDICTION_KINDS)


def _describe(model: str, kinds: dict[str, int], outcome: UpstreamOutcome) -> str:
    seen = ", ".join(f"{kind} {count}" for kind, count in sorted(kinds.items()))
    if not outcome.ok:
        return f"`{model}` FAILED ({outcome.detail}); requests: {seen}."
    boot = ", reported as a cold boot" if outcome.cold_boot else ""
    return f"`{model}`: {outcome.seconds:.1f} s{boot}; requests: {seen}."
