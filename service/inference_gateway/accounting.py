"""Who spent what: each prediction's cost, the chargeback metrics, and callers' budgets.

A caller's spend is a durable record in the shared store, one per caller and budget
period (UTC day or month), so every replica sees the same figure and Prometheus counter
resets lose nothing. A call by a caller with a budget first reserves the most it can
cost (from the input: max tokens, num_outputs, duration; else its deadline for hardware
priced models; else the alias's `max_cost`) and is refused once that would pass the
limit; it settles the actual cost when it ends. The reservation check is atomic in the
store, so concurrent calls on any number of replicas never spend past the limit while
each call costs at most what it reserved.
"""

from __future__ import annotations

import calendar
import dataclasses
import datetime
import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from decimal import ROUND_CEILING, ROUND_HALF_UP, Decimal
from typing import Any, Protocol

from inference_gateway import call_events
from inference_gateway.config import AliasConfig, CallerConfig, SpendLimit
from inference_gateway.deadlines import Deadline
from inference_gateway.errors import FailedPrecondition, GatewayError, ResourceExhausted
from inference_gateway.metrics import Metrics
from inference_gateway.model_ids import ModelRef
from inference_gateway.pricing import (
    NANO,
    Bounds,
    Cost,
    ModelPrice,
    PriceTable,
    Usage,
    format_amount,
    price_key,
)
from inference_gateway.replicate import Prediction
from inference_gateway.state import Guarantee, SharedState, StoreError

__all__ = ["Accounting", "Charge", "Hold", "LeftBehind", "UsageReport", "usage_of"]

_log = logging.getLogger(__name__)
# A reservation outlives its call's deadline by this much before the store drops it (a
# replica killed mid-call); a record is kept this long after its period ends.
_HOLD_SLACK_SECONDS = 60.0
_KEEP_AFTER_PERIOD = datetime.timedelta(days=35)
# Output-length inputs, in the order a model would honour them.
_MAX_TOKEN_INPUTS = ("max_new_tokens", "max_tokens", "max_length")


def _nanos(amount: Decimal, rounding: str = ROUND_HALF_UP) -> int:
    return int((amount / NANO).to_integral_value(rounding))


def _amount(nanos: int) -> Decimal:
    return Decimal(nanos) * NANO


def _number(value: object) -> Decimal | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return Decimal(str(value))


def usage_of(prediction: Prediction, price: ModelPrice | None) -> Usage:
    """What Replicate will bill for `prediction`: what it reports, read as decimals.

    An aborted prediction never started and is not billed. Images are
    `metrics.image_count` where Replicate reports it, else the output files.
    """
    if prediction.status == "aborted":
        zero = Decimal(0)
        return Usage(zero, zero, zero, zero, zero)
    images = _number(prediction.metric("image_count"))
    if images is None:
        output = prediction.output
        files = [output] if isinstance(output, str) else output if isinstance(output, list) else []
        images = Decimal(sum(1 for item in files if isinstance(item, str)))
    output_seconds: Decimal | None = Decimal(0)
    if prediction.status == "succeeded" and price is not None:
        raw_input = prediction.raw.get("input")
        given = raw_input.get(price.duration_input) if isinstance(raw_input, Mapping) else None
        output_seconds = _number(given)
    return Usage(
        input_tokens=_number(prediction.metric("input_token_count")),
        output_tokens=_number(prediction.metric("output_token_count")),
        images=images,
        predict_seconds=_number(prediction.metric("predict_time")),
        output_seconds=output_seconds,
    )


def _bounds(model_input: Mapping[str, object], price: ModelPrice, deadline: Deadline) -> Bounds:
    """The most of each quantity a prediction of `model_input` can report.

    Every token covers at least one byte of text, so the input's UTF-8 bytes bound its
    tokens; the gateway cancels at the deadline, so it bounds the predict time.
    """
    text_bytes = sum(
        len(value.encode()) for value in model_input.values() if isinstance(value, str)
    )
    output_tokens = next(
        (n for name in _MAX_TOKEN_INPUTS if (n := _number(model_input.get(name))) is not None),
        None,
    )
    images = _number(model_input.get("num_outputs")) or Decimal(1)
    return Bounds(
        input_tokens=Decimal(text_bytes),
        output_tokens=output_tokens,
        images=images,
        predict_seconds=Decimal(str(round(max(deadline.remaining(), 0.0), 3))),
        output_seconds=_number(model_input.get(price.duration_input)),
    )


@dataclass(frozen=True, slots=True)
class Period:
    name: str
    start: datetime.datetime
    end: datetime.datetime

    @classmethod
    def current(cls, name: str, now: datetime.datetime | None = None) -> Period:
        now = now or datetime.datetime.now(datetime.UTC)
        if name == "month":
            start = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
            days = calendar.monthrange(start.year, start.month)[1]
            return cls(name, start, start + datetime.timedelta(days=days))
        start = now.replace(hour=0, minute=0, second=0, microsecond=0)
        return cls("day", start, start + datetime.timedelta(days=1))

    def key(self, caller: str) -> str:
        stamp = self.start.strftime("%Y-%m" if self.name == "month" else "%Y-%m-%d")
        return f"spend:{caller}:{self.name}:{stamp}"

    def ttl(self) -> float:
        end = self.end + _KEEP_AFTER_PERIOD
        return (end - datetime.datetime.now(datetime.UTC)).total_seconds()


@dataclass(frozen=True, slots=True)
class UsageReport:
    caller: str
    period: Period
    spent: Decimal
    reserved: Decimal
    limit: Decimal | None
    currency: str

    @property
    def remaining(self) -> Decimal | None:
        if self.limit is None:
            return None
        return max(Decimal(0), self.limit - self.spent - self.reserved)


class LeftBehind(Protocol):
    """Prices a prediction its call stopped following, once it ends, off the call's path."""

    def defer(self, work: Awaitable[None]) -> object:
        """Runs `work` in the background (shutdown waits for it)."""
        ...

    async def cost(self, prediction_id: str) -> Cost | None:
        """The prediction's cost, counted in the chargeback metrics, once it is terminal
        within a short bound; None when it is not."""
        ...

    def held(self) -> Awaitable[str | None] | None:
        """When the call ended while Replicate still held its create: the id of the
        prediction it makes, once it answers (None if it made none); else None."""
        ...


@dataclass(slots=True)
class Charge:
    """One call's bill: the predictions it caused, settled against its reservation."""

    # Costs of the predictions this call made (hedges and fallbacks included).
    costs: list[Cost] = field(default_factory=list)
    # The call attached to a prediction an earlier call made (a repeated request_id):
    # that call was charged for it.
    repeat: bool = False

    def add(self, cost: Cost) -> None:
        self.costs.append(cost)


@dataclass(frozen=True, slots=True)
class Hold:
    """A call's place in its caller's spend record: the period's record, the reservation
    (zero without a budget), kept in an operation's record for its follower to settle."""

    key: str
    holder: str
    reserved: Decimal
    budgeted: bool

    def ttl(self) -> float:
        """The record outlives its period (named in the key) by _KEEP_AFTER_PERIOD."""
        period = Period.current("month" if ":month:" in self.key else "day")
        return period.ttl()

    def to_json(self) -> dict[str, object]:
        return {
            "key": self.key,
            "holder": self.holder,
            "reserved": str(self.reserved),
            "budgeted": self.budgeted,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Hold:
        return cls(
            str(data["key"]), str(data["holder"]), Decimal(data["reserved"]), bool(data["budgeted"])
        )


class Accounting:
    """Prices predictions, counts them per caller, and keeps callers within budget."""

    def __init__(self, prices: PriceTable | None, state: SharedState, metrics: Metrics) -> None:
        self.prices = prices or PriceTable()
        self._state = state
        self._metrics = metrics
        # Whether the store is failing settlements: logged once per outage, as the shared
        # state logs fail-open once, not once per priced call.
        self._unrecording = False

    @property
    def currency(self) -> str:
        return self.prices.currency

    def price_of(self, prediction: Prediction) -> ModelPrice | None:
        deployment = prediction.raw.get("deployment")
        if isinstance(deployment, str) and deployment:
            return self.prices.lookup(f"deployments/{deployment}")
        return self.prices.lookup(prediction.model or None)

    def cost(
        self,
        prediction: Prediction,
        caller: str | None,
        label: str,
        endpoint: str,
        *,
        counted: bool = True,
        reported: bool = True,
    ) -> Cost:
        """The prediction's cost, in the request log when `reported` (the one that answers)
        and, when `counted` (the call that made the prediction), in the chargeback metrics."""
        price = self.price_of(prediction)
        usage = usage_of(prediction, price)
        cost = self.prices.cost(price, usage)
        if reported:
            note_cost(cost)
        if not counted:
            return cost
        who = caller or "unknown"
        m = self._metrics
        if cost.amount is not None:
            m.cost.labels(who, label).inc(float(cost.amount))
        else:
            m.unpriced.labels(who, label).inc()
        if usage.predict_seconds is not None:
            m.caller_predict_seconds.labels(who, label, endpoint).inc(float(usage.predict_seconds))
        for direction, tokens in (("input", usage.input_tokens), ("output", usage.output_tokens)):
            if tokens is not None:
                m.caller_tokens.labels(who, label, direction).inc(float(tokens))
        if usage.images:
            m.caller_images.labels(who, label).inc(float(usage.images))
        return cost

    # --- budgets ---------------------------------------------------------------------------

    async def hold(
        self,
        caller: CallerConfig,
        ref: ModelRef,
        alias: AliasConfig | None,
        model_input: Mapping[str, object],
        deadline: Deadline,
        *,
        hold_seconds: float | None = None,
    ) -> Hold:
        """Reserves the worst-case cost against the caller's budget (when it has one) for
        `hold_seconds` (default: the deadline), or refuses the call."""
        budget = caller.budget
        period = Period.current(budget.period if budget is not None else "day")
        hold = Hold(period.key(caller.name), uuid.uuid4().hex, Decimal(0), budget is not None)
        if budget is None:
            return hold
        amount = self._worst_case(caller, ref, alias, model_input, deadline)
        seconds = deadline.remaining() if hold_seconds is None else hold_seconds
        await self._reserve(caller, budget, period, hold.holder, amount, seconds, deadline)
        return dataclasses.replace(hold, reserved=amount)

    @asynccontextmanager
    async def charge(
        self,
        caller: CallerConfig | None,
        ref: ModelRef,
        alias: AliasConfig | None,
        model_input: Mapping[str, object],
        deadline: Deadline,
        *,
        created: Callable[[], str | None] = lambda: None,
        left_behind: LeftBehind | None = None,
    ) -> AsyncIterator[Charge]:
        """Holds the call's worst-case cost against its caller's budget; settles at the end.

        `created` names the call's prediction once it exists. A call that ends before its
        prediction's cost is known (a hedge that lost, a deadline, a caller who left: each
        canceled it) is settled later by `left_behind`, from the canceled prediction's own
        figures, as Replicate bills it; without them, it pays its reservation. So is one
        that ended while Replicate still held its create, once that names the prediction.
        """
        charge = Charge()
        hold = None
        # Without a budget there is nothing to reserve, and without prices no cost is ever
        # known, so settle would write nothing: the call makes no period key or holder id.
        if caller is not None and (caller.budget is not None or self.prices.models):
            hold = await self.hold(caller, ref, alias, model_input, deadline)
        outcome: BaseException | None = None
        try:
            yield charge
        except BaseException as exc:
            outcome = exc
            raise
        finally:
            prediction_id = created()
            if prediction_id is None and isinstance(outcome, GatewayError):
                prediction_id = outcome.metadata.get("predictionId")
            unsettled = left_behind if not (charge.costs or charge.repeat) else None
            later = prediction_id or (unsettled.held() if unsettled is not None else None)
            if unsettled is not None and later:
                unsettled.defer(self._settle_left(hold, charge, unsettled, later))
            elif hold is not None:
                await self.settle(hold, charge, created=bool(prediction_id))

    async def _settle_left(
        self,
        hold: Hold | None,
        charge: Charge,
        left_behind: LeftBehind,
        prediction: str | Awaitable[str | None],
    ) -> None:
        prediction_id = prediction if isinstance(prediction, str) else await prediction
        if prediction_id is None:
            if hold is not None:
                await self.settle(hold, charge, created=False)
            return
        cost = await left_behind.cost(prediction_id)
        if cost is not None:
            charge.add(cost)
        if hold is not None:
            await self.settle(hold, charge, created=True)

    def _worst_case(
        self,
        caller: CallerConfig,
        ref: ModelRef,
        alias: AliasConfig | None,
        model_input: Mapping[str, object],
        deadline: Deadline,
    ) -> Decimal:
        key = price_key(ref)
        price = self.prices.lookup(key)
        bound = (
            None
            if price is None
            else self.prices.worst_case(price, _bounds(model_input, price, deadline))
        )
        if bound is None and alias is not None and alias.max_cost is not None:
            bound = alias.max_cost
        if bound is not None:
            return bound
        what = (
            "no price in the configuration's pricing: section"
            if price is None
            else (
                "nothing in the input bounds its cost (set max_new_tokens, num_outputs or duration)"
            )
        )
        raise FailedPrecondition(
            f"caller {caller.name!r} has a budget, and model {key or ref} has {what}; "
            "ask the operators to price it, or to set max_cost on its alias",
            reason="COST_NOT_BOUNDED",
            metadata={"caller": caller.name, "model": str(key or ref)},
        )

    async def _reserve(
        self,
        caller: CallerConfig,
        budget: SpendLimit,
        period: Period,
        holder: str,
        amount: Decimal,
        hold_seconds: float,
        deadline: Deadline,
    ) -> None:
        limit = _nanos(budget.amount, ROUND_HALF_UP)
        granted, settled, reserved = await self._state.call(
            Guarantee.SPEND,
            "spend_reserve",
            deadline,
            lambda s: s.spend_reserve(
                period.key(caller.name),
                holder,
                _nanos(amount, ROUND_CEILING),
                limit,
                hold_seconds + _HOLD_SLACK_SECONDS,
                period.ttl(),
            ),
        )
        if granted:
            return
        self._metrics.quota_refused(caller.name, "budget")
        resets = period.end.isoformat().replace("+00:00", "Z")
        spent = format_amount(_amount(settled + reserved))
        raise ResourceExhausted(
            f"caller {caller.name!r} has spent {spent} of its {budget.period}ly budget of "
            f"{format_amount(budget.amount)} {self.currency} (with calls in flight), and this "
            f"call may cost up to {format_amount(amount)}; the budget resets at {resets}, or "
            "ask the operators to raise budget: in its callers: entry",
            reason="CALLER_BUDGET_EXHAUSTED",
            metadata={
                "caller": caller.name,
                "limit": format_amount(budget.amount),
                "period": budget.period,
                "spent": spent,
                "currency": self.currency,
                "resetsAt": resets,
            },
            retry_after_seconds=max(
                1.0, (period.end - datetime.datetime.now(datetime.UTC)).total_seconds()
            ),
        )

    async def settle(self, hold: Hold, charge: Charge, *, created: bool, once: float = 0.0) -> bool:
        """Replaces the hold's reservation with what the call's predictions cost (or, when
        one was created but its cost never became known, the reservation: the most it could
        cost). A repeated request_id pays nothing: the call that made the prediction paid.

        With `once` > 0 (an operation, which two followers may settle), only the first
        settlement of the hold within `once` seconds counts; returns False for a later one.
        """
        known = [cost.amount for cost in charge.costs if cost.amount is not None]
        amount = sum(known, Decimal(0))
        if charge.repeat:
            amount = Decimal(0)
        elif len(known) < len(charge.costs) or (created and not charge.costs):
            amount = max(hold.reserved, amount)
        if not hold.budgeted and amount == 0:
            return True
        try:
            first = await self._state.call(
                Guarantee.SPEND,
                "spend_settle",
                None,
                lambda s: s.spend_settle(hold.key, hold.holder, _nanos(amount), hold.ttl(), once),
            )
        except (GatewayError, StoreError) as exc:
            # The reservation expires by itself; the spend is then missing from the record.
            self._metrics.spend_unrecorded.inc(float(amount))
            if not self._unrecording:
                self._unrecording = True
                _log.warning(
                    "could not record %s %s spent (%s): %s; spend settled until the store "
                    "answers again is counted in spend_unrecorded_total, not in budgets",
                    format_amount(amount),
                    self.currency,
                    hold.key,
                    exc,
                )
            return True
        if self._unrecording:
            self._unrecording = False
            _log.warning("spend is recorded in the shared store again")
        return first

    async def usage(self, caller: CallerConfig, deadline: Deadline) -> UsageReport:
        budget = caller.budget
        period = Period.current(budget.period if budget is not None else "day")
        settled, reserved = await self._state.call(
            Guarantee.SPEND,
            "spend_read",
            deadline,
            lambda s: s.spend_read(period.key(caller.name)),
        )
        return UsageReport(
            caller=caller.name,
            period=period,
            spent=_amount(settled),
            reserved=_amount(reserved),
            limit=budget.amount if budget is not None else None,
            currency=self.currency,
        )


def note_cost(cost: Cost) -> None:
    """Reports the cost to the current call (its log line shows it)."""
    amount = format_amount(cost.amount) if cost.amount is not None else "unknown"
    call_events.report().cost_known(amount, cost.currency, cost.cache_hit)
