"""Figure 9: memory and other callers' latency while each bounded input is driven past its bound.

The gateway bounds what hostile or careless callers and upstreams could make it hold:
the schema cache (GATEWAY_SCHEMA_CACHE_SIZE, ever new model ids), the model id's length
(256 characters), include_data bytes (GATEWAY_OUTPUT_BYTES_BUDGET) and an SSE line that
never ends (MAX_EVENT_BYTES). One gateway serves a steady background of GenerateText
calls (a load generator process) through a quiet phase and then one phase per input; the
background's p50/p99 in each phase are compared with the quiet phase's, and the gateway's
resident memory is read before and after each. Where the gateway or the simulator counts
what was held (output bytes held, bytes of the endless line written), the figure says so.
"""

from __future__ import annotations

import asyncio
import re
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass

import aiohttp
import grpc
from aiohttp import web

from bench.catalogue import INSTANT, BenchModel
from bench.jobs import ThroughputJob, ThroughputResult
from bench.lab import GrpcServer, Lab, LabError, Simulator
from bench.plan import Plan
from bench.report import Figure, Row
from bench.stats import percentile
from inference_gateway.replicate._sse import MAX_EVENT_BYTES
from inference_gateway_protos.inference.gateway.v1 import gateway_pb2 as pb
from inference_gateway_protos.inference.gateway.v1 import gateway_pb2_grpc as pb_grpc

__all__ = ["measure"]

NUMBER = 9
TITLE = "Resource bounds under hostile inputs"
IMAGE = BenchModel("bench/large-files", kind="image", streams=False)
STREAMER = BenchModel("bench/endless-line", output_tokens=4)
LONG_ID_CHARS = 64 * 1024
"""Far past the 256-character bound, well within the 8 MiB request limit."""
_MIB = 1 << 20
_CALL_TIMEOUT = 30.0
_SAMPLE_SECONDS = 0.02
_HELD = "inference_gateway_output_bytes_held"
_SCHEMAS = "inference_gateway_schema_cache_entries"
_METRICS_PORT = re.compile(r"\(metrics on (\d+)\)")

Call = Callable[["pb_grpc.InferenceGatewayAsyncStub", int], Awaitable[object]]


@dataclass
class Phase:
    name: str
    latencies: list[float]
    rss_before: int
    rss_after: int
    outcomes: Counter[str]
    calls: int
    notes: str = ""


@asynccontextmanager
async def _file_host(size: int) -> AsyncIterator[str]:
    """Serves `size` bytes at every output file URL: the simulator's own files are tiny."""
    body = bytes(size)

    async def serve(request: web.Request) -> web.Response:
        return web.Response(body=body, content_type="image/png")

    app = web.Application()
    app.router.add_get("/files/{id}/{name}", serve)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        port = runner.addresses[0][1]
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


async def _drive(target: str, concurrency: int, call: Call, stop: asyncio.Event) -> Counter[str]:
    """`concurrency` callers in a closed loop until `stop`; how each call ended, by code."""
    outcomes: Counter[str] = Counter()
    issued = 0
    # Raised as the README asks of include_data callers: gRPC's 4 MiB default would refuse
    # the replies client-side, as RESOURCE_EXHAUSTED too.
    options = [("grpc.max_receive_message_length", -1)]
    async with grpc.aio.insecure_channel(target, options=options) as channel:
        stub = pb_grpc.InferenceGatewayStub(channel)

        async def caller() -> None:
            nonlocal issued
            while not stop.is_set():
                index, issued = issued, issued + 1
                try:
                    await call(stub, index)
                except grpc.aio.AioRpcError as exc:
                    outcomes[exc.code().name] += 1
                else:
                    outcomes["OK"] += 1

        await asyncio.gather(*(caller() for _ in range(concurrency)))
    return outcomes


async def _phase(
    lab: Lab,
    plan: Plan,
    server: GrpcServer,
    name: str,
    call: Call | None,
) -> Phase:
    """The background's latencies while `call` is driven by `plan.resource_hostile` callers."""
    job = ThroughputJob(
        grpc_target=server.target,
        model=INSTANT.name,
        concurrency=plan.resource_background,
        warmup_seconds=min(0.5, plan.resource_phase_seconds),
        measure_seconds=plan.resource_phase_seconds,
    )
    rss_before = server.child.rss_bytes()
    stop = asyncio.Event()
    driving = (
        asyncio.ensure_future(_drive(server.target, plan.resource_hostile, call, stop))
        if call is not None
        else None
    )
    try:
        async with lab.loadgen(job) as run:
            background = await run.result(ThroughputResult)
    finally:
        stop.set()
        outcomes = await driving if driving is not None else Counter[str]()
    errors = "; ".join(f"{code} {n}" for code, n in sorted(background.errors.items()))
    return Phase(
        name,
        background.latencies,
        rss_before,
        server.child.rss_bytes(),
        outcomes,
        sum(outcomes.values()),
        f"background errors: {errors}" if errors else "",
    )


async def _metrics_port(server: GrpcServer) -> int:
    found = _METRICS_PORT.search(server.child.log.read_text(errors="replace"))
    if found is None:
        raise server.child.failure("never logged its metrics port")
    return int(found.group(1))


async def _gauge(session: aiohttp.ClientSession, url: str, name: str) -> float:
    """The gauge `name` as the gateway's /metrics shows it now."""
    async with session.get(url) as response:
        found = re.search(rf"^{name} (\S+)$", await response.text(), re.MULTILINE)
    if found is None:
        raise LabError(f"{url} shows no {name}")
    return float(found.group(1))


async def _peak(url: str, name: str, stop: asyncio.Event) -> float:
    """The most the gauge `name` showed, read every few milliseconds until `stop`."""
    peak = 0.0
    async with aiohttp.ClientSession() as session:
        while not stop.is_set():
            peak = max(peak, await _gauge(session, url, name))
            with suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), _SAMPLE_SECONDS)
    return peak


def _distinct_ids(plan: Plan) -> Call:
    def call(stub: pb_grpc.InferenceGatewayAsyncStub, index: int) -> Awaitable[object]:
        # Unknown models: each id is a schema look-up remembered (as absent) in the cache.
        model = f"bench-unknown/model-{index % plan.resource_models}"
        request = pb.GenerateTextRequest(model=model, prompt="x")
        return stub.GenerateText(request, timeout=_CALL_TIMEOUT)

    return call


def _long_ids(stub: pb_grpc.InferenceGatewayAsyncStub, index: int) -> Awaitable[object]:
    model = f"bench/{index:08d}" + "x" * LONG_ID_CHARS
    request = pb.GenerateTextRequest(model=model, prompt="x")
    return stub.GenerateText(request, timeout=_CALL_TIMEOUT)


def _large_files(stub: pb_grpc.InferenceGatewayAsyncStub, index: int) -> Awaitable[object]:
    request = pb.GenerateImageRequest(model=IMAGE.name, prompt="x", include_data=True)
    return stub.GenerateImage(request, timeout=_CALL_TIMEOUT)


async def _endless_line(stub: pb_grpc.InferenceGatewayAsyncStub, index: int) -> object:
    request = pb.GenerateTextRequest(model=STREAMER.name, prompt="x")
    return [message async for message in stub.StreamText(request, timeout=_CALL_TIMEOUT)]


def _phase_rows(phase: Phase, quiet: Phase) -> list[Row]:
    rows = []
    for q in (50, 99):
        rows.append(
            Row(
                f"{phase.name}: background p{q}",
                percentile(phase.latencies, q) * 1000,
                percentile(quiet.latencies, q) * 1000,
                "ms",
                "(informs)",
                None,
                detail=f"{len(phase.latencies)} background calls",
            )
        )
    rows.append(
        Row(
            f"{phase.name}: gateway RSS after",
            phase.rss_after / _MIB,
            phase.rss_before / _MIB,
            "MiB",
            "(informs)",
            None,
            detail=f"{(phase.rss_after - phase.rss_before) / _MIB:+.1f} MiB over the phase; "
            + ", ".join(f"{code} {n}" for code, n in sorted(phase.outcomes.items())),
        )
    )
    return rows


async def measure(lab: Lab, plan: Plan) -> Figure:
    settings = {
        "GATEWAY_SCHEMA_CACHE_SIZE": str(plan.resource_cache_size),
        "GATEWAY_OUTPUT_BYTES_BUDGET": str(plan.resource_output_budget),
    }
    async with (
        _file_host(plan.resource_file_bytes) as files,
        lab.simulator("resources", [INSTANT, IMAGE, STREAMER]) as simulator,
        lab.gateway(simulator, {**settings, "GATEWAY_OUTPUT_FILE_ORIGINS": files}) as server,
    ):
        return await _measure(lab, plan, simulator, server, files)


async def _measure(
    lab: Lab, plan: Plan, simulator: Simulator, server: GrpcServer, files: str
) -> Figure:
    await simulator.control.patch_behaviour(IMAGE.name, {"output_url_base": files})
    metrics = f"http://127.0.0.1:{await _metrics_port(server)}/metrics"
    quiet = await _phase(lab, plan, server, "quiet", None)
    phases = [
        await _phase(
            lab, plan, server, f"{plan.resource_models:,} distinct model ids", _distinct_ids(plan)
        )
    ]
    async with aiohttp.ClientSession() as session:
        schemas = await _gauge(session, metrics, _SCHEMAS)
    phases.append(
        await _phase(lab, plan, server, f"{LONG_ID_CHARS:,}-character model ids", _long_ids)
    )

    sampling_stop = asyncio.Event()
    sampling = asyncio.ensure_future(_peak(metrics, _HELD, sampling_stop))
    try:
        phases.append(await _phase(lab, plan, server, "include_data past the budget", _large_files))
    finally:
        sampling_stop.set()
        held_peak = await sampling

    fault = await simulator.control.add_fault(
        {
            "kind": "stream",
            "model": STREAMER.name,
            "times": None,
            "stream_endless_line_after_events": 1,
        }
    )
    phases.append(await _phase(lab, plan, server, "endless SSE line", _endless_line))
    endless = await simulator.control.fault(fault)
    await simulator.control.clear_faults()

    rows = [row for phase in phases for row in _phase_rows(phase, quiet)]
    rows.append(
        Row(
            "schema cache entries after the distinct ids",
            schemas,
            plan.resource_cache_size,
            "entries",
            "≤ GATEWAY_SCHEMA_CACHE_SIZE",
            schemas <= plan.resource_cache_size,
            detail=f"{_SCHEMAS}; {phases[0].calls:,} calls over {plan.resource_models:,} ids",
        )
    )
    budget = plan.resource_output_budget
    rows.append(
        Row(
            "output bytes held, peak",
            held_peak / _MIB,
            budget / _MIB,
            "MiB",
            "≤ GATEWAY_OUTPUT_BYTES_BUDGET",
            held_peak <= budget,
            detail=f"{plan.resource_hostile} callers of {plan.resource_file_bytes / _MIB:g} MiB "
            f"files each asked for; sampled every {_SAMPLE_SECONDS * 1000:g} ms",
        )
    )
    fired = int(str(endless["fired"]))
    written = int(str(endless["endless_line_bytes"]))
    rows.append(
        Row(
            "endless line: bytes written per stream",
            written / max(1, fired) / _MIB,
            MAX_EVENT_BYTES / _MIB,
            "MiB",
            "(informs: the bound plus socket buffers)",
            None,
            detail=f"{fired} endless lines",
        )
    )
    rows.append(
        Row(
            "gateway peak RSS (VmHWM)",
            server.child.peak_rss_bytes() / _MIB,
            quiet.rss_before / _MIB,
            "MiB",
            "(informs)",
            None,
            detail="baseline: RSS before the quiet phase",
        )
    )
    notes = [
        f"Each phase: {plan.resource_background} background GenerateText callers (closed loop, "
        f"{plan.resource_phase_seconds:g} s measured) beside {plan.resource_hostile} callers "
        "driving one input; baseline is the quiet phase of the same run (p50/p99) or the RSS "
        f"before the phase. GATEWAY_SCHEMA_CACHE_SIZE={plan.resource_cache_size}, "
        f"GATEWAY_OUTPUT_BYTES_BUDGET={budget / _MIB:g} MiB, "
        f"{plan.resource_file_bytes / _MIB:g} MiB files; counts read from the gateway's "
        "/metrics; distinct ids are unknown models "
        "(each a schema look-up remembered as absent), long ids are refused before any "
        "request, the endless line comes after the stream's first event.",
    ]
    notes += [f"{phase.name}: {phase.notes}" for phase in (quiet, *phases) if phase.notes]
    return Figure(
        number=NUMBER,
        title=TITLE,
        baseline="the quiet phase (latency) or RSS before the phase, same gateway, same run",
        rows=tuple(rows),
        notes=tuple(notes),
    )
