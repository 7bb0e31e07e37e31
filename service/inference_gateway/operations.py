"""Long-running operations: submit a prediction, then read, wait for or cancel it anywhere.

A submission is resolved, checked and created exactly as a blocking call is (the core's
`prepare`; a create that fails falls back as its does), without `Prefer: wait`, and with
the caller's deadline as Replicate's Cancel-After, so a prediction nobody watches still
ends. Its record lives in the shared
state store, so any replica answers for it. One replica at a time follows it to its end
(over its stream, or polls, as the blocking path does), holding a lease on it in the
store; when that replica stops (a shutdown, a crash), its lease lapses and another
replica, sweeping the store or asked about the operation, takes over. Nobody leaving
cancels a submitted prediction: only CancelOperation or its deadline does.

Operation names are `operations/<payload>.<signature>`: the payload carries the
operation id, the prediction ids, the model as the request named it (the reference to
the token to use, never the token) and a keyed tag of the caller; the signature is an
HMAC over it with the operations key. A name that does not verify (forged, altered,
truncated, or signed with another key) is INVALID_ARGUMENT. A valid name presented by
another caller is PERMISSION_DENIED, as AIP-211 asks whether or not the caller could
know the resource exists: a signed name can only come from this gateway, so saying so
tells its holder nothing new, and PERMISSION_DENIED names the real fix (call as the
submitting caller) where NOT_FOUND would send them looking for a typo.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextvars
import hashlib
import hmac
import json
import logging
import math
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from contextlib import AsyncExitStack
from dataclasses import dataclass, replace
from typing import Any, TypeVar

from inference_gateway.accounting import Charge, Hold
from inference_gateway.config import AliasConfig, CallerConfig
from inference_gateway.core import Gateway, Prepared
from inference_gateway.deadlines import Deadline
from inference_gateway.domain import (
    ImageOutput,
    ImageRequest,
    ImageResult,
    TextRequest,
    TextResult,
    dump_result,
    load_result,
)
from inference_gateway.errors import (
    Aborted,
    Cancelled,
    FailedPrecondition,
    FieldViolation,
    GatewayError,
    Internal,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    ResourceExhausted,
    Unavailable,
    Unimplemented,
)
from inference_gateway.idempotency import Ticket
from inference_gateway.metrics import Metrics
from inference_gateway.model_ids import Task
from inference_gateway.predictions import MIN_CANCEL_AFTER_SECONDS, PredictionRunner, output_text
from inference_gateway.replicate import (
    Bucket,
    Prediction,
    RateBudget,
    ReplicateClient,
    account_id,
    parse_timestamp,
)
from inference_gateway.state import Guarantee, Lease, SharedState, StateStore, StoreError

__all__ = ["OperationSettings", "OperationView", "Operations", "OperationsPage"]

_LOGGER = logging.getLogger(__name__)
T = TypeVar("T")
# Asking Replicate whether done operations' files are gone (data_removed) takes at most
# this share of the account's other requests, however many operations are read: the rest
# is for live calls' polls, streams and cancels.
_OUTPUT_CHECK_SHARE = 0.05

NAME_PREFIX = "operations/"
_VERSION = 1
_SIGNATURE_BYTES = 16
_CALLER_TAG_BYTES = 9
# Replicate ends a prediction at its deadline; allow it this long to say so.
_DEADLINE_SLACK = 30.0
# A submission's create, when its caller sets no deadline.
_CREATE_SECONDS = 30.0
# Fetching an include_data operation's images, once it has ended.
_FETCH_SECONDS = 120.0
# A follower that lost Replicate (an outage) tries again after this long, doubling.
_RETRY_FIRST, _RETRY_MAX = 1.0, 30.0
# Waiting on an operation another replica follows: store reads, never upstream requests.
_WAIT_POLL_FIRST, _WAIT_POLL_MAX = 0.1, 1.0
_DEFAULT_PAGE, _MAX_PAGE = 50, 1000
_STATUSES = ("starting", "processing", "succeeded", "failed", "canceled", "aborted")
_ERRORS: dict[str, type[GatewayError]] = {
    cls.grpc_code.name: cls for cls in GatewayError.__subclasses__()
}


@dataclass(frozen=True, slots=True)
class OperationSettings:
    """Built from the gateway's Settings (server.py), where each default is defined."""

    # Signs operation names; every replica that shares a store needs the same key.
    key: bytes
    # How long a record is kept after its operation ends (and include_data bytes with it).
    retention_seconds: float
    # The longest deadline a submission may ask for, and the default.
    max_deadline_seconds: float
    # The most image bytes an include_data operation keeps.
    max_bytes: int
    # The most bytes all operations keep in the store together, as stored.
    total_bytes: int
    # A follower's lease: a replica that stops refreshing it loses the operation this fast.
    lease_seconds: float
    # The limit on a WaitOperation that gives neither a timeout nor a deadline.
    default_wait_seconds: float
    # The account's other requests a minute (GATEWAY_OTHER_RATE), of which output checks
    # take at most _OUTPUT_CHECK_SHARE.
    other_per_minute: int
    # A done image operation without bytes asks Replicate at most this often whether its
    # files are gone (data_removed).
    output_check_seconds: float = 60.0


@dataclass(frozen=True, slots=True)
class OperationView:
    """What an operation looks like to its caller, free of protobuf."""

    name: str
    done: bool
    prediction_ids: tuple[str, ...]
    model: str
    status: str
    created: float
    ended: float | None
    deadline: float
    queue_seconds: float | None
    predict_seconds: float | None
    cold_boot: bool
    data_removed: bool
    result: TextResult | ImageResult | None
    error: GatewayError | None

    @property
    def total_seconds(self) -> float:
        return (self.ended if self.ended is not None else time.time()) - self.created


@dataclass(frozen=True, slots=True)
class OperationsPage:
    operations: tuple[OperationView, ...]
    next_page_token: str


@dataclass(slots=True)
class _Record:
    """An operation in the store: enough for any replica to follow it and answer for it."""

    id: str
    name: str
    caller_tag: str
    task: str
    model: str
    label: str
    template: str
    include_data: bool
    prediction_ids: list[str]
    stream_url: str | None
    status: str
    created: float
    deadline: float
    ended: float | None = None
    queue_seconds: float | None = None
    predict_seconds: float | None = None
    cold_boot: bool = False
    data_removed: bool = False
    checked: float = 0.0
    # include_data bytes live under a key of their own, so listing never loads them.
    kept_bytes: bool = False
    # How many: reading them back is held against the process-wide output budget.
    kept_size: int = 0
    response: dict[str, Any] | None = None
    error: dict[str, Any] | None = None
    # Who submitted it, and its place in their spend record, for the follower to settle.
    caller: str = ""
    spend: dict[str, Any] | None = None
    # The fallback that created its prediction, when the model named did not: whose
    # account (token) reads it, and who answered. Empty for the model named.
    ran: str = ""

    @property
    def done(self) -> bool:
        return self.ended is not None

    def dump(self) -> bytes:
        return json.dumps(
            {name: getattr(self, name) for name in self.__dataclass_fields__},
            separators=(",", ":"),
        ).encode()

    @classmethod
    def load(cls, data: bytes) -> _Record:
        return cls(**json.loads(data))


@dataclass(frozen=True, slots=True)
class _Claims:
    operation_id: str
    caller_tag: str
    prediction_ids: tuple[str, ...]
    model: str
    task: str


class OperationNames:
    """Issues and verifies signed operation names (see the module's docstring)."""

    def __init__(self, key: bytes) -> None:
        self._key = key

    def caller_tag(self, caller: str) -> str:
        """A stable tag for a caller that does not spell its name."""
        digest = hmac.new(self._key, b"caller\0" + caller.encode(), hashlib.sha256).digest()
        return _b64(digest[:_CALLER_TAG_BYTES])

    def _sign(self, payload: str) -> str:
        digest = hmac.new(self._key, f"op{_VERSION}.{payload}".encode(), hashlib.sha256).digest()
        return _b64(digest[:_SIGNATURE_BYTES])

    def issue(self, claims: _Claims) -> str:
        body = {
            "v": _VERSION,
            "o": claims.operation_id,
            "c": claims.caller_tag,
            "p": list(claims.prediction_ids),
            "m": claims.model,
            "t": claims.task,
        }
        payload = _b64(json.dumps(body, separators=(",", ":")).encode())
        return f"{NAME_PREFIX}{payload}.{self._sign(payload)}"

    def read(self, name: str, caller: CallerConfig) -> _Claims:
        """The claims of a name this gateway issued to `caller`; refuses anything else."""
        payload, _, signature = name.removeprefix(NAME_PREFIX).partition(".")
        if not name.startswith(NAME_PREFIX) or not hmac.compare_digest(
            signature.encode(), self._sign(payload).encode()
        ):
            raise _not_issued(name)
        try:
            body = json.loads(_unb64(payload))
            claims = _Claims(
                operation_id=str(body["o"]),
                caller_tag=str(body["c"]),
                prediction_ids=tuple(str(p) for p in body["p"]),
                model=str(body["m"]),
                task=str(body["t"]),
            )
        except (ValueError, KeyError, TypeError, binascii.Error):
            # Signed by this key yet unreadable: a key shared with something else.
            raise _not_issued(name) from None
        if not hmac.compare_digest(claims.caller_tag, self.caller_tag(caller.name)):
            raise PermissionDenied(
                f"operation {_short(name)} belongs to another caller; only the caller that "
                f"submitted it may read, wait for or cancel it (you are {caller.name!r})",
                reason="OPERATION_OF_ANOTHER_CALLER",
                metadata={"caller": caller.name},
            )
        return claims


class Operations:
    """Submitted predictions, their records in the shared store, and their followers."""

    def __init__(
        self,
        *,
        gateway: Gateway,
        runner: PredictionRunner,
        client: ReplicateClient,
        state: SharedState,
        metrics: Metrics,
        settings: OperationSettings,
    ) -> None:
        self._gateway = gateway
        self._runner = runner
        self._client = client
        self._state = state
        self._metrics = metrics
        self._settings = settings
        self._names = OperationNames(settings.key)
        # Operation id -> the task following it on this replica, and its end.
        self._followers: dict[str, asyncio.Task[None]] = {}
        self._ended: dict[str, asyncio.Event] = {}
        self._sweeper: asyncio.Task[None] | None = None
        # Account token -> its budget of output checks (one per configured account).
        self._check_budgets: dict[str, RateBudget] = {}

    # --- lifecycle -------------------------------------------------------------------------

    def start(self) -> None:
        """Starts sweeping the store for operations whose follower has gone."""
        self._sweeper = asyncio.get_running_loop().create_task(
            self._sweep(), context=contextvars.Context()
        )

    async def stop(self) -> None:
        """Stops following, leaving every prediction running for another replica to follow."""
        tasks = [*self._followers.values(), *([self._sweeper] if self._sweeper else [])]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    # --- the API ---------------------------------------------------------------------------

    async def submit(
        self,
        request: TextRequest | ImageRequest,
        *,
        deadline_seconds: float | None,
        time_remaining: float | None,
    ) -> OperationView:
        """Creates the prediction and records the operation; returns without waiting.

        The create falls back as a blocking call's does: a model whose create (or the
        schema read before it) fails in a way another could fix gives way to the alias's
        next fallback (routing.fallback_reason), and the first model's error is the answer
        when none creates. Once a prediction exists it is the operation's: its failure does
        not move on, and no hedge or switch past a boot starts another.

        A request_id seen before (AIP-155) creates nothing: the answer is the operation
        already following its prediction, or a new one that follows the prediction a
        blocking call made with it.
        """
        if request.caller is None:
            raise Internal("a submission without a caller", reason="INTERNAL_ERROR")
        self._cancel_after(deadline_seconds, None)  # refused before anything is sent
        route = self._gateway.route(request)
        cancel_after = self._cancel_after(deadline_seconds, route.candidates[0].resolved.alias)
        call_deadline = self._gateway.plain_deadline(time_remaining, _CREATE_SECONDS)
        claimed = False
        ticket: Ticket | None = None
        first_error: GatewayError | None = None
        for index, candidate in enumerate(route.candidates):
            slot = AsyncExitStack()
            try:
                prepared = await self._gateway.prepare(
                    request, route, index, time_remaining=time_remaining
                )
                await slot.enter_async_context(
                    self._gateway.hold(request, prepared.resolved, call_deadline)
                )
                if not claimed:
                    claimed = True
                    ticket = await self._gateway.claim(request, call_deadline)
                    if ticket is not None and (ticket.done or ticket.prediction_id):
                        ticket.left()
                        await slot.aclose()
                        earlier = ticket.done or ticket.prediction_id
                        assert earlier is not None
                        return await self._attach(
                            earlier, request, prepared, cancel_after, call_deadline
                        )
                created, spend = await self._create(request, prepared, cancel_after, call_deadline)
            except GatewayError as error:
                await slot.aclose()
                first_error = first_error or error
                if self._gateway.falls_back(route, index, error, call_deadline):
                    continue
                if ticket is not None:
                    await ticket.fail()
                raise first_error from None
            except BaseException:
                await slot.aclose()
                if ticket is not None:
                    await ticket.fail()
                raise
            ran = candidate.name if index > 0 else ""
            return await self._recorded(
                created, request, prepared, cancel_after, spend, ran, ticket, slot
            )
        raise AssertionError("a route has at least one candidate")

    async def _create(
        self,
        request: TextRequest | ImageRequest,
        prepared: Prepared,
        cancel_after: int,
        deadline: Deadline,
    ) -> tuple[Prediction, Hold | None]:
        """The prediction, created with its spend reserved; a failed create pays nothing."""
        spend: Hold | None = None
        try:
            spend = await self._gateway.hold_spend(request, prepared, cancel_after)
            created = await self._runner.submit(
                prepared.path,
                prepared.body,
                token=prepared.token,
                deadline=deadline,
                cancel_after_seconds=cancel_after,
            )
        except BaseException:
            await self._gateway.bill(spend, Charge(), created=False)
            raise
        return created, spend

    async def _recorded(
        self,
        created: Prediction,
        request: TextRequest | ImageRequest,
        prepared: Prepared,
        cancel_after: int,
        spend: Hold | None,
        ran: str,
        ticket: Ticket | None,
        slot: AsyncExitStack,
    ) -> OperationView:
        """Records the operation over a new prediction and follows it (`slot` held until
        it ends, on this replica)."""
        try:
            try:
                record = await self._record(
                    created, request, prepared, time.time() + cancel_after, spend, ran
                )
            except BaseException:
                # Nobody could ever read it: do not leave it running.
                self._runner.cancel_soon(created.id, prepared.token, "operation_not_recorded")
                await self._gateway.bill(spend, Charge(), created=True)
                if ticket is not None:
                    await ticket.fail()
                raise
            if ticket is not None:
                # Repeats find this operation from now on; the claim's lease ends with
                # this call, and a later repeat adopts the prediction.
                await ticket.created(created)
                ticket.left()
        except BaseException:
            await slot.aclose()
            raise
        await self._follow_if_free(record.id, slot)
        return self._view(record)

    async def _attach(
        self,
        earlier: Prediction | str,
        request: TextRequest | ImageRequest,
        prepared: Prepared,
        cancel_after: int,
        deadline: Deadline,
    ) -> OperationView:
        """The operation for a prediction a request_id already made."""
        prediction_id = earlier.id if isinstance(earlier, Prediction) else earlier
        assert request.caller is not None
        tag = self._names.caller_tag(request.caller.name)
        while deadline.allows(_WAIT_POLL_FIRST):
            known = await self._store("get", lambda s: s.get(_of_prediction_key(prediction_id)))
            if known is None:
                break
            record = await self._load(known.decode())
            if record is not None and record.caller_tag == tag:
                return await self._full_view(record)
            # Another submission is recording it right now.
            await asyncio.sleep(_WAIT_POLL_FIRST)
        # A blocking call made it: an operation follows it from here on.
        current = (
            earlier
            if isinstance(earlier, Prediction)
            else await self._client.get_prediction(
                prediction_id, token=prepared.token, deadline=deadline
            )
        )
        ends = parse_timestamp(current.raw.get("deadline"))
        record = await self._record(
            current,
            request,
            prepared,
            ends.timestamp() if ends is not None else time.time() + cancel_after,
        )
        await self._follow_if_free(record.id, AsyncExitStack())
        return self._view(record)

    async def _record(
        self,
        created: Prediction,
        request: TextRequest | ImageRequest,
        prepared: Prepared,
        deadline: float,
        spend: Hold | None = None,
        ran: str = "",
    ) -> _Record:
        """Records a new operation over `created`, where every replica can find it; `ran`
        names the fallback that created it, if one did."""
        assert request.caller is not None
        task = Task.IMAGE if isinstance(request, ImageRequest) else Task.TEXT
        tag = self._names.caller_tag(request.caller.name)
        operation_id = uuid.uuid4().hex
        name = self._names.issue(
            _Claims(operation_id, tag, (created.id,), request.model, task.value)
        )
        record = _Record(
            id=operation_id,
            name=name,
            caller_tag=tag,
            task=task.value,
            model=request.model,
            label=prepared.label,
            template=prepared.template,
            include_data=isinstance(request, ImageRequest) and request.include_data,
            prediction_ids=[created.id],
            stream_url=created.stream_url,
            status=created.status,
            created=time.time(),
            deadline=deadline,
            caller=request.caller.name,
            spend=None if spend is None else spend.to_json(),
            ran=ran,
        )
        lives = (
            max(0.0, deadline - time.time()) + _DEADLINE_SLACK + self._settings.retention_seconds
        )
        if request.request_id is not None:
            mapping = operation_id.encode()
            key = _of_prediction_key(created.id)
            if not await self._store("put_new", lambda s: s.put_new(key, mapping, lives)):
                raise Aborted(
                    f"another submission with request_id {request.request_id.value} is "
                    "recording its operation right now; retry with the same request_id",
                    reason="REQUEST_ID_IN_FLIGHT",
                    metadata={"requestId": request.request_id.value},
                    retry_after_seconds=1.0,
                )
        await self._save(record, lives)
        await self._store("index_add", lambda s: s.index_add(_caller_index(tag), name, lives))
        await self._store("index_add", lambda s: s.index_add(_PENDING, operation_id, lives))
        return record

    async def _follow_if_free(self, operation_id: str, slot: AsyncExitStack) -> None:
        lease = await self._lease(operation_id)
        if lease is None:
            await slot.aclose()
        else:
            self._follow_here(operation_id, lease, slot)

    async def get(self, name: str, caller: CallerConfig) -> OperationView:
        await self._gateway.count(caller)
        record = await self._read(name, caller)
        if not record.done:
            await self._adopt(record.id)
        return await self._full_view(await self._checked(record))

    async def wait(
        self,
        name: str,
        caller: CallerConfig,
        *,
        wait_seconds: float | None,
        time_remaining: float | None,
    ) -> OperationView:
        """Returns when the operation ends, or with its latest state when time runs out.

        The caller leaving ends only this wait. A follower on this replica wakes it at
        once; one on another replica is watched through the store, never through Replicate.
        """
        await self._gateway.count(caller, time_remaining)
        record = await self._read(name, caller)
        limit = self._gateway.plain_deadline(
            time_remaining, self._settings.default_wait_seconds
        ).remaining()
        if wait_seconds is not None:
            limit = min(limit, wait_seconds)
        until = time.monotonic() + limit
        delay = _WAIT_POLL_FIRST
        while not record.done:
            await self._adopt(record.id)
            left = until - time.monotonic()
            if left <= 0:
                break
            ended = self._ended.get(record.id)
            if ended is not None:
                try:
                    async with asyncio.timeout(left):
                        await ended.wait()
                except TimeoutError:
                    pass
            else:
                await asyncio.sleep(min(delay, left))
                delay = min(_WAIT_POLL_MAX, delay * 2)
            record = await self._read(name, caller)
        return await self._full_view(await self._checked(record))

    async def cancel(self, name: str, caller: CallerConfig) -> None:
        """Cancels the prediction on Replicate, once however often or wherever it is asked."""
        record = await self._read(name, caller)
        if record.done:
            return
        marker = _cancel_key(record.id)
        lives = max(0.0, record.deadline - time.time()) + self._settings.retention_seconds
        first = await self._store("put_new", lambda s: s.put_new(marker, b"1", lives + 1))
        if not first:
            return
        token = self._token(record)
        for prediction_id in record.prediction_ids:
            self._metrics.cancel_sent("operation_canceled")
            try:
                await self._client.cancel_prediction(
                    prediction_id, token=token, deadline=Deadline.after(10.0)
                )
            except GatewayError:
                # Let a retry of CancelOperation send it again.
                await self._store("put", lambda s: s.put(marker, b"", 0.001))
                raise
        await self._adopt(record.id)

    async def delete(self, name: str, caller: CallerConfig) -> None:
        await self._read(name, caller)
        raise Unimplemented(
            "DeleteOperation is not offered: an operation's record goes by itself "
            "GATEWAY_IDEMPOTENCY_RETENTION seconds after it ends; CancelOperation stops one "
            "that runs",
            reason="DELETE_NOT_SUPPORTED",
        )

    async def list_operations(
        self, caller: CallerConfig, *, filter_text: str, page_size: int, page_token: str
    ) -> OperationsPage:
        """The caller's own operations, oldest first, filtered and paged."""
        await self._gateway.count(caller)
        keep = _parse_filter(filter_text)
        start = _parse_page_token(page_token)
        size = _MAX_PAGE if page_size > _MAX_PAGE else page_size or _DEFAULT_PAGE
        if page_size < 0:
            raise InvalidArgument(
                f"page_size is {page_size}; give 0 (for {_DEFAULT_PAGE}) up to {_MAX_PAGE}",
                reason="INVALID_PAGE_SIZE",
                violations=(FieldViolation("page_size", "must not be negative"),),
            )
        tag = self._names.caller_tag(caller.name)
        names = await self._store("index_members", lambda s: s.index_members(_caller_index(tag)))
        # Records are read from the token's place on, until the page is full: a page costs
        # its own reads, not one per operation the caller has (at most _MAX_PAGE when a
        # filter skips many, and then the page may be short, as AIP-158 allows).
        views: list[OperationView] = []
        position = start
        while position < len(names) and len(views) < size and position - start < _MAX_PAGE:
            claims = self._names.read(names[position], caller)
            position += 1
            record = await self._load(claims.operation_id)
            if record is not None and keep(record):
                views.append(self._view(record))
        more = position < len(names)
        return OperationsPage(tuple(views), str(position) if more else "")

    # --- following -------------------------------------------------------------------------

    async def _adopt(self, operation_id: str) -> None:
        """Follows the operation here if nobody holds its lease (its follower has gone)."""
        if operation_id not in self._followers:
            await self._follow_if_free(operation_id, AsyncExitStack())

    async def _lease(self, operation_id: str) -> Lease | None:
        return await self._state.acquire_lease(
            Guarantee.OPERATIONS,
            _follow_key(operation_id),
            1,
            self._settings.lease_seconds,
            Deadline.after(5.0),
        )

    def _follow_here(self, operation_id: str, lease: Lease, slot: AsyncExitStack) -> None:
        self._ended.setdefault(operation_id, asyncio.Event())
        # A context of its own: the follower outlives the call that started it.
        self._followers[operation_id] = asyncio.get_running_loop().create_task(
            self._follow(operation_id, lease, slot), context=contextvars.Context()
        )

    async def _follow(self, operation_id: str, lease: Lease, slot: AsyncExitStack) -> None:
        self._metrics.operations_in_flight.inc()
        retry = _RETRY_FIRST
        try:
            while True:
                record = await self._load(operation_id)
                if record is None or record.done:
                    return
                try:
                    final = await self._await_end(record)
                except GatewayError as error:
                    if time.time() < record.deadline + _DEADLINE_SLACK:
                        _LOGGER.warning(
                            "operation %s: lost its prediction %s (%s); trying again in %.0fs",
                            operation_id,
                            record.prediction_ids[-1],
                            error,
                            retry,
                        )
                        await asyncio.sleep(retry)
                        retry = min(_RETRY_MAX, retry * 2)
                        continue
                    # Its cost is unknown: settled at its reservation, the most it cost.
                    await self._bill(record, Charge(), None)
                    await self._end(record, None, error)
                    return
                # The prediction has ended: its slots are free before anyone hears so.
                await slot.aclose()
                await self._settle(record, final)
                return
        except GatewayError as error:
            _LOGGER.warning("operation %s: stopped following (%s)", operation_id, error)
        finally:
            self._metrics.operations_in_flight.dec()
            self._followers.pop(operation_id, None)
            ended = self._ended.pop(operation_id, None)
            if ended is not None:
                ended.set()
            await lease.release()
            await slot.aclose()

    async def _await_end(self, record: _Record) -> Prediction:
        prediction_id = record.prediction_ids[-1]
        urls = {"stream": record.stream_url} if record.stream_url else {}
        created = Prediction(
            id=prediction_id,
            status=record.status,
            raw={"id": prediction_id, "status": record.status, "urls": urls},
        )
        token = self._token(record)
        if created.terminal:
            # Known to have ended (a request_id's earlier prediction): read how.
            return await self._client.get_prediction(
                prediction_id, token=token, deadline=Deadline.after(_FETCH_SECONDS)
            )
        left = record.deadline + _DEADLINE_SLACK - time.time()
        return await self._runner.follow(created, token, Deadline.after(max(0.0, left)))

    async def _settle(self, record: _Record, final: Prediction) -> None:
        """Records how the prediction ended: its answer, or its error, as a blocking call's."""
        started = time.monotonic() - (time.time() - record.created)
        charge = Charge()
        try:
            try:
                # A settled operation's cost is counted by `_bill`, once across followers.
                summary = self._gateway.settle(
                    final,
                    record.label,
                    started,
                    caller=record.caller or None,
                    charge=charge,
                    counted=record.spend is None,
                    attempt=(
                        self._gateway.fallback_attempt(record.ran, Task(record.task))
                        if record.ran
                        else None
                    ),
                )
            except GatewayError:
                if final.status == "canceled" and await self._was_canceled(record.id):
                    raise Cancelled(
                        f"operation canceled by CancelOperation (prediction {final.id})",
                        reason="OPERATION_CANCELLED",
                        metadata={"predictionId": final.id},
                    ) from None
                raise
            if final.raw.get("data_removed") is True:
                raise _output_removed(final.id)
            if record.task == Task.TEXT.value:
                text = TextResult(output_text(final.output), summary, record.template)
                response = dump_result(text)
            else:
                token = self._token(record)
                images = await self._images(final, record.include_data, token)
                self._check_bytes(images, final.id)
                if any(image.data is not None for image in images):
                    await self._keep_bytes(record, images)
                    images = tuple(replace(image, data=None) for image in images)
                response = dump_result(ImageResult(images, summary))
        except GatewayError as error:
            await self._end(record, final, error)
            return
        finally:
            await self._bill(record, charge, final)
        record.response = response
        await self._end(record, final, None)

    async def _images(
        self, final: Prediction, include_data: bool, token: str
    ) -> tuple[ImageOutput, ...]:
        """The images, under the blocking calls' rules. A refusal here would be this
        operation's answer for good, though Replicate made the images and keeps them an
        hour: a budget other calls hold for the moment, or a file host that fails for a
        moment, is waited out, within _FETCH_SECONDS."""
        deadline = Deadline.after(_FETCH_SECONDS)
        backoff = _RETRY_FIRST
        while True:
            try:
                return await self._gateway.images(final, include_data, token, deadline)
            except (ResourceExhausted, Unavailable) as passing:
                pause = passing.retry_after_seconds or backoff
                if not deadline.allows(pause):
                    raise
                _LOGGER.info("operation of %s: fetching its images again (%s)", final.id, passing)
                await asyncio.sleep(pause)
                backoff = min(_RETRY_MAX, backoff * 2)

    async def _bill(self, record: _Record, charge: Charge, final: Prediction | None) -> None:
        """Settles the operation's reservation exactly once, whichever follower (a lease can
        lapse under a live one, a replica can die between settling and recording the end)
        gets here first, and counts `final`'s cost in the chargeback metrics with it."""
        if record.spend is None:
            return
        lives = max(0.0, record.deadline - time.time()) + _DEADLINE_SLACK
        first = await self._gateway.bill(
            Hold.from_json(record.spend),
            charge,
            created=True,
            once=lives + self._settings.retention_seconds,
        )
        if first and final is not None:
            self._gateway.count_cost(final, record.label, record.caller or None)

    async def _end(
        self, record: _Record, final: Prediction | None, error: GatewayError | None
    ) -> None:
        record.ended = record.checked = time.time()
        if final is not None:
            record.status = final.status
            record.queue_seconds = final.queue_seconds
            record.predict_seconds = final.metric("predict_time")
            record.cold_boot = self._gateway.cold_boot(final)
        if error is not None:
            record.error = _dump_error(error)
        await self._save(record, self._settings.retention_seconds)
        retention = self._settings.retention_seconds
        tag = record.caller_tag
        await self._store(
            "index_add", lambda s: s.index_add(_caller_index(tag), record.name, retention)
        )
        await self._store("index_remove", lambda s: s.index_remove(_PENDING, record.id))
        self._metrics.operation_duration.labels(record.label, record.status).observe(
            record.ended - record.created
        )

    async def _keep_bytes(self, record: _Record, images: tuple[ImageOutput, ...]) -> None:
        blob = json.dumps(
            [None if i.data is None else base64.b64encode(i.data).decode() for i in images]
        ).encode()
        ttl = self._settings.retention_seconds
        members = await self._store("index_members", lambda s: s.index_members(_KEPT_INDEX))
        held = sum(int(member.rpartition(":")[2] or 0) for member in members)
        limit = self._settings.total_bytes
        if held + len(blob) > limit:
            raise ResourceExhausted(
                f"operations keep {held} bytes of images in the shared store, and the "
                f"{len(blob)} of prediction {record.prediction_ids[-1]} would pass the "
                f"{limit} they may keep together (GATEWAY_OPERATION_TOTAL_BYTES); submit "
                "without include_data to get the images' URLs only, or later",
                reason="OPERATIONS_BYTES_FULL",
                metadata={
                    "predictionId": record.prediction_ids[-1],
                    "limit": str(limit),
                    "actual": str(held + len(blob)),
                    "setting": "GATEWAY_OPERATION_TOTAL_BYTES",
                },
            )
        await self._store("put", lambda s: s.put(_bytes_key(record.id), blob, ttl))
        member = f"{record.id}:{len(blob)}"
        await self._store("index_add", lambda s: s.index_add(_KEPT_INDEX, member, ttl))
        record.kept_bytes = True
        record.kept_size = sum(len(image.data or b"") for image in images)

    def _check_bytes(self, images: tuple[ImageOutput, ...], prediction_id: str) -> None:
        total = sum(len(image.data or b"") for image in images)
        limit = self._settings.max_bytes
        if total > limit:
            raise ResourceExhausted(
                f"prediction {prediction_id} made {total} bytes of images, more than the "
                f"{limit} an operation keeps (GATEWAY_OPERATION_MAX_BYTES); submit without "
                "include_data to get their URLs only",
                reason="OPERATION_OUTPUT_TOO_LARGE",
                metadata={"predictionId": prediction_id, "limit": str(limit), "actual": str(total)},
            )

    async def _sweep(self) -> None:
        """Adopts pending operations whose follower has gone, every third of a lease."""
        while True:
            await asyncio.sleep(self._settings.lease_seconds / 3)
            try:
                pending = await self._store("index_members", lambda s: s.index_members(_PENDING))
                for operation_id in pending:
                    await self._adopt(operation_id)
            except GatewayError as error:
                _LOGGER.warning("operations sweep: %s", error)

    # --- records ---------------------------------------------------------------------------

    async def _read(self, name: str, caller: CallerConfig) -> _Record:
        claims = self._names.read(name, caller)
        record = await self._load(claims.operation_id)
        if record is None:
            raise NotFound(
                f"operation {_short(name)} has no record: it ended more than "
                "GATEWAY_IDEMPOTENCY_RETENTION seconds ago, or the state store lost it",
                reason="OPERATION_NOT_FOUND",
                metadata={"predictionId": claims.prediction_ids[-1]},
            )
        return record

    async def _load(self, operation_id: str) -> _Record | None:
        data = await self._store("get", lambda s: s.get(_record_key(operation_id)))
        return None if data is None else _Record.load(data)

    async def _save(self, record: _Record, ttl: float) -> None:
        data = record.dump()
        await self._store("put", lambda s: s.put(_record_key(record.id), data, ttl))

    async def _was_canceled(self, operation_id: str) -> bool:
        return bool(await self._store("get", lambda s: s.get(_cancel_key(operation_id))))

    async def _store(self, op: str, fn: Callable[[StateStore], Awaitable[T]]) -> T:
        return await self._state.call(Guarantee.OPERATIONS, op, Deadline.after(5.0), fn)

    async def _checked(self, record: _Record) -> _Record:
        """A done image operation without bytes, told whether Replicate removed its files."""
        if (
            not record.done
            or record.include_data
            or record.task != Task.IMAGE.value
            or record.error is not None
            or time.time() - record.checked < self._settings.output_check_seconds
        ):
            return record
        token = self._token(record)
        if not await self._may_check(token):
            # Reads of many done operations may not spend the budget live calls poll
            # from; this one is checked on a later read.
            return record
        try:
            current = await self._client.get_prediction(
                record.prediction_ids[-1], token=token, deadline=Deadline.after(10.0)
            )
        except GatewayError as error:
            # The answer the gateway holds is still the best it has.
            _LOGGER.info("operation %s: could not check its output (%s)", record.id, error)
            return record
        record.checked = time.time()
        if current.raw.get("data_removed") is True:
            record.data_removed = True
            record.response = None
            record.error = _dump_error(_output_removed(current.id))
        ended = record.ended or record.checked
        await self._save(record, max(1.0, ended + self._settings.retention_seconds - time.time()))
        return record

    async def _may_check(self, token: str) -> bool:
        """Whether an output check fits its share of the account's rate, across replicas;
        never waits for one."""
        budget = self._check_budgets.get(token)
        if budget is None:
            budget = RateBudget(
                Bucket.OTHER,
                max(1, math.floor(self._settings.other_per_minute * _OUTPUT_CHECK_SHARE)),
                state=self._state,
                account=f"{account_id(token)}:output-checks",
            )
            self._check_budgets[token] = budget
        try:
            if await budget.reserve(Deadline.after(5.0)) <= 0.0:
                return True
            await budget.refund()
        except StoreError as error:
            _LOGGER.info("output check skipped: its budget is unreadable (%s)", error)
        return False

    def _token(self, record: _Record) -> str:
        """The token of the account that made the operation's prediction."""
        return self._gateway.token_for(record.ran or record.model, Task(record.task))

    def _cancel_after(self, seconds: float | None, alias: AliasConfig | None) -> int:
        """The submission's Cancel-After: its deadline, from Replicate's shortest up to the
        longest allowed, which the alias's timeout_seconds lowers as it caps a blocking
        call on that alias (else a submission would walk around it)."""
        limit, setting = self._settings.max_deadline_seconds, "GATEWAY_OPERATION_MAX_DEADLINE"
        timeout = alias.timeout_seconds if alias is not None else None
        if alias is not None and timeout is not None and timeout < limit:
            limit = max(MIN_CANCEL_AFTER_SECONDS, float(math.floor(timeout)))
            setting = f"timeout_seconds of alias {alias.name!r}"
        if seconds is None:
            return math.floor(limit)
        if not MIN_CANCEL_AFTER_SECONDS <= seconds <= limit:
            raise InvalidArgument(
                f"deadline is {seconds:g}s; give {MIN_CANCEL_AFTER_SECONDS:g}s (Replicate's "
                f"shortest Cancel-After) up to {limit:g}s ({setting}), or leave it unset for the "
                "longest",
                reason="INVALID_DEADLINE",
                metadata={"limit": f"{limit:g}", "actual": f"{seconds:g}"},
                violations=(FieldViolation("deadline", "outside the allowed range"),),
            )
        return math.ceil(seconds)

    async def _full_view(self, record: _Record) -> OperationView:
        """The view with include_data bytes, which only Get and Wait return."""
        if not record.kept_bytes or record.response is None:
            return self._view(record)
        # Held like a download's bytes, so concurrent reads cannot pass the budget.
        size = record.kept_size or self._settings.max_bytes
        with self._gateway.holding_output(size, record.prediction_ids[-1]):
            data = await self._store("get", lambda s: s.get(_bytes_key(record.id)))
            kept = None if data is None else [_unb64_or_none(item) for item in json.loads(data)]
            return self._view(record, kept)

    def _view(self, record: _Record, kept: list[bytes | None] | None = None) -> OperationView:
        result = None
        if record.response is not None:
            result = load_result(record.response)
        if kept is not None and isinstance(result, ImageResult):
            images = tuple(
                replace(image, data=data) for image, data in zip(result.images, kept, strict=True)
            )
            result = replace(result, images=images)
        return OperationView(
            name=record.name,
            done=record.done,
            prediction_ids=tuple(record.prediction_ids),
            model=record.model,
            status=record.status,
            created=record.created,
            ended=record.ended,
            deadline=record.deadline,
            queue_seconds=record.queue_seconds,
            predict_seconds=record.predict_seconds,
            cold_boot=record.cold_boot,
            data_removed=record.data_removed,
            result=result,
            error=None if record.error is None else _load_error(record.error),
        )


# --- store keys ------------------------------------------------------------------------------

_PENDING = "operations:pending"
# Each operation's kept bytes, as `<id>:<size>`, living as long as the bytes do.
_KEPT_INDEX = "operations:kept-bytes"


def _record_key(operation_id: str) -> str:
    return f"operation:{operation_id}"


def _bytes_key(operation_id: str) -> str:
    return f"operation-bytes:{operation_id}"


def _of_prediction_key(prediction_id: str) -> str:
    return f"operation-of:{prediction_id}"


def _follow_key(operation_id: str) -> str:
    return f"operation-follower:{operation_id}"


def _cancel_key(operation_id: str) -> str:
    return f"operation-cancel:{operation_id}"


def _caller_index(tag: str) -> str:
    return f"operations:caller:{tag}"


# --- names, filters, pages -------------------------------------------------------------------


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _unb64_or_none(text: str | None) -> bytes | None:
    return None if text is None else base64.b64decode(text)


def _short(name: str) -> str:
    return name if len(name) <= 48 else name[:45] + "..."


def _not_issued(name: str) -> InvalidArgument:
    return InvalidArgument(
        f"{_short(name)!r} is not an operation name this gateway issued (they look like "
        f"{NAME_PREFIX}<payload>.<signature>, exactly as SubmitText or SubmitImage returned "
        "them); it may be altered or cut, or signed with another GATEWAY_OPERATIONS_KEY",
        reason="INVALID_OPERATION_NAME",
        violations=(FieldViolation("name", "not a name this gateway issued"),),
    )


def _output_removed(prediction_id: str) -> FailedPrecondition:
    return FailedPrecondition(
        f"Replicate has removed the output of prediction {prediction_id} (data_removed, about "
        "an hour after it ends); submit again, with include_data to keep the images' bytes "
        "for GATEWAY_IDEMPOTENCY_RETENTION seconds",
        reason="OUTPUT_REMOVED",
        metadata={"predictionId": prediction_id},
    )


def _parse_filter(text: str) -> Callable[[_Record], bool]:
    """AIP-160's simplest subset: `done=true|false` and `status=<status>`, joined by AND."""
    tests: list[Callable[[_Record], bool]] = []
    for term in filter(None, (part.strip() for part in text.split(" AND "))):
        key, sep, value = (piece.strip() for piece in term.partition("="))
        value = value.strip('"').lower()
        status = value.removeprefix("prediction_status_")
        if sep and key == "done" and value in ("true", "false"):
            wanted = value == "true"
            tests.append(lambda r, wanted=wanted: r.done == wanted)  # type: ignore[misc]
        elif sep and key == "status" and status in _STATUSES:
            tests.append(lambda r, status=status: r.status == status)  # type: ignore[misc]
        else:
            raise InvalidArgument(
                f"filter term {term!r} is not understood; give done=true, done=false or "
                f"status=<{'|'.join(_STATUSES)}>, joined by AND",
                reason="INVALID_FILTER",
                violations=(FieldViolation("filter", "unknown term"),),
            )
    return lambda record: all(test(record) for test in tests)


def _parse_page_token(token: str) -> int:
    if not token:
        return 0
    if not (token.isascii() and token.isdigit()) or len(token) > 9:
        raise InvalidArgument(
            "page_token is not one this gateway gave; pass next_page_token from the previous "
            "page unchanged, or none for the first page",
            reason="INVALID_PAGE_TOKEN",
            violations=(FieldViolation("page_token", "not issued by this gateway"),),
        )
    return int(token)


# --- results in records ----------------------------------------------------------------------


def _dump_error(error: GatewayError) -> dict[str, Any]:
    return {
        "code": error.grpc_code.name,
        "message": error.message,
        "reason": error.reason,
        "metadata": dict(error.metadata),
        "violations": [[v.field, v.description] for v in error.violations],
    }


def _load_error(data: Mapping[str, Any]) -> GatewayError:
    kind = _ERRORS.get(data["code"], Internal)
    return kind(
        data["message"],
        reason=data["reason"],
        metadata=data["metadata"],
        violations=tuple(FieldViolation(f, d) for f, d in data["violations"]),
    )
