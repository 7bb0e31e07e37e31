"""Rate budgets: the debt queue, refunds, the server's headers and 429 blocks, on a fake clock.

The shared-store semantics under them (atomicity across replicas) are in test_state.py.
"""

from __future__ import annotations

import asyncio
import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from inference_gateway.deadlines import Deadline
from inference_gateway.errors import ResourceExhausted
from inference_gateway.replicate import (
    ANSWER_MARGIN_SECONDS,
    AccountBudgets,
    Bucket,
    RateBudget,
    account_id,
)
from inference_gateway.state import MemoryStore, SharedState


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def on(clock: FakeClock) -> SharedState:
    return SharedState(MemoryStore(clock=clock))


async def test_burst_is_free_then_callers_queue_one_refill_apart(clock: FakeClock) -> None:
    budget = RateBudget(Bucket.CREATE, 60, burst=2, state=on(clock))  # one token a second
    assert [await budget.reserve() for _ in range(5)] == pytest.approx([0, 0, 1, 2, 3])


async def test_default_burst_is_ten_seconds_of_rate(clock: FakeClock) -> None:
    budget = RateBudget(Bucket.OTHER, 600, state=on(clock))  # 10 a second, so a burst of 100
    assert [await budget.reserve() for _ in range(100)] == [0.0] * 100
    assert await budget.reserve() == pytest.approx(0.1)


async def test_refill_pays_debt_and_stops_at_the_burst(clock: FakeClock) -> None:
    budget = RateBudget(Bucket.OTHER, 60, burst=2, state=on(clock))
    for _ in range(3):
        await budget.reserve()  # balance -1
    clock.advance(1.5)  # balance 0.5
    assert await budget.reserve() == pytest.approx(0.5)
    clock.advance(3_600)
    assert [await budget.reserve() for _ in range(3)] == pytest.approx([0, 0, 1])


@pytest.mark.parametrize("rate", [0, -5])
def test_a_rate_that_is_not_positive_is_refused(rate: int) -> None:
    with pytest.raises(ValueError, match="create rate must be positive"):
        RateBudget(Bucket.CREATE, rate)


async def test_acquire_refuses_a_wait_beyond_the_deadline_and_refunds(clock: FakeClock) -> None:
    budget = RateBudget(Bucket.CREATE, 60, burst=1, state=on(clock))
    await budget.reserve()
    with pytest.raises(ResourceExhausted) as caught:
        await budget.acquire(Deadline.after(0.5))
    error = caught.value
    assert error.reason == "RATE_BUDGET_EXHAUSTED"
    assert error.retry_after_seconds == pytest.approx(1.0)
    assert error.metadata == {"bucket": "create", "retryAfterSeconds": "1.0"}
    assert "too close to the call's deadline" in error.message
    # The refused caller gave its token back: the next one waits one refill, not two.
    assert await budget.reserve() == pytest.approx(1.0)


async def test_a_wait_that_leaves_no_time_for_the_request_is_refused_at_once(
    clock: FakeClock,
) -> None:
    budget = RateBudget(Bucket.CREATE, 60, burst=1, state=on(clock))
    await budget.reserve()
    # The next slot is 1 s away: within a 2.5 s deadline, but then the request itself
    # would have less than ANSWER_MARGIN_SECONDS to be answered.
    assert 1.0 + ANSWER_MARGIN_SECONDS > 2.5
    with pytest.raises(ResourceExhausted) as caught:
        await budget.acquire(Deadline.after(2.5))
    assert caught.value.retry_after_seconds == pytest.approx(1.0)


async def test_acquire_waits_when_the_deadline_allows(clock: FakeClock) -> None:
    budget = RateBudget(Bucket.OTHER, 6_000, burst=1, state=on(clock))  # 100 a second
    assert await budget.acquire(Deadline.after(5)) == 0.0
    started = time.monotonic()
    assert await budget.acquire(Deadline.after(5)) == pytest.approx(0.01)
    assert time.monotonic() - started >= 0.009


async def test_headers_lower_the_balance_but_never_raise_it(clock: FakeClock) -> None:
    budget = RateBudget(Bucket.OTHER, 60, burst=10, state=on(clock))
    await budget.observe_headers("1", "1")
    assert [await budget.reserve() for _ in range(2)] == pytest.approx([0, 1])
    await budget.observe_headers("2999", "1")  # the server's larger count does not create tokens
    assert await budget.reserve() == pytest.approx(2)


async def test_a_count_at_or_above_the_capacity_costs_no_store_call(clock: FakeClock) -> None:
    lowered: list[float] = []

    class Counting(MemoryStore):
        async def lower(
            self, key: str, rate: float, capacity: float, remaining: float, reset: float
        ) -> None:
            lowered.append(remaining)
            await super().lower(key, rate, capacity, remaining, reset)

    budget = RateBudget(Bucket.OTHER, 60, burst=10, state=SharedState(Counting(clock=clock)))
    for remaining in ("10", "2999"):
        await budget.observe_headers(remaining, "1")
    await budget.observe_headers("9", "1")
    assert lowered == [9.0]
    assert [await budget.reserve() for _ in range(10)] == pytest.approx([0] * 9 + [1])


async def test_no_remaining_blocks_the_bucket_until_the_reset(clock: FakeClock) -> None:
    budget = RateBudget(Bucket.OTHER, 600, state=on(clock))
    await budget.observe_headers("0", "5")
    assert await budget.reserve() == pytest.approx(5)
    clock.advance(5)
    assert await budget.reserve() == 0


async def test_no_remaining_without_a_reset_blocks_for_a_second(clock: FakeClock) -> None:
    budget = RateBudget(Bucket.OTHER, 6_000, state=on(clock))
    await budget.observe_headers("0", None)
    assert await budget.reserve() == pytest.approx(1)


@pytest.mark.parametrize(
    ("remaining", "reset"), [(None, "30"), ("lots", "1"), ("0", "soon"), ("", "")]
)
async def test_unreadable_headers_change_nothing(
    clock: FakeClock, remaining: str | None, reset: str | None
) -> None:
    budget = RateBudget(Bucket.OTHER, 60, burst=3, state=on(clock))
    await budget.observe_headers(remaining, reset)
    assert [await budget.reserve() for _ in range(4)] == pytest.approx([0, 0, 0, 1])


async def test_block_for_holds_every_caller_and_never_shortens(clock: FakeClock) -> None:
    budget = RateBudget(Bucket.CREATE, 600, state=on(clock))
    await budget.block_for(3)
    await budget.block_for(1)
    assert await budget.reserve() == pytest.approx(3)
    clock.advance(2)
    assert await budget.reserve() == pytest.approx(1)
    clock.advance(1)
    assert await budget.reserve() == 0


@given(
    burst=st.integers(min_value=1, max_value=20),
    per_minute=st.integers(min_value=1, max_value=10_000),
    callers=st.integers(min_value=1, max_value=60),
)
def test_callers_without_time_passing_wait_in_arrival_order(
    burst: int, per_minute: int, callers: int
) -> None:
    budget = RateBudget(Bucket.OTHER, per_minute, burst=burst, state=on(FakeClock()))

    async def reserve_all() -> list[float]:
        return [await budget.reserve() for _ in range(callers)]

    waits = asyncio.run(reserve_all())
    expected = [max(0, n - burst + 1) * 60 / per_minute for n in range(callers)]
    assert waits == pytest.approx(expected)


async def test_a_caller_cancelled_while_waiting_gives_its_slot_back() -> None:
    budget = RateBudget(Bucket.CREATE, 60, burst=1)  # real clock: one token a second
    await budget.reserve()  # the burst is spent; the next caller waits about a second
    waiter = asyncio.ensure_future(budget.acquire(Deadline.after(10)))
    await asyncio.sleep(0)
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    # Without the refund the next caller would wait about two seconds.
    assert await budget.reserve() == pytest.approx(1.0, abs=0.1)


async def test_a_reset_header_blocks_for_at_most_a_minute(clock: FakeClock) -> None:
    budget = RateBudget(Bucket.OTHER, 600, state=on(clock))
    await budget.observe_headers("0", "86400")
    assert await budget.reserve() == pytest.approx(60.0)
    await budget.observe_headers("0", "inf")  # unreadable as a duration: ignored
    assert await budget.reserve() <= 60.0


async def test_each_account_has_its_own_pair_keyed_by_a_hash_of_its_token(
    clock: FakeClock,
) -> None:
    budgets = AccountBudgets(on(clock), create_per_minute=60, other_per_minute=600)
    shared = budgets("r8_test_default", Bucket.CREATE)
    assert shared is budgets("r8_test_default", Bucket.CREATE)
    for _ in range(10):  # the default account's burst: 10 s of 60 a minute
        assert await shared.reserve() == 0
    assert await shared.reserve() == pytest.approx(1.0)
    # Another token's bucket is untouched: its own full burst.
    team_b = budgets("r8_test_team_b", Bucket.CREATE)
    assert [await team_b.reserve() for _ in range(10)] == [0] * 10
    assert await team_b.reserve() == pytest.approx(1.0)
    assert await budgets("r8_test_default", Bucket.OTHER).reserve() == 0


def test_an_account_is_named_by_a_digest_never_the_token() -> None:
    token = "r8_test_secret_value"
    assert account_id(token) == account_id(token)
    assert token not in account_id(token)
    assert account_id(token) != account_id("r8_test_other_value")
