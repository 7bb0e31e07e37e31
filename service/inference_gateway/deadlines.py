"""Deadlines as monotonic instants, so every wait and timeout derives from the caller's."""

from __future__ import annotations

import time
from dataclasses import dataclass

__all__ = ["Deadline"]


@dataclass(frozen=True, slots=True)
class Deadline:
    """An instant on the monotonic clock; propagated as remaining time, never wall time."""

    at: float

    @classmethod
    def after(cls, seconds: float) -> Deadline:
        return cls(time.monotonic() + seconds)

    def remaining(self) -> float:
        return max(0.0, self.at - time.monotonic())

    @property
    def expired(self) -> bool:
        return time.monotonic() >= self.at

    def allows(self, seconds: float) -> bool:
        """Whether waiting `seconds` still leaves the deadline in the future."""
        return time.monotonic() + seconds < self.at
