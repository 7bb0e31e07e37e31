"""Drive one prediction from `starting` to a terminal status on the event loop.

Everything the run will do is decided up front (a `RunPlan`), so the driver is a
straight line of sleeps and state changes, and `expected_text` can promise exactly
what it will emit. Cancellation is the task being cancelled at one of its sleeps.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from ._clock import SimClock
from ._prediction import Prediction

__all__ = ["RunPlan", "drive"]


@dataclass(frozen=True, slots=True)
class RunPlan:
    """What a prediction will do, computed when it is created."""

    start_delay: float
    """Simulated seconds in `starting` (queue plus any cold boot)."""
    predict_seconds: float
    """Simulated seconds in `processing` before the first output."""
    outputs: tuple[str, ...]
    """Text tokens or file URLs, in order."""
    output_interval: float
    """Pause before each output."""
    start_logs: str
    fail_error: str | None
    fail_logs: str
    fail_after_outputs: int
    never_finishes: bool


async def drive(prediction: Prediction, plan: RunPlan, clock: SimClock) -> None:
    """Run `plan` on `prediction`; the caller cancels this task to cancel the prediction."""
    await clock.sleep(plan.start_delay)
    prediction.start(clock.now())
    if plan.start_logs:
        prediction.add_logs(plan.start_logs, clock.now())
    await clock.sleep(plan.predict_seconds)
    produced = plan.outputs if plan.fail_error is None else plan.outputs[: plan.fail_after_outputs]
    for chunk in produced:
        await clock.sleep(plan.output_interval)
        prediction.add_output(chunk, clock.now())
    if plan.fail_error is not None:
        if plan.fail_logs:
            prediction.add_logs(plan.fail_logs, clock.now())
        prediction.finish("failed", clock.now(), error=plan.fail_error)
        return
    if plan.never_finishes:
        await asyncio.Event().wait()  # only cancellation ends this
    prediction.finish("succeeded", clock.now())
