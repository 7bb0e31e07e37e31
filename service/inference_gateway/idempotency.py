"""Idempotent requests (Google AIP-155): one prediction per (caller, request_id).

The first call with a request_id claims a record in the shared state and creates the
prediction; the record then holds the prediction's id while it runs, and the final
prediction (Replicate's JSON: text and image URLs; not the input's text or files, never
image bytes) for the retention window. A repeat, on any replica, attaches instead of
creating: it follows the same prediction (a stream from its start), or replays the
stored end. While the first call's create is in flight the record is claimed under a
lease, so simultaneous repeats make one prediction; a replica killed mid-create leaves a
claim that expires after its lease, and a repeat after that creates again (nothing
recorded which prediction, if any, it made).

A call routed over several predictions (an alias's fallbacks, a hedge past a boot) owns
one record: it names the newest prediction while the call runs, and the one that answered
(with who answered, and in what role) once it ends. A repeat of such a call waits for the
call, not for one of its predictions (any may yet lose), then replays the answer.

A call whose caller leaves does not cancel its prediction at once: the record waits
`grace_seconds` with no holder, the first repeat to arrive adopts it, and if none does
the prediction is canceled and the record dropped (a later repeat runs anew).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from inference_gateway.config import CallerConfig
from inference_gateway.deadlines import Deadline
from inference_gateway.domain import RequestId
from inference_gateway.errors import DeadlineExceeded, GatewayError, InvalidArgument
from inference_gateway.predictions import OnLeave
from inference_gateway.replicate import Prediction
from inference_gateway.state import ClaimOutcome, Guarantee, SharedState, StateStore

__all__ = [
    "Idempotency",
    "IdempotencySettings",
    "ReplayObserver",
    "Ticket",
]

_LOGGER = logging.getLogger(__name__)
# How often a repeat looks again while the first call's create is still in flight.
_WAIT_INTERVAL = 0.2
# The end of a prediction's logs a record keeps (errors quote their last lines).
_LOG_TAIL_CHARS = 4096
# Where a record keeps who answered, beside the prediction's own JSON.
_ANSWER_KEY = "gatewayAnswer"


class ReplayObserver(Protocol):
    def idempotent_replay(self, outcome: str) -> None: ...


@dataclass(frozen=True, slots=True)
class IdempotencySettings:
    """Built from the gateway's Settings (core.py), where each default is defined."""

    lease_seconds: float
    retention_seconds: float
    grace_seconds: float


class Idempotency:
    """Claims, attaches and replays requests by request_id."""

    def __init__(
        self, state: SharedState, settings: IdempotencySettings, observer: ReplayObserver
    ) -> None:
        self._state = state
        self._settings = settings
        self._observer = observer

    async def begin(
        self,
        caller: CallerConfig | None,
        request_id: RequestId | None,
        deadline: Deadline,
        *,
        routed: bool = False,
    ) -> Ticket | None:
        """What this call does about its request_id; None when it has none.

        `routed`: the call may run several predictions, so a repeat waits for the call's
        answer rather than attaching to whichever prediction the record names now.
        """
        if request_id is None:
            return None
        name = caller.name if caller is not None else ""
        ticket = Ticket(self, f"idem:{name}:{request_id.value}", uuid.uuid4().hex)
        settings = self._settings
        while True:
            claim = await self._state.call(
                Guarantee.IDEMPOTENCY,
                "claim",
                deadline,
                lambda s: s.claim(
                    ticket.key,
                    request_id.fingerprint,
                    ticket.holder,
                    settings.lease_seconds,
                    settings.retention_seconds,
                ),
            )
            if claim.outcome is ClaimOutcome.MISMATCH:
                raise InvalidArgument(
                    f"request_id {request_id.value} was first used for a different request; "
                    "a retry must repeat its request exactly, and a new request needs a new "
                    "request_id",
                    reason="REQUEST_ID_REUSED",
                    metadata={"requestId": request_id.value},
                )
            if claim.outcome is ClaimOutcome.DONE:
                assert claim.response is not None
                self._observer.idempotent_replay("replayed")
                stored = json.loads(claim.response)
                answer = stored.pop(_ANSWER_KEY, None)
                if isinstance(answer, Mapping):
                    ticket.answered_by = str(answer.get("by", ""))
                    ticket.role = str(answer.get("role", ""))
                ticket.done = Prediction.parse(stored, endpoint="record")
                return ticket
            if claim.outcome is ClaimOutcome.RUNNING and (claim.prediction_id is None or routed):
                # The first call is creating its prediction, or routing between several:
                # look again shortly.
                if not deadline.allows(_WAIT_INTERVAL):
                    doing = "routing its call" if claim.prediction_id else "creating its prediction"
                    raise DeadlineExceeded(
                        f"the first call with request_id {request_id.value} is still "
                        f"{doing}; retry with the same request_id",
                        reason="REQUEST_ID_IN_FLIGHT",
                        metadata={"requestId": request_id.value},
                    )
                await asyncio.sleep(_WAIT_INTERVAL)
                continue
            if claim.prediction_id is not None:
                self._observer.idempotent_replay("attached")
                ticket.prediction_id = claim.prediction_id
            ticket.owner = claim.outcome is not ClaimOutcome.RUNNING
            ticket.repeat = ticket.prediction_id is not None
            if ticket.owner:
                ticket.keep_alive()
            return ticket

    async def _call(self, op: str, fn: Callable[[StateStore], Awaitable[object]]) -> None:
        """A store call after the fact: failures are logged, the record's lease ends it."""
        try:
            await self._state.call(Guarantee.IDEMPOTENCY, op, None, fn)
        except GatewayError as exc:  # fail-closed, and the store is down
            _LOGGER.warning("idempotency record: %s failed: %s", op, exc)


def _replayable(raw: Mapping[str, Any]) -> dict[str, Any]:
    """What a replay needs of a finished prediction, so a record costs the store no more
    than its answer: the input's numbers only (a per-output-second price reads its duration
    there), never its text and files, which are the request's own (up to its size limit),
    and the tail of the logs, which is all an error quotes."""
    kept = dict(raw)
    given = raw.get("input")
    if isinstance(given, Mapping):
        kept["input"] = {
            name: value
            for name, value in given.items()
            if isinstance(value, int | float) and not isinstance(value, bool)
        }
    logs = raw.get("logs")
    if isinstance(logs, str) and len(logs) > _LOG_TAIL_CHARS:
        kept["logs"] = logs[-_LOG_TAIL_CHARS:]
    return kept


class Ticket:
    """One call's part in a request_id's record.

    `done`: the stored end, to replay (`answered_by` and `role` say who answered it).
    Else `repeat`: follow the prediction `prediction_id` names. Else this call owns the
    record and creates its predictions. `owner` says whether this call completes the
    record (it claimed it, or adopted it from a call that left).
    """

    def __init__(self, idempotency: Idempotency, key: str, holder: str) -> None:
        self._idempotency = idempotency
        self.key = key
        self.holder = holder
        self.done: Prediction | None = None
        self.answered_by = ""
        self.role = ""
        self.prediction_id: str | None = None
        self.repeat = False
        self.owner = False
        self._keeper: asyncio.Task[None] | None = None

    def keep_alive(self) -> None:
        """Refreshes the claim's lease while this call runs."""
        self._keeper = asyncio.ensure_future(self._refresh())

    async def _refresh(self) -> None:
        lease = self._idempotency._settings.lease_seconds
        state = self._idempotency._state
        while True:
            await asyncio.sleep(lease / 3)
            with contextlib.suppress(GatewayError):
                await state.call(
                    Guarantee.IDEMPOTENCY,
                    "renew_claim",
                    None,
                    lambda s: s.renew_claim(self.key, self.holder, lease),
                )

    def _stop(self) -> None:
        if self._keeper is not None:
            self._keeper.cancel()
            self._keeper = None

    async def created(self, prediction: Prediction) -> None:
        """Records the new prediction's id, so repeats attach to it."""
        self.prediction_id = prediction.id
        lease = self._idempotency._settings.lease_seconds
        await self._idempotency._call(
            "renew_claim", lambda s: s.renew_claim(self.key, self.holder, lease, prediction.id)
        )

    async def finish(self, prediction: Prediction, *, answered_by: str, role: str) -> None:
        """Stores the end, and who answered, for repeats within the retention window."""
        self._stop()
        if not self.owner:
            return
        kept = {**_replayable(prediction.raw), _ANSWER_KEY: {"by": answered_by, "role": role}}
        response = json.dumps(kept, separators=(",", ":")).encode()
        retention = self._idempotency._settings.retention_seconds
        await self._idempotency._call(
            "complete", lambda s: s.complete(self.key, self.holder, response, retention)
        )

    def left(self) -> None:
        """The caller left: a prediction already made is handed to `leave` by the runner;
        a claim with none expires after its lease."""
        self._stop()

    async def fail(self) -> None:
        """The call failed before a prediction was recorded: a repeat may create again."""
        self._stop()
        if self.owner and self.prediction_id is None:
            await self._idempotency._call(
                "release_claim", lambda s: s.release_claim(self.key, self.holder)
            )

    async def release(self) -> None:
        """Drops the record, whatever prediction it names: the gateway canceled that at its
        shutdown, so a repeat runs the request again rather than replay the cancel."""
        self._stop()
        if self.owner:
            await self._idempotency._call(
                "release_claim", lambda s: s.release_claim(self.key, self.holder)
            )

    def leave_for(self, newest: Callable[[], bool]) -> OnLeave:
        """`leave` for one of a routed call's predictions: only the newest (a hedge, a
        fallback) waits for a repeat to adopt it; an older one, which it overtook or
        replaced, is canceled at once."""

        async def left(cancel: Callable[[], Awaitable[None]]) -> None:
            if newest():
                await self.leave(cancel)
            else:
                await cancel()

        return left

    async def leave(self, cancel: Callable[[], Awaitable[None]]) -> None:
        """The caller left: wait the grace for a repeat to adopt, else cancel.

        A repeat that attached to another call's prediction leaves it to that call.
        """
        self._stop()
        if not self.owner:
            return
        idempotency = self._idempotency
        grace = idempotency._settings.grace_seconds
        state = idempotency._state
        try:
            abandoned = await state.call(
                Guarantee.IDEMPOTENCY,
                "abandon_claim",
                None,
                lambda s: s.abandon_claim(self.key, self.holder, grace),
            )
            if abandoned:
                await asyncio.sleep(grace)
                adopted = not await state.call(
                    Guarantee.IDEMPOTENCY,
                    "release_claim",
                    None,
                    lambda s: s.release_claim(self.key, ""),
                )
                if adopted:
                    return
        except GatewayError as exc:  # the store failed: cancel, as without a request_id
            _LOGGER.warning("idempotency record of an abandoned call: %s", exc)
        await cancel()
