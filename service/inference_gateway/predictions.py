"""Running one prediction to its end: wait, follow, stream, cancel.

A create holds the request with `Prefer: wait` for as long as the caller's deadline
allows (at most 60 s), so most predictions cost one request. A longer one is
followed over its SSE stream (one more request, then a final GET for the summary),
or, for a model without a stream, by GETs that back off to one every few seconds,
starting where the backoff would be had it been polling through the held create.
Whatever the gateway stops waiting for, it cancels: a prediction that nobody will
read is never left running.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Mapping
from contextlib import aclosing, suppress
from dataclasses import dataclass
from typing import Any, Protocol

from inference_gateway import tracing
from inference_gateway.deadlines import Deadline
from inference_gateway.domain import TextDelta
from inference_gateway.errors import (
    DeadlineExceeded,
    GatewayError,
    deadline_exceeded,
)
from inference_gateway.replicate import Prediction, ReplicateClient, StreamUnavailable
from inference_gateway.request_log import current_record

__all__ = ["CancelObserver", "PredictionRunner", "RunnerSettings", "output_text"]

_LOGGER = logging.getLogger(__name__)
# Leave the server this long to answer a held create before the caller's deadline.
_WAIT_MARGIN = 2.0
_MIN_CANCEL_AFTER = 5
_CANCEL_TIMEOUT = 5.0


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


class CancelObserver(Protocol):
    """Told of every cancel the runner sends; the metrics module plugs in here."""

    def cancel_sent(self, reason: str) -> None: ...


class _NoCancelObserver:
    def cancel_sent(self, reason: str) -> None:
        pass


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

    @property
    def running(self) -> Mapping[str, str]:
        return self._running

    def _wait_for(self, deadline: Deadline) -> int:
        left = deadline.remaining() - _WAIT_MARGIN
        return max(1, min(self._settings.max_wait_seconds, int(left)))

    @staticmethod
    def _cancel_after(deadline: Deadline) -> int:
        return max(_MIN_CANCEL_AFTER, math.ceil(deadline.remaining()))

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
    ) -> Prediction:
        """Runs a prediction to its end and returns it, whatever its final status.

        `on_created` hears of the prediction as soon as it exists; `on_leave`, when set,
        decides what happens to it if the caller leaves (by default it is canceled).
        `hold_seconds` caps the held create, so a hedged call sees a boot in time.
        """
        held = self._wait_for(deadline)
        if hold_seconds is not None:
            held = max(1, min(held, hold_seconds))
        created = await self._create(
            path,
            body,
            token=token,
            deadline=deadline,
            wait_seconds=held,
            hooks=(on_created, on_leave),
        )
        return await self._see_through(created, token, deadline, held, on_leave)

    async def attach(
        self, prediction_id: str, *, token: str, deadline: Deadline, on_leave: OnLeave | None
    ) -> Prediction:
        """Sees an existing prediction (an idempotent request's) through to its end."""
        current = await self._client.get_prediction(prediction_id, token=token, deadline=deadline)
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
        async with self._following(created, token, on_leave):
            try:
                async with asyncio.timeout(deadline.remaining()):
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
                events = self._client.stream_events(
                    created.stream_url, token=token, deadline=deadline
                )
                async with aclosing(events):
                    async for event in events:
                        if event.event in ("done", "error"):
                            break
            except StreamUnavailable as exc:
                _LOGGER.info("prediction %s: %s; polling instead", created.id, exc)
            else:
                return await self._client.get_prediction(created.id, token=token, deadline=deadline)
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
        try:
            async with asyncio.timeout(deadline.remaining()):
                return await self._follow(created, token, deadline, self._settings.max_wait_seconds)
        except TimeoutError:
            raise deadline_exceeded(prediction_id=created.id, last_status=created.status) from None

    async def stream(
        self,
        path: str,
        body: Mapping[str, Any],
        *,
        token: str,
        deadline: Deadline,
        on_created: OnCreated | None = None,
        on_leave: OnLeave | None = None,
    ) -> AsyncGenerator[TextDelta | Prediction, None]:
        """Yields text as the model produces it, then the final prediction.

        What has been yielded is tracked by length, so a stream resumed by
        Last-Event-ID or replaced by the prediction's output never repeats text. The
        final prediction is yielded after the follow ends, so a consumer may stop
        there without the prediction being taken for abandoned.
        """
        created = await self._create(
            path,
            body,
            token=token,
            deadline=deadline,
            wait_seconds=None,
            hooks=(on_created, on_leave),
        )
        async with aclosing(self._stream_from(created, token, deadline, on_leave)) as items:
            async for item in items:
                yield item

    async def attach_stream(
        self, prediction_id: str, *, token: str, deadline: Deadline, on_leave: OnLeave | None
    ) -> AsyncGenerator[TextDelta | Prediction, None]:
        """An existing prediction's text from its start (its stream replays what it
        missed), then the final prediction."""
        current = await self._client.get_prediction(prediction_id, token=token, deadline=deadline)
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
        sent = 0
        streamed = False
        final = created
        # The stream's span ends before the final prediction goes out: what the caller
        # does with it is not Replicate's time.
        with tracing.span("replicate.stream"):
            async with self._following(created, token, on_leave):
                if created.stream_url is not None:
                    try:
                        events = self._client.stream_events(
                            created.stream_url, token=token, deadline=deadline
                        )
                        async with aclosing(events):
                            async for event in events:
                                if event.event == "output" and event.data:
                                    sent += len(event.data)
                                    yield TextDelta(event.data)
                                elif event.event in ("done", "error"):
                                    # The prediction itself says how it ended, with its logs.
                                    streamed = True
                                    break
                    except StreamUnavailable as exc:
                        _LOGGER.info("prediction %s: %s; reading its output", created.id, exc)
                # Whatever the stream did not deliver (all of it, without a stream) comes
                # from the prediction's output.
                async for item in self._poll_text(created, sent, token, deadline, now=streamed):
                    if isinstance(item, Prediction):
                        final = item
                    else:
                        yield item
        yield final

    async def _poll_text(
        self, created: Prediction, sent: int, token: str, deadline: Deadline, *, now: bool
    ) -> AsyncIterator[TextDelta | Prediction]:
        """Yields new output text, polling until the end; `now` skips the first wait."""
        delay = self._settings.poll_initial
        if now:
            current = await self._client.get_prediction(created.id, token=token, deadline=deadline)
        else:
            current = created
        while True:
            text = output_text(current.output)
            if len(text) > sent:
                yield TextDelta(text[sent:])
                sent = len(text)
            if current.terminal:
                yield current
                return
            current = await self._poll_once(created, token, deadline, delay)
            delay = min(self._settings.poll_max, delay * self._settings.poll_factor)

    async def look(self, prediction_id: str, *, token: str, deadline: Deadline) -> Prediction:
        """One GET of a prediction being followed (routing's boot checks and progress)."""
        return await self._client.get_prediction(prediction_id, token=token, deadline=deadline)

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
        if not deadline.allows(delay):
            await asyncio.sleep(deadline.remaining())
            raise deadline_exceeded(prediction_id=created.id, last_status=created.status)
        await asyncio.sleep(delay)
        return await self._client.get_prediction(created.id, token=token, deadline=deadline)

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
    ) -> Prediction:
        """Creates a prediction; if the caller leaves while Replicate holds the request,
        the create is let finish so the prediction's id is known, and it is canceled then
        (or handed to `hooks`: told it exists, then left as `on_leave` says).

        Dropping the connection instead would leave a prediction nobody can name running
        until its Cancel-After.
        """
        create = self._client.create_prediction(
            path,
            body,
            token=token,
            deadline=deadline,
            wait_seconds=wait_seconds,
            cancel_after_seconds=cancel_after_seconds or self._cancel_after(deadline),
        )
        task = asyncio.get_running_loop().create_task(tracing.traced("replicate.create", create))
        self._creates.add(task)
        task.add_done_callback(self._creates.discard)
        try:
            created = await asyncio.shield(task)
        except asyncio.CancelledError:
            task.add_done_callback(lambda done: self._orphaned(done, token, hooks))
            raise
        record = current_record()
        if record is not None:
            record.prediction_id = created.id
        if hooks[0] is not None:
            await hooks[0](created)
        return created

    def _orphaned(
        self,
        done: asyncio.Task[Prediction],
        token: str,
        hooks: tuple[OnCreated | None, OnLeave | None],
    ) -> None:
        if done.cancelled() or done.exception() is not None:
            return
        created = done.result()
        on_created, on_leave = hooks
        if on_leave is None or self._shutting_down:
            if not created.terminal:
                self.cancel_soon(created.id, token, self._leave_reason())
            return

        async def hand_over() -> None:
            if on_created is not None:
                await on_created(created)
            if not created.terminal:
                await on_leave(lambda: self.cancel(created.id, token, self._leave_reason()))

        self.track(hand_over())

    def _leave_reason(self) -> str:
        return "shutdown" if self._shutting_down else "caller_cancelled"

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
        self._on_cancel.cancel_sent(reason)
        try:
            await tracing.traced(
                "replicate.cancel",
                self._client.cancel_prediction(
                    prediction_id, token=token, deadline=Deadline.after(_CANCEL_TIMEOUT)
                ),
            )
        except GatewayError as exc:
            _LOGGER.warning("cancel of prediction %s (%s) failed: %s", prediction_id, reason, exc)
        else:
            _LOGGER.info("canceled prediction %s (%s)", prediction_id, reason)

    def begin_shutdown(self) -> None:
        """From now on, predictions left behind are canceled for the shutdown's sake."""
        self._shutting_down = True

    async def cancel_all(self) -> None:
        """Cancels every prediction still being followed (at shutdown)."""
        running = list(self._running.items())
        self._canceled.update(pid for pid, _ in running)
        await asyncio.gather(*(self.cancel(pid, tok, "shutdown") for pid, tok in running))

    async def drain_cancels(self) -> None:
        """Waits for held creates and background cancels, so no cancel is lost at shutdown.

        A held create answers within its `Prefer: wait`, so this ends within a minute.
        """
        while self._creates or self._cancels:
            await asyncio.gather(*self._creates, *self._cancels, return_exceptions=True)


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
            reason = self._runner._leave_reason()
            if self._on_leave is None or runner._shutting_down:
                runner.cancel_soon(self._id, self._token, reason)
            else:
                runner.track(self._on_leave(lambda: runner.cancel(self._id, self._token, reason)))
        elif isinstance(exc, DeadlineExceeded):
            task = self._runner.cancel_soon(self._id, self._token, "deadline")
            # If the handler is torn down meanwhile, the cancel still goes out.
            with suppress(asyncio.CancelledError):
                await asyncio.shield(task)
