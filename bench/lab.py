"""The bench's processes: start each, know when it is ready, measure it, stop it.

Every server and the simulator run as children of the orchestrator, started from
the same interpreter; the gateway through its real command line (`serve`, uvloop
and all), the way it is deployed. The orchestrator raises its file-descriptor limit
before starting any, so each child inherits room for 10,000 connections.
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import json
import os
import resource
import shutil
import signal
import socket
import sys
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import aiohttp
import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from bench.catalogue import UNLIMITED_RATE, BenchModel, write_simulator_config
from bench.control import SimulatorControl
from bench.jobs import PEER_KEY, RESULT_KINDS, Job, Progress, Result
from bench.wire import decode, encode

__all__ = [
    "REPO_ROOT",
    "Child",
    "GrpcServer",
    "Lab",
    "LabError",
    "LoadgenRun",
    "OtlpReceiver",
    "Peer",
    "ProductionLike",
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


def _cpu_seconds(pid: int) -> float:
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat.rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _status_kb(pid: int, key: str, name: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{key}:"):
            return int(line.split()[1])
    raise LabError(f"{name}: /proc/{pid}/status has no {key}")


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

    def tree_pids(self) -> list[int]:
        """This process and every descendant (a peer may run its workers as children)."""
        pids, index = [self.pid], 0
        while index < len(pids):
            for task in Path(f"/proc/{pids[index]}/task").glob("*/children"):
                pids += [int(child) for child in task.read_text().split()]
            index += 1
        return pids

    def tree_rss_bytes(self) -> int:
        """Resident memory of the process and its descendants now."""
        return sum(_status_kb(pid, "VmRSS", self.name) for pid in self.tree_pids()) * 1024

    def tree_cpu_seconds(self) -> float:
        """CPU time of the process and its live descendants so far."""
        return sum(_cpu_seconds(pid) for pid in self.tree_pids())

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
    others: tuple[Child, ...] = ()
    """Further processes serving the same port (`GATEWAY_REUSE_PORT`)."""

    def cpu_seconds(self) -> float:
        """CPU time of every process serving the port, so far."""
        return sum(child.cpu_seconds() for child in (self.child, *self.others))


@dataclass(frozen=True)
class ProductionLike:
    """What a production gateway runs with: shared state in Redis, callers, tracing on."""

    settings: dict[str, str]
    caller_token: str


@dataclass
class OtlpReceiver:
    """The bench's OTLP/gRPC trace receiver: what points a gateway at it, and its count."""

    settings: dict[str, str]
    """The OTEL_* variables a gateway exports every call's spans to it with."""
    child: Child

    def spans_received(self) -> int:
        """The spans it received, from the line it logs once stopped."""
        prefix = "spans received: "
        lines = self.child.log.read_text(errors="replace").splitlines()
        counts = [int(x.removeprefix(prefix)) for x in lines if x.startswith(prefix)]
        if len(counts) != 1:
            raise self.child.failure("did not log its span count once stopped")
        return counts[0]


@dataclass
class Peer:
    """LiteLLM's proxy, serving the OpenAI-compatible HTTP API at `base_url`."""

    base_url: str
    child: Child
    startup_seconds: float


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
        command: Sequence[str] | None = None,
    ) -> Child:
        """`python -m module args`, or `command args` (a program of another venv) when given."""
        log = self.workdir / f"{next(self._names):02d}-{name}.log"
        program = command if command is not None else (sys.executable, "-m", module)
        with log.open("wb") as sink:
            process = await asyncio.create_subprocess_exec(
                *program,
                *args,
                cwd=REPO_ROOT,
                env=self._env(env) if command is None else _peer_env(env),
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
        async with self.gateways(simulator, 1, settings) as server:
            yield server

    @asynccontextmanager
    async def gateways(
        self, simulator: Simulator, count: int, settings: Mapping[str, str] | None = None
    ) -> AsyncIterator[GrpcServer]:
        """`count` gateway processes sharing one port (`GATEWAY_REUSE_PORT`), as one server.

        The kernel spreads connections (not calls) over the processes, so a client needs
        several connections to reach them all.
        """
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
            **({"GATEWAY_REUSE_PORT": "true"} if count > 1 else {}),
            **(settings or {}),
        }
        async with AsyncExitStack() as stack:
            if self.tracing and "OTEL_EXPORTER_OTLP_ENDPOINT" not in env:
                env.update((await stack.enter_async_context(self.otlp_receiver())).settings)
            if count == 1:
                yield await stack.enter_async_context(
                    self._grpc_server("gateway", "inference_gateway", ["serve"], port, env)
                )
                return
            started = time.perf_counter()
            children = []
            for _ in range(count):
                child = await self._spawn("gateway", "inference_gateway", ["serve"], env=env)
                stack.push_async_callback(child.stop)
                children.append(child)
            for child in children:  # the health check reaches one of them: read each one's log
                await _logged(child, "serving gRPC on port")
            target = f"127.0.0.1:{port}"
            serving = await _serving(target, children[0])
            yield GrpcServer(target, children[0], serving - started, tuple(children[1:]))

    @asynccontextmanager
    async def production_like(self) -> AsyncIterator[ProductionLike]:
        """A redis-server and an OTLP receiver on loopback, and a callers file naming one.

        The gateway's settings point at all three: shared state in Redis (what several
        processes or replicas need for the guarantees), every call authenticated, and
        every call's spans exported over OTLP/gRPC.
        """
        if shutil.which("redis-server") is None:
            raise LabError("redis-server is not installed: run `make deploy-tools`")
        token = "r8_test_bench_caller_token"
        config = self.workdir / "production-like.yaml"
        digest = hashlib.sha256(token.encode()).hexdigest()
        config.write_text(
            json.dumps(
                {
                    "callers": {
                        "bench": {"token_sha256": digest, "aliases": ["*"]},
                        "other-service": {"token_sha256": "0" * 64, "aliases": ["*"]},
                    }
                }
            )
        )
        async with self.redis() as redis_url, self.otlp_receiver() as receiver:
            yield ProductionLike(
                {
                    "GATEWAY_CONFIG": str(config),
                    "GATEWAY_REQUIRE_AUTH": "true",
                    "GATEWAY_REDIS_URL": redis_url,
                    "GATEWAY_OPERATIONS_KEY": "bench-operations-key-" + "0" * 32,
                    **receiver.settings,
                },
                token,
            )

    @asynccontextmanager
    async def otlp_receiver(self) -> AsyncIterator[OtlpReceiver]:
        """bench/otlp_receiver.py in its own process, with the OTEL_* variables naming it."""
        child = await self._spawn("otlp-receiver", "bench.otlp_receiver", pipes=True)
        try:
            assert child.process.stdout is not None
            line = await asyncio.wait_for(child.process.stdout.readline(), _READY_TIMEOUT)
            if not line:
                raise child.failure("exited before serving")
            yield OtlpReceiver(
                {
                    "OTEL_EXPORTER_OTLP_ENDPOINT": str(json.loads(line)["endpoint"]),
                    "OTEL_EXPORTER_OTLP_INSECURE": "true",
                    # Every call sampled: the cost measured is the whole cost.
                    "OTEL_TRACES_SAMPLER": "always_on",
                },
                child,
            )
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
    async def litellm(
        self, simulator: Simulator, program: Path, models: Sequence[BenchModel]
    ) -> AsyncIterator[Peer]:
        """LiteLLM's proxy as shipped (one worker), its Replicate requests sent to `simulator`.

        Its Replicate provider ignores `api_base`; `bench/litellm/redirect/sitecustomize.py`
        rewrites the host of its requests to api.replicate.com, and nothing else.
        """
        port = _free_port()
        config = self.workdir / f"litellm-{port}.yaml"
        config.write_text(
            json.dumps(
                {
                    "model_list": [
                        {
                            "model_name": model.name,
                            "litellm_params": {
                                "model": f"replicate/{model.name}",
                                "api_key": "os.environ/REPLICATE_API_TOKEN",
                            },
                        }
                        for model in models
                    ],
                    "general_settings": {"master_key": PEER_KEY},
                }
            )
        )
        env = {
            "REPLICATE_API_TOKEN": self.token,
            "BENCH_REPLICATE_BASE_URL": simulator.base_url,
            "PYTHONPATH": str(REPO_ROOT / "bench" / "litellm" / "redirect"),
            # Nothing leaves the machine: the bundled cost map, no telemetry, no hub.
            "LITELLM_LOCAL_MODEL_COST_MAP": "True",
            "LITELLM_TELEMETRY": "False",
            "HF_HUB_OFFLINE": "1",
            "NO_DOCKER": "1",
        }
        args = ["--config", str(config), "--host", "127.0.0.1", "--port", str(port)]
        args += ["--num_workers", "1"]
        base_url = f"http://127.0.0.1:{port}"
        started = time.perf_counter()
        child = await self._spawn("litellm", "", args, env=env, command=(str(program),))
        try:
            ready = await _http_ready(f"{base_url}/health/liveliness", child)
            # The health route answers before the router has loaded the model list.
            yield Peer(base_url, child, ready - started)
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


def _peer_env(extra: Mapping[str, str] | None) -> dict[str, str]:
    """The peer's environment: the shell's, less anything that could redirect or tune it."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("GATEWAY_", "REPLICATE_", "PYTHON", "LITELLM_", "VIRTUAL_ENV"))
    }
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra or {})
    return env


async def _logged(child: Child, text: str) -> None:
    """Returns once `text` appears in the child's log."""
    deadline = time.perf_counter() + _READY_TIMEOUT
    while time.perf_counter() < deadline:
        if text in child.log.read_text(errors="replace"):
            return
        if child.process.returncode is not None:
            raise child.failure(f"exited before logging {text!r}")
        await asyncio.sleep(0.02)
    raise child.failure(f"never logged {text!r}")


async def _http_ready(url: str, child: Child) -> float:
    """When `url` first answered 200 (a perf_counter instant)."""
    deadline = time.perf_counter() + _READY_TIMEOUT
    async with aiohttp.ClientSession() as session:
        while time.perf_counter() < deadline:
            if child.process.returncode is not None:
                raise child.failure("exited before serving")
            try:
                async with session.get(url) as response:
                    if response.status == 200:
                        return time.perf_counter()
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.05)
    raise child.failure("never answered its health check")


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
