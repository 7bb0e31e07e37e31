"""What one call did, reported where it happens and recorded in one place.

The core, the prediction runner, the Replicate client and accounting report facts as
they happen (as httpx's event hooks report requests and responses); none of them knows
the request log line or the RPC's span. The edge (grpc_api/interceptors.py) installs one
listener per call and alone turns what it hears into both. Where no call listens (a
submitted operation's follower), reports go nowhere; the metrics are counted either way.
"""

from __future__ import annotations

import contextlib
import contextvars
from dataclasses import dataclass
from typing import Protocol

from inference_gateway import tracing
from inference_gateway.metrics import Metrics

__all__ = [
    "CallListener",
    "FinishedPrediction",
    "first_token",
    "listen",
    "prediction_ended_in_stream",
    "prediction_finished",
    "report",
    "stop_listening",
]


@dataclass(frozen=True, slots=True)
class FinishedPrediction:
    """What a terminal prediction says about itself, as the gateway reports it."""

    id: str
    status: str
    queue_seconds: float | None
    predict_seconds: float | None
    cold_boot: bool
    input_tokens: float | None
    output_tokens: float | None
    # owner/name:version as Replicate ran it.
    response_model: str | None


class CallListener(Protocol):
    """The events of one call. Each is told once per fact; a later one overrides."""

    def model_chosen(self, label: str) -> None: ...

    def prompt_built(self, prompt: str) -> None: ...

    def prediction_created(self, prediction_id: str) -> None: ...

    def first_token(self, seconds: float) -> None: ...

    def prediction_finished(self, finished: FinishedPrediction) -> None: ...

    def answered_from_cache(self, prediction_id: str, status: str) -> None: ...

    def upstream_request(self) -> None: ...

    def cost_known(self, amount: str, currency: str, cache_hit: bool) -> None: ...


class _Nobody:
    def model_chosen(self, label: str) -> None:
        pass

    def prompt_built(self, prompt: str) -> None:
        pass

    def prediction_created(self, prediction_id: str) -> None:
        pass

    def first_token(self, seconds: float) -> None:
        pass

    def prediction_finished(self, finished: FinishedPrediction) -> None:
        pass

    def answered_from_cache(self, prediction_id: str, status: str) -> None:
        pass

    def upstream_request(self) -> None:
        pass

    def cost_known(self, amount: str, currency: str, cache_hit: bool) -> None:
        pass


_NOBODY = _Nobody()
# The call's listener travels with the call (its hedges' tasks copy it), as a span does.
_LISTENER: contextvars.ContextVar[CallListener] = contextvars.ContextVar(
    "call_listener", default=_NOBODY
)


def report() -> CallListener:
    """The current call's listener; one that ignores everything outside a call."""
    return _LISTENER.get()


def listen(listener: CallListener) -> contextvars.Token[CallListener]:
    return _LISTENER.set(listener)


def stop_listening(token: contextvars.Token[CallListener]) -> None:
    """Forgets the call's listener; nothing to do when the call ends in another context
    (the event loop closes an abandoned stream handler from a task of its own)."""
    with contextlib.suppress(ValueError):
        _LISTENER.reset(token)


def first_token(metrics: Metrics, label: str, seconds: float) -> None:
    """A stream's first text, `seconds` after the call began: its metric (with the
    trace as exemplar) and the call's report."""
    metrics.time_to_first_token.labels(label).observe(seconds, tracing.exemplar())
    report().first_token(seconds)


def prediction_ended_in_stream(metrics: Metrics, label: str, status: str) -> None:
    """A prediction whose stream reported its end (failed, canceled) without a final
    read: counted; its id and status reach the log line through the call's error."""
    metrics.predictions.labels(label, status).inc()


def prediction_finished(
    metrics: Metrics, label: str, finished: FinishedPrediction, *, role: str
) -> None:
    """Counts a finished prediction in the metrics and reports it to the call: the one
    place a prediction's end is recorded, for blocking calls and submitted ones alike.

    `role` names the routed attempt that answered (primary, fallback, hedge).
    """
    metrics.predictions.labels(label, finished.status).inc()
    queue = finished.queue_seconds
    if queue is not None:
        metrics.queue_duration.labels(label).observe(queue)
    if finished.cold_boot:
        metrics.cold_boots.labels(label).inc()
    metrics.model_ran(label, queue if finished.cold_boot else None)
    if finished.predict_seconds is not None:
        metrics.predict_duration.labels(label).observe(finished.predict_seconds)
    if finished.input_tokens is not None:
        metrics.input_tokens.labels(label).inc(finished.input_tokens)
    if finished.output_tokens is not None:
        metrics.output_tokens.labels(label).inc(finished.output_tokens)
    if finished.status == "succeeded":
        metrics.answers.labels(label, role).inc()
    report().prediction_finished(finished)
