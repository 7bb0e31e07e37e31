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
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AsyncExitStack, asynccontextmanager, suppress
from typing import Any, Protocol

import aiohttp
import grpc
import uvloop

from bench.jobs import (
    JOB_KINDS,
    PEER_KEY,
    AbandonJob,
    AbandonResult,
    Api,
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
_MIN_CALL_SECONDS = 10.0
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


class PeerError(RuntimeError):
    """The OpenAI-compatible peer answered with an HTTP error; the name is its status."""

    def __init__(self, status: int, body: str) -> None:
        super().__init__(f"HTTP {status}: {body[:300]}")
        self.status = status


def _error_name(exc: BaseException) -> str:
    """How a failed call is counted: the gRPC code, the HTTP status, or the exception."""
    if isinstance(exc, grpc.aio.AioRpcError):
        return str(exc.code().name)
    if isinstance(exc, PeerError):
        return f"HTTP {exc.status}"
    return type(exc).__name__


class _Calls(Protocol):
    """One text model, called one way: the same workload whoever serves it."""

    async def complete(self, seconds: float) -> str: ...

    def stream(self, seconds: float) -> AsyncIterator[str]: ...


class _GrpcCalls:
    def __init__(
        self, stub: pb_grpc.InferenceGatewayAsyncStub, model: str, prompt: str, token: str
    ) -> None:
        self._stub = stub
        self._request = pb.GenerateTextRequest(model=model, prompt=prompt)
        self._metadata = (("authorization", f"Bearer {token}"),) if token else None

    async def complete(self, seconds: float) -> str:
        response = await self._stub.GenerateText(
            self._request, timeout=seconds, metadata=self._metadata
        )
        return str(response.text)

    async def stream(self, seconds: float) -> AsyncIterator[str]:
        async for message in self._stub.StreamText(
            self._request, timeout=seconds, metadata=self._metadata
        ):
            if message.text:
                yield str(message.text)


class _OpenAiCalls:
    """LiteLLM's proxy as its users call it: `POST /v1/chat/completions`."""

    def __init__(self, session: aiohttp.ClientSession, base: str, model: str, prompt: str) -> None:
        self._session = session
        self._url = f"{base.rstrip('/')}/v1/chat/completions"
        self._headers = {"Authorization": f"Bearer {PEER_KEY}"}
        self._body: dict[str, Any] = {
            "model": model,
            "messages": [{"role": "user", "content": prompt}],
        }

    async def complete(self, seconds: float) -> str:
        async with self._session.post(
            self._url,
            json=self._body,
            headers=self._headers,
            timeout=aiohttp.ClientTimeout(total=seconds),
        ) as response:
            text = await response.text()
            if response.status != 200:
                raise PeerError(response.status, text)
        return str(json.loads(text)["choices"][0]["message"]["content"] or "")

    async def stream(self, seconds: float) -> AsyncIterator[str]:
        async with self._session.post(
            self._url,
            json={**self._body, "stream": True},
            headers=self._headers,
            timeout=aiohttp.ClientTimeout(total=seconds),
        ) as response:
            if response.status != 200:
                raise PeerError(response.status, await response.text())
            async for raw in response.content:
                line = raw.decode().strip()
                if not line.startswith("data:"):
                    continue
                data = line[len("data:") :].strip()
                if data == "[DONE]":
                    return
                for choice in json.loads(data).get("choices", []):
                    content = (choice.get("delta") or {}).get("content")
                    if content:
                        yield str(content)


@asynccontextmanager
async def _callers(
    api: Api, target: str, model: str, prompt: str, channels: int = 1, token: str = ""
) -> AsyncIterator[list[_Calls]]:
    """`channels` callers of `model` on `target`, each on a connection of its own (gRPC)."""
    if api == "grpc":
        async with _stubs(target, channels) as stubs:
            yield [_GrpcCalls(stub, model, prompt, token) for stub in stubs]
    else:
        async with _session() as session:
            yield [_OpenAiCalls(session, target, model, prompt)]


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
    targets = [job.grpc_target, *job.more_targets]
    through: list[list[float]] = [[] for _ in targets]
    direct: list[float] = []
    errors: list[str] = []
    async with AsyncExitStack() as stack:
        callers = [
            (await stack.enter_async_context(_callers(job.api, target, job.model, job.prompt)))[0]
            for target in targets
        ]
        session = await stack.enter_async_context(_session())
        straight = _Direct(session, job.http_base, job.token, job.model, job.prompt)

        def through_gateway(target: str, calls: _Calls) -> Callable[[], Awaitable[float]]:
            async def call() -> float:
                started = time.perf_counter()
                text = await calls.complete(_CALL_TIMEOUT)
                elapsed = time.perf_counter() - started
                if not text.strip():
                    errors.append(f"{target} answered without text")
                return elapsed

            return call

        async def to_simulator() -> float:
            started = time.perf_counter()
            body = await straight.create(job.wait_seconds)
            elapsed = time.perf_counter() - started
            if body.get("status") != "succeeded":
                errors.append(f"direct create came back {body.get('status')!r}")
            return elapsed

        # Index 0 is the direct call; 1.. the gateways, in `targets` order.
        turns = [to_simulator, *map(through_gateway, targets, callers)]
        samples = [direct, *through]
        for index in range(job.warmup + job.calls):
            # Rotate which goes first, so none always meets a just-woken simulator.
            first = index % len(turns)
            for turn in (*range(first, len(turns)), *range(first)):
                elapsed = await turns[turn]()
                if index >= job.warmup:
                    samples[turn].append(elapsed)
    return LatencyResult(through[0], direct, errors[:_MAX_ERRORS_KEPT], through[1:])


async def _throughput(job: ThroughputJob, emit: Emit) -> ThroughputResult:
    latencies: list[float] = []
    errors: Counter[str] = Counter()
    total = 0
    started_calls = 0
    async with _callers(
        job.api, job.grpc_target, job.model, job.prompt, job.channels, job.caller_token
    ) as callers:
        begin = time.perf_counter()
        window_start = begin + job.warmup_seconds
        window_end = window_start + job.measure_seconds

        async def caller(calls: _Calls) -> None:
            nonlocal total, started_calls
            while (started := time.perf_counter()) < window_end and (
                not job.max_calls or started_calls < job.max_calls
            ):
                started_calls += 1
                try:
                    # A slow peer must not hold the run past its window for long; the
                    # gateway refuses a deadline shorter than a prediction's shortest life.
                    await calls.complete(max(_MIN_CALL_SECONDS, window_end - started + 5.0))
                except Exception as exc:  # every failure is counted, by its kind
                    if not (isinstance(exc, TimeoutError) and time.perf_counter() >= window_end):
                        errors[_error_name(exc)] += 1  # not merely cut at the window's end
                    continue
                ended = time.perf_counter()
                total += 1
                if window_start <= ended < window_end:
                    latencies.append(ended - started)

        await asyncio.gather(*(caller(callers[i % len(callers)]) for i in range(job.concurrency)))
    measured = min(job.measure_seconds, max(1e-9, time.perf_counter() - window_start))
    return ThroughputResult(len(latencies), total, measured, latencies, dict(errors))


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
    result = StreamResult([], [], [], [])
    async with (
        _callers(job.api, job.grpc_target, job.model, job.prompt) as (calls,),
        _session() as session,
    ):
        straight = _Direct(session, job.http_base, job.token, job.model, job.prompt)

        async def through_gateway() -> tuple[float, list[float], str]:
            times: list[float] = []
            text: list[str] = []
            started = time.perf_counter()
            async for piece in calls.stream(_CALL_TIMEOUT):
                times.append(time.perf_counter())
                text.append(piece)
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
    async with _stubs(job.grpc_target, 1) as (stub,), _session() as session:

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
                elif call.client == "litellm":
                    peer = _OpenAiCalls(session, job.peer_base, call.model, job.prompt)
                    await peer.complete(call.timeout_seconds)
                else:
                    await official.async_run(
                        call.model, input={"prompt": job.prompt}, wait=job.wait_seconds
                    )
            except Exception as exc:  # every failure is a finding to report, not a crash
                detail = f"{type(exc).__name__}: {exc}"
                seconds = time.perf_counter() - started  # when it gave up is a finding too
                return UpstreamOutcome(call.client, call.model, False, seconds, False, detail)
            seconds = time.perf_counter() - started
            return UpstreamOutcome(call.client, call.model, True, seconds, cold_boot)

        tasks = [asyncio.create_task(run(call)) for call in job.calls]
        await asyncio.sleep(0)  # every call has sent its create once its task has run
        emit(Progress("issued"))
        return UpstreamResult(list(await asyncio.gather(*tasks)))


async def _abandon(job: AbandonJob, emit: Emit) -> AbandonResult:
    async with _callers(job.api, job.target, job.model, job.prompt) as (calls,):
        call = asyncio.ensure_future(calls.complete(job.timeout_seconds))
        done, _ = await asyncio.wait({call}, timeout=job.after_seconds)
        if done:
            failure = call.exception()
            return AbandonResult(False, "ended first: " + (repr(failure) if failure else "ok"))
        call.cancel()  # gRPC: the call is cancelled; HTTP: the connection is closed
        with suppress(asyncio.CancelledError):
            await call
    return AbandonResult(True)


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
    if isinstance(job, AbandonJob):
        return await _abandon(job, emit)
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
