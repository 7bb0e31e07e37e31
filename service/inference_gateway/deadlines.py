"""Deadlines as monotonic instants, so every wait and timeout derives from the caller's.

The one rule: a call's Deadline bounds every step of it. A step that does not hand
control back to the caller runs inside `deadline.timeout()`; a stream is read through
`bounded()`, so a source that keeps sending something (keep-alives, log lines) but
never ends cannot outlive the deadline either. Both raise TimeoutError at the limit;
the prediction runner turns it into DEADLINE_EXCEEDED and cancels what it started.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator
from contextlib import aclosing
from dataclasses import dataclass
from typing import TypeVar

__all__ = ["Deadline", "bounded"]

T = TypeVar("T")


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

    def timeout(self) -> asyncio.Timeout:
        """An asyncio timeout at this deadline: TimeoutError when it passes."""
        return asyncio.timeout(self.remaining())


async def bounded(source: AsyncGenerator[T, None], deadline: Deadline) -> AsyncGenerator[T, None]:
    """Yields `source`'s items, waiting for each no later than the deadline; closes it.

    The wait is bounded item by item, never across a `yield`: the consumer's own time
    between items (writing to a slow caller) runs in the consumer's context, where a
    timeout of ours must not fire.
    """
    async with aclosing(source):
        while True:
            if deadline.expired:
                # An item ready without a pause would never give the timeout its turn.
                raise TimeoutError
            async with deadline.timeout():
                try:
                    item = await anext(source)
                except StopAsyncIteration:
                    return
            yield item
