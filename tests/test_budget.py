"""Rate budgets: the debt queue, refunds, the server's headers and 429 blocks, on a fake clock."""

from __future__ import annotations

import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from inference_gateway.deadlines import Deadline
from inference_gateway.errors import ResourceExhausted
from inference_gateway.replicate import Bucket, RateBudget


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


def test_burst_is_free_then_callers_queue_one_refill_apart(clock: FakeClock) -> None:
    budget = RateBudget(Bucket.CREATE, 60, burst=2, clock=clock)  # one token a second
    assert [budget.reserve() for _ in range(5)] == pytest.approx([0, 0, 1, 2, 3])


def test_default_burst_is_ten_seconds_of_rate(clock: FakeClock) -> None:
    budget = RateBudget(Bucket.OTHER, 600, clock=clock)  # 10 a second, so a burst of 100
    assert all(budget.reserve() == 0 for _ in range(100))
    assert budget.reserve() == pytest.approx(0.1)


def test_refill_pays_debt_and_stops_at_the_burst(clock: FakeClock) -> None:
    budget = RateBudget(Bucket.OTHER, 60, burst=2, clock=clock)
    for _ in range(3):
        budget.reserve()  # balance -1
    clock.advance(1.5)  # balance 0.5
    assert budget.reserve() == pytest.approx(0.5)
    clock.advance(3_600)
    assert [budget.reserve() for _ in range(3)] == pytest.approx([0, 0, 1])


@pytest.mark.parametrize("rate", [0, -5])
def test_a_rate_that_is_not_positive_is_refused(rate: int) -> None:
    with pytest.raises(ValueError, match="create rate must be positive"):
        RateBudget(Bucket.CREATE, rate)


async def test_acquire_refuses_a_wait_beyond_the_deadline_and_refunds(clock: FakeClock) -> None:
    budget = RateBudget(Bucket.CREATE, 60, burst=1, clock=clock)
    budget.reserve()
    with pytest.raises(ResourceExhausted) as caught:
        await budget.acquire(Deadline.after(0.5))
    error = caught.value
    assert error.reason == "RATE_BUDGET_EXHAUSTED"
    assert error.retry_after_seconds == pytest.approx(1.0)
    assert error.metadata == {"bucket": "create", "retryAfterSeconds": "1.0"}
    assert "beyond the call's deadline" in error.message
    # The refused caller gave its token back: the next one waits one refill, not two.
    assert budget.reserve() == pytest.approx(1.0)


async def test_acquire_waits_when_the_deadline_allows(clock: FakeClock) -> None:
    budget = RateBudget(Bucket.OTHER, 6_000, burst=1, clock=clock)  # 100 a second
    assert await budget.acquire(Deadline.after(5)) == 0.0
    started = time.monotonic()
    assert await budget.acquire(Deadline.after(5)) == pytest.approx(0.01)
    assert time.monotonic() - started >= 0.009


def test_headers_lower_the_balance_but_never_raise_it(clock: FakeClock) -> None:
    budget = RateBudget(Bucket.OTHER, 60, burst=10, clock=clock)
    budget.observe_headers("1", "1")
    assert [budget.reserve() for _ in range(2)] == pytest.approx([0, 1])
    budget.observe_headers("2999", "1")  # the server's larger count does not create tokens
    assert budget.reserve() == pytest.approx(2)


def test_no_remaining_blocks_the_bucket_until_the_reset(clock: FakeClock) -> None:
    budget = RateBudget(Bucket.OTHER, 600, clock=clock)
    budget.observe_headers("0", "5")
    assert budget.reserve() == pytest.approx(5)
    clock.advance(5)
    assert budget.reserve() == 0


def test_no_remaining_without_a_reset_blocks_for_a_second(clock: FakeClock) -> None:
    budget = RateBudget(Bucket.OTHER, 6_000, clock=clock)
    budget.observe_headers("0", None)
    assert budget.reserve() == pytest.approx(1)


@pytest.mark.parametrize(
    ("remaining", "reset"), [(None, "30"), ("lots", "1"), ("0", "soon"), ("", "")]
)
def test_unreadable_headers_change_nothing(
    clock: FakeClock, remaining: str | None, reset: str | None
) -> None:
    budget = RateBudget(Bucket.OTHER, 60, burst=3, clock=clock)
    budget.observe_headers(remaining, reset)
    assert [budget.reserve() for _ in range(4)] == pytest.approx([0, 0, 0, 1])


def test_block_for_holds_every_caller_and_never_shortens(clock: FakeClock) -> None:
    budget = RateBudget(Bucket.CREATE, 600, clock=clock)
    budget.block_for(3)
    budget.block_for(1)
    assert budget.reserve() == pytest.approx(3)
    clock.advance(2)
    assert budget.reserve() == pytest.approx(1)
    clock.advance(1)
    assert budget.reserve() == 0


@given(
    burst=st.integers(min_value=1, max_value=20),
    per_minute=st.integers(min_value=1, max_value=10_000),
    callers=st.integers(min_value=1, max_value=60),
)
def test_callers_without_time_passing_wait_in_arrival_order(
    burst: int, per_minute: int, callers: int
) -> None:
    budget = RateBudget(Bucket.OTHER, per_minute, burst=burst, clock=FakeClock())
    waits = [budget.reserve() for _ in range(callers)]
    expected = [max(0, n - burst + 1) * 60 / per_minute for n in range(callers)]
    assert waits == pytest.approx(expected)


async def test_a_caller_cancelled_while_waiting_gives_its_slot_back() -> None:
    import asyncio

    budget = RateBudget(Bucket.CREATE, 60, burst=1)  # real clock: one token a second
    budget.reserve()  # the burst is spent; the next caller waits about a second
    waiter = asyncio.ensure_future(budget.acquire(Deadline.after(10)))
    await asyncio.sleep(0)
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    # Without the refund the next caller would wait about two seconds.
    assert budget.reserve() == pytest.approx(1.0, abs=0.1)


def test_a_reset_header_blocks_for_at_most_a_minute(clock: FakeClock) -> None:
    budget = RateBudget(Bucket.OTHER, 600, clock=clock)
    budget.observe_headers("0", "86400")
    assert budget.reserve() == pytest.approx(60.0)
    budget.observe_headers("0", "inf")  # unreadable as a duration: ignored
    assert budget.reserve() <= 60.0
