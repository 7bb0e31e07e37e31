"""The one retry rule and its one loop, without HTTP: which failure is retried for which kind.

The expected table is written here from the rule in words (a create is sent again only
when it cannot have been accepted), not read from the module under test.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Sequence
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from inference_gateway.replicate._retry import (
    RETRY_AFTER_CAP,
    Fault,
    Kind,
    Retry,
    RetryPolicy,
    fault_of,
    fault_of_status,
    retry_after,
    retrying,
)


def may_repeat(kind: Kind, fault: Fault) -> bool:
    """The rule in words: nothing was done (429, never sent), or repeating changes nothing."""
    if fault in (Fault.THROTTLED, Fault.NOT_SENT):
        return True
    if fault in (Fault.REFUSED, Fault.MALFORMED):
        return False
    return kind is not Kind.CREATE  # a 5xx or a lost connection may have created it


class Failed(Exception):
    """What a scripted attempt's caller gets when the loop gives up."""


async def run(
    kind: Kind,
    script: Sequence[Fault | str],
    *,
    attempts: int = 10,
    allows: bool = True,
    after: float | None = None,
) -> tuple[list[str], int, Exception | None, list[float]]:
    """Drives the loop over attempts that fail with the scripted faults or yield the strings.

    A string is one value yielded (progress); a fault ends that attempt. Returns the
    values, the attempts started, what the loop raised, and the delays it chose.
    """
    steps = list(script)
    started = 0
    delays: list[float] = []

    async def attempt() -> AsyncGenerator[str, None]:
        nonlocal started
        started += 1
        while steps:
            step = steps.pop(0)
            if isinstance(step, Fault):
                raise Retry(step, Failed(step.value), after=after)
            yield step
        return

    async def on_failure(failure: Retry, delay: float) -> None:
        delays.append(delay)

    policy = RetryPolicy(initial=0.0, maximum=0.0, attempts=dict.fromkeys(Kind, attempts))
    values: list[str] = []
    raised: Exception | None = None
    try:
        async for value in retrying(
            attempt,
            kind=kind,
            policy=policy,
            allows=lambda _: allows,
            on_failure=on_failure,
            on_retry=lambda _, __: None,
        ):
            values.append(value)
    except Failed as exc:
        raised = exc
    return values, started, raised, delays


@given(kind=st.sampled_from(Kind), fault=st.sampled_from(Fault))
def test_one_failure_is_retried_exactly_where_the_rule_allows(kind: Kind, fault: Fault) -> None:
    values, started, raised, _ = asyncio.run(run(kind, [fault, "answer"]))
    if may_repeat(kind, fault):
        assert (values, started, raised) == (["answer"], 2, None)
    else:
        assert (values, started) == ([], 1)
        assert str(raised) == fault.value


@given(
    kind=st.sampled_from(Kind),
    script=st.lists(st.sampled_from(Fault) | st.just("v"), max_size=12),
    attempts=st.integers(min_value=1, max_value=4),
)
def test_attempts_bound_consecutive_failures_and_progress_resets_them(
    kind: Kind, script: list[Fault | str], attempts: int
) -> None:
    values, started, raised, _ = asyncio.run(run(kind, script, attempts=attempts))
    # Replay the script by hand: where must the loop stop, and how many attempts did it take?
    expect_values: list[str] = []
    expect_started, in_a_row, expect_raised = 1, 0, None
    for step in script:
        if isinstance(step, str):
            expect_values.append(step)
            in_a_row = 0
            continue
        in_a_row += 1
        if not may_repeat(kind, step) or in_a_row >= attempts:
            expect_raised = step.value
            break
        expect_started += 1
    assert values == expect_values
    assert started == expect_started
    assert (str(raised) if raised else None) == expect_raised


@pytest.mark.parametrize("kind", list(Kind))
async def test_no_retry_when_the_deadline_leaves_no_room_for_the_wait(kind: Kind) -> None:
    values, started, raised, _ = await run(kind, [Fault.THROTTLED, "late"], allows=False)
    assert (values, started, str(raised)) == ([], 1, "throttled")


async def test_the_servers_retry_delay_wins_over_the_backoff() -> None:
    _, started, _, delays = await run(Kind.CREATE, [Fault.THROTTLED, "ok"], after=0.01)
    assert (started, delays) == (2, [0.01])


async def test_closing_the_loop_closes_the_running_attempt() -> None:
    closed = asyncio.Event()

    async def attempt() -> AsyncGenerator[int, None]:
        try:
            yield 1
            yield 2
        finally:
            closed.set()

    async def on_failure(failure: Retry, delay: float) -> None:
        raise AssertionError("nothing failed")

    loop = retrying(
        attempt,
        kind=Kind.STREAM,
        policy=RetryPolicy(initial=0.25, maximum=8.0, attempts=dict.fromkeys(Kind, 6)),
        allows=lambda _: True,
        on_failure=on_failure,
        on_retry=lambda _, __: None,
    )
    assert await anext(loop) == 1
    await loop.aclose()
    assert closed.is_set()


def test_backoff_doubles_up_to_its_cap_and_is_scaled_by_the_jitter() -> None:
    full = RetryPolicy(initial=0.25, maximum=3.0, attempts={}, jitter=lambda: 1.0)
    half = RetryPolicy(initial=0.25, maximum=3.0, attempts={}, jitter=lambda: 0.5)
    assert [full.backoff(n) for n in range(1, 7)] == [0.25, 0.5, 1.0, 2.0, 3.0, 3.0]
    assert [half.backoff(n) for n in range(1, 4)] == [0.125, 0.25, 0.5]


@given(failures=st.integers(min_value=1, max_value=200), jitter=st.floats(0.0, 1.0))
def test_backoff_stays_within_its_truncated_ceiling(failures: int, jitter: float) -> None:
    policy = RetryPolicy(initial=0.25, maximum=8.0, attempts={}, jitter=lambda: jitter)
    assert 0.0 <= policy.backoff(failures) <= min(8.0, 0.25 * 2 ** (failures - 1))


@pytest.mark.parametrize(
    ("exc", "fault"),
    [
        (httpx.ConnectError, Fault.NOT_SENT),
        (httpx.ConnectTimeout, Fault.NOT_SENT),
        (httpx.PoolTimeout, Fault.NOT_SENT),
        (httpx.ReadTimeout, Fault.LOST),
        (httpx.WriteTimeout, Fault.LOST),
        (httpx.ReadError, Fault.LOST),
        (httpx.WriteError, Fault.LOST),
        (httpx.RemoteProtocolError, Fault.LOST),
        (httpx.DecodingError, Fault.MALFORMED),
    ],
)
def test_only_failures_before_sending_count_as_not_sent(
    exc: type[httpx.RequestError], fault: Fault
) -> None:
    assert fault_of(exc("x")) is fault


@given(status=st.integers(min_value=100, max_value=599))
def test_statuses(status: int) -> None:
    expected = (
        Fault.THROTTLED if status == 429 else Fault.SERVER_ERROR if status >= 500 else Fault.REFUSED
    )
    assert fault_of_status(status) is expected


@pytest.mark.parametrize(
    ("header", "body", "seconds"),
    [
        ("3", None, 3.0),
        ("0.5", {"retry_after": 9}, 0.5),
        (None, {"retry_after": 7}, 7.0),
        (None, {"retry_after": True}, None),
        (None, {"retry_after": -1}, None),
        ("soon", {"retry_after": 2}, 2.0),
        ("3600", None, RETRY_AFTER_CAP),
        (None, None, None),
    ],
)
def test_retry_after_from_the_header_then_the_body(
    header: str | None, body: dict[str, object] | None, seconds: float | None
) -> None:
    headers = httpx.Headers({"Retry-After": header} if header else {})
    assert retry_after(headers, body) == seconds


def test_retry_after_as_an_http_date() -> None:
    when = format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)
    seconds = retry_after(httpx.Headers({"Retry-After": when}), None)
    assert seconds is not None
    assert 27 <= seconds <= 30


@given(
    header=st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126)),
    value=st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5),
)
def test_retry_after_never_raises_and_stays_within_its_cap(header: str, value: object) -> None:
    seconds = retry_after(httpx.Headers({"Retry-After": header}), {"retry_after": value})
    assert seconds is None or 0.0 <= seconds <= RETRY_AFTER_CAP
