"""Drive one prediction from `starting` to a terminal status on the event loop.

Everything the run will do is decided up front (a `RunPlan`), so the driver is a
straight line of sleeps and state changes, and `expected_text` can promise exactly
what it will emit. Cancellation is the task being cancelled at one of its sleeps.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

from ._prediction import Prediction

__all__ = ["RunPlan", "drive"]


@dataclass(frozen=True, slots=True)
class RunPlan:
    """What a prediction will do, computed when it is created."""

    start_delay: float
    """Seconds in `starting` (queue plus any cold boot)."""
    predict_seconds: float
    """Seconds in `processing` before the first output."""
    outputs: tuple[str, ...]
    """Text tokens or file URLs, in order."""
    output_interval: float
    """Pause before each output."""
    start_logs: str
    fail_error: str | None
    fail_logs: str
    fail_after_outputs: int
    never_finishes: bool


async def drive(prediction: Prediction, plan: RunPlan) -> None:
    """Run `plan` on `prediction`; the caller cancels this task to cancel the prediction."""
    await asyncio.sleep(plan.start_delay)
    prediction.start(time.time())
    if plan.start_logs:
        prediction.add_logs(plan.start_logs, time.time())
    await asyncio.sleep(plan.predict_seconds)
    produced = plan.outputs if plan.fail_error is None else plan.outputs[: plan.fail_after_outputs]
    for chunk in produced:
        await asyncio.sleep(plan.output_interval)
        prediction.add_output(chunk, time.time())
    if plan.fail_error is not None:
        if plan.fail_logs:
            prediction.add_logs(plan.fail_logs, time.time())
        prediction.finish("failed", time.time(), error=plan.fail_error)
        return
    if plan.never_finishes:
        await asyncio.Event().wait()  # only cancellation ends this
    prediction.finish("succeeded", time.time())
