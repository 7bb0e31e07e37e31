"""How big each measurement is: the full suite (`make bench`) and a smoke run for `make test`.

The smoke plan runs every figure through the same code with tiny sizes and short
times, so the test suite proves the harness works without taking minutes. Its
numbers mean nothing and its table says so.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

__all__ = ["FULL", "QUICK", "SMOKE", "Plan", "PlanError"]


class PlanError(ValueError):
    """A plan whose sizes cannot be run; the message names the field."""


@dataclass(frozen=True)
class Plan:
    name: str
    startup_runs: int
    latency_calls: int
    latency_warmup: int
    throughput_concurrency: tuple[int, int]
    """The low and the high concurrency, compared with each other for flatness."""
    throughput_warmup_seconds: float
    throughput_seconds: float
    throughput_rounds: int
    """Each round measures every server at every concurrency, in alternating order."""
    sync_wait_seconds: int
    """`Prefer: wait` the gateway and the official client ask for (Replicate allows 60)."""
    upstream_seconds: tuple[float, float, float]
    """Prediction lengths: within the sync wait, a cold boot past it, a long run."""
    hold_calls: tuple[int, ...]
    """In-flight counts held at once: the target first, then stretch goals."""
    hold_seconds: float
    health_window_seconds: float
    stream_runs: int
    stream_warmup: int
    stream_tokens: int
    stream_token_interval: float
    peer_latency_calls: int
    """Single calls each way in figure 7 (LiteLLM's each take a second or more)."""
    peer_stream_runs: int
    peer_throughput_warmup_seconds: float
    peer_throughput_seconds: float
    peer_calls: int
    """Calls each server has served when its resident memory is read."""
    peer_fill_cap_seconds: float
    """The most time spent topping a slow server up to `peer_calls`."""
    peer_boot_seconds: tuple[float, float]
    """Cold boots, in real seconds: one within the sync wait, one past it."""
    peer_abandon_after_seconds: float
    peer_abandon_deadline_seconds: float
    """The abandoned call's deadline: the gateway holds its create at most this long (and
    refuses one under GATEWAY_MIN_DEADLINE)."""
    resource_phase_seconds: float
    """Figure 9: the background's measured window in each phase (the quiet one included)."""
    resource_background: int
    """Figure 9: concurrent background GenerateText callers, in a closed loop."""
    resource_hostile: int
    """Figure 9: concurrent callers driving each bounded input."""
    resource_cache_size: int
    """Figure 9: GATEWAY_SCHEMA_CACHE_SIZE; `resource_models` distinct ids go past it."""
    resource_models: int
    resource_file_bytes: int
    """Figure 9: size of each output file fetched for include_data."""
    resource_output_budget: int
    """Figure 9: GATEWAY_OUTPUT_BYTES_BUDGET, below what the hostile callers ask for."""

    def __post_init__(self) -> None:
        counts = {
            "startup_runs": self.startup_runs,
            "latency_calls": self.latency_calls,
            "throughput_rounds": self.throughput_rounds,
            "sync_wait_seconds": self.sync_wait_seconds,
            "stream_runs": self.stream_runs,
            "stream_tokens": self.stream_tokens,
            "peer_latency_calls": self.peer_latency_calls,
            "peer_stream_runs": self.peer_stream_runs,
            "peer_calls": self.peer_calls,
            "resource_background": self.resource_background,
            "resource_hostile": self.resource_hostile,
            "resource_cache_size": self.resource_cache_size,
            **{
                f"throughput_concurrency[{i}]": c for i, c in enumerate(self.throughput_concurrency)
            },
            **{f"hold_calls[{i}]": c for i, c in enumerate(self.hold_calls)},
        }
        for name, value in counts.items():
            if value < 1:
                raise PlanError(f"{name} must be at least 1, got {value}")
        if not self.hold_calls:
            raise PlanError("hold_calls must name at least one in-flight count")
        within, past_wait, _ = self.upstream_seconds
        if not 0 < within < self.sync_wait_seconds < past_wait:
            raise PlanError(
                "upstream_seconds must be one run within sync_wait_seconds and the others past "
                f"it; got {self.upstream_seconds} with a {self.sync_wait_seconds} s wait"
            )
        if self.hold_seconds <= self.health_window_seconds:
            raise PlanError("health_window_seconds must fit inside hold_seconds")
        if self.resource_models <= self.resource_cache_size:
            raise PlanError("resource_models must go past resource_cache_size")
        if not 0 < self.resource_file_bytes <= self.resource_output_budget:
            raise PlanError("resource_file_bytes must be positive and fit the output budget")
        if self.resource_hostile * self.resource_file_bytes <= self.resource_output_budget:
            raise PlanError("resource_hostile files must ask for more than resource_output_budget")


FULL = Plan(
    name="full",
    startup_runs=5,
    latency_calls=2000,
    latency_warmup=200,
    throughput_concurrency=(32, 128),
    throughput_warmup_seconds=1.0,
    throughput_seconds=4.0,
    throughput_rounds=5,
    sync_wait_seconds=60,
    upstream_seconds=(5.0, 90.0, 200.0),
    hold_calls=(5000, 10000),
    hold_seconds=30.0,
    health_window_seconds=8.0,
    stream_runs=150,
    stream_warmup=20,
    stream_tokens=8,
    stream_token_interval=0.01,
    peer_latency_calls=30,
    peer_stream_runs=12,
    peer_throughput_warmup_seconds=2.0,
    peer_throughput_seconds=8.0,
    peer_calls=2000,
    peer_fill_cap_seconds=45.0,
    peer_boot_seconds=(40.0, 90.0),
    peer_abandon_after_seconds=2.0,
    peer_abandon_deadline_seconds=15.0,
    resource_phase_seconds=8.0,
    resource_background=2,
    resource_hostile=8,
    resource_cache_size=1024,
    resource_models=1536,
    resource_file_bytes=8 << 20,
    resource_output_budget=32 << 20,
)

SMOKE = Plan(
    name="smoke",
    startup_runs=1,
    latency_calls=20,
    latency_warmup=5,
    throughput_concurrency=(4, 16),
    throughput_warmup_seconds=0.1,
    throughput_seconds=0.3,
    throughput_rounds=1,
    sync_wait_seconds=1,
    upstream_seconds=(0.2, 2.0, 3.0),
    hold_calls=(30,),
    hold_seconds=0.6,
    health_window_seconds=0.15,
    stream_runs=6,
    stream_warmup=1,
    stream_tokens=4,
    stream_token_interval=0.005,
    peer_latency_calls=4,
    peer_stream_runs=2,
    peer_throughput_warmup_seconds=0.1,
    peer_throughput_seconds=0.3,
    peer_calls=150,
    peer_fill_cap_seconds=3.0,
    peer_boot_seconds=(0.3, 1.5),
    peer_abandon_after_seconds=0.3,
    peer_abandon_deadline_seconds=6.0,
    resource_phase_seconds=0.3,
    resource_background=1,
    resource_hostile=4,
    resource_cache_size=8,
    resource_models=12,
    resource_file_bytes=256 << 10,
    resource_output_budget=512 << 10,
)

QUICK = replace(
    FULL,
    name="quick",
    throughput_warmup_seconds=0.5,
    throughput_seconds=2.0,
    throughput_rounds=3,
)
"""`make bench-quick`: three short rounds of the throughput figure, well under two minutes."""
