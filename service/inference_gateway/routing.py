"""Which prediction answers a call: the alias's own model, a fallback, or a hedge.

An alias may name fallbacks (aliases or model ids, tried in order). A call moves to the
next one when its prediction fails in a way another model could fix (`fallback_reason`),
or when its model is still booting so near the deadline that only the fallback's
`fallback_reserve_seconds` are left. With `hedge_after_seconds`, a prediction still
`starting` after that long gets the same input started on the first fallback: the first
to finish (for a stream, the first to send text) answers, and the other is canceled at
once. Once a stream has sent text it never moves to another model.

The core says how to run one candidate (preparing its input afresh for that model's
schema and template); this module only decides which candidate runs, and when.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import AsyncGenerator, Awaitable, Callable, Iterable
from contextlib import aclosing, suppress
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol, TypeVar

from inference_gateway.config import AliasConfig
from inference_gateway.deadlines import Deadline
from inference_gateway.domain import StreamEnd, StreamProgress, StreamStart, TextDelta
from inference_gateway.errors import GatewayError, Unavailable
from inference_gateway.predictions import HEDGE_LOST, PredictionRunner
from inference_gateway.registry import ResolvedModel
from inference_gateway.replicate import Prediction
from inference_gateway.state import Guarantee, SharedState

__all__ = [
    "Attempt",
    "Candidate",
    "Role",
    "Route",
    "Router",
    "RoutingObserver",
    "fallback_reason",
]

_LOGGER = logging.getLogger(__name__)
T = TypeVar("T")
StreamItem = StreamStart | TextDelta | StreamEnd
# Time kept for the GET that decides a switch, on top of what the fallback needs.
_SWITCH_CHECK_SECONDS = 0.5
_RATE_LIMITED = frozenset({"REPLICATE_RATE_LIMITED", "RATE_BUDGET_EXHAUSTED"})
# How long a stream's preamble may wait for its create to answer before it is written: long
# enough for the create to go out first, short enough that a create held up (a rate
# budget, a retry) does not keep the caller from its first message.
_PREAMBLE_HOLD_SECONDS = 0.05


class Role(StrEnum):
    """How the prediction that answered came to run."""

    PRIMARY = "primary"
    FALLBACK = "fallback"
    HEDGE = "hedge"


@dataclass(frozen=True, slots=True)
class Candidate:
    """A model a call may run: the alias or model id as configured, and its account."""

    name: str
    resolved: ResolvedModel
    # The Replicate token its predictions spend; compared, never shown.
    account: str = field(repr=False)


@dataclass(eq=False, slots=True)
class Attempt:
    """One candidate being run; the core reports its prediction as the create answers."""

    candidate: Candidate
    role: Role
    # Caps the held create, so a boot is seen by the time a hedge is due.
    hold_seconds: int | None = None
    prediction: Prediction | None = None
    started: float = field(default_factory=time.monotonic)
    # Its create, once sent: a hedge that loses while Replicate holds it learns its
    # prediction from it later, to be charged (core._LeftBehind).
    create: asyncio.Future[Prediction] | None = None
    _created: asyncio.Future[None] | None = field(default=None, init=False, repr=False)

    async def created(self, prediction: Prediction) -> None:
        self.prediction = prediction
        # Its prediction is known (core._LeftBehind reads the create only until then):
        # the finished task and its coroutine need not be kept while the call waits.
        self.create = None
        if self._created is not None and not self._created.done():
            self._created.set_result(None)

    def when_created(self) -> asyncio.Future[None]:
        """Done once the create has answered: one future for every wait on it, where an
        Event's wait() cost a task (and its cancel) each time a stream's loop came round."""
        if self._created is None:
            self._created = asyncio.get_running_loop().create_future()
            if self.prediction is not None:
                self._created.set_result(None)
        return self._created

    def creating(self, create: asyncio.Future[Prediction]) -> None:
        self.create = create

    @property
    def booting(self) -> bool:
        return self.prediction is not None and self.prediction.status == "starting"


@dataclass(frozen=True, slots=True)
class Route:
    """The candidates of one call, its own model first, and the alias's routing settings."""

    candidates: tuple[Candidate, ...]
    alias: AliasConfig | None

    @property
    def hedge_after(self) -> float | None:
        if self.alias is None or len(self.candidates) < 2:
            return None
        return self.alias.hedge_after_seconds

    def switch_after(self, deadline: Deadline, min_left: float) -> float | None:
        """Seconds from now after which a model still booting is given up for a fallback:
        the deadline less the fallback's reserve, but never less than half the time left,
        and early enough to leave the fallback `min_left`; None when nothing can be left."""
        if self.alias is None or len(self.candidates) < 2:
            return None
        left = deadline.remaining()
        latest = left - min_left - _SWITCH_CHECK_SECONDS
        at = min(max(left - self.alias.fallback_reserve_seconds, left / 2), latest)
        return at if at > 0 else None


def fallback_reason(
    error: GatewayError, *, alias: AliasConfig | None, failed: Candidate, fallback: Candidate
) -> str | None:
    """Why `error` sends the call to `fallback`, or None when it must reach the caller.

    Never the caller's own mistakes (INVALID_ARGUMENT and the like): another model would
    refuse them too, or worse, accept what the caller got wrong.
    """
    if isinstance(error, Unavailable) and error.reason.startswith("REPLICATE_"):
        if _ambiguous_create(error) and not (
            alias is not None and alias.fallback_on_ambiguous_create
        ):
            return None
        return "unavailable"
    if error.reason == "REPLICATE_NOT_FOUND":
        return "not_found"
    if error.reason == "PREDICTION_FAILED" and alias is not None and alias.fallback_on_failure:
        return "failed"
    # Only another account's budget helps: the same token would be throttled the same.
    if error.reason in _RATE_LIMITED and failed.account != fallback.account:
        return "rate_limited"
    return None


def _ambiguous_create(error: GatewayError) -> bool:
    """A create that may have made a prediction: Replicate answered 5xx, or the
    connection was lost after the request went out. A fallback could bill twice."""
    if error.metadata.get("endpoint") != "create":
        return False
    return error.reason == "REPLICATE_UNAVAILABLE" or error.metadata.get("requestSent") == "true"


class RoutingObserver(Protocol):
    """Told of every fallback and hedge; the metrics module plugs in here."""

    def fell_back(self, model: str, reason: str) -> None: ...

    def hedge(self, model: str, outcome: str) -> None: ...


class _Switch(Exception):
    """The own model is still booting too near the deadline: run the fallback instead."""


class _Hedged(Exception):
    """Both the own model and its hedge failed; no third prediction is started."""

    def __init__(self, error: GatewayError) -> None:
        super().__init__(str(error))
        self.error = error


Run = Callable[[Attempt, Deadline], Awaitable[T]]
OpenStream = Callable[[Attempt, Deadline], AsyncGenerator[StreamItem, None]]


class Router:
    """Runs a call's candidates in order, hedging and switching past boots."""

    def __init__(
        self,
        *,
        state: SharedState,
        runner: PredictionRunner,
        observer: RoutingObserver,
        label: Callable[[ResolvedModel], str],
        progress_interval: float,
        min_deadline: float,
    ) -> None:
        self._state = state
        self._runner = runner
        self._observer = observer
        self._label = label
        self._progress_interval = progress_interval
        # GATEWAY_MIN_DEADLINE: a fallback or hedge started with less time left could do
        # nothing useful; with more, it is canceled at the deadline like any prediction.
        self._min_deadline = min_deadline

    # --- blocking calls --------------------------------------------------------------------

    async def answer(self, route: Route, run: Run[T], deadline: Deadline) -> T:
        """The first answer a candidate gives, trying fallbacks as `fallback_reason` allows."""
        first_error: GatewayError | None = None
        index, role = 0, Role.PRIMARY
        while True:
            attempt = Attempt(route.candidates[index], role)
            try:
                if index == 0 and len(route.candidates) > 1:
                    return await self._watched(route, attempt, run, deadline)
                return await run(attempt, deadline)
            except _Switch:
                pass
            except _Hedged as both:
                raise both.error from None
            except GatewayError as error:
                first_error = first_error or error
                if not self.moves_on(route, index, error, deadline):
                    raise first_error from None
            index, role = index + 1, Role.FALLBACK

    def moves_on(self, route: Route, index: int, error: GatewayError, deadline: Deadline) -> bool:
        """Whether candidate `index`, failing with `error`, gives way to the next one
        (`fallback_reason`), with time left for it; logged and counted when it does."""
        if index + 1 >= len(route.candidates) or not deadline.allows(self._min_deadline):
            return False
        failed, fallback = route.candidates[index], route.candidates[index + 1]
        reason = fallback_reason(error, alias=route.alias, failed=failed, fallback=fallback)
        if reason is None:
            return False
        _LOGGER.info("%s: %s (%s); falling back to %s", failed.name, reason, error, fallback.name)
        self._observer.fell_back(self._label(fallback.resolved), reason)
        return True

    async def _watched(self, route: Route, primary: Attempt, run: Run[T], deadline: Deadline) -> T:
        """Runs the own model, hedging it or switching away from it while it boots."""
        hedge_after = route.hedge_after
        watch = _Watch(route, primary, deadline, hedge_after, self._min_deadline)
        # The held create answers by the time a check is due, so the check sees the boot.
        holds = [math.ceil(hedge_after)] if hedge_after is not None else []
        if watch.switch_at is not None:
            holds.append(math.floor(watch.switch_at))
        if holds:
            primary.hold_seconds = max(1, min(holds))
        tasks: dict[asyncio.Future[T], Attempt] = {
            asyncio.ensure_future(run(primary, deadline)): primary
        }
        errors: list[GatewayError] = []
        try:
            while tasks:
                waiters: set[asyncio.Future[Any]] = set(tasks)
                if watch.due() and primary.prediction is None:
                    # A check is due but the held create has not answered yet.
                    waiters.add(primary.when_created())
                done, _ = await asyncio.wait(
                    waiters, timeout=watch.next_in(), return_when=asyncio.FIRST_COMPLETED
                )
                finished = [task for task in tasks if task in done]
                for task in finished:
                    attempt = tasks.pop(task)
                    error = task.exception()
                    if error is None:
                        await _cancel(tasks, HEDGE_LOST)
                        return task.result()
                    if not isinstance(error, GatewayError):
                        raise error
                    # The caller hears of its own model's failure first, a hedge's after.
                    errors.insert(0 if attempt is primary else len(errors), error)
                if tasks:
                    # A check may be due: a timer fired, the held create answered after one
                    # did, or a hedge failed after the switch fell due.
                    await self._on_timer(watch, route, tasks, run, deadline)
        finally:
            await _cancel(tasks)
        if len(errors) > 1:
            raise _Hedged(errors[0])
        raise errors[0]

    async def _on_timer(
        self,
        watch: _Watch,
        route: Route,
        tasks: dict[asyncio.Future[T], Attempt],
        run: Run[T],
        deadline: Deadline,
    ) -> None:
        primary = watch.primary
        if watch.hedge_due() and primary.prediction is not None:
            watch.hedge_at = None
            if primary.booting and await self._may_hedge(route, deadline):
                hedge = Attempt(route.candidates[1], Role.HEDGE)
                tasks[asyncio.ensure_future(run(hedge, deadline))] = hedge
        # While a hedge runs it is the fallback already; one that failed leaves the switch.
        if (
            watch.switch_due()
            and primary.prediction is not None
            and len(tasks) == 1
            and deadline.allows(self._min_deadline)
        ):
            watch.switch_at = None
            if await self._still_booting(primary, deadline):
                fallback = route.candidates[1]
                _LOGGER.info(
                    "%s still booting near the deadline; switching to %s",
                    primary.candidate.name,
                    fallback.name,
                )
                self._observer.fell_back(self._label(fallback.resolved), "deadline")
                raise _Switch

    async def _may_hedge(self, route: Route, deadline: Deadline) -> bool:
        """Within the alias's hedges per minute, counted across replicas."""
        alias = route.alias
        assert alias is not None  # route.hedge_after is set only for an alias
        label = self._label(route.candidates[0].resolved)
        if not deadline.allows(self._min_deadline):
            return False  # too late for another prediction to end within the deadline
        try:
            retry = await self._state.call(
                Guarantee.BUDGET,
                "hit_window",
                deadline,
                lambda store: store.hit_window(f"hedges:{alias.name}", alias.hedges_per_minute, 60),
            )
        except GatewayError as error:
            _LOGGER.warning("no hedge for %s: %s", alias.name, error)
            retry = 1.0
        if retry > 0:
            self._observer.hedge(label, "over_budget")
            return False
        self._observer.hedge(label, "started")
        return True

    async def _still_booting(self, attempt: Attempt, deadline: Deadline) -> bool:
        """One GET: is the prediction still `starting`?"""
        prediction = attempt.prediction
        if prediction is None:
            return False
        try:
            current = await self._runner.look(
                prediction.id, token=attempt.candidate.account, deadline=deadline
            )
        except GatewayError as error:
            _LOGGER.info("could not look at prediction %s: %s", prediction.id, error)
            return False
        return current.status == "starting"

    # --- streams ---------------------------------------------------------------------------

    async def stream(
        self, route: Route, open_stream: OpenStream, deadline: Deadline
    ) -> AsyncGenerator[StreamItem | StreamProgress, None]:
        """The stream of the first candidate to send text; fallbacks only before any text."""
        first_error: GatewayError | None = None
        index, role = 0, Role.PRIMARY
        preamble_sent = False
        while True:
            attempt = Attempt(route.candidates[index], role)
            race = _StreamRace(self, route, attempt, open_stream, deadline, watch=index == 0)
            try:
                async with aclosing(race.items()) as items:
                    async for item in items:
                        if isinstance(item, StreamStart):
                            if preamble_sent:
                                continue
                            preamble_sent = True
                        yield item
                return
            except _Switch:
                pass
            except _Hedged as both:
                raise both.error from None
            except GatewayError as error:
                first_error = first_error or error
                if race.sent_text or not self.moves_on(route, index, error, deadline):
                    raise first_error from None
            index, role = index + 1, Role.FALLBACK


class _Watch:
    """When the own model's hedge and deadline checks fall due."""

    def __init__(
        self,
        route: Route,
        primary: Attempt,
        deadline: Deadline,
        hedge_after: float | None,
        min_left: float,
    ) -> None:
        self.primary = primary
        self.started = time.monotonic()
        self.hedge_at = hedge_after
        self.switch_at = route.switch_after(deadline, min_left)

    def _elapsed(self) -> float:
        return time.monotonic() - self.started

    def hedge_due(self) -> bool:
        return self.hedge_at is not None and self._elapsed() >= self.hedge_at

    def switch_due(self) -> bool:
        return self.switch_at is not None and self._elapsed() >= self.switch_at

    def due(self) -> bool:
        return self.hedge_due() or self.switch_due()

    def next_in(self) -> float | None:
        """Seconds to the next check not yet due, or None for none."""
        pending = [at for at in (self.hedge_at, self.switch_at) if at is not None]
        pending = [at - self._elapsed() for at in pending]
        pending = [left for left in pending if left > 0]
        return min(pending) if pending else None


class _StreamRace:
    """Streams of the own model (and maybe a hedge) until one sends text; then that one."""

    def __init__(
        self,
        router: Router,
        route: Route,
        primary: Attempt,
        open_stream: OpenStream,
        deadline: Deadline,
        *,
        watch: bool,
    ) -> None:
        self._router = router
        self._route = route
        self._open = open_stream
        self._deadline = deadline
        self._watch = (
            _Watch(route, primary, deadline, route.hedge_after, router._min_deadline)
            if watch
            else None
        )
        self._primary = primary
        self._streams: dict[Attempt, AsyncGenerator[StreamItem, None]] = {}
        self._next: dict[asyncio.Future[StreamItem], Attempt] = {}
        self._errors: list[GatewayError] = []
        # The first item of each attempt that answered (its first text, or its end).
        self._first: dict[Attempt, StreamItem] = {}
        self._reported: set[Attempt] = set()
        self._last_look = time.monotonic()
        self.sent_text = False

    def _start(self, attempt: Attempt) -> None:
        stream = self._open(attempt, self._deadline)
        self._streams[attempt] = stream
        self._next[asyncio.ensure_future(anext(stream))] = attempt

    async def _first_step(self) -> StreamStart | Attempt | None:
        """The own model's first item, awaited here rather than in a task: until its
        preamble (admission, prompt, idempotency) there is nothing to race or report, and
        the task's hop sat on every stream's path to its create and first token."""
        primary = self._primary
        stream = self._open(primary, self._deadline)
        self._streams[primary] = stream
        try:
            item = await anext(stream)
        except StopAsyncIteration:
            return None
        except GatewayError as error:
            self._errors.append(error)
            return None
        return self._took(primary, item)

    async def items(self) -> AsyncGenerator[StreamItem | StreamProgress, None]:
        try:
            winner = None
            async with aclosing(self._before_text()) as before:
                async for item in before:
                    if isinstance(item, Attempt):
                        winner = item
                    else:
                        yield item
            if winner is None:
                return
            self.sent_text = True
            yield self._first[winner]
            async for item in self._streams[winner]:
                yield item
        finally:
            await _cancel(self._next)
            for stream in self._streams.values():
                with suppress(Exception):
                    await stream.aclose()

    async def _before_text(self) -> AsyncGenerator[StreamItem | StreamProgress | Attempt, None]:
        """Progress and preambles until an attempt sends text (then that attempt)."""
        outcome = await self._first_step()
        if isinstance(outcome, Attempt):
            yield outcome
            return
        # Written now, the preamble went out ahead of the create (its write is the
        # loop's work), and so delayed the first token of every stream. It waits for
        # the create's answer, or anything else, and still precedes all that follows.
        held = outcome
        while self._next:
            for attempt in list(self._streams):
                if attempt.prediction is not None and attempt not in self._reported:
                    # The create's own answer: a progress message that costs nothing.
                    self._reported.add(attempt)
                    yield _progress(attempt, attempt.prediction)
            waiters: set[asyncio.Future[Any]] = set(self._next)
            waiters.update(a.when_created() for a in self._streams if a.prediction is None)
            timeout = self._timeout()
            if held is not None:
                hold = _PREAMBLE_HOLD_SECONDS
                timeout = hold if timeout is None else min(timeout, hold)
            done, _ = await asyncio.wait(
                waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
            )
            if held is not None:
                yield held
                held = None
            outcome = None
            finished = [task for task in self._next if task in done]
            for task in finished:
                attempt = self._next.pop(task)
                outcome = self._settle(task, attempt) or outcome
                if isinstance(outcome, Attempt):
                    break
            if isinstance(outcome, Attempt):
                await self._drop_others(outcome)
                yield outcome
                return
            if isinstance(outcome, StreamStart):
                yield outcome
            if self._next:
                async with aclosing(self._on_timer()) as progresses:
                    async for progress in progresses:
                        yield progress
        if len(self._errors) > 1:
            raise _Hedged(self._errors[0])
        if self._errors:
            raise self._errors[0]

    def _settle(
        self, task: asyncio.Future[StreamItem], attempt: Attempt
    ) -> StreamStart | Attempt | None:
        """One attempt's next item: a preamble to pass on, text (it wins), or its end."""
        if task.cancelled():
            return None
        error = task.exception()
        if error is not None:
            if isinstance(error, StopAsyncIteration):
                return None
            if not isinstance(error, GatewayError):
                raise error
            # The caller hears of its own model's failure first, a hedge's after.
            self._errors.insert(0 if attempt is self._primary else len(self._errors), error)
            return None
        return self._took(attempt, task.result())

    def _took(self, attempt: Attempt, item: StreamItem) -> StreamStart | Attempt:
        """A preamble passes on (and the attempt's next item is awaited); text, or the end
        of a prediction that produced none, makes the attempt the one that answers."""
        if isinstance(item, StreamStart):
            self._next[asyncio.ensure_future(anext(self._streams[attempt]))] = attempt
            return item
        # Text, or the end of a prediction that produced none: this attempt answers.
        self._first[attempt] = item
        return attempt

    async def _drop_others(self, winner: Attempt) -> None:
        losers = {task: a for task, a in self._next.items() if a is not winner}
        await _cancel(losers, HEDGE_LOST)
        for task in losers:
            self._next.pop(task, None)
        for attempt, stream in list(self._streams.items()):
            if attempt is not winner:
                with suppress(Exception):
                    await stream.aclose()

    def _timeout(self) -> float | None:
        waits = [self._last_look + self._router._progress_interval - time.monotonic()]
        if self._watch is not None:
            check = self._watch.next_in()
            if check is not None:
                waits.append(check)
        return max(0.0, min(waits))

    async def _on_timer(self) -> AsyncGenerator[StreamProgress, None]:
        watch, router = self._watch, self._router
        if watch is not None and self._primary in self._streams:
            primary = self._primary
            if watch.hedge_due() and primary.prediction is not None:
                watch.hedge_at = None
                if primary.booting and await router._may_hedge(self._route, self._deadline):
                    self._start(Attempt(self._route.candidates[1], Role.HEDGE))
            # While a hedge runs it is the fallback already; one that failed leaves the switch.
            if (
                watch.switch_due()
                and primary.prediction is not None
                and all(attempt is primary for attempt in self._next.values())
                and self._deadline.allows(router._min_deadline)
            ):
                watch.switch_at = None
                if await router._still_booting(primary, self._deadline):
                    fallback = self._route.candidates[1]
                    router._observer.fell_back(router._label(fallback.resolved), "deadline")
                    raise _Switch
        if time.monotonic() - self._last_look >= router._progress_interval:
            # One GET per progress interval, of the newest prediction still booting.
            self._last_look = time.monotonic()
            looking = [a for a in self._streams if a.prediction is not None]
            if looking:
                attempt = looking[-1]
                assert attempt.prediction is not None
                try:
                    current = await router._runner.look(
                        attempt.prediction.id,
                        token=attempt.candidate.account,
                        deadline=self._deadline,
                    )
                except GatewayError as error:
                    _LOGGER.info("progress of %s: %s", attempt.prediction.id, error)
                else:
                    yield _progress(attempt, current)


def _progress(attempt: Attempt, prediction: Prediction) -> StreamProgress:
    return StreamProgress(
        prediction_id=prediction.id,
        status=prediction.status,
        seconds=time.monotonic() - attempt.started,
        model=attempt.candidate.name,
        role=str(attempt.role),
    )


async def _cancel(tasks: Iterable[asyncio.Future[Any]], why: str | None = None) -> None:
    """Cancels what still runs, once each, and waits for each to settle; `why` reaches the
    runner as the CancelledError's message (HEDGE_LOST: its cancel is counted as such)."""
    pending = [task for task in tasks if not task.done()]
    for task in pending:
        task.cancel(why)
    await asyncio.gather(*pending, return_exceptions=True)
