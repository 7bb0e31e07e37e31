"""Fallbacks, hedges past a boot and boot progress, over real gRPC against the simulator."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable
from pathlib import Path

import grpc
import pytest
from google.longrunning import operations_pb2, operations_pb2_grpc

from inference_gateway.config import hash_token
from inference_gateway_protos.inference.gateway.v1 import gateway_pb2 as pb
from replicate_simulator import SimulatorConfig
from tests.gateway_harness import Harness, running_gateway
from tests.simulator_fixtures import wait_until
from tests.support.models import LLAMA2, LLAMA3
from tests.support.operations import operation_metadata, text_response

pytestmark = pytest.mark.asyncio

OTHER_TOKEN = "r8_test_other_account_000000000000000"
CONFIG = f"""
aliases:
  chat:
    model: {LLAMA3}
    fallbacks: [backup]
  chat-at-any-cost:
    model: {LLAMA3}
    fallbacks: [backup]
    fallback_on_ambiguous_create: true
  strict:
    model: {LLAMA3}
    fallbacks: [{LLAMA2}]
  on-failure:
    model: {LLAMA3}
    fallbacks: [{LLAMA2}]
    fallback_on_failure: true
  gone:
    model: deployments/acme/deleted-yesterday
    fallbacks: [backup]
  other-account:
    model: {LLAMA3}
    fallbacks: [paid-elsewhere]
  booting:
    model: {LLAMA3}
    fallbacks: [backup]
    fallback_reserve_seconds: 100
  hedged:
    model: deployments/acme/llama3-prod
    fallbacks: [backup]
    hedge_after_seconds: 5
  thrifty:
    model: {LLAMA3}
    fallbacks: [backup]
    hedge_after_seconds: 1
    hedges_per_minute: 1
  backup:
    model: {LLAMA2}
  paid-elsewhere:
    model: {LLAMA2}
    api_key: os.environ/OTHER_TOKEN
"""


@pytest.fixture
async def h(tmp_path: Path) -> AsyncIterator[Harness]:
    path = tmp_path / "gateway.yaml"
    path.write_text(CONFIG, encoding="utf-8")
    async with running_gateway(config=path, env={"OTHER_TOKEN": OTHER_TOKEN}) as harness:
        yield harness


def answers(h: Harness, model: str, role: str) -> float:
    value = h.gateway.metrics.registry.get_sample_value(
        "inference_gateway_answers_total", {"model": model, "role": role}
    )
    return value or 0.0


def cancels(h: Harness) -> dict[str, float]:
    """The gateway's cancels sent, by reason."""
    counted = {
        sample.labels["reason"]: sample.value
        for family in h.gateway.metrics.registry.collect()
        for sample in family.samples
        if sample.name == "inference_gateway_cancels_sent_total"
    }
    return {reason: value for reason, value in counted.items() if value}


def creates(h: Harness, model: str) -> int:
    return h.requests.count(kind="create", model=model)


async def ask(h: Harness, alias: str, **fields: object) -> pb.GenerateTextResponse:
    request = pb.GenerateTextRequest(model=alias, prompt="hello", **fields)  # type: ignore[arg-type]
    return await h.stub.GenerateText(request, timeout=20)


async def test_a_create_answered_5xx_falls_back_only_where_the_alias_opts_in(
    h: Harness,
) -> None:
    # Was: every alias fell back after a create's 503, though the create may have made a
    # prediction (it is never re-sent for that reason): two paid predictions.
    h.simulator.state.faults.add(kind="create", model=LLAMA3, status=503)
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await ask(h, "chat")
    assert refused.value.code() is grpc.StatusCode.UNAVAILABLE
    assert (creates(h, LLAMA3), creates(h, LLAMA2)) == (1, 0)

    h.simulator.state.faults.add(kind="create", model=LLAMA3, status=503)
    reply = await ask(h, "chat-at-any-cost")
    assert reply.prediction.answered_by == "backup"
    assert reply.prediction.role == pb.PREDICTION_ROLE_FALLBACK
    assert reply.prediction.model == LLAMA2
    [create] = h.requests.matching(kind="create", model=LLAMA2)
    assert reply.text == h.simulator.state.expected_text(LLAMA2, create.body["input"])
    assert (creates(h, LLAMA3), creates(h, LLAMA2)) == (2, 1)
    assert answers(h, "backup", "fallback") == 1
    assert answers(h, "chat-at-any-cost", "primary") == 0


async def test_a_model_that_answers_is_the_primary(h: Harness) -> None:
    reply = await ask(h, "chat")
    assert (reply.prediction.answered_by, reply.prediction.role) == (
        "chat",
        pb.PREDICTION_ROLE_PRIMARY,
    )
    assert creates(h, LLAMA2) == 0
    assert answers(h, "chat", "primary") == 1


async def test_a_deleted_deployment_falls_back(h: Harness) -> None:
    reply = await ask(h, "gone")
    assert reply.prediction.answered_by == "backup"
    assert h.requests.count(kind="create") == 2


async def test_a_failed_prediction_falls_back_only_where_the_alias_opts_in(h: Harness) -> None:
    h.simulator.state.set_behaviour(LLAMA3, fail_error="CUDA out of memory")
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await ask(h, "strict")
    assert refused.value.code() is grpc.StatusCode.FAILED_PRECONDITION
    assert creates(h, LLAMA2) == 0
    reply = await ask(h, "on-failure")
    assert reply.prediction.answered_by == LLAMA2
    assert reply.prediction.role == pb.PREDICTION_ROLE_FALLBACK


async def test_never_on_the_callers_invalid_argument(h: Harness) -> None:
    h.simulator.state.faults.add(kind="create", model=LLAMA3, status=400)
    with pytest.raises(grpc.aio.AioRpcError) as upstream:
        await ask(h, "chat")
    assert upstream.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    with pytest.raises(grpc.aio.AioRpcError) as schema:
        await ask(h, "chat", top_k=-5)
    assert schema.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert creates(h, LLAMA2) == 0


async def test_a_request_may_opt_out(h: Harness) -> None:
    h.simulator.state.faults.add(kind="create", model=LLAMA3, status=503)
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await ask(h, "chat", disable_fallbacks=True)
    assert refused.value.code() is grpc.StatusCode.UNAVAILABLE
    assert creates(h, LLAMA2) == 0


async def test_rate_limits_fall_back_only_to_another_account(
    h: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OTHER_TOKEN", OTHER_TOKEN)  # read when the call is made
    for _ in range(2):
        h.simulator.state.faults.add(kind="create", model=LLAMA3, status=429, retry_after=3600)
    with pytest.raises(grpc.aio.AioRpcError) as same_account:
        await ask(h, "chat")
    assert same_account.value.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
    assert creates(h, LLAMA2) == 0
    reply = await ask(h, "other-account")
    assert reply.prediction.answered_by == "paid-elsewhere"
    [create] = h.requests.matching(kind="create", model=LLAMA2)
    assert create.headers["authorization"] == f"Bearer {OTHER_TOKEN}"


@pytest.mark.slow
async def test_a_model_booting_near_the_deadline_is_left_for_the_fallback(h: Harness) -> None:
    state = h.simulator.state
    state.force_cold_boot(LLAMA3, 120.0)
    started = time.monotonic()
    # 10 s to go, 100 s reserve: the boot is given half of it, then the fallback runs.
    reply = await h.stub.GenerateText(
        pb.GenerateTextRequest(model="booting", prompt="hello"), timeout=10
    )
    assert reply.prediction.answered_by == "backup"
    assert time.monotonic() - started < 10
    [booted] = [p for p in state.predictions.values() if p.model.full_name == LLAMA3]
    await wait_until(booted, lambda p: p.status == "canceled")


@pytest.mark.slow
async def test_a_hedge_answers_a_120s_deployment_boot_and_the_boot_is_canceled(
    h: Harness,
) -> None:
    state = h.simulator.state
    state.force_cold_boot(LLAMA3, 120.0)
    started = time.monotonic()
    reply = await ask(h, "hedged")
    elapsed = time.monotonic() - started
    assert reply.prediction.answered_by == "backup"
    assert reply.prediction.role == pb.PREDICTION_ROLE_HEDGE
    timing = reply.prediction.timing
    fallback_run = sum(
        duration.ToTimedelta().total_seconds()
        for duration in (timing.queue_duration, timing.predict_duration)
    )
    assert elapsed < 5 + fallback_run + 2
    assert h.requests.count(kind="create") == 2
    [booted] = [p for p in state.predictions.values() if p.deployment == "acme/llama3-prod"]
    await wait_until(booted, lambda p: p.status == "canceled")
    await h.gateway.runner.drain_cancels()
    assert h.requests.count(kind="cancel") == 1
    assert answers(h, "backup", "hedge") == 1
    assert cancels(h) == {"hedge_lost": 1}


async def test_streamtext_reports_a_30s_boot_before_its_first_token_only(tmp_path: Path) -> None:
    path = tmp_path / "gateway.yaml"
    path.write_text(CONFIG, encoding="utf-8")
    simulator = SimulatorConfig(token_interval_seconds=0.002, time_scale=10)
    async with running_gateway(
        config=path,
        env={"OTHER_TOKEN": OTHER_TOKEN},
        simulator_config=simulator,
        progress_interval=1.0,
    ) as h:
        h.simulator.state.force_cold_boot(LLAMA3, 30.0)  # 3 s real
        # Cancel-After is read in simulated seconds: 90 s of deadline outlasts the boot.
        call = h.stub.StreamText(pb.GenerateTextRequest(model=LLAMA3, prompt="hi"), timeout=90)
        seen: list[str] = []
        statuses = []
        async for message in call:
            if message.HasField("progress"):
                seen.append("progress")
                statuses.append(message.progress.status)
            elif message.text:
                seen.append("text")
        first_text = seen.index("text")
        assert "progress" in seen[:first_text]
        assert "progress" not in seen[first_text:]
        assert statuses[0] == pb.PREDICTION_STATUS_STARTING
        # One GET a second of a 3 s boot, and one for the summary: the budget holds.
        assert h.requests.count(kind="get") <= 3 + 2
        # What dashboards read to tell a model likely to be cold.
        registry = h.gateway.metrics.registry
        boot = registry.get_sample_value(
            "inference_gateway_model_last_boot_seconds", {"model": LLAMA3}
        )
        assert boot is not None
        assert boot >= 30
        last_run = registry.get_sample_value(
            "inference_gateway_model_last_run_timestamp_seconds", {"model": LLAMA3}
        )
        assert last_run is not None
        assert abs(last_run - time.time()) < 60


@pytest.mark.slow
async def test_streamtext_hedge_the_first_token_wins(h: Harness) -> None:
    state = h.simulator.state
    state.force_cold_boot(LLAMA3, 120.0)
    call = h.stub.StreamText(pb.GenerateTextRequest(model="hedged", prompt="hi"), timeout=30)
    kinds: list[str] = []
    last = pb.Prediction()
    async for message in call:
        if message.HasField("progress"):
            kinds.append("progress")
        elif message.text:
            kinds.append("text")
        if message.HasField("prediction"):
            last = message.prediction
    assert kinds.index("text") > 0
    assert "progress" not in kinds[kinds.index("text") :]
    assert (last.answered_by, last.role) == ("backup", pb.PREDICTION_ROLE_HEDGE)
    assert h.requests.count(kind="create") == 2
    [booted] = [p for p in state.predictions.values() if p.deployment == "acme/llama3-prod"]
    await wait_until(booted, lambda p: p.status == "canceled")
    await h.gateway.runner.drain_cancels()
    assert h.requests.count(kind="cancel") == 1
    assert cancels(h) == {"hedge_lost": 1}


CALLERS = (
    CONFIG
    + f"""
callers:
  chat-only:
    token_sha256: "{hash_token("chat-only-token")}"
    aliases: [chat-at-any-cost]
  chat-and-backup:
    token_sha256: "{hash_token("both-token")}"
    aliases: [chat-at-any-cost, backup]
  one-at-a-time:
    token_sha256: "{hash_token("single-token")}"
    aliases: [thrifty, backup]
    max_concurrency: 1
"""
)


def bearer(token: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {token}"),)


async def test_a_caller_gets_only_fallbacks_it_may_use_itself(tmp_path: Path) -> None:
    path = tmp_path / "gateway.yaml"
    path.write_text(CALLERS, encoding="utf-8")
    async with running_gateway(config=path, env={"OTHER_TOKEN": OTHER_TOKEN}) as h:
        request = pb.GenerateTextRequest(model="chat-at-any-cost", prompt="hello")
        h.simulator.state.faults.add(kind="create", model=LLAMA3, status=503)
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await h.stub.GenerateText(request, timeout=20, metadata=bearer("chat-only-token"))
        assert refused.value.code() is grpc.StatusCode.UNAVAILABLE
        assert creates(h, LLAMA2) == 0
        h.simulator.state.faults.add(kind="create", model=LLAMA3, status=503)
        reply = await h.stub.GenerateText(request, timeout=20, metadata=bearer("both-token"))
        assert reply.prediction.answered_by == "backup"


async def test_hedges_per_minute_caps_hedges_the_deadline_still_switches(h: Harness) -> None:
    h.simulator.state.force_cold_boot(LLAMA3, 120.0)  # both calls wait for this boot
    request = pb.GenerateTextRequest(model="thrifty", prompt="hello")
    replies = await asyncio.gather(
        h.stub.GenerateText(request, timeout=8), h.stub.GenerateText(request, timeout=8)
    )
    assert sorted(reply.prediction.role for reply in replies) == [
        pb.PREDICTION_ROLE_FALLBACK,  # over budget: no hedge, but the boot is given up at ~2 s
        pb.PREDICTION_ROLE_HEDGE,
    ]
    registry = h.gateway.metrics.registry

    def hedges(outcome: str) -> float | None:
        return registry.get_sample_value(
            "inference_gateway_hedges_total", {"model": "thrifty", "outcome": outcome}
        )

    assert (hedges("started"), hedges("over_budget")) == (1, 1)


async def test_a_hedge_counts_against_the_callers_concurrency(tmp_path: Path) -> None:
    """With one call at a time allowed, the hedge's prediction would be a second: it is
    refused, and the boot is given up for the fallback near the deadline instead."""
    path = tmp_path / "gateway.yaml"
    path.write_text(CALLERS, encoding="utf-8")
    async with running_gateway(config=path, env={"OTHER_TOKEN": OTHER_TOKEN}) as h:
        h.simulator.state.force_cold_boot(LLAMA3, 120.0)
        reply = await h.stub.GenerateText(
            pb.GenerateTextRequest(model="thrifty", prompt="hello"),
            timeout=8,
            metadata=bearer("single-token"),
        )
        assert reply.prediction.role == pb.PREDICTION_ROLE_FALLBACK
        refused = h.gateway.metrics.registry.get_sample_value(
            "inference_gateway_quota_refusals_total",
            {"caller": "one-at-a-time", "quota": "max_concurrency"},
        )
        assert refused == 1


async def test_a_short_deadline_still_falls_back_with_replicates_minimum_cancel_after(
    h: Harness,
) -> None:
    """Under 5 s left a fallback still starts (the gateway cancels it at the deadline if it
    must); only under GATEWAY_MIN_DEADLINE would it not."""
    h.simulator.state.faults.add(kind="create", model=LLAMA3, status=503)
    request = pb.GenerateTextRequest(model="chat-at-any-cost", prompt="hello")
    reply = await h.stub.GenerateText(request, timeout=3)
    assert (reply.prediction.answered_by, reply.prediction.role) == (
        "backup",
        pb.PREDICTION_ROLE_FALLBACK,
    )
    [create] = h.requests.matching(kind="create", model=LLAMA2)
    assert create.headers["cancel-after"] == "5s"


# --- submitted operations: their create falls back as a blocking call's does ----------------


def submit(h: Harness, alias: str, **fields: object) -> Awaitable[operations_pb2.Operation]:
    request = pb.GenerateTextRequest(model=alias, prompt="hello", **fields)  # type: ignore[arg-type]
    return h.stub.SubmitText(pb.SubmitTextRequest(request=request), timeout=20)


async def refused_submit(h: Harness, alias: str, **fields: object) -> grpc.StatusCode:
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await submit(h, alias, **fields)
    return refused.value.code()


async def submit_and_wait(h: Harness, alias: str) -> operations_pb2.Operation:
    submitted = await submit(h, alias)
    ops = operations_pb2_grpc.OperationsStub(h.channel)
    wait = operations_pb2.WaitOperationRequest(name=submitted.name)
    wait.timeout.FromSeconds(20)
    ended = await ops.WaitOperation(wait, timeout=30)
    assert ended.done
    return ended


async def test_a_submission_whose_deployment_is_gone_runs_on_the_fallback(h: Harness) -> None:
    # Was: a submission ran only the model it named, so SubmitText failed where
    # GenerateText on the same alias answered from its fallback.
    ended = await submit_and_wait(h, "gone")
    reply = text_response(ended)
    assert reply.prediction.answered_by == "backup"
    assert reply.prediction.role == pb.PREDICTION_ROLE_FALLBACK
    assert reply.prediction.model == LLAMA2
    metadata = operation_metadata(ended)
    assert metadata.model == "gone"
    assert list(metadata.prediction_ids) == [reply.prediction.id]
    assert answers(h, "backup", "fallback") == 1


async def test_a_submissions_create_falls_back_on_the_blocking_calls_rules(h: Harness) -> None:
    # A 5xx only where the alias opts in, as for a blocking call; never when the request
    # opts out; the first model's failure is what the caller hears when none answers.
    faults = h.simulator.state.faults
    faults.add(kind="create", model=LLAMA3, status=503)
    assert await refused_submit(h, "chat") is grpc.StatusCode.UNAVAILABLE
    assert (creates(h, LLAMA3), creates(h, LLAMA2)) == (1, 0)

    faults.add(kind="create", model=LLAMA3, status=503)
    opted_out = await refused_submit(h, "chat-at-any-cost", disable_fallbacks=True)
    assert opted_out is grpc.StatusCode.UNAVAILABLE
    assert (creates(h, LLAMA3), creates(h, LLAMA2)) == (2, 0)

    faults.add(kind="create", model=LLAMA3, status=503)
    reply = text_response(await submit_and_wait(h, "chat-at-any-cost"))
    assert reply.prediction.answered_by == "backup"
    assert (creates(h, LLAMA3), creates(h, LLAMA2)) == (3, 1)

    faults.add(kind="create", model=LLAMA3, status=503)
    faults.add(kind="create", model=LLAMA2, status=404)
    assert await refused_submit(h, "chat-at-any-cost") is grpc.StatusCode.UNAVAILABLE
    assert (creates(h, LLAMA3), creates(h, LLAMA2)) == (4, 2)
