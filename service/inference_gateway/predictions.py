"""Running one prediction to its end: wait, follow, stream, cancel.

A create holds the request with `Prefer: wait` for a few seconds (`max_wait`, 5 s by
default), so a short prediction costs one request. A longer one is followed over its
SSE stream (one more request, then a read of the summary), or, for a model without a
stream, by GETs that back off to one every few seconds, starting where the backoff
would be had it been polling through the held create. The hold is short because
while Replicate holds a create the gateway does not know the prediction's id and so
cannot cancel it: a caller that leaves, or a shutdown, cancels it only when the hold
ends. Whatever the gateway stops waiting for, it cancels: a prediction that nobody
will read is never left running.

Every step runs within the call's Deadline (see deadlines.py): at the limit the
prediction is canceled and DEADLINE_EXCEEDED raised. Each create carries a
Cancel-After, Replicate's own backstop for a prediction the gateway could not cancel
itself: the deadline's remaining time, except that Replicate accepts no less than 5 s,
so a call with under 5 s left gets 5 s and, should the gateway fail to cancel it (a
create still held when shutdown's grace ends, a crash), its prediction may run on for
less than 5 s after its caller's deadline.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
from collections.abc import AsyncGenerator, Awaitable, Callable, Iterator, Mapping
from contextlib import aclosing, contextmanager, suppress
from dataclasses import dataclass
from typing import Any, Protocol

from inference_gateway import call_events, tracing
from inference_gateway.deadlines import Deadline, bounded
from inference_gateway.domain import TextDelta
from inference_gateway.errors import (
    DeadlineExceeded,
    GatewayError,
    about_prediction,
    deadline_exceeded,
    from_prediction_outcome,
    shut_down_during_create,
)
from inference_gateway.replicate import (
    Prediction,
    ReplicateClient,
    StreamUnavailable,
    parse_timestamp,
)

__all__ = [
    "CANCEL_WINDOW_SECONDS",
    "HEDGE_LOST",
    "MIN_CANCEL_AFTER_SECONDS",
    "CancelObserver",
    "PredictionRunner",
    "RunnerSettings",
    "ended_at_cancel_after",
    "output_text",
]

_LOGGER = logging.getLogger(__name__)
# Leave the server this long, or a third of the time left if less, to answer a held
# create before the caller's deadline.
_WAIT_MARGIN = 2.0
# Replicate's shortest Cancel-After: no prediction can be bounded to end sooner.
MIN_CANCEL_AFTER_SECONDS = 5
# The longest a cancel may take, and what shutdown allows for the last ones.
CANCEL_WINDOW_SECONDS = 5.0
# The message a hedge's loser is canceled with, and the reason its cancel is counted under.
HEDGE_LOST = "hedge_lost"
# After the stream's `done` the API may lag behind (a separate component): read it
# again soon, then backing off.
_SETTLE_INITIAL = 0.1


@dataclass(frozen=True, slots=True)
class RunnerSettings:
    # Settings.max_wait: written there once.
    max_wait_seconds: int
    poll_initial: float = 0.5
    poll_factor: float = 1.5
    poll_max: float = 5.0


def output_text(output: object) -> str:
    """A text model's output: a list of chunks (joined) or one string."""
    if output is None:
        return ""
    if isinstance(output, str):
        return output
    if isinstance(output, list):
        return "".join(item for item in output if isinstance(item, str))
    return ""


# Told of a prediction as soon as it exists.
OnCreated = Callable[[Prediction], Awaitable[None]]
# Given the way to cancel a prediction whose caller left; returns what to do instead.
OnLeave = Callable[[Callable[[], Awaitable[None]]], Awaitable[None]]
# Told of a create as it goes out: a call that ends while Replicate still holds it learns
# from it, once it answers, which prediction it made (to charge it).
OnCreate = Callable[["asyncio.Future[Prediction]"], None]


def ended_at_cancel_after(prediction: Prediction) -> bool:
    """Whether Replicate canceled the prediction at its Cancel-After, the caller's deadline.

    Cancel-After is rounded down to whole seconds, so it can come just before the
    gateway's own deadline does.
    """
    deadline = parse_timestamp(prediction.raw.get("deadline"))
    completed = parse_timestamp(prediction.raw.get("completed_at"))
    return (
        prediction.status == "canceled"
        and deadline is not None
        and completed is not None
        and completed >= deadline
    )


class CancelObserver(Protocol):
    """Told of every cancel the runner sends; the metrics module plugs in here."""

    def cancel_sent(self, reason: str) -> None: ...


class _NoCancelObserver:
    def cancel_sent(self, reason: str) -> None:
        pass


@dataclass(frozen=True, slots=True)
class _Streamed:
    """What a prediction's stream said by its `done`: the outputs, and whether it succeeded."""

    outputs: tuple[str, ...]
    succeeded: bool


class PredictionRunner:
    """Creates predictions and sees each one through to a terminal status."""

    def __init__(
        self,
        client: ReplicateClient,
        settings: RunnerSettings,
        *,
        on_cancel: CancelObserver | None = None,
    ) -> None:
        self._client = client
        self._settings = settings
        self._on_cancel: CancelObserver = on_cancel or _NoCancelObserver()
        # Prediction id -> token, for every prediction being followed right now.
        self._running: dict[str, str] = {}
        self._cancels: set[asyncio.Task[None]] = set()
        self._creates: set[asyncio.Task[Prediction]] = set()
        self._shutting_down = False
        # Followed predictions already canceled by cancel_all, so their followers don't repeat it.
        self._canceled: set[str] = set()
        # Predictions canceled because this process shuts down: their calls say so
        # (errors.from_prediction_outcome), not that someone canceled them.
        self.shutdown_canceled: set[str] = set()
        # Set when the grace ends (cancel_all): a follower waiting for its next poll and a
        # call whose create Replicate still holds answer then, before gRPC aborts them.
        self._stopping = asyncio.Event()
        # Each prediction cancel_all canceled, with its cancel (Replicate's answer to it).
        self._shutdown_cancels: dict[str, asyncio.Task[Prediction | None]] = {}
        # Creates whose callers wait for them: cancel_all wakes them.
        self._waiting: set[asyncio.Future[None]] = set()

    @property
    def running(self) -> Mapping[str, str]:
        return self._running

    def _wait_for(self, deadline: Deadline) -> int | None:
        """The held create's seconds, ending well before the deadline so the prediction's
        id is known in time to cancel it there; None (no hold) when not even a second fits."""
        remaining = deadline.remaining()
        held = math.floor(remaining - min(_WAIT_MARGIN, remaining / 3))
        return min(self._settings.max_wait_seconds, held) if held >= 1 else None

    @staticmethod
    def _cancel_after(deadline: Deadline) -> int:
        """Whole seconds, rounded down, so the prediction cannot outlive its caller.

        With under 5 s left (a short deadline, or a fallback or hedge begun late) that is
        Replicate's minimum, 5 s, later than the caller's deadline: the gateway cancels
        the prediction itself at the deadline, as on every path, and the Cancel-After is
        only the backstop for when it cannot (then the prediction runs on for less than
        5 s after its caller's deadline).
        """
        return max(MIN_CANCEL_AFTER_SECONDS, math.floor(deadline.remaining()))

    async def run(
        self,
        path: str,
        body: Mapping[str, Any],
        *,
        token: str,
        deadline: Deadline,
        on_created: OnCreated | None = None,
        on_leave: OnLeave | None = None,
        hold_seconds: int | None = None,
        on_create: OnCreate | None = None,
    ) -> Prediction:
        """Runs a prediction to its end and returns it, whatever its final status.

        `on_created` hears of the prediction as soon as it exists; `on_leave`, when set,
        decides what happens to it if the caller leaves (by default it is canceled).
        `hold_seconds` caps the held create, so a hedged call sees a boot in time.
        """
        held = self._wait_for(deadline)
        if held is not None and hold_seconds is not None:
            held = max(1, min(held, hold_seconds))
        created = await self._create(
            path,
            body,
            token=token,
            deadline=deadline,
            wait_seconds=held,
            hooks=(on_created, on_leave),
            on_create=on_create,
        )
        return await self._see_through(created, token, deadline, held or 0.0, on_leave)

    async def attach(
        self, prediction_id: str, *, token: str, deadline: Deadline, on_leave: OnLeave | None
    ) -> Prediction:
        """Sees an existing prediction (an idempotent request's) through to its end."""
        with _about(prediction_id):
            current = await self._client.get_prediction(
                prediction_id, token=token, deadline=deadline
            )
        return await self._see_through(current, token, deadline, 0.0, on_leave)

    async def _see_through(
        self,
        created: Prediction,
        token: str,
        deadline: Deadline,
        held: float,
        on_leave: OnLeave | None,
    ) -> Prediction:
        if created.terminal:
            return created
        with _about(created.id):
            async with self._following(created, token, on_leave):
                try:
                    async with deadline.timeout():
                        return await tracing.traced(
                            "replicate.wait", self._follow(created, token, deadline, held)
                        )
                except TimeoutError:
                    raise deadline_exceeded(
                        prediction_id=created.id, last_status=created.status
                    ) from None

    async def _follow(
        self, created: Prediction, token: str, deadline: Deadline, held: float
    ) -> Prediction:
        if created.stream_url is not None:
            try:
                streamed = await self._read_stream(created.stream_url, token, deadline)
            except StreamUnavailable as exc:
                _LOGGER.info("prediction %s: %s; polling instead", created.id, exc)
            else:
                return await self._settle(created, token, deadline, streamed)
        return await self._poll(created, token, deadline, self._backoff_after(held))

    async def submit(
        self,
        path: str,
        body: Mapping[str, Any],
        *,
        token: str,
        deadline: Deadline,
        cancel_after_seconds: int,
    ) -> Prediction:
        """Creates a prediction and returns at once; it ends by itself by its Cancel-After."""
        return await self._create(
            path,
            body,
            token=token,
            deadline=deadline,
            wait_seconds=None,
            cancel_after_seconds=cancel_after_seconds,
        )

    async def follow(self, created: Prediction, token: str, deadline: Deadline) -> Prediction:
        """Follows a submitted prediction to its end: its stream, or polls at the pace `run`
        reaches after a held create, since nobody waits on the answer in a call.

        Unlike `run`, stopping early (a deadline, a shutdown) leaves the prediction
        running: someone else may follow it, and its Cancel-After ends it regardless.
        """
        with _about(created.id):
            try:
                async with deadline.timeout():
                    return await self._follow(
                        created, token, deadline, self._settings.max_wait_seconds
                    )
            except TimeoutError:
                raise deadline_exceeded(
                    prediction_id=created.id, last_status=created.status
                ) from None

    async def _read_stream(self, url: str, token: str, deadline: Deadline) -> _Streamed:
        outputs: list[str] = []
        events = self._client.stream_events(url, token=token, deadline=deadline)
        async with aclosing(events):
            async for event in events:
                if event.event == "output":
                    outputs.append(event.data)
                elif event.event == "error":
                    return _Streamed(tuple(outputs), succeeded=False)
                elif event.event == "done":
                    return _Streamed(tuple(outputs), succeeded=_done_succeeded(event.data))
        raise StreamUnavailable("the stream ended without done")

    async def _settle(
        self, created: Prediction, token: str, deadline: Deadline, streamed: _Streamed | None
    ) -> Prediction:
        """Reads the prediction until Replicate's API says it ended, as its stream did.

        The stream and the API are separate components: just after `done` the API may
        still say `processing`, which is lag, never a failure. When the deadline leaves
        no time to read again, a stream that ended in success is the answer, with the
        output it carried, so text already received is never lost.
        """
        delay = _SETTLE_INITIAL
        current = await self._client.get_prediction(created.id, token=token, deadline=deadline)
        while not current.terminal:
            if not deadline.allows(delay):
                if streamed is not None and streamed.succeeded:
                    _LOGGER.info(
                        "prediction %s: the API still says %s after the stream's done; "
                        "answering from the stream",
                        created.id,
                        current.status,
                    )
                    raw = {**current.raw, "status": "succeeded", "output": list(streamed.outputs)}
                    return Prediction(id=current.id, status="succeeded", raw=raw)
                raise deadline_exceeded(prediction_id=created.id, last_status=current.status)
            await asyncio.sleep(delay)
            current = await self._client.get_prediction(created.id, token=token, deadline=deadline)
            delay = min(self._settings.poll_max, delay * 2)
        return current

    async def stream(
        self,
        path: str,
        body: Mapping[str, Any],
        *,
        token: str,
        deadline: Deadline,
        on_created: OnCreated | None = None,
        on_leave: OnLeave | None = None,
        on_create: OnCreate | None = None,
    ) -> AsyncGenerator[TextDelta | Prediction, None]:
        """Yields text as the model produces it, then the final prediction.

        Each step is bounded by the deadline, so a stream kept open by keep-alives or
        log lines without ever ending still ends there, canceled. The final prediction
        is yielded after the follow ends, so a consumer may stop there without the
        prediction being taken for abandoned.
        """
        created = await self._create(
            path,
            body,
            token=token,
            deadline=deadline,
            wait_seconds=None,
            hooks=(on_created, on_leave),
            on_create=on_create,
        )
        async with aclosing(self._stream_from(created, token, deadline, on_leave)) as items:
            async for item in items:
                yield item

    async def attach_stream(
        self, prediction_id: str, *, token: str, deadline: Deadline, on_leave: OnLeave | None
    ) -> AsyncGenerator[TextDelta | Prediction, None]:
        """An existing prediction's text from its start (its stream replays what it
        missed), then the final prediction."""
        with _about(prediction_id):
            current = await self._client.get_prediction(
                prediction_id, token=token, deadline=deadline
            )
        async with aclosing(self._stream_from(current, token, deadline, on_leave)) as items:
            async for item in items:
                yield item

    async def _stream_from(
        self, created: Prediction, token: str, deadline: Deadline, on_leave: OnLeave | None
    ) -> AsyncGenerator[TextDelta | Prediction, None]:
        if created.terminal:
            text = output_text(created.output)
            if text:
                yield TextDelta(text)
            yield created
            return
        final = created
        # The stream's span ends before the final prediction goes out: what the caller
        # does with it is not Replicate's time.
        with _about(created.id), tracing.span_across_yields("replicate.stream"):
            async with self._following(created, token, on_leave):
                try:
                    async with aclosing(
                        bounded(self._stream_steps(created, token, deadline), deadline)
                    ) as steps:
                        async for item in steps:
                            if isinstance(item, Prediction):
                                final = item
                            else:
                                yield item
                except TimeoutError:
                    raise deadline_exceeded(
                        prediction_id=created.id, last_status=final.status
                    ) from None
        yield final

    async def _stream_steps(
        self, created: Prediction, token: str, deadline: Deadline
    ) -> AsyncGenerator[TextDelta | Prediction, None]:
        """The text, then the final prediction; what has been yielded is tracked by length,
        so a stream resumed by Last-Event-ID or replaced by the prediction's output never
        repeats text."""
        sent = 0
        streamed: _Streamed | None = None
        if created.stream_url is not None:
            outputs: list[str] = []
            try:
                events = self._client.stream_events(
                    created.stream_url, token=token, deadline=deadline
                )
                async with aclosing(events):
                    async for event in events:
                        if event.event == "output" and event.data:
                            outputs.append(event.data)
                            sent += len(event.data)
                            yield TextDelta(event.data)
                        elif event.event in ("done", "error"):
                            # The prediction itself says how it ended, with its logs.
                            succeeded = event.event == "done" and _done_succeeded(event.data)
                            streamed = _Streamed(tuple(outputs), succeeded=succeeded)
                            break
            except StreamUnavailable as exc:
                _LOGGER.info("prediction %s: %s; reading its output", created.id, exc)
        if streamed is not None:
            current = await self._settle(created, token, deadline, streamed)
        else:
            # Without a stream, the prediction's output carries the text as it grows.
            current = created
            delay = self._settings.poll_initial
            while True:
                text = output_text(current.output)
                if len(text) > sent:
                    yield TextDelta(text[sent:])
                    sent = len(text)
                if current.terminal:
                    break
                current = await self._poll_once(created, token, deadline, delay)
                delay = min(self._settings.poll_max, delay * self._settings.poll_factor)
        text = output_text(current.output)
        if len(text) > sent:
            yield TextDelta(text[sent:])
        yield current

    async def look(self, prediction_id: str, *, token: str, deadline: Deadline) -> Prediction:
        """One GET of a prediction being followed (routing's boot checks and progress)."""
        return await self._client.get_prediction(prediction_id, token=token, deadline=deadline)

    async def final(
        self, prediction_id: str, *, token: str, within: float = CANCEL_WINDOW_SECONDS
    ) -> Prediction | None:
        """The prediction once terminal, read with backed-off GETs for at most `within`
        seconds (a cancel takes a moment to land); None if it is not by then, or cannot
        be read. What a prediction left behind cost is known only from its final state."""
        deadline = Deadline.after(within)
        delay = self._settings.poll_initial
        while True:
            try:
                current = await self._client.get_prediction(
                    prediction_id, token=token, deadline=deadline
                )
            except GatewayError as exc:
                _LOGGER.info("could not read prediction %s: %s", prediction_id, exc)
                return None
            if current.terminal:
                return current
            if not deadline.allows(delay):
                return None
            await asyncio.sleep(delay)
            delay = min(self._settings.poll_max, delay * self._settings.poll_factor)

    def _backoff_after(self, seconds: float) -> float:
        """The poll delay the backoff reaches after polling for `seconds`.

        Delays d, d·f, d·f², … add up to `seconds` when the next one is d + seconds·(f - 1),
        so a prediction already followed for a minute is polled every poll_max at once,
        rather than a dozen times in its first few seconds of polling.
        """
        settings = self._settings
        return min(settings.poll_max, settings.poll_initial + seconds * (settings.poll_factor - 1))

    async def _poll(
        self, created: Prediction, token: str, deadline: Deadline, first_delay: float
    ) -> Prediction:
        delay = first_delay
        current = created
        while not current.terminal:
            current = await self._poll_once(created, token, deadline, delay)
            delay = min(self._settings.poll_max, delay * self._settings.poll_factor)
        return current

    async def _poll_once(
        self, created: Prediction, token: str, deadline: Deadline, delay: float
    ) -> Prediction:
        pause = delay if deadline.allows(delay) else deadline.remaining()
        if await self._pause(created.id, pause):
            return await self._canceled_at_shutdown(created.id)
        if pause < delay:
            raise deadline_exceeded(prediction_id=created.id, last_status=created.status)
        return await self._client.get_prediction(created.id, token=token, deadline=deadline)

    async def _pause(self, prediction_id: str, seconds: float) -> bool:
        """Sleeps `seconds` between polls; True, at once, if the grace ends meanwhile and
        cancel_all canceled this prediction: its next poll would come after gRPC's abort."""
        loop = asyncio.get_running_loop()
        until = loop.time() + seconds
        if not self._stopping.is_set():
            with suppress(TimeoutError):
                async with asyncio.timeout(seconds):
                    await self._stopping.wait()
        if prediction_id in self._shutdown_cancels:
            return True
        await asyncio.sleep(max(0.0, until - loop.time()))
        return False

    async def _canceled_at_shutdown(self, prediction_id: str) -> Prediction:
        """The prediction as its shutdown cancel left it when that ended it; else the
        shutdown's answer at once, since the grace leaves no time to read it again."""
        final = await self._shutdown_cancels[prediction_id]
        if final is not None and final.terminal:
            return final
        raise from_prediction_outcome(
            "canceled", prediction_id=prediction_id, error=None, logs=None, at_shutdown=True
        )

    async def _create(
        self,
        path: str,
        body: Mapping[str, Any],
        *,
        token: str,
        deadline: Deadline,
        wait_seconds: int | None,
        cancel_after_seconds: int | None = None,
        hooks: tuple[OnCreated | None, OnLeave | None] = (None, None),
        on_create: OnCreate | None = None,
    ) -> Prediction:
        """Creates a prediction; if the caller leaves while Replicate holds the request,
        the create is let finish so the prediction's id is known, and it is canceled then
        (or handed to `hooks`: told it exists, then left as `on_leave` says).

        Dropping the connection instead would leave a prediction nobody can name running
        until its Cancel-After.
        """
        if self._stopping.is_set():
            raise shut_down_during_create(sent=False)
        create = self._client.create_prediction(
            path,
            body,
            token=token,
            deadline=deadline,
            wait_seconds=wait_seconds,
            # A submission's own lifetime; else the call's deadline, as it stands at each attempt.
            cancel_after=(
                (lambda: cancel_after_seconds)
                if cancel_after_seconds is not None
                else (lambda: self._cancel_after(deadline))
            ),
        )
        loop = asyncio.get_running_loop()
        task = loop.create_task(tracing.traced("replicate.create", create))
        self._creates.add(task)
        task.add_done_callback(self._creates.discard)
        if on_create is not None:
            on_create(task)
        # Like asyncio.shield, and cancel_all wakes it too: the grace has ended.
        waiting: asyncio.Future[None] = loop.create_future()
        task.add_done_callback(lambda _: _wake(waiting))
        self._waiting.add(waiting)
        try:
            await waiting
        except asyncio.CancelledError as stop:
            reason = self._leave_reason(stop)
            task.add_done_callback(lambda done: self._orphaned(done, token, hooks, reason))
            raise
        finally:
            self._waiting.discard(waiting)
        if not task.done():
            task.add_done_callback(lambda done: self._orphaned(done, token, hooks, "shutdown"))
            raise shut_down_during_create()
        created = task.result()
        call_events.report().prediction_created(created.id)
        if hooks[0] is not None:
            await hooks[0](created)
        return created

    def _orphaned(
        self,
        done: asyncio.Task[Prediction],
        token: str,
        hooks: tuple[OnCreated | None, OnLeave | None],
        reason: str,
    ) -> None:
        if done.cancelled() or done.exception() is not None:
            return
        created = done.result()
        on_created, on_leave = hooks
        if on_leave is None or reason != "caller_cancelled":
            if not created.terminal:
                self.cancel_soon(created.id, token, reason)
            return

        async def hand_over() -> None:
            if on_created is not None:
                await on_created(created)
            if not created.terminal:
                await on_leave(lambda: self.cancel(created.id, token, reason))

        self.track(hand_over())

    def _leave_reason(self, stop: BaseException) -> str:
        """Why a followed prediction is left: a hedge's loser (the router cancels it with
        HEDGE_LOST), else the shutdown or the caller going away."""
        if self._shutting_down:
            return "shutdown"
        if isinstance(stop, asyncio.CancelledError) and stop.args == (HEDGE_LOST,):
            return HEDGE_LOST
        return "caller_cancelled"

    def _following(
        self, created: Prediction, token: str, on_leave: OnLeave | None = None
    ) -> _Following:
        return _Following(self, created.id, token, on_leave)

    # --- cancellation ----------------------------------------------------------------------

    def cancel_soon(self, prediction_id: str, token: str, reason: str) -> asyncio.Task[None]:
        """Cancels in the background, so a canceled handler need not wait for it."""
        return self.track(self.cancel(prediction_id, token, reason))

    def track(self, work: Awaitable[None]) -> asyncio.Task[None]:
        """Runs `work` (a cancel, or a wait before one) in the background; shutdown
        waits for it with the cancels."""
        task = asyncio.ensure_future(work)
        self._cancels.add(task)
        task.add_done_callback(self._cancels.discard)
        return task

    async def cancel(self, prediction_id: str, token: str, reason: str) -> None:
        """Best effort and bounded: logged, never raised."""
        await self._cancel(prediction_id, token, reason)

    async def _cancel(self, prediction_id: str, token: str, reason: str) -> Prediction | None:
        """`cancel`, returning Replicate's answer: the prediction as the cancel left it."""
        self._on_cancel.cancel_sent(reason)
        try:
            canceled = await tracing.traced(
                "replicate.cancel",
                self._client.cancel_prediction(
                    prediction_id, token=token, deadline=Deadline.after(CANCEL_WINDOW_SECONDS)
                ),
            )
        except GatewayError as exc:
            _LOGGER.warning("cancel of prediction %s (%s) failed: %s", prediction_id, reason, exc)
            return None
        _LOGGER.info("canceled prediction %s (%s)", prediction_id, reason)
        return canceled

    @property
    def shutting_down(self) -> bool:
        return self._shutting_down

    def begin_shutdown(self) -> None:
        """From now on, predictions left behind are canceled for the shutdown's sake."""
        self._shutting_down = True

    async def cancel_all(self) -> None:
        """Cancels every prediction still being followed (at shutdown), and has every call
        answer now: a follower between polls from its cancel, a call whose create
        Replicate still holds at once (its prediction canceled when the create answers)."""
        running = list(self._running.items())
        self._canceled.update(pid for pid, _ in running)
        self.shutdown_canceled.update(pid for pid, _ in running)
        for pid, tok in running:
            self._shutdown_cancels[pid] = asyncio.ensure_future(self._cancel(pid, tok, "shutdown"))
        self._stopping.set()
        for waiting in self._waiting:
            _wake(waiting)
        await asyncio.gather(*self._shutdown_cancels.values())

    async def drain_cancels(self, within: float = CANCEL_WINDOW_SECONDS) -> None:
        """Waits up to `within` seconds for held creates and the cancels they lead to.

        A create still held after that is left to its Cancel-After, which is never later
        than its caller's deadline, except for a call that had under 5 s left (Replicate's
        minimum; see `_cancel_after`): shutdown must end on time, or the orchestrator's
        SIGKILL would cut every cancel short.
        """
        deadline = Deadline.after(within)
        while (self._creates or self._cancels) and not deadline.expired:
            await asyncio.wait({*self._creates, *self._cancels}, timeout=deadline.remaining())
        if self._creates:
            _LOGGER.warning(
                "%d creates still held by Replicate; their predictions end by Cancel-After",
                len(self._creates),
            )


class _Following:
    """Tracks a prediction while it is followed; cancels it if the follower stops early.

    Leaving because the caller went away cancels in the background (the handler is
    being torn down); leaving by the deadline cancels before DEADLINE_EXCEEDED is
    reported; leaving with a terminal prediction or an upstream error sends nothing.
    """

    def __init__(
        self, runner: PredictionRunner, prediction_id: str, token: str, on_leave: OnLeave | None
    ) -> None:
        self._runner = runner
        self._id = prediction_id
        self._token = token
        self._on_leave = on_leave

    async def __aenter__(self) -> None:
        self._runner._running[self._id] = self._token

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: object
    ) -> None:
        runner = self._runner
        runner._running.pop(self._id, None)
        if self._id in runner._canceled:
            runner._canceled.discard(self._id)
            return
        if exc is None:
            return
        if isinstance(exc, asyncio.CancelledError | GeneratorExit):
            reason = self._runner._leave_reason(exc)
            # Only a caller that left may be replaced by a repeat; a loser is done with.
            if self._on_leave is None or reason != "caller_cancelled":
                runner.cancel_soon(self._id, self._token, reason)
            else:
                runner.track(self._on_leave(lambda: runner.cancel(self._id, self._token, reason)))
        elif isinstance(exc, DeadlineExceeded):
            task = self._runner.cancel_soon(self._id, self._token, "deadline")
            # If the handler is torn down meanwhile, the cancel still goes out.
            with suppress(asyncio.CancelledError):
                await asyncio.shield(task)


@contextmanager
def _about(prediction_id: str) -> Iterator[None]:
    """Errors raised inside name the prediction they befell (see errors.about_prediction)."""
    try:
        yield
    except GatewayError as error:
        named = about_prediction(error, prediction_id)
        if named is error:
            raise
        raise named from error


def _wake(waiting: asyncio.Future[None]) -> None:
    if not waiting.done():
        waiting.set_result(None)


def _done_succeeded(data: str) -> bool:
    """Whether a `done` event says the prediction succeeded: `{}`, with no `reason`."""
    try:
        payload = json.loads(data) if data.strip() else {}
    except json.JSONDecodeError:
        return False
    return isinstance(payload, dict) and "reason" not in payload
