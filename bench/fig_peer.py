"""Figure 7: the gateway beside LiteLLM's proxy, the gateway users would otherwise run.

One simulator, one gateway and one LiteLLM proxy (as shipped, one worker) serve the
same workloads in the same run, each beside the direct baseline: added latency at one
call, throughput at 32 and 128 calls (the forwarder as baseline) with server CPU per
call, time to first token, cold boots of 40 s and 90 s, an abandoned call, and resident
memory after 2,000 calls. LiteLLM is slow, so its phases are capped by time.

Cold boots run in real time for both servers, in the background while the rest is
measured. The simulator's time scale would be honest for the gateway (a held create,
the stream and one final GET, however long the boot) but not for LiteLLM: it polls
after fixed real sleeps (1, 3, 5, 7, 9 s) and gives up after 25 s, so at scale 60 a
90 s boot (1.5 s) would hand it a success and a request count it never has.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path

from bench.catalogue import INSTANT, BenchModel
from bench.jobs import (
    AbandonJob,
    AbandonResult,
    Api,
    LatencyJob,
    LatencyResult,
    StreamJob,
    StreamResult,
    ThroughputJob,
    ThroughputResult,
    UpstreamCall,
    UpstreamJob,
    UpstreamOutcome,
    UpstreamResult,
)
from bench.lab import Child, Lab, Simulator
from bench.plan import Plan
from bench.report import Figure, Row
from bench.stats import percentile

__all__ = ["measure"]

NUMBER = 8
TITLE = "Beside LiteLLM"
_PREDICTION_KINDS = ("create", "get", "stream", "cancel")
_CANCEL_GRACE_SECONDS = 10.0
_BOOT_MARGIN_SECONDS = 90.0


@dataclass
class _Server:
    """The gateway or LiteLLM, as the figure drives it."""

    name: str
    api: Api
    target: str
    child: Child
    calls: int = 0
    """Calls served so far, for the memory row."""


@dataclass
class _Findings:
    added_p50_ms: float = math.nan
    direct_p50_ms: float = math.nan
    ttft_p50_ms: float = math.nan
    direct_ttft_p50_ms: float = math.nan
    rps: dict[int, float] | None = None
    cpu_us: dict[int, float] | None = None
    errors: dict[int, dict[str, int]] | None = None
    canceled: float = math.nan
    cancel_detail: str = ""
    rss_mib: float = math.nan
    calls_at_rss: int = 0


def _models(plan: Plan) -> dict[str, BenchModel]:
    models = {"instant": INSTANT, "paced": BenchModel("bench/peer-paced", output_tokens=8)}
    for client in ("gateway", "litellm"):
        models[f"long-{client}"] = BenchModel(f"bench/peer-long-{client}", predict_seconds=600)
        for seconds in plan.peer_boot_seconds:
            models[f"boot{seconds:g}-{client}"] = BenchModel(f"bench/peer-boot{seconds:g}-{client}")
    return models


async def _latency(lab: Lab, plan: Plan, sim: Simulator, server: _Server, found: _Findings) -> None:
    job = LatencyJob(
        server.target,
        sim.base_url,
        lab.token,
        INSTANT.name,
        plan.peer_latency_calls,
        warmup=2,
        api=server.api,
    )
    async with lab.loadgen(job) as run:
        result = await run.result(LatencyResult)
    server.calls += len(result.gateway_seconds) + 2
    found.direct_p50_ms = percentile(result.direct_seconds, 50) * 1000
    found.added_p50_ms = percentile(result.gateway_seconds, 50) * 1000 - found.direct_p50_ms


async def _ttft(
    lab: Lab, plan: Plan, sim: Simulator, server: _Server, model: str, found: _Findings
) -> None:
    job = StreamJob(
        server.target, sim.base_url, lab.token, model, plan.peer_stream_runs, 1, api=server.api
    )
    async with lab.loadgen(job) as run:
        result = await run.result(StreamResult)
    server.calls += plan.peer_stream_runs + 1
    found.ttft_p50_ms = percentile(result.gateway_first_token, 50) * 1000
    found.direct_ttft_p50_ms = percentile(result.direct_first_token, 50) * 1000


async def _throughput(
    lab: Lab, plan: Plan, api: Api, target: str, child: Child, concurrency: int, max_calls: int = 0
) -> tuple[ThroughputResult, float]:
    """The run's result and the server's CPU seconds per completed call."""
    filling = max_calls > 0
    job = ThroughputJob(
        grpc_target=target,
        model=INSTANT.name,
        concurrency=concurrency,
        warmup_seconds=0.001 if filling else plan.peer_throughput_warmup_seconds,
        measure_seconds=plan.peer_fill_cap_seconds if filling else plan.peer_throughput_seconds,
        channels=4 if api == "grpc" else 1,
        api=api,
        max_calls=max_calls,
    )
    before = child.tree_cpu_seconds()
    async with lab.loadgen(job) as run:
        result = await run.result(ThroughputResult)
    return result, (child.tree_cpu_seconds() - before) / max(1, result.total_calls)


async def _abandon(
    lab: Lab, plan: Plan, sim: Simulator, server: _Server, model: str
) -> tuple[bool, float]:
    """Whether the simulator saw a cancel of the prediction after its caller left, and when.

    The gateway lets a held create finish (so the prediction has an id to cancel) and
    cancels then: at most the call's deadline after the create. The rest of the server's
    phases run meanwhile.
    """
    job = AbandonJob(
        server.target,
        server.api,
        model,
        plan.peer_abandon_after_seconds,
        timeout_seconds=plan.peer_abandon_deadline_seconds,
    )
    async with lab.loadgen(job) as run:
        result = await run.result(AbandonResult)
    left = time.time()
    server.calls += 1
    if not result.dropped:
        raise RuntimeError(f"{server.name}'s long call ended before it was dropped: {result}")
    deadline = time.monotonic() + plan.peer_abandon_deadline_seconds + _CANCEL_GRACE_SECONDS
    while time.monotonic() < deadline:
        cancels = await sim.control.request_times(model, "cancel")
        if cancels:
            return True, min(cancels) - left
        await asyncio.sleep(0.2)
    return False, math.nan


async def _boots(
    lab: Lab, plan: Plan, sim: Simulator, gateway: str, peer: str | None
) -> UpstreamResult:
    calls = []
    for client in ("gateway", "litellm") if peer else ("gateway",):
        for seconds in plan.peer_boot_seconds:
            model = f"bench/peer-boot{seconds:g}-{client}"
            await sim.control.cold_boot(model, seconds)
            timeout = seconds + _BOOT_MARGIN_SECONDS
            calls.append(
                UpstreamCall("gateway" if client == "gateway" else "litellm", model, timeout)
            )
    job = UpstreamJob(gateway, sim.base_url, lab.token, calls, 60, peer_base=peer or "")
    async with lab.loadgen(job) as run:
        await run.progress("issued")
        return await run.result(UpstreamResult)


async def _server_phases(
    lab: Lab, plan: Plan, sim: Simulator, server: _Server, found: _Findings
) -> None:
    await _latency(lab, plan, sim, server, found)
    abandon = asyncio.ensure_future(
        _abandon(lab, plan, sim, server, f"bench/peer-long-{server.name}")
    )
    await _ttft(lab, plan, sim, server, "bench/peer-paced", found)
    found.rps, found.cpu_us, found.errors = {}, {}, {}
    for concurrency in (32, 128):
        result, cpu = await _throughput(
            lab, plan, server.api, server.target, server.child, concurrency
        )
        server.calls += result.total_calls
        found.rps[concurrency] = result.completed / result.measure_seconds
        found.cpu_us[concurrency] = cpu * 1e6
        found.errors[concurrency] = result.errors
    if server.calls < plan.peer_calls:
        result, _ = await _throughput(
            lab, plan, server.api, server.target, server.child, 32, plan.peer_calls - server.calls
        )
        server.calls += result.total_calls
    found.calls_at_rss = server.calls
    found.rss_mib = server.child.tree_rss_bytes() / 2**20
    canceled, after = await abandon
    found.canceled = float(canceled)
    found.cancel_detail = f"canceled {after:.1f} s after its caller left" if canceled else ""


def _outcome(
    outcomes: list[UpstreamOutcome], counts: dict[str, tuple[int, int]], model: str
) -> tuple[float, float, str]:
    """(succeeded, upstream requests, how) for the boot of `model`."""
    (outcome,) = (o for o in outcomes if o.model == model)
    requests, creates = counts[model]
    how = f"{creates} prediction(s) created"
    if outcome.ok:
        how = f"answered after {outcome.seconds:.0f} s; " + how
    else:
        how = f"failed after {outcome.seconds:.0f} s ({_reason(outcome.detail)}); " + how
    return float(outcome.ok), float(requests), how


def _reason(detail: str) -> str:
    """The first line of a failure's message, without the JSON around LiteLLM's."""
    _, _, message = detail.partition('"message":"')
    return (message or detail).split("\\n")[0].split("\n")[0][:120]


async def measure(lab: Lab, plan: Plan, litellm: Path | None) -> Figure:
    models = _models(plan)
    gw, ll = _Findings(), _Findings()
    forwarder: dict[int, tuple[float, float]] = {}
    async with AsyncExitStack() as stack:
        sim = await stack.enter_async_context(lab.simulator("peer", list(models.values())))
        gateway = await stack.enter_async_context(lab.gateway(sim))
        peer = None
        if litellm is not None:
            peer = await stack.enter_async_context(lab.litellm(sim, litellm, list(models.values())))
        boots = asyncio.ensure_future(
            _boots(lab, plan, sim, gateway.target, peer.base_url if peer else None)
        )
        try:
            async with lab.forwarder(sim) as fwd:
                for concurrency in (32, 128):
                    result, cpu = await _throughput(
                        lab, plan, "grpc", fwd.target, fwd.child, concurrency
                    )
                    forwarder[concurrency] = (result.completed / result.measure_seconds, cpu * 1e6)
            await _server_phases(
                lab, plan, sim, _Server("gateway", "grpc", gateway.target, gateway.child), gw
            )
            if peer is not None:
                await _server_phases(
                    lab, plan, sim, _Server("litellm", "openai", peer.base_url, peer.child), ll
                )
            booted = await boots
        finally:
            boots.cancel()
        counts: dict[str, tuple[int, int]] = {}
        for model in models.values():
            kinds = await sim.control.request_kinds(model.name)
            counts[model.name] = (sum(kinds[k] for k in _PREDICTION_KINDS), kinds["create"])
    return _figure(plan, gw, ll if peer else None, forwarder, booted.outcomes, counts)


def _figure(
    plan: Plan,
    gw: _Findings,
    ll: _Findings | None,
    forwarder: dict[int, tuple[float, float]],
    outcomes: list[UpstreamOutcome],
    counts: dict[str, tuple[int, int]],
) -> Figure:
    def peer(value: Callable[[_Findings], float]) -> float:
        return math.nan if ll is None else value(ll)

    missing = "not run (no `--litellm`)" if ll is None else ""
    assert gw.rps is not None
    assert gw.cpu_us is not None
    ll_rps = (ll.rps if ll else None) or {}
    ll_cpu = (ll.cpu_us if ll else None) or {}
    rows = [
        Row(
            "added latency at 1 call, p50",
            gw.added_p50_ms,
            gw.direct_p50_ms,
            "ms",
            "",
            None,
            peer=peer(lambda f: f.added_p50_ms),
            peer_detail=missing or "its first poll sleeps 1 s (no `Prefer: wait`)",
        ),
    ]
    for c in (32, 128):
        rows.append(
            Row(
                f"req/s at {c} calls (direct: the forwarder)",
                gw.rps[c],
                forwarder[c][0],
                "req/s",
                "",
                None,
                peer=ll_rps.get(c, math.nan),
                peer_detail=missing or _errors(ll.errors if ll else None, c),
            )
        )
        rows.append(
            Row(
                f"server CPU per call at {c} calls",
                gw.cpu_us[c],
                forwarder[c][1],
                "us",
                "",
                None,
                peer=ll_cpu.get(c, math.nan),
                peer_detail=missing,
            )
        )
    rows.append(
        Row(
            "time to first token, p50",
            gw.ttft_p50_ms,
            gw.direct_ttft_p50_ms,
            "ms",
            "",
            None,
            peer=peer(lambda f: f.ttft_p50_ms),
            peer_detail=missing or "polls `urls.get` every 0.5 s; never reads the stream",
        )
    )
    short, long = plan.peer_boot_seconds
    watched = plan.peer_abandon_deadline_seconds + _CANCEL_GRACE_SECONDS
    gw_long = _outcome(outcomes, counts, f"bench/peer-boot{long:g}-gateway")
    ll_long = (
        _outcome(outcomes, counts, f"bench/peer-boot{long:g}-litellm")
        if ll
        else (math.nan, math.nan, missing)
    )
    rows.append(
        Row(
            f"upstream requests, {long:g} s cold boot",
            gw_long[1],
            math.nan,
            "requests",
            "",
            None,
            peer=ll_long[1],
            peer_detail=ll_long[2],
        )
    )
    for seconds in (short, long):
        gw_boot = _outcome(outcomes, counts, f"bench/peer-boot{seconds:g}-gateway")
        ll_boot = (
            _outcome(outcomes, counts, f"bench/peer-boot{seconds:g}-litellm")
            if ll
            else (math.nan, math.nan, missing)
        )
        rows.append(
            Row(
                f"{seconds:g} s cold boot succeeds",
                gw_boot[0],
                math.nan,
                "yes/no",
                "",
                None,
                detail=gw_boot[2],
                peer=ll_boot[0],
                peer_detail=ll_boot[2],
            )
        )
    rows.append(
        Row(
            "abandoned call canceled upstream",
            gw.canceled,
            math.nan,
            "yes/no",
            "",
            None,
            detail=gw.cancel_detail,
            peer=peer(lambda f: f.canceled),
            peer_detail=missing
            or (ll.cancel_detail if ll else "")
            or f"no cancel within {watched:g} s: the prediction runs on, billed",
        )
    )
    rows.append(
        Row(
            f"resident memory after {plan.peer_calls:,} calls",
            gw.rss_mib,
            math.nan,
            "MiB",
            "",
            None,
            peer=peer(lambda f: f.rss_mib),
            peer_detail=missing
            or (
                f"after {ll.calls_at_rss:,} calls (capped at {plan.peer_fill_cap_seconds:g} s)"
                if ll and ll.calls_at_rss < plan.peer_calls
                else ""
            ),
        )
    )
    notes = (
        "One simulator (real time), one gateway (`serve`, defaults) and LiteLLM 1.108.7's proxy "
        "(`litellm --num_workers 1`, as shipped: router retries on, master key set, no "
        "database), measured one after the other; the forwarder is the throughput baseline.",
        "LiteLLM's Replicate provider ignores `api_base`: `bench/litellm/redirect/"
        "sitecustomize.py` rewrites the scheme, host and port of its requests to "
        "api.replicate.com to the simulator's, in httpx's `send`; nothing else changes.",
        f"Latency: {plan.peer_latency_calls} calls each, alternating with direct creates "
        "(`Prefer: wait`); TTFT: "
        f"{plan.peer_stream_runs} streams each, beside the simulator's SSE read directly. "
        "Figures 1 and 5 measure the gateway with many more calls.",
        f"Throughput: {plan.peer_throughput_warmup_seconds:g} s warm-up + "
        f"{plan.peer_throughput_seconds:g} s per server and concurrency, one run each; CPU per "
        "call counts every call the server started, and the process tree's CPU.",
        f"Abandoned call: a {plan.peer_abandon_deadline_seconds:g} s deadline, dropped after "
        f"{plan.peer_abandon_after_seconds:g} s while the create is held; a cancel request "
        "counts if the simulator sees it within "
        f"{watched:g} s.",
        f"Cold boots of {short:g} s and {long:g} s (one prediction each, started together in "
        "the background at the figure's start, real time, a streaming model): requests "
        "counted by the simulator (creates, polls, streams, cancels).",
    )
    return Figure(
        number=NUMBER,
        title=TITLE,
        baseline="direct calls to the simulator; for throughput and CPU, the minimal forwarder",
        rows=tuple(rows),
        notes=notes,
    )


def _errors(errors: dict[int, dict[str, int]] | None, concurrency: int) -> str:
    found = (errors or {}).get(concurrency) or {}
    return "errors: " + ", ".join(f"{k}: {v}" for k, v in found.items()) if found else ""
