"""The bench's processes: start each, know when it is ready, measure it, stop it.

Every server and the simulator run as children of the orchestrator, started from
the same interpreter; the gateway through its real command line (`serve`, uvloop
and all), the way it is deployed. The orchestrator raises its file-descriptor limit
before starting any, so each child inherits room for 10,000 connections.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import resource
import signal
import socket
import sys
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import aiohttp
import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from bench.catalogue import UNLIMITED_RATE, BenchModel, write_simulator_config
from bench.control import SimulatorControl
from bench.jobs import RESULT_KINDS, Job, Progress, Result
from bench.wire import decode, encode

__all__ = [
    "REPO_ROOT",
    "Child",
    "GrpcServer",
    "Lab",
    "LabError",
    "LoadgenRun",
    "Simulator",
    "raise_fd_limit",
]

REPO_ROOT = Path(__file__).resolve().parent.parent
_READY_TIMEOUT = 60.0
_STOP_TIMEOUT = 15.0
# Reconnect every few milliseconds while a server starts, so readiness is seen when it
# happens rather than at gRPC's default one-second backoff.
_FAST_RECONNECT = [
    ("grpc.initial_reconnect_backoff_ms", 5),
    ("grpc.min_reconnect_backoff_ms", 5),
    ("grpc.max_reconnect_backoff_ms", 20),
]
_TOKEN = "r8_bench_local_simulator_token"

R = TypeVar("R", bound=Result)


class LabError(RuntimeError):
    """A bench process failed to start, died, or answered nonsense; the message has its log."""


def raise_fd_limit() -> int:
    """Raises this process's open-file limit to the hard limit (children inherit it)."""
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass
class Child:
    """A process the lab started, with what the figures read from /proc."""

    name: str
    process: asyncio.subprocess.Process
    log: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    def rss_bytes(self) -> int:
        """Resident memory now."""
        return self._status_kb("VmRSS") * 1024

    def peak_rss_bytes(self) -> int:
        """The most resident memory the process ever had."""
        return self._status_kb("VmHWM") * 1024

    def cpu_seconds(self) -> float:
        """User plus system CPU time of every thread so far."""
        stat = Path(f"/proc/{self.pid}/stat").read_text()
        fields = stat.rpartition(")")[2].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def _status_kb(self, key: str) -> int:
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith(f"{key}:"):
                return int(line.split()[1])
        raise LabError(f"{self.name}: /proc/{self.pid}/status has no {key}")

    def failure(self, what: str) -> LabError:
        tail = self.log.read_text(errors="replace").splitlines()[-25:] if self.log.exists() else []
        return LabError(f"{self.name} {what}; last lines of {self.log}:\n" + "\n".join(tail))

    async def stop(self) -> None:
        if self.process.returncode is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.process.wait(), _STOP_TIMEOUT)
            except TimeoutError:
                self.process.kill()
                await self.process.wait()


@dataclass
class Simulator:
    base_url: str
    control: SimulatorControl


@dataclass
class GrpcServer:
    target: str
    child: Child
    startup_seconds: float
    """From starting the process to its health check answering SERVING."""


class LoadgenRun:
    """A running load generator: its milestones, then its result."""

    def __init__(self, child: Child) -> None:
        self.child = child

    async def _next(self) -> Result:
        assert self.child.process.stdout is not None
        line = await self.child.process.stdout.readline()
        if not line:
            await self.child.process.wait()
            raise self.child.failure(f"exited with {self.child.process.returncode}")
        return decode(line.decode(), RESULT_KINDS)

    async def progress(self, stage: str) -> None:
        message = await self._next()
        if not (isinstance(message, Progress) and message.stage == stage):
            raise self.child.failure(f"sent {message!r} where progress {stage!r} was expected")

    async def result(self, kind: type[R]) -> R:
        message = await self._next()
        if not isinstance(message, kind):
            raise self.child.failure(f"sent {message!r} where a {kind.__name__} was expected")
        return message


class Lab:
    """Starts the bench's processes in `workdir` and names what they need from each other."""

    def __init__(self, workdir: Path, *, tracing: bool = False) -> None:
        self.workdir = workdir
        self.token = _TOKEN
        # Every gateway exports every call's spans over OTLP to a receiver on loopback.
        self.tracing = tracing
        self._names = itertools.count(1)

    def _env(self, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        # Nothing from the caller's shell may change what is measured.
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("GATEWAY_", "REPLICATE_", "PYTHON", "OTEL_"))
        }
        env["PYTHONUNBUFFERED"] = "1"
        # The checkout the bench lives in is the one measured, installed or not.
        env["PYTHONPATH"] = os.pathsep.join((str(REPO_ROOT), str(REPO_ROOT / "service")))
        env.update(extra or {})
        return env

    async def _spawn(
        self,
        name: str,
        module: str,
        args: Sequence[str] = (),
        *,
        env: Mapping[str, str] | None = None,
        pipes: bool = False,
    ) -> Child:
        log = self.workdir / f"{next(self._names):02d}-{name}.log"
        with log.open("wb") as sink:
            process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                module,
                *args,
                cwd=REPO_ROOT,
                env=self._env(env),
                stdin=asyncio.subprocess.PIPE if pipes else asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE if pipes else sink,
                stderr=sink,
                limit=64 * 1024 * 1024,  # a result line carries every sample
            )
        return Child(name, process, log)

    @asynccontextmanager
    async def simulator(self, stem: str, models: Sequence[BenchModel]) -> AsyncIterator[Simulator]:
        config = write_simulator_config(self.workdir, stem, models)
        child = await self._spawn(
            f"simulator-{stem}", "bench.simulator_process", ["--config", str(config)], pipes=True
        )
        try:
            assert child.process.stdout is not None
            line = await asyncio.wait_for(child.process.stdout.readline(), _READY_TIMEOUT)
            if not line:
                raise child.failure("exited before serving")
            base_url = str(json.loads(line)["base_url"])
            async with aiohttp.ClientSession() as session:
                yield Simulator(base_url, SimulatorControl(session, base_url))
        finally:
            await child.stop()

    @asynccontextmanager
    async def gateway(
        self, simulator: Simulator, settings: Mapping[str, str] | None = None
    ) -> AsyncIterator[GrpcServer]:
        """`inference-gateway serve`, as deployed, against the simulator."""
        port = _free_port()
        env = {
            "REPLICATE_API_TOKEN": self.token,
            "REPLICATE_BASE_URL": simulator.base_url,
            "GATEWAY_HOST": "127.0.0.1",
            "GATEWAY_PORT": str(port),
            "GATEWAY_METRICS_HOST": "127.0.0.1",
            "GATEWAY_METRICS_PORT": "0",
            "GATEWAY_CREATE_RATE": str(UNLIMITED_RATE),
            "GATEWAY_OTHER_RATE": str(UNLIMITED_RATE),
            "GATEWAY_DRAIN_DELAY": "0",
            "GATEWAY_GRACE_PERIOD": "1",
            **(settings or {}),
        }
        async with contextlib.AsyncExitStack() as stack:
            if self.tracing:
                env.update(await stack.enter_async_context(self._otlp_receiver()))
            server = await stack.enter_async_context(
                self._grpc_server("gateway", "inference_gateway", ["serve"], port, env)
            )
            yield server

    @asynccontextmanager
    async def _otlp_receiver(self) -> AsyncIterator[dict[str, str]]:
        """bench/otlp_receiver.py in its own process; yields the gateway's OTEL_* variables."""
        child = await self._spawn("otlp-receiver", "bench.otlp_receiver", pipes=True)
        try:
            assert child.process.stdout is not None
            line = await asyncio.wait_for(child.process.stdout.readline(), _READY_TIMEOUT)
            if not line:
                raise child.failure("exited before serving")
            yield {
                "OTEL_EXPORTER_OTLP_ENDPOINT": str(json.loads(line)["endpoint"]),
                "OTEL_EXPORTER_OTLP_INSECURE": "true",
                # Every call sampled: the cost measured is the whole cost.
                "OTEL_TRACES_SAMPLER": "always_on",
            }
        finally:
            await child.stop()

    @asynccontextmanager
    async def redis(self) -> AsyncIterator[str]:
        """A redis-server on loopback with no persistence (deploy/install-tools.sh installs
        it); yields its URL."""
        port = _free_port()
        log = self.workdir / f"{next(self._names):02d}-redis.log"
        process = await asyncio.create_subprocess_exec(
            "redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
            "--appendonly", "no", "--dir", str(self.workdir), "--logfile", "",
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        )  # fmt: skip
        assert process.stdout is not None
        seen: list[bytes] = []
        while not seen or b"Ready to accept connections" not in seen[-1]:
            line = await asyncio.wait_for(process.stdout.readline(), _READY_TIMEOUT)
            if not line:
                raise RuntimeError(
                    "redis-server exited before serving:\n" + b"".join(seen).decode()
                )
            seen.append(line)
        log.write_bytes(b"".join(seen))
        drained = asyncio.ensure_future(process.stdout.read())
        try:
            yield f"redis://127.0.0.1:{port}/0"
        finally:
            process.terminate()
            await asyncio.wait_for(process.wait(), _STOP_TIMEOUT)
            await drained

    @asynccontextmanager
    async def forwarder(self, simulator: Simulator) -> AsyncIterator[GrpcServer]:
        """The minimal grpc.aio + aiohttp forwarder the gateway is compared with."""
        port = _free_port()
        args = ["--port", str(port), "--base-url", simulator.base_url, "--token", self.token]
        async with self._grpc_server("forwarder", "bench.forwarder", args, port) as server:
            yield server

    @asynccontextmanager
    async def _grpc_server(
        self,
        name: str,
        module: str,
        args: Sequence[str],
        port: int,
        env: Mapping[str, str] | None = None,
    ) -> AsyncIterator[GrpcServer]:
        target = f"127.0.0.1:{port}"
        started = time.perf_counter()
        child = await self._spawn(name, module, args, env=env)
        try:
            serving = await _serving(target, child)
            yield GrpcServer(target, child, serving - started)
        finally:
            await child.stop()

    @asynccontextmanager
    async def loadgen(self, job: Job) -> AsyncIterator[LoadgenRun]:
        child = await self._spawn(f"loadgen-{job.KIND}", "bench.loadgen", pipes=True)
        try:
            assert child.process.stdin is not None
            child.process.stdin.write(encode(job).encode() + b"\n")
            await child.process.stdin.drain()
            child.process.stdin.close()
            yield LoadgenRun(child)
        finally:
            await child.stop()


async def _serving(target: str, child: Child) -> float:
    """When the server's health check first said SERVING (a perf_counter instant)."""
    async with grpc.aio.insecure_channel(target, options=_FAST_RECONNECT) as channel:
        health = health_pb2_grpc.HealthStub(channel)

        async def watch() -> float:
            request = health_pb2.HealthCheckRequest(service="")
            async for answer in health.Watch(request, wait_for_ready=True):
                if answer.status == health_pb2.HealthCheckResponse.SERVING:
                    return time.perf_counter()
            raise child.failure("ended its health watch before SERVING")

        watching = asyncio.ensure_future(watch())
        exited = asyncio.ensure_future(child.process.wait())
        done, _ = await asyncio.wait(
            {watching, exited}, timeout=_READY_TIMEOUT, return_when=asyncio.FIRST_COMPLETED
        )
        exited.cancel()
        if watching in done:
            return watching.result()
        watching.cancel()
        raise child.failure("never reported SERVING" if not done else "exited before SERVING")
