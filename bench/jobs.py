"""What the orchestrator asks of the load generator, and what it answers.

Raw samples travel back rather than percentiles, so the orchestrator computes every
statistic one way, in one place (`bench.stats`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import ClassVar, Literal

__all__ = [
    "JOB_KINDS",
    "PEER_KEY",
    "RESULT_KINDS",
    "AbandonJob",
    "AbandonResult",
    "Api",
    "HoldJob",
    "HoldResult",
    "Job",
    "JobError",
    "LatencyJob",
    "LatencyResult",
    "Progress",
    "Result",
    "StreamJob",
    "StreamResult",
    "ThroughputJob",
    "ThroughputResult",
    "UpstreamCall",
    "UpstreamJob",
    "UpstreamOutcome",
    "UpstreamResult",
]

DEFAULT_PROMPT = "Name a colour"

Api = Literal["grpc", "openai"]
"""How a target is called: the gateway's gRPC API (`host:port`), or an OpenAI-compatible
HTTP API (`http://host:port`, LiteLLM's proxy: `/v1/chat/completions`)."""
PEER_KEY = "sk-bench-local-peer-master-key"
"""LiteLLM's proxy refuses to start without a master key; the bench's, on loopback only."""


class JobError(ValueError):
    """A job whose sizes cannot be run: counts below one, or times not positive."""


def _check(
    instance: object, positive: tuple[str, ...] = (), at_least_one: tuple[str, ...] = ()
) -> None:
    for name in positive:
        value = getattr(instance, name)
        if not (math.isfinite(value) and value > 0):
            raise JobError(f"{name} must be a positive number of seconds, got {value!r}")
    for name in at_least_one:
        value = getattr(instance, name)
        if value < 1:
            raise JobError(f"{name} must be at least 1, got {value!r}")


@dataclass(frozen=True)
class LatencyJob:
    """Alternate single calls through the gateway and straight to the simulator.

    `more_targets` are further gRPC servers taking their turn in the same rotation, so
    several gateways are compared in one run against one set of direct calls.
    """

    KIND: ClassVar[str] = "latency"
    grpc_target: str
    http_base: str
    token: str
    model: str
    calls: int
    warmup: int
    wait_seconds: int = 60
    prompt: str = DEFAULT_PROMPT
    api: Api = "grpc"
    more_targets: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        _check(self, at_least_one=("calls", "wait_seconds"))
        if self.warmup < 0:
            raise JobError(f"warmup must not be negative, got {self.warmup!r}")


@dataclass(frozen=True)
class LatencyResult:
    KIND: ClassVar[str] = "latency_result"
    gateway_seconds: list[float]
    direct_seconds: list[float]
    errors: list[str] = field(default_factory=list)
    more_seconds: list[list[float]] = field(default_factory=list)
    """One list per `more_targets` entry, in its order."""


@dataclass(frozen=True)
class ThroughputJob:
    """`concurrency` callers in a closed loop; calls ending inside the window count."""

    KIND: ClassVar[str] = "throughput"
    grpc_target: str
    model: str
    concurrency: int
    warmup_seconds: float
    measure_seconds: float
    channels: int = 1
    prompt: str = DEFAULT_PROMPT
    api: Api = "grpc"
    max_calls: int = 0
    """Stop starting calls after this many (0: no limit but the window)."""
    caller_token: str = ""
    """Sent as `authorization: Bearer ...` when the gateway has callers configured."""

    def __post_init__(self) -> None:
        _check(self, positive=("warmup_seconds", "measure_seconds"))
        _check(self, at_least_one=("concurrency", "channels"))
        if self.max_calls < 0:
            raise JobError(f"max_calls must not be negative, got {self.max_calls!r}")


@dataclass(frozen=True)
class ThroughputResult:
    KIND: ClassVar[str] = "throughput_result"
    completed: int
    """Calls that ended inside the measured window."""
    total_calls: int
    """Every call made, warm-up included (to divide the server's CPU time by)."""
    measure_seconds: float
    latencies: list[float]
    errors: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class HoldJob:
    """`calls` calls started together (or at `start_rate`), held until the simulator answers."""

    KIND: ClassVar[str] = "hold"
    grpc_target: str
    model: str
    calls: int
    timeout_seconds: float
    start_rate: float | None = None
    """Calls started per second; None starts them all at once."""
    channels: int = 8
    prompt: str = DEFAULT_PROMPT

    def __post_init__(self) -> None:
        _check(self, positive=("timeout_seconds",), at_least_one=("calls", "channels"))
        if self.start_rate is not None:
            _check(self, positive=("start_rate",))


@dataclass(frozen=True)
class HoldResult:
    KIND: ClassVar[str] = "hold_result"
    succeeded: int
    latencies: list[float]
    last_start: float
    """Seconds from the first call's start to the last call's start."""
    first_end: float
    """Seconds from the first call's start to the first call's end."""
    errors: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class StreamJob:
    """Alternate StreamText calls and direct create + SSE reads of the same model."""

    KIND: ClassVar[str] = "stream"
    grpc_target: str
    http_base: str
    token: str
    model: str
    runs: int
    warmup: int
    prompt: str = DEFAULT_PROMPT
    api: Api = "grpc"

    def __post_init__(self) -> None:
        _check(self, at_least_one=("runs",))
        if self.warmup < 0:
            raise JobError(f"warmup must not be negative, got {self.warmup!r}")


@dataclass(frozen=True)
class StreamResult:
    KIND: ClassVar[str] = "stream_result"
    gateway_first_token: list[float]
    gateway_gaps: list[float]
    direct_first_token: list[float]
    direct_gaps: list[float]
    errors: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class UpstreamCall:
    """One prediction run by the gateway (GenerateText) or the official client (run)."""

    client: Literal["gateway", "official", "litellm"]
    model: str
    timeout_seconds: float

    def __post_init__(self) -> None:
        if self.client not in ("gateway", "official", "litellm"):
            raise JobError(
                f"client must be 'gateway', 'official' or 'litellm', got {self.client!r}"
            )
        _check(self, positive=("timeout_seconds",))


@dataclass(frozen=True)
class UpstreamJob:
    """Predictions run concurrently, so the long ones share their wait."""

    KIND: ClassVar[str] = "upstream"
    grpc_target: str
    http_base: str
    token: str
    calls: list[UpstreamCall]
    wait_seconds: int
    prompt: str = DEFAULT_PROMPT
    peer_base: str = ""
    """LiteLLM's proxy, for calls whose client is `litellm`."""

    def __post_init__(self) -> None:
        _check(self, at_least_one=("wait_seconds",))
        if not self.calls:
            raise JobError("calls must name at least one prediction to run")


@dataclass(frozen=True)
class UpstreamOutcome:
    client: str
    model: str
    ok: bool
    seconds: float
    cold_boot: bool
    detail: str = ""


@dataclass(frozen=True)
class UpstreamResult:
    KIND: ClassVar[str] = "upstream_result"
    outcomes: list[UpstreamOutcome]


@dataclass(frozen=True)
class AbandonJob:
    """One call on a long prediction, dropped by its caller after `after_seconds`."""

    KIND: ClassVar[str] = "abandon"
    target: str
    api: Api
    model: str
    after_seconds: float
    timeout_seconds: float = 60.0
    """The call's deadline: what the gateway bounds its held create and Cancel-After by."""
    prompt: str = DEFAULT_PROMPT

    def __post_init__(self) -> None:
        _check(self, positive=("after_seconds", "timeout_seconds"))


@dataclass(frozen=True)
class AbandonResult:
    KIND: ClassVar[str] = "abandon_result"
    dropped: bool
    """False when the call ended on its own before the caller could drop it."""
    detail: str = ""


@dataclass(frozen=True)
class Progress:
    """A milestone the orchestrator may be waiting for (say, every held call started)."""

    KIND: ClassVar[str] = "progress"
    stage: str


Job = LatencyJob | ThroughputJob | HoldJob | StreamJob | UpstreamJob | AbandonJob
Result = (
    LatencyResult
    | ThroughputResult
    | HoldResult
    | StreamResult
    | UpstreamResult
    | AbandonResult
    | Progress
)

JOB_KINDS: dict[str, type[Job]] = {
    cls.KIND: cls
    for cls in (LatencyJob, ThroughputJob, HoldJob, StreamJob, UpstreamJob, AbandonJob)
}
RESULT_KINDS: dict[str, type[Result]] = {
    cls.KIND: cls
    for cls in (
        LatencyResult,
        ThroughputResult,
        HoldResult,
        StreamResult,
        UpstreamResult,
        AbandonResult,
        Progress,
    )
}
