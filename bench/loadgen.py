"""The load generator: one process, under uvloop, the same client for every server measured.

Reads one job (JSON) on stdin, writes progress lines and then its result (JSON) on
stdout. It runs apart from the servers and the simulator so that its own CPU use is
visible as such, and is the same code whichever server it is pointed at.
"""

from __future__ import annotations

import asyncio
import json
import os
import resource
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AsyncExitStack, asynccontextmanager

import aiohttp
import grpc
import uvloop

from bench.jobs import (
    JOB_KINDS,
    HoldJob,
    HoldResult,
    Job,
    LatencyJob,
    LatencyResult,
    Progress,
    Result,
    StreamJob,
    StreamResult,
    ThroughputJob,
    ThroughputResult,
    UpstreamCall,
    UpstreamJob,
    UpstreamOutcome,
    UpstreamResult,
)
from bench.sse import EventReader
from bench.stats import gaps
from bench.wire import decode, encode
from inference_gateway_protos.inference.gateway.v1 import gateway_pb2 as pb
from inference_gateway_protos.inference.gateway.v1 import gateway_pb2_grpc as pb_grpc

__all__ = ["emit", "main", "run_job"]

Emit = Callable[[Result], None]
_CALL_TIMEOUT = 60.0
_MAX_ERRORS_KEPT = 20
# Each channel its own connection: channels with equal arguments would share one.
_CHANNEL_OPTIONS = [("grpc.use_local_subchannel_pool", 1)]


@asynccontextmanager
async def _stubs(target: str, count: int) -> AsyncIterator[list[pb_grpc.InferenceGatewayAsyncStub]]:
    async with AsyncExitStack() as stack:
        stubs = []
        for _ in range(count):
            channel = grpc.aio.insecure_channel(target, options=_CHANNEL_OPTIONS)
            stack.push_async_callback(channel.close, None)
            await channel.channel_ready()
            stubs.append(pb_grpc.InferenceGatewayStub(channel))  # the async stub
        yield stubs


def _session() -> aiohttp.ClientSession:
    return aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))


class _Direct:
    """The create the gateway would send, sent straight to the simulator."""

    def __init__(
        self, session: aiohttp.ClientSession, base: str, token: str, model: str, prompt: str
    ) -> None:
        self._session = session
        self._url = f"{base.rstrip('/')}/v1/models/{model}/predictions"
        self._body = json.dumps({"input": {"prompt": prompt}}).encode()
        self._headers = {
            "Authorization": f"Bearer {token}",
            "Content-Type": "application/json",
            "Cancel-After": f"{int(_CALL_TIMEOUT)}s",
        }
        self._token = token

    async def create(self, wait_seconds: int | None) -> dict[str, object]:
        headers = dict(self._headers)
        if wait_seconds is not None:
            headers["Prefer"] = f"wait={wait_seconds}"
        async with self._session.post(self._url, data=self._body, headers=headers) as response:
            body: dict[str, object] = await response.json()
            if response.status != 201:
                raise RuntimeError(f"direct create answered HTTP {response.status}: {body}")
            return body

    async def stream(self, url: str, on_output: Callable[[str], None]) -> None:
        """Reads the prediction's SSE stream until `done`."""
        reader = EventReader()
        async with self._session.get(url, headers={"Accept": "text/event-stream"}) as response:
            async for raw in response.content:
                event = reader.feed(raw.decode().rstrip("\r\n"))
                if event is None:
                    continue
                if event.event == "output":
                    on_output(event.data)
                elif event.event == "done":
                    return
        raise RuntimeError("the stream ended without a done event")


async def _latency(job: LatencyJob, emit: Emit) -> LatencyResult:
    request = pb.GenerateTextRequest(model=job.model, prompt=job.prompt)
    gateway: list[float] = []
    direct: list[float] = []
    errors: list[str] = []
    async with _stubs(job.grpc_target, 1) as (stub,), _session() as session:
        straight = _Direct(session, job.http_base, job.token, job.model, job.prompt)

        async def through_gateway() -> float:
            started = time.perf_counter()
            response = await stub.GenerateText(request, timeout=_CALL_TIMEOUT)
            elapsed = time.perf_counter() - started
            if not response.text:
                errors.append("the gateway answered without text")
            return elapsed

        async def to_simulator() -> float:
            started = time.perf_counter()
            body = await straight.create(job.wait_seconds)
            elapsed = time.perf_counter() - started
            if body.get("status") != "succeeded":
                errors.append(f"direct create came back {body.get('status')!r}")
            return elapsed

        for index in range(job.warmup + job.calls):
            # Alternate which goes first, so neither always meets a just-woken simulator.
            if index % 2:
                direct_seconds, gateway_seconds = await to_simulator(), await through_gateway()
            else:
                gateway_seconds, direct_seconds = await through_gateway(), await to_simulator()
            if index >= job.warmup:
                gateway.append(gateway_seconds)
                direct.append(direct_seconds)
    return LatencyResult(gateway, direct, errors[:_MAX_ERRORS_KEPT])


async def _throughput(job: ThroughputJob, emit: Emit) -> ThroughputResult:
    request = pb.GenerateTextRequest(model=job.model, prompt=job.prompt)
    latencies: list[float] = []
    errors: Counter[str] = Counter()
    total = 0
    async with _stubs(job.grpc_target, job.channels) as stubs:
        begin = time.perf_counter()
        window_start = begin + job.warmup_seconds
        window_end = window_start + job.measure_seconds

        async def caller(stub: pb_grpc.InferenceGatewayAsyncStub) -> None:
            nonlocal total
            while (started := time.perf_counter()) < window_end:
                try:
                    await stub.GenerateText(request, timeout=_CALL_TIMEOUT)
                except grpc.aio.AioRpcError as exc:
                    errors[exc.code().name] += 1
                    continue
                ended = time.perf_counter()
                total += 1
                if window_start <= ended < window_end:
                    latencies.append(ended - started)

        await asyncio.gather(*(caller(stubs[i % len(stubs)]) for i in range(job.concurrency)))
    return ThroughputResult(len(latencies), total, job.measure_seconds, latencies, dict(errors))


async def _hold(job: HoldJob, emit: Emit) -> HoldResult:
    request = pb.GenerateTextRequest(model=job.model, prompt=job.prompt)
    starts: list[float] = []
    ends: list[float] = []
    latencies: list[float] = []
    errors: Counter[str] = Counter()
    all_started = asyncio.Event()
    async with _stubs(job.grpc_target, job.channels) as stubs:

        async def one(stub: pb_grpc.InferenceGatewayAsyncStub) -> None:
            started = time.perf_counter()
            starts.append(started)
            if len(starts) == job.calls:
                all_started.set()
            try:
                await stub.GenerateText(request, timeout=job.timeout_seconds)
            except grpc.aio.AioRpcError as exc:
                errors[exc.code().name] += 1
                return
            ended = time.perf_counter()
            ends.append(ended)
            latencies.append(ended - started)

        calls = []
        begin = time.perf_counter()
        for index in range(job.calls):
            if job.start_rate is not None:
                # Paced against the clock, so a slow start does not slow the rest.
                await asyncio.sleep(max(0.0, begin + index / job.start_rate - time.perf_counter()))
            calls.append(asyncio.create_task(one(stubs[index % len(stubs)])))
        await all_started.wait()
        emit(Progress("issued"))
        await asyncio.gather(*calls)
    first = min(starts)
    first_end = (min(ends) - first) if ends else float("inf")
    return HoldResult(len(latencies), latencies, max(starts) - first, first_end, dict(errors))


async def _stream(job: StreamJob, emit: Emit) -> StreamResult:
    request = pb.GenerateTextRequest(model=job.model, prompt=job.prompt)
    result = StreamResult([], [], [], [])
    async with _stubs(job.grpc_target, 1) as (stub,), _session() as session:
        straight = _Direct(session, job.http_base, job.token, job.model, job.prompt)

        async def through_gateway() -> tuple[float, list[float], str]:
            times: list[float] = []
            text: list[str] = []
            started = time.perf_counter()
            async for message in stub.StreamText(request, timeout=_CALL_TIMEOUT):
                if message.text:
                    times.append(time.perf_counter())
                    text.append(message.text)
            return started, times, "".join(text)

        async def to_simulator() -> tuple[float, list[float], str]:
            times: list[float] = []
            text: list[str] = []

            def on_output(data: str) -> None:
                times.append(time.perf_counter())
                text.append(data)

            started = time.perf_counter()
            created = await straight.create(wait_seconds=None)
            urls = created.get("urls")
            if not isinstance(urls, dict) or not isinstance(urls.get("stream"), str):
                raise RuntimeError(f"the {job.model} prediction has no stream URL")
            await straight.stream(urls["stream"], on_output)
            return started, times, "".join(text)

        for index in range(job.warmup + job.runs):
            if index % 2:
                direct, gateway = await to_simulator(), await through_gateway()
            else:
                gateway, direct = await through_gateway(), await to_simulator()
            if index < job.warmup:
                continue
            if gateway[2] != direct[2]:
                result.errors.append(f"texts differ: {gateway[2]!r} vs {direct[2]!r}")
            for (started, times, _), first, between in (
                (gateway, result.gateway_first_token, result.gateway_gaps),
                (direct, result.direct_first_token, result.direct_gaps),
            ):
                if times:
                    first.append(times[0] - started)
                    between.extend(gaps(times))
    del result.errors[_MAX_ERRORS_KEPT:]
    return result


async def _upstream(job: UpstreamJob, emit: Emit) -> UpstreamResult:
    # Imported here: the other jobs start a tenth of a second sooner without it.
    from replicate.client import Client as ReplicateClient

    official = ReplicateClient(api_token=job.token, base_url=job.http_base)
    async with _stubs(job.grpc_target, 1) as (stub,):

        async def run(call: UpstreamCall) -> UpstreamOutcome:
            started = time.perf_counter()
            cold_boot = False
            try:
                if call.client == "gateway":
                    response = await stub.GenerateText(
                        pb.GenerateTextRequest(model=call.model, prompt=job.prompt),
                        timeout=call.timeout_seconds,
                    )
                    cold_boot = response.prediction.timing.cold_boot
                else:
                    await official.async_run(
                        call.model, input={"prompt": job.prompt}, wait=job.wait_seconds
                    )
            except Exception as exc:  # every failure is a finding to report, not a crash
                detail = f"{type(exc).__name__}: {exc}"
                return UpstreamOutcome(call.client, call.model, False, 0.0, False, detail)
            seconds = time.perf_counter() - started
            return UpstreamOutcome(call.client, call.model, True, seconds, cold_boot)

        tasks = [asyncio.create_task(run(call)) for call in job.calls]
        await asyncio.sleep(0)  # every call has sent its create once its task has run
        emit(Progress("issued"))
        return UpstreamResult(list(await asyncio.gather(*tasks)))


async def run_job(job: Job, emit: Emit) -> Result:
    """Runs `job`, reporting milestones through `emit`; returns its result."""
    if isinstance(job, LatencyJob):
        return await _latency(job, emit)
    if isinstance(job, ThroughputJob):
        return await _throughput(job, emit)
    if isinstance(job, HoldJob):
        return await _hold(job, emit)
    if isinstance(job, StreamJob):
        return await _stream(job, emit)
    return await _upstream(job, emit)


def emit(message: Result) -> None:
    """Writes `message` as one line on stdout, whole.

    A result carries every sample and can run to megabytes; a single write to a pipe
    may take only part of it, and a text stream would drop the rest without a word.
    """
    data = memoryview((encode(message) + "\n").encode())
    while data:
        data = data[os.write(sys.stdout.fileno(), data) :]


def main(argv: Sequence[str] | None = None) -> int:
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    job = decode(sys.stdin.readline(), JOB_KINDS)
    emit(uvloop.run(run_job(job, emit)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
