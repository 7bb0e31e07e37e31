"""WarmModel: one deployment update for many calls on many replicas, warm meanwhile, restored."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path

import grpc
import pytest
from google.protobuf import duration_pb2

from inference_gateway.config import GatewayConfig, hash_token, load_config
from inference_gateway_protos.inference.gateway.v1 import gateway_pb2 as pb
from replicate_simulator import SimulatorConfig
from tests.gateway_harness import running_gateway
from tests.redis_fixtures import RedisServer
from tests.support.replicas import replicas, simulator
from tests.support.rpc_status import error_info

pytestmark = pytest.mark.asyncio

DEPLOYMENT = "acme/sdxl-prod"  # min_instances 0 in the simulator's catalogue
CONFIG = f"""
aliases:
  pics: {{model: deployments/{DEPLOYMENT}, task: image}}
  chat: {{model: meta/meta-llama-3-8b-instruct}}
callers:
  burst-planner:
    token_sha256: "{hash_token("planner-token")}"
    aliases: [pics, chat]
    warm: true
  artist:
    token_sha256: "{hash_token("artist-token")}"
    aliases: [pics]
"""


def config(tmp_path: Path) -> GatewayConfig:
    path = tmp_path / "gateway.yaml"
    path.write_text(CONFIG, encoding="utf-8")
    return load_config(path, {})


def bearer(token: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {token}"),)


def warm_request(seconds: float, **fields: object) -> pb.WarmModelRequest:
    duration = duration_pb2.Duration()
    duration.FromTimedelta(timedelta(seconds=seconds))
    return pb.WarmModelRequest(model="pics", duration=duration, **fields)  # type: ignore[arg-type]


@pytest.mark.slow
async def test_fifty_calls_on_three_replicas_warm_once_keep_warm_and_restore(
    redis: RedisServer, tmp_path: Path
) -> None:
    # Idle models boot for 60 s (3 s real at scale 20) unless the deployment is kept warm.
    cold = {"cold_boot_idle_seconds": 0.0, "cold_boot_seconds": 60.0, "time_scale": 20}
    async with (
        simulator(**cold) as sim,
        # A generous store timeout: 50 calls at once on a loaded 2-core machine.
        replicas(
            3,
            sim,
            config(tmp_path),
            redis_url=redis.url,
            redis_timeout=2.0,
            warm_sweep_interval=0.2,
        ) as stubs,
    ):
        auth = bearer("planner-token")
        replies = await asyncio.gather(
            *(
                stubs[i % 3].WarmModel(warm_request(3.0), metadata=auth, timeout=20)
                for i in range(50)
            )
        )
        assert Counter(reply.changed for reply in replies) == Counter({True: 1, False: 49})
        assert {(r.deployment, r.min_instances) for r in replies} == {(DEPLOYMENT, 1)}
        assert sim.state.requests.count(kind="deployment_update") == 1
        assert sim.state.catalogue.deployments[DEPLOYMENT].min_instances == 1

        image = pb.GenerateImageRequest(model="pics", prompt="a fox")
        warm = await stubs[1].GenerateImage(image, metadata=auth, timeout=20)
        assert not warm.prediction.timing.cold_boot

        async with asyncio.timeout(15):
            await sim.state.requests.wait_for(2, kind="deployment_update")
        [_, restore] = sim.state.requests.matching(kind="deployment_update")
        assert restore.body == {"min_instances": 0}
        assert sim.state.catalogue.deployments[DEPLOYMENT].min_instances == 0
        # The same call after the warm-up boots cold: the warm-up was what kept it warm.
        # (Cancel-After is read in simulated seconds: 120 s of deadline outlasts the boot.)
        cooled = await stubs[2].GenerateImage(image, metadata=auth, timeout=120)
        assert cooled.prediction.timing.cold_boot


async def test_only_granted_callers_warm_and_only_deployments(tmp_path: Path) -> None:
    async with running_gateway(config=config(tmp_path)) as h:
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await h.stub.WarmModel(warm_request(5), metadata=bearer("artist-token"), timeout=20)
        assert refused.value.code() is grpc.StatusCode.PERMISSION_DENIED
        assert "warm: true" in (refused.value.details() or "")
        request = warm_request(5)
        request.model = "chat"
        with pytest.raises(grpc.aio.AioRpcError) as not_deployment:
            await h.stub.WarmModel(request, metadata=bearer("planner-token"), timeout=20)
        assert error_info(not_deployment.value).reason == "NOT_A_DEPLOYMENT"
        with pytest.raises(grpc.aio.AioRpcError) as too_many:
            await h.stub.WarmModel(
                warm_request(5, min_instances=6), metadata=bearer("planner-token"), timeout=20
            )
        assert error_info(too_many.value).reason == "MIN_INSTANCES_OUT_OF_RANGE"
        assert h.requests.count(kind="deployment_update") == 0


async def test_dry_run_changes_nothing_and_says_what_it_would(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="inference_gateway.audit")
    async with running_gateway(config=config(tmp_path)) as h:
        reply = await h.stub.WarmModel(
            warm_request(60, min_instances=2, dry_run=True),
            metadata=bearer("planner-token"),
            timeout=20,
        )
        assert (reply.dry_run, reply.changed, reply.previous_min_instances) == (True, False, 0)
        assert h.requests.count(kind="deployment_update") == 0
    assert f"dry run: would set deployment {DEPLOYMENT} min_instances 0 -> 2" in caplog.text


async def test_a_persons_change_meanwhile_is_not_undone(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="inference_gateway.audit")
    async with running_gateway(
        config=config(tmp_path),
        simulator_config=SimulatorConfig(token_interval_seconds=0.002),
        warm_sweep_interval=0.1,
    ) as h:
        reply = await h.stub.WarmModel(
            warm_request(0.5), metadata=bearer("planner-token"), timeout=20
        )
        assert reply.changed
        reads = h.requests.count(kind="deployment")
        # Someone raises it by hand while the warm-up runs.
        h.simulator.state.update_deployment(DEPLOYMENT, {"min_instances": 2})
        async with asyncio.timeout(10):
            await h.requests.wait_for(reads + 1, kind="deployment")  # the sweep's look
        await asyncio.sleep(0)  # let the sweep finish its turn
        assert h.simulator.state.catalogue.deployments[DEPLOYMENT].min_instances == 2
        assert h.requests.count(kind="deployment_update") == 1
    assert f"deployment {DEPLOYMENT} min_instances 0 -> 1" in caplog.text
    assert "left at 2 (changed from 1 meanwhile" in caplog.text


def _window_around_now() -> str:
    now = time.gmtime()
    minute = now.tm_hour * 60 + now.tm_min
    start, end = (minute - 60) % 1440, (minute + 60) % 1440
    return f"{start // 60:02d}:{start % 60:02d}-{end // 60:02d}:{end % 60:02d}"


async def test_warm_hours_warm_the_deployment_while_they_last(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="inference_gateway.audit")
    path = tmp_path / "gateway.yaml"
    path.write_text(
        "aliases:\n"
        f"  pics: {{model: deployments/{DEPLOYMENT}, task: image,"
        f" warm: {{min_instances: 2, hours: '{_window_around_now()}'}}}}\n",
        encoding="utf-8",
    )
    async with running_gateway(config=path, warm_sweep_interval=0.1) as h:
        async with asyncio.timeout(10):
            [update] = await h.requests.wait_for(1, kind="deployment_update")
        assert update.body == {"min_instances": 2}
        assert h.simulator.state.catalogue.deployments[DEPLOYMENT].min_instances == 2
    assert f"deployment {DEPLOYMENT} min_instances 0 -> 2" in caplog.text
    assert "(warm hours)" in caplog.text


async def test_a_warm_up_outlives_the_replica_that_made_it(
    redis: RedisServer, tmp_path: Path
) -> None:
    """The replica that warmed the deployment is gone before the time is up (it never
    sweeps here): another replica sharing the store restores the deployment."""
    gateway_config = config(tmp_path)
    async with simulator() as sim:
        async with replicas(1, sim, gateway_config, redis_url=redis.url, redis_timeout=2.0) as [
            gone
        ]:
            reply = await gone.WarmModel(
                warm_request(0.5), metadata=bearer("planner-token"), timeout=20
            )
            assert reply.changed
        assert sim.state.catalogue.deployments[DEPLOYMENT].min_instances == 1
        async with replicas(
            1, sim, gateway_config, redis_url=redis.url, redis_timeout=2.0, warm_sweep_interval=0.1
        ):
            async with asyncio.timeout(10):
                [_, restore] = await sim.state.requests.wait_for(2, kind="deployment_update")
        assert restore.body == {"min_instances": 0}
        assert sim.state.catalogue.deployments[DEPLOYMENT].min_instances == 0
