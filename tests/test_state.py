"""The shared-state interface, one behavioural suite run against both back ends.

The Redis runs use a real redis-server on loopback, and several clients on it stand for
several replicas: atomicity is proven by concurrent operations from all of them.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from inference_gateway.deadlines import Deadline
from inference_gateway.errors import DeadlineExceeded, Unavailable
from inference_gateway.settings import Settings, SettingsError, add_server_arguments, settings_from
from inference_gateway.state import (
    ClaimOutcome,
    FailurePolicy,
    Guarantee,
    MemoryStore,
    SharedState,
    StateStore,
    StoreError,
    parse_policies,
)
from inference_gateway.state.redis import RedisStore, redacted_url
from tests.redis_fixtures import RedisServer, redis_server

REPLICAS = 4


@pytest.fixture(scope="module")
def shared_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    with redis_server(tmp_path_factory.mktemp("redis")) as server:
        yield server


@pytest.fixture(params=["memory", "redis"])
async def replicas(
    request: pytest.FixtureRequest, shared_redis: RedisServer
) -> AsyncIterator[list[StateStore]]:
    """The same store as several replicas see it (one process's store, for memory)."""
    if request.param == "memory":
        memory = MemoryStore()
        yield [memory] * REPLICAS
        return
    prefix = f"test-{uuid.uuid4().hex[:8]}"
    stores: list[StateStore] = [
        RedisStore(shared_redis.url, prefix=prefix, timeout=5.0) for _ in range(REPLICAS)
    ]
    yield stores
    for store in stores:
        await store.close()


async def test_bucket_serves_its_burst_then_queues_callers_in_order(
    replicas: list[StateStore],
) -> None:
    store = replicas[0]
    waits = [await store.reserve("b", 1.0, 3.0) for _ in range(5)]
    assert waits[:3] == [0.0, 0.0, 0.0]
    # Each caller past the burst waits one refill interval longer than the one before.
    assert 0.5 < waits[3] <= 1.0
    assert 1.5 < waits[4] <= 2.0


async def test_a_refunded_token_serves_the_next_caller(replicas: list[StateStore]) -> None:
    store = replicas[0]
    for _ in range(3):
        await store.reserve("b", 0.001, 3.0)
    await store.refund("b", 0.001, 3.0)
    assert await store.reserve("b", 0.001, 3.0) == 0.0
    assert await store.reserve("b", 0.001, 3.0) > 100


async def test_lower_to_zero_blocks_every_replica_until_the_reset(
    replicas: list[StateStore],
) -> None:
    await replicas[0].lower("b", 10.0, 10.0, 0.0, 30.0)
    for store in replicas[1:]:
        assert 25 < await store.reserve("b", 10.0, 10.0) <= 30


async def test_lower_never_raises_the_balance(replicas: list[StateStore]) -> None:
    store = replicas[0]
    for _ in range(2):
        await store.reserve("b", 0.001, 2.0)
    await store.lower("b", 0.001, 2.0, 500.0, 1.0)
    assert await store.reserve("b", 0.001, 2.0) > 100


async def test_lower_takes_the_balance_down_to_the_servers_count(
    replicas: list[StateStore],
) -> None:
    await replicas[0].lower("b", 0.001, 50.0, 1.0, 60.0)
    assert await replicas[1].reserve("b", 0.001, 50.0) == 0.0
    assert await replicas[2].reserve("b", 0.001, 50.0) > 100


async def test_block_holds_every_replica_for_the_retry_delay(replicas: list[StateStore]) -> None:
    await replicas[0].block("b", 10.0, 10.0, 20.0)
    for store in replicas:
        assert 15 < await store.reserve("b", 10.0, 10.0) <= 20


async def test_concurrent_reserves_from_all_replicas_never_overspend(
    replicas: list[StateStore],
) -> None:
    waits = await asyncio.gather(
        *(replicas[i % REPLICAS].reserve("b", 0.001, 10.0) for i in range(60))
    )
    assert sum(1 for wait in waits if wait == 0.0) == 10
    # Every caller past the burst got its own place in the queue.
    queued = sorted(wait for wait in waits if wait > 0)
    assert len(queued) == 50
    assert all(later - earlier > 900 for earlier, later in itertools.pairwise(queued))


async def test_leases_admit_exactly_the_limit_across_replicas(replicas: list[StateStore]) -> None:
    holders = [f"h{i}" for i in range(12)]
    granted = await asyncio.gather(
        *(replicas[i % REPLICAS].acquire_lease("l", h, 3, 30.0) for i, h in enumerate(holders))
    )
    assert sum(granted) == 3
    winners = [h for h, ok in zip(holders, granted, strict=True) if ok]
    await replicas[1].release_lease("l", winners[0])
    assert await replicas[2].acquire_lease("l", "late", 3, 30.0)
    assert not await replicas[3].acquire_lease("l", "later", 3, 30.0)


async def test_a_lease_kept_refreshed_outlives_its_ttl_and_one_left_alone_expires(
    replicas: list[StateStore],
) -> None:
    store, other = replicas[0], replicas[1]
    assert await store.acquire_lease("l", "kept", 1, 1.0)
    started = time.monotonic()
    while time.monotonic() - started < 2.5:  # well past the TTL, refreshed 5x as often
        assert await store.refresh_lease("l", "kept", 1.0)
        assert not await other.acquire_lease("l", "other", 1, 1.0)
        await asyncio.sleep(0.2)
    await asyncio.sleep(1.5)  # no refresh: the holder is as good as dead
    assert not await store.refresh_lease("l", "kept", 1.0)
    assert await other.acquire_lease("l", "other", 1, 1.0)


async def test_windows_admit_the_limit_across_replicas_then_say_when(
    replicas: list[StateStore],
) -> None:
    retries = await asyncio.gather(
        *(replicas[i % REPLICAS].hit_window("w", 5, 60.0) for i in range(20))
    )
    assert sum(1 for r in retries if r == 0.0) == 5
    assert all(0 < r <= 120 for r in retries if r > 0)


async def test_a_refused_hit_fits_after_the_time_it_was_told(replicas: list[StateStore]) -> None:
    store = replicas[0]
    assert await store.hit_window("w", 2, 1.0) == 0.0
    assert await store.hit_window("w", 2, 1.0) == 0.0
    retry = await store.hit_window("w", 2, 1.0)
    assert 0 < retry <= 2.0
    await asyncio.sleep(retry + 0.05)
    assert await store.hit_window("w", 2, 1.0) == 0.0


async def test_a_claim_goes_through_running_to_done(replicas: list[StateStore]) -> None:
    owner, repeat = replicas[0], replicas[1]
    assert (await owner.claim("r", "fp", "a", 30, 3600)).outcome is ClaimOutcome.CLAIMED
    assert (await repeat.claim("r", "fp", "b", 30, 3600)).outcome is ClaimOutcome.RUNNING
    assert await owner.renew_claim("r", "a", 30, "pred-1")
    running = await repeat.claim("r", "fp", "b", 30, 3600)
    assert (running.outcome, running.prediction_id) == (ClaimOutcome.RUNNING, "pred-1")
    assert (await repeat.claim("r", "other", "b", 30, 3600)).outcome is ClaimOutcome.MISMATCH
    assert not await repeat.renew_claim("r", "b", 30), "only the owner may renew"
    await repeat.complete("r", "b", b"not mine", 3600)
    await owner.complete("r", "a", b"\x00response\xff", 3600)
    done = await replicas[2].claim("r", "fp", "c", 30, 3600)
    assert done.outcome is ClaimOutcome.DONE
    assert (done.prediction_id, done.response) == ("pred-1", b"\x00response\xff")
    assert (await replicas[2].claim("r", "x", "c", 30, 3600)).outcome is ClaimOutcome.MISMATCH


async def test_simultaneous_claims_make_one_owner(replicas: list[StateStore]) -> None:
    claims = await asyncio.gather(
        *(replicas[i % REPLICAS].claim("r", "fp", f"h{i}", 30, 3600) for i in range(16))
    )
    outcomes = [c.outcome for c in claims]
    assert outcomes.count(ClaimOutcome.CLAIMED) == 1
    assert outcomes.count(ClaimOutcome.RUNNING) == 15


async def test_a_released_claim_lets_a_repeat_create(replicas: list[StateStore]) -> None:
    await replicas[0].claim("r", "fp", "a", 30, 3600)
    assert not await replicas[1].release_claim("r", "b"), "not the owner: no effect"
    assert (await replicas[1].claim("r", "fp", "b", 30, 3600)).outcome is ClaimOutcome.RUNNING
    assert await replicas[0].release_claim("r", "a")
    assert (await replicas[1].claim("r", "fp", "b", 30, 3600)).outcome is ClaimOutcome.CLAIMED


async def test_an_expired_claim_is_taken_over_or_adopted(replicas: list[StateStore]) -> None:
    await replicas[0].claim("none", "fp", "dead", 0.3, 3600)
    await replicas[0].claim("some", "fp", "dead", 0.3, 3600)
    await replicas[0].renew_claim("some", "dead", 0.3, "pred-9")
    await asyncio.sleep(0.6)
    # Killed before the create answered: a repeat may create again (documented).
    assert (await replicas[1].claim("none", "fp", "b", 30, 3600)).outcome is ClaimOutcome.CLAIMED
    # Killed after recording the prediction: a repeat follows it, never creates another.
    adopted = await replicas[1].claim("some", "fp", "b", 30, 3600)
    assert (adopted.outcome, adopted.prediction_id) == (ClaimOutcome.ADOPTED, "pred-9")
    assert not await replicas[0].renew_claim("some", "dead", 30)


async def test_an_abandoned_claim_is_adopted_at_once_or_released_after_its_grace(
    replicas: list[StateStore],
) -> None:
    for key in ("adopted", "left"):
        await replicas[0].claim(key, "fp", "a", 30, 3600)
        await replicas[0].renew_claim(key, "a", 30, f"pred-{key}")
        assert not await replicas[1].abandon_claim(key, "b", 5), "only the owner abandons"
        assert await replicas[0].abandon_claim(key, "a", 5)
    adopted = await replicas[1].claim("adopted", "fp", "b", 30, 3600)
    assert (adopted.outcome, adopted.prediction_id) == (ClaimOutcome.ADOPTED, "pred-adopted")
    # The grace ends: the abandoning replica releases only what nobody adopted.
    assert not await replicas[0].release_claim("adopted", "")
    assert await replicas[0].release_claim("left", "")
    assert (await replicas[2].claim("left", "fp", "c", 30, 3600)).outcome is ClaimOutcome.CLAIMED


async def test_a_finished_record_is_forgotten_after_its_retention(
    replicas: list[StateStore],
) -> None:
    await replicas[0].claim("r", "fp", "a", 30, 3600)
    await replicas[0].complete("r", "a", b"answer", 0.3)
    assert (await replicas[1].claim("r", "fp", "b", 30, 3600)).outcome is ClaimOutcome.DONE
    await asyncio.sleep(0.6)
    assert (await replicas[1].claim("r", "other", "b", 30, 3600)).outcome is ClaimOutcome.CLAIMED


# --- Redis specifics --------------------------------------------------------------------------


async def test_keys_live_under_the_prefix_with_a_hash_tag(shared_redis: RedisServer) -> None:
    a = RedisStore(shared_redis.url, prefix="env-a", timeout=5.0)
    b = RedisStore(shared_redis.url, prefix="env-b", timeout=5.0)
    client = aioredis.Redis.from_url(shared_redis.url)
    try:
        assert await a.acquire_lease("alias:x", "h1", 1, 30)
        assert await b.acquire_lease("alias:x", "h2", 1, 30), "prefixes share nothing"
        keys = sorted(await client.keys("env-*"))
        assert keys == [b"env-a:{alias:x}", b"env-b:{alias:x}"]
        assert 0 < await client.pttl("env-a:{alias:x}") <= 30_000
    finally:
        await a.close()
        await b.close()
        await client.aclose()


async def test_scripts_are_loaded_again_after_the_server_forgets_them(
    shared_redis: RedisServer,
) -> None:
    store = RedisStore(shared_redis.url, prefix=f"t{uuid.uuid4().hex[:6]}", timeout=5.0)
    client = aioredis.Redis.from_url(shared_redis.url)
    try:
        assert await store.reserve("b", 1.0, 5.0) == 0.0
        await client.script_flush()
        assert await store.reserve("b", 1.0, 5.0) == 0.0
    finally:
        await store.close()
        await client.aclose()


async def test_a_password_in_the_url_authenticates(tmp_path: Path) -> None:
    with redis_server(tmp_path, password="s3cret-pw") as server:
        store = RedisStore(server.url, prefix="p", timeout=5.0)
        wrong = RedisStore(server.url.replace("s3cret-pw", "nope"), prefix="p", timeout=5.0)
        try:
            assert await store.acquire_lease("l", "h", 1, 30)
            with pytest.raises(StoreError):
                await wrong.acquire_lease("l", "h", 1, 30)
        finally:
            await store.close()
            await wrong.close()
    assert redacted_url(server.url) == f"redis://***@127.0.0.1:{server.port}/0"
    assert redacted_url("rediss://gw:pw@r:6380") == "rediss://gw:***@r:6380"


@pytest.fixture
def self_signed(tmp_path: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and its key, by the openssl CLI."""
    cert, key = tmp_path / "redis.pem", tmp_path / "redis-key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    return cert, key


async def test_rediss_talks_tls_to_a_server_whose_ca_the_url_names(
    tmp_path: Path, self_signed: tuple[Path, Path]
) -> None:
    with redis_server(tmp_path, tls=self_signed) as server:
        assert server.url.startswith("rediss://")
        store = RedisStore(server.url, prefix="tls", timeout=5.0)
        plain = RedisStore(
            server.url.replace("rediss://", "redis://").split("?")[0], prefix="tls", timeout=2.0
        )
        try:
            assert await store.acquire_lease("l", "h", 1, 30)
            with pytest.raises(StoreError):
                await plain.acquire_lease("l", "h", 1, 30)
        finally:
            await store.close()
            await plain.close()


# --- Outage policy ----------------------------------------------------------------------------


class _Counts:
    def __init__(self) -> None:
        self.calls: list[tuple[str, bool]] = []
        self.fail_open: list[str] = []

    def store_call(self, backend: str, op: str, seconds: float, ok: bool) -> None:
        self.calls.append((op, ok))

    def store_fail_open(self, guarantee: str) -> None:
        self.fail_open.append(guarantee)


async def _reserve(shared: SharedState, guarantee: Guarantee, deadline: Deadline | None) -> float:
    return await shared.call(guarantee, "reserve", deadline, lambda s: s.reserve("b", 1.0, 5.0))


async def _reserve_once_the_store_is_back(shared: SharedState) -> float:
    """A fail-closed reserve, retried until the store answers: when it is tried again after
    the retry interval depends on the machine's load, so no fixed sleep is long enough."""
    give_up = time.monotonic() + 30
    while True:
        try:
            return await _reserve(shared, Guarantee.IDEMPOTENCY, None)
        except Unavailable:
            if time.monotonic() > give_up:
                raise
            await asyncio.sleep(0.05)


async def test_store_down_fail_open_serves_locally_fail_closed_refuses_then_resumes(
    tmp_path: Path,
) -> None:
    counts = _Counts()
    with redis_server(tmp_path) as server:
        shared = SharedState(
            RedisStore(server.url, prefix="o", timeout=2.0),
            timeout=2.0,
            policies={Guarantee.IDEMPOTENCY: FailurePolicy.FAIL_CLOSED},
            observer=counts,
            retry_interval=0.2,
        )
        try:
            assert await _reserve(shared, Guarantee.BUDGET, None) == 0.0
            server.stop()
            started = time.monotonic()
            assert await _reserve(shared, Guarantee.BUDGET, Deadline.after(30)) == 0.0
            with pytest.raises(Unavailable) as refused:
                await _reserve(shared, Guarantee.IDEMPOTENCY, Deadline.after(30))
            assert time.monotonic() - started < 10
            assert refused.value.reason == "STATE_STORE_UNAVAILABLE"
            assert refused.value.metadata["guarantee"] == "idempotency"
            assert counts.fail_open == ["budget"]
            assert ("reserve", False) in counts.calls
            server.start()
            assert await _reserve_once_the_store_is_back(shared) == 0.0
            client = aioredis.Redis.from_url(server.url)
            assert await client.exists("o:{b}") == 1, "shared state resumed in Redis"
            await client.aclose()
        finally:
            await shared.close()


async def test_a_slow_store_is_bounded_by_the_callers_deadline(shared_redis: RedisServer) -> None:
    counts = _Counts()
    shared = SharedState(
        RedisStore(shared_redis.url, prefix="slow", timeout=30.0),
        timeout=30.0,
        observer=counts,
    )
    admin = aioredis.Redis.from_url(shared_redis.url)
    try:
        await admin.client_pause(5000, all=False)
        started = time.monotonic()
        assert await _reserve(shared, Guarantee.BUDGET, Deadline.after(0.3)) == 0.0
        assert time.monotonic() - started < 2.5
        assert counts.fail_open == ["budget"]
    finally:
        await admin.client_unpause()
        await admin.aclose()
        await shared.close()


async def test_a_caller_out_of_time_is_no_outage_of_the_store(shared_redis: RedisServer) -> None:
    counts = _Counts()
    shared = SharedState(
        RedisStore(shared_redis.url, prefix=f"t{uuid.uuid4().hex[:6]}", timeout=5.0),
        timeout=5.0,
        observer=counts,
    )
    try:
        # A deadline already spent: this call cannot wait for the store...
        assert await _reserve(shared, Guarantee.BUDGET, Deadline.after(0)) == 0.0
        # ...but the next caller still goes to it, rather than to this replica's state.
        await _reserve(shared, Guarantee.BUDGET, None)
        assert counts.calls[-1] == ("reserve", True)
        assert counts.fail_open == ["budget"]
        with pytest.raises(DeadlineExceeded):
            await _reserve(shared, Guarantee.IDEMPOTENCY, Deadline.after(0))
    finally:
        await shared.close()


async def test_a_lease_granted_locally_is_released_locally(tmp_path: Path) -> None:
    with redis_server(tmp_path) as server:
        shared = SharedState(RedisStore(server.url, prefix="x", timeout=1.0), retry_interval=0.1)
        try:
            server.stop()
            lease = await shared.acquire_lease(Guarantee.CONCURRENCY, "a", 1, 30, None)
            assert lease is not None
            assert await shared.acquire_lease(Guarantee.CONCURRENCY, "a", 1, 30, None) is None
            server.start()
            await asyncio.sleep(0.2)
            await lease.release()
            server.stop()
            again = await shared.acquire_lease(Guarantee.CONCURRENCY, "a", 1, 30, None)
            assert again is not None, "the local slot was given back"
            await again.release()
        finally:
            await shared.close()


# --- Settings ---------------------------------------------------------------------------------


def _settings(environ: dict[str, str]) -> Settings:
    parser = argparse.ArgumentParser()
    add_server_arguments(parser)
    return settings_from(parser.parse_args([]), environ)


def test_without_a_url_state_stays_in_process_with_stated_policies() -> None:
    settings = _settings({})
    assert settings.redis_url is None
    assert parse_policies(settings.redis_on_failure) == {
        Guarantee.BUDGET: FailurePolicy.FAIL_OPEN,
        Guarantee.CONCURRENCY: FailurePolicy.FAIL_OPEN,
        Guarantee.QUOTA: FailurePolicy.FAIL_OPEN,
        Guarantee.IDEMPOTENCY: FailurePolicy.FAIL_CLOSED,
        Guarantee.OPERATIONS: FailurePolicy.FAIL_CLOSED,
        Guarantee.SPEND: FailurePolicy.FAIL_CLOSED,
    }


def test_redis_settings_are_read_and_the_password_never_shown() -> None:
    settings = _settings(
        {
            "GATEWAY_REDIS_URL": "rediss://gw:hunter2@redis:6380/0",
            "GATEWAY_REDIS_PREFIX": "staging",
            "GATEWAY_REDIS_ON_FAILURE": "budget=fail-closed",
        }
    )
    assert settings.redis_url == "rediss://gw:hunter2@redis:6380/0"
    assert "hunter2" not in repr(settings)
    assert settings.redis_prefix == "staging"
    policies = parse_policies(settings.redis_on_failure)
    assert policies[Guarantee.BUDGET] is FailurePolicy.FAIL_CLOSED
    assert policies[Guarantee.IDEMPOTENCY] is FailurePolicy.FAIL_CLOSED
    assert parse_policies("fail-open")[Guarantee.IDEMPOTENCY] is FailurePolicy.FAIL_OPEN


@pytest.mark.parametrize(
    ("variable", "value", "says"),
    [
        ("GATEWAY_REDIS_URL", "http://redis:6379", "redis:// or rediss://"),
        ("GATEWAY_REDIS_PREFIX", "a{b}", "without braces"),
        ("GATEWAY_REDIS_ON_FAILURE", "budget=open", "fail-open or fail-closed"),
        ("GATEWAY_REDIS_ON_FAILURE", "quotas=fail-open", "budget, concurrency, quota"),
        ("GATEWAY_REDIS_TIMEOUT", "0", "must be positive"),
    ],
)
def test_bad_redis_settings_name_the_variable_and_the_fix(
    variable: str, value: str, says: str
) -> None:
    with pytest.raises(SettingsError) as refused:
        _settings({variable: value})
    assert variable in str(refused.value)
    assert says in str(refused.value)


# --- spend records (budgets) ------------------------------------------------------------------


async def test_concurrent_reservations_never_pass_the_limit(replicas: list[StateStore]) -> None:
    # 30 reservations of 3 against a limit of 10, from every replica at once: three fit.
    granted = await asyncio.gather(
        *(replicas[i % REPLICAS].spend_reserve("s", f"h{i}", 3, 10, 60.0, 600.0) for i in range(30))
    )
    assert sum(1 for ok, _, _ in granted if ok) == 3
    assert await replicas[1].spend_read("s") == (0, 9)


async def test_settling_replaces_the_reservation_with_the_cost(replicas: list[StateStore]) -> None:
    a, b = replicas[0], replicas[1]
    assert (await a.spend_reserve("s", "h1", 5, 10, 60.0, 600.0))[0]
    await b.spend_settle("s", "h1", 2, 600.0)
    assert await a.spend_read("s") == (2, 0)
    # Room for 8 now, not 5: the reservation is gone and only the cost counts.
    assert (await b.spend_reserve("s", "h2", 8, 10, 60.0, 600.0))[0]
    assert not (await a.spend_reserve("s", "h3", 1, 10, 60.0, 600.0))[0]
    # A caller with no reservation (no budget) settles too, past any limit.
    await a.spend_settle("s", "h4", 10**15, 600.0)
    assert await b.spend_read("s") == (2 + 10**15, 8)


async def test_a_settle_once_counts_once_however_many_replicas_settle(
    replicas: list[StateStore],
) -> None:
    assert (await replicas[0].spend_reserve("s", "op", 9, 10, 60.0, 600.0))[0]
    # Every replica settles the same holder at once: one of them records it.
    settled = await asyncio.gather(
        *(replicas[i % REPLICAS].spend_settle("s", "op", 4, 600.0, once=60.0) for i in range(8))
    )
    assert sorted(settled) == [False] * 7 + [True]
    assert await replicas[1].spend_read("s") == (4, 0)
    # A later repeat too; another holder settles as before, and without `once` every time.
    assert not await replicas[2].spend_settle("s", "op", 4, 600.0, once=60.0)
    assert await replicas[3].spend_settle("s", "other", 1, 600.0, once=60.0)
    assert await replicas[0].spend_settle("s", "plain", 1, 600.0)
    assert await replicas[0].spend_settle("s", "plain", 1, 600.0)
    assert await replicas[1].spend_read("s") == (7, 0)


async def test_a_reservation_of_a_dead_replica_expires(replicas: list[StateStore]) -> None:
    assert (await replicas[0].spend_reserve("s", "dead", 9, 10, 0.2, 600.0))[0]
    assert not (await replicas[1].spend_reserve("s", "h", 9, 10, 60.0, 600.0))[0]
    await asyncio.sleep(0.4)  # the hold is a lease on the store's clock: nothing to await
    assert (await replicas[1].spend_reserve("s", "h", 9, 10, 60.0, 600.0))[0]
