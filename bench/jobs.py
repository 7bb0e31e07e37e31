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
    "RESULT_KINDS",
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
    """Alternate single calls through the gateway and straight to the simulator."""

    KIND: ClassVar[str] = "latency"
    grpc_target: str
    http_base: str
    token: str
    model: str
    calls: int
    warmup: int
    wait_seconds: int = 60
    prompt: str = DEFAULT_PROMPT

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

    def __post_init__(self) -> None:
        _check(self, positive=("warmup_seconds", "measure_seconds"))
        _check(self, at_least_one=("concurrency", "channels"))


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

    client: Literal["gateway", "official"]
    model: str
    timeout_seconds: float

    def __post_init__(self) -> None:
        if self.client not in ("gateway", "official"):
            raise JobError(f"client must be 'gateway' or 'official', got {self.client!r}")
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
class Progress:
    """A milestone the orchestrator may be waiting for (say, every held call started)."""

    KIND: ClassVar[str] = "progress"
    stage: str


Job = LatencyJob | ThroughputJob | HoldJob | StreamJob | UpstreamJob
Result = LatencyResult | ThroughputResult | HoldResult | StreamResult | UpstreamResult | Progress

JOB_KINDS: dict[str, type[Job]] = {
    cls.KIND: cls for cls in (LatencyJob, ThroughputJob, HoldJob, StreamJob, UpstreamJob)
}
RESULT_KINDS: dict[str, type[Result]] = {
    cls.KIND: cls
    for cls in (LatencyResult, ThroughputResult, HoldResult, StreamResult, UpstreamResult, Progress)
}
