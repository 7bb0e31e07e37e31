"""The simulator's clock: simulated time runs `time_scale` times faster than real time.

Every duration the simulator simulates (run times, cold boots, token pace, idle-to-cold
time, `Prefer: wait` holds, `Cancel-After`, added latency and fault delays, per-minute
rate windows) is a number of simulated seconds and lasts that divided by the scale in
real time. What the simulator reports as a record of time (`created_at`, `started_at`,
`completed_at`, `metrics`, SSE event ids) is read from this clock too, so a 90 s cold boot
at scale 60 takes 1.5 s yet still reports 90 s of queue. What it reports as an instruction
to wait (`retry_after`, `ratelimit-reset`) is in real seconds, since a client that waits
that long in its own time must then be admitted. The request log is the test's own
observation and stays in real time.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable

__all__ = ["SimClock", "check_time_scale"]


def check_time_scale(scale: float) -> float:
    """`scale` if it is a usable time scale, else ValueError saying what to give."""
    if isinstance(scale, bool) or not isinstance(scale, int | float) or not scale > 0:
        raise ValueError(f"time_scale must be a number > 0, got {scale!r}")
    if not math.isfinite(scale):
        raise ValueError(f"time_scale must be finite, got {scale!r}")
    return float(scale)


class SimClock:
    """Simulated wall and monotonic time, anchored so a change of scale never jumps them."""

    def __init__(
        self,
        scale: float = 1.0,
        *,
        wall: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._real = monotonic
        self._scale = check_time_scale(scale)
        self._real_anchor = monotonic()
        self._simulated_anchor = self._real_anchor
        self._wall_offset = wall() - self._real_anchor

    @property
    def scale(self) -> float:
        return self._scale

    @scale.setter
    def scale(self, scale: float) -> None:
        """Change the pace from now on; durations already under way keep their old pace."""
        new = check_time_scale(scale)
        self._simulated_anchor = self.monotonic()
        self._real_anchor = self._real()
        self._scale = new

    def monotonic(self) -> float:
        """Simulated seconds on a clock that never goes back (for intervals)."""
        return self._simulated_anchor + (self._real() - self._real_anchor) * self._scale

    def now(self) -> float:
        """Simulated Unix time (for the timestamps the API reports)."""
        return self.monotonic() + self._wall_offset

    def real(self, seconds: float) -> float:
        """How long `seconds` of simulated time last in real time."""
        return seconds / self._scale

    def real_whole_seconds(self, seconds: float) -> int:
        """A simulated wait as the whole real seconds a client must wait (at least 1)."""
        return max(1, math.ceil(self.real(seconds)))

    async def sleep(self, seconds: float) -> None:
        """Sleep `seconds` of simulated time."""
        await asyncio.sleep(self.real(seconds))
