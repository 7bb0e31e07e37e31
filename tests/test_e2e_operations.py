"""Long-running operations end to end: real gRPC, real HTTP, the simulator, and a shared store.

Replicas share a real `redis-server` where a test is about replicas: the cold-boot test
waits from a second gateway *process* (`inference-gateway serve`); others run a second
gateway in the test's process, with its own server, Redis client, runner and follower,
sharing only Redis and the simulator, so it can be stopped mid-test.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.longrunning import operations_pb2, operations_pb2_grpc
from google.protobuf import duration_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2

from inference_gateway.config import GatewayConfig, load_config
from inference_gateway.grpc_api.server import (
    RunningGateway,
    settings_for_operations,
    start_gateway,
)
from inference_gateway.operations import OperationSettings
from inference_gateway.outputs import parse_origin
from inference_gateway_protos.inference.gateway.v1 import gateway_pb2 as pb
from inference_gateway_protos.inference.gateway.v1 import gateway_pb2_grpc
from replicate_simulator import RunningSimulator, SimulatorConfig, start_simulator
from tests.gateway_harness import test_settings as gateway_settings
from tests.redis_fixtures import RedisServer, redis_server
from tests.simulator_fixtures import wait_until
from tests.support.models import LLAMA3, SDXL, SDXL_VERSION
from tests.support.operations import image_response, operation_metadata, text_response
from tests.support.replicas import GatewayProcess
from tests.support.replicas import gateway_process as serve_process
from tests.support.rpc_status import error_info

KEY = b"k" * 32
ALICE, BOB = "r8_test_alice_operations_token_0001", "r8_test_bob_operations_token_00002"
SDXL_PINNED = f"{SDXL}:{SDXL_VERSION}"
OPERATIONS = "google.longrunning.Operations"
BUF = Path(__file__).resolve().parents[1] / "node_modules" / ".bin" / "buf"


def _config(tmp_path: Path) -> GatewayConfig:
    def digest(token: str) -> str:
        return hashlib.sha256(token.encode()).hexdigest()

    path = tmp_path / "gateway.yaml"
    path.write_text(
        "callers:\n"
        f"  alice: {{token_sha256: '{digest(ALICE)}', aliases: ['*']}}\n"
        f"  bob: {{token_sha256: '{digest(BOB)}', aliases: ['*']}}\n"
    )
    return load_config(path, {})


def _auth(token: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {token}"),)


def _operation_settings(**changes: Any) -> OperationSettings:
    """The gateway's own, with a shared key and a lease short enough for a test to outlast."""
    settings = settings_for_operations(gateway_settings(operations_key=KEY.decode()))
    return replace(settings, lease_seconds=1.5, **changes)


@dataclass
class Replica:
    running: RunningGateway
    channel: grpc.aio.Channel
    stub: gateway_pb2_grpc.InferenceGatewayAsyncStub
    ops: operations_pb2_grpc.OperationsStub


@dataclass
class Cluster:
    simulator: RunningSimulator
    replicas: list[Replica]


async def _replica(
    simulator: RunningSimulator,
    store: RedisServer | None,
    settings: OperationSettings,
    config: GatewayConfig,
    stack: contextlib.AsyncExitStack,
) -> Replica:
    """A gateway of its own; with `store`, its state is in that Redis, as in production."""
    shared = {"redis_url": store.url, "redis_timeout": 2.0} if store is not None else {}
    running = await start_gateway(
        gateway_settings(
            base_url=simulator.base_url,
            output_file_origins=(parse_origin(simulator.files_url),),
            # The blocking path's request counts, the bar for a followed operation, assume
            # a create held up to a minute.
            max_wait=60,
            **shared,
        ),
        config,
        {},
        serve_metrics=False,
        operation_settings=settings,
    )
    stack.push_async_callback(running.stop, 0.1)
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{running.port}")
    stack.push_async_callback(channel.close, None)
    return Replica(
        running,
        channel,
        gateway_pb2_grpc.InferenceGatewayStub(channel),  # the async stub, typed so
        operations_pb2_grpc.OperationsStub(channel),
    )


@contextlib.asynccontextmanager
async def cluster(
    *,
    replicas: int = 1,
    store: RedisServer | None = None,
    config: GatewayConfig | None = None,
    simulator_config: SimulatorConfig | None = None,
    settings: OperationSettings | None = None,
) -> AsyncIterator[Cluster]:
    settings = settings or _operation_settings()
    simulator_config = simulator_config or SimulatorConfig(token_interval_seconds=0.002)
    async with contextlib.AsyncExitStack() as stack:
        simulator = await start_simulator(simulator_config, "127.0.0.1", 0)
        stack.push_async_callback(simulator.stop)
        gateways = [
            await _replica(simulator, store, settings, config or GatewayConfig.empty(), stack)
            for _ in range(replicas)
        ]
        yield Cluster(simulator, gateways)


@contextlib.asynccontextmanager
async def gateway_process(
    simulator: RunningSimulator, store: RedisServer
) -> AsyncIterator[GatewayProcess]:
    """`inference-gateway serve` in a process of its own, sharing `store` and the key."""
    env = {
        "GATEWAY_REDIS_URL": store.url,
        "GATEWAY_REDIS_TIMEOUT": "2",
        "GATEWAY_LEASE_SECONDS": "1.5",
        "GATEWAY_OPERATIONS_KEY": KEY.decode(),
        "GATEWAY_OUTPUT_FILE_ORIGINS": simulator.files_url,
    }
    async with serve_process(simulator, env) as process:
        yield process


def _reason(status: status_pb2.Status) -> str:
    for detail in status.details:
        info = error_details_pb2.ErrorInfo()
        if detail.Unpack(info):
            return str(info.reason)
    raise AssertionError(f"no ErrorInfo in {status}")


def _seconds(value: float) -> duration_pb2.Duration:
    duration = duration_pb2.Duration()
    duration.FromMilliseconds(round(value * 1000))
    return duration


def _image_request(**fields: object) -> pb.SubmitImageRequest:
    return pb.SubmitImageRequest(
        request=pb.GenerateImageRequest(model=SDXL_PINNED, prompt="a red fox", **fields)  # type: ignore[arg-type]
    )


@pytest.mark.slow
async def test_submit_image_returns_in_a_cold_boot_and_another_process_waits_for_it(
    tmp_path: Path,
) -> None:
    # 90 simulated seconds of cold boot last 3 s.
    with redis_server(tmp_path) as server:
        simulator_config = SimulatorConfig(time_scale=30.0, token_interval_seconds=0.0)
        async with (
            cluster(store=server, simulator_config=simulator_config) as world,
            gateway_process(world.simulator, server) as second,
        ):
            (first,) = world.replicas
            requests = world.simulator.state.requests
            # The blocking path, for the same prediction, first: its request count is the bar.
            # (Its deadline, 120 s, becomes a Cancel-After the simulator reads as simulated.)
            world.simulator.state.force_cold_boot(SDXL, 90.0)
            blocking = await first.stub.GenerateImage(
                pb.GenerateImageRequest(model=SDXL_PINNED, prompt="a red fox"), timeout=120
            )
            assert blocking.prediction.timing.cold_boot
            bar = requests.count("get") + requests.count("stream")
            requests.clear()

            world.simulator.state.force_cold_boot(SDXL, 90.0)
            operation = await first.stub.SubmitImage(_image_request(), timeout=10)
            metadata = operation_metadata(operation)
            assert not operation.done
            assert metadata.status == pb.PREDICTION_STATUS_STARTING
            (prediction_id,) = metadata.prediction_ids
            assert world.simulator.state.predictions[prediction_id].status == "starting"

            waited = await second.ops.WaitOperation(
                operations_pb2.WaitOperationRequest(name=operation.name, timeout=_seconds(60)),
                timeout=70,
            )
            assert waited.done, operation_metadata(waited)
            response = image_response(waited)
            assert response.prediction.id == prediction_id
            assert response.prediction.timing.cold_boot
            assert [image.uri for image in response.images]
            assert operation_metadata(waited).status == pb.PREDICTION_STATUS_SUCCEEDED
            assert requests.count("create") == 1
            assert requests.count("get") + requests.count("stream") <= bar


async def test_another_caller_is_refused_and_altered_names_are_invalid(tmp_path: Path) -> None:
    async with cluster(config=_config(tmp_path)) as world:
        (replica,) = world.replicas
        operation = await replica.stub.SubmitText(
            pb.SubmitTextRequest(request=pb.GenerateTextRequest(model=LLAMA3, prompt="hi")),
            metadata=_auth(ALICE),
            timeout=10,
        )
        name = operation.name
        for call in (
            replica.ops.GetOperation(
                operations_pb2.GetOperationRequest(name=name), metadata=_auth(BOB)
            ),
            replica.ops.WaitOperation(
                operations_pb2.WaitOperationRequest(name=name), metadata=_auth(BOB)
            ),
            replica.ops.CancelOperation(
                operations_pb2.CancelOperationRequest(name=name), metadata=_auth(BOB)
            ),
        ):
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await call
            assert refused.value.code() is grpc.StatusCode.PERMISSION_DENIED
        payload, signature = name.removeprefix("operations/").split(".")
        altered = [
            f"operations/{payload[:-1]}{'A' if payload[-1] != 'A' else 'B'}.{signature}",
            f"operations/{payload}.{signature[:-2]}",
            f"operations/{payload}",
            "operations/",
            payload,
            "",
        ]
        for bad in altered:
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await replica.ops.GetOperation(
                    operations_pb2.GetOperationRequest(name=bad), metadata=_auth(ALICE)
                )
            assert refused.value.code() is grpc.StatusCode.INVALID_ARGUMENT, bad
        # Its owner reads it to the end.
        done = await replica.ops.WaitOperation(
            operations_pb2.WaitOperationRequest(name=name, timeout=_seconds(30)),
            metadata=_auth(ALICE),
        )
        assert done.done
        assert text_response(done).text == world.simulator.state.expected_text(
            LLAMA3,
            world.simulator.state.predictions[operation_metadata(done).prediction_ids[0]].input,
        )
        # Records go by themselves after the retention window: nothing to delete.
        with pytest.raises(grpc.aio.AioRpcError) as delete:
            await replica.ops.DeleteOperation(
                operations_pb2.DeleteOperationRequest(name=name), metadata=_auth(ALICE)
            )
        assert delete.value.code() is grpc.StatusCode.UNIMPLEMENTED
        assert "GATEWAY_IDEMPOTENCY_RETENTION" in (delete.value.details() or "")
        # Metrics and the request log see the Operations service like the gateway's own.
        handled = replica.running.metrics.grpc_handled.labels(
            "unary", "google.longrunning.Operations", "GetOperation", "PERMISSION_DENIED"
        )
        assert handled._value.get() == 1
        registry = replica.running.metrics.registry
        in_flight = {"rpc": "GetOperation"}
        assert registry.get_sample_value("inference_gateway_requests_in_flight", in_flight) == 0
        # Without a token, the Operations service is closed like the gateway's own.
        with pytest.raises(grpc.aio.AioRpcError) as anonymous:
            await replica.ops.GetOperation(operations_pb2.GetOperationRequest(name=name))
        assert anonymous.value.code() is grpc.StatusCode.UNAUTHENTICATED


def _submit_text(prompt: str = "hi", **fields: object) -> pb.SubmitTextRequest:
    return pb.SubmitTextRequest(
        request=pb.GenerateTextRequest(model=LLAMA3, prompt=prompt),
        **fields,  # type: ignore[arg-type]
    )


async def _wait(replica: Replica, name: str, token: str | None = None) -> operations_pb2.Operation:
    metadata = _auth(token) if token else None
    operation = await replica.ops.WaitOperation(
        operations_pb2.WaitOperationRequest(name=name, timeout=_seconds(30)),
        metadata=metadata,
        timeout=40,
    )
    assert operation.done
    return operation


async def test_cancel_operation_cancels_upstream_exactly_once_from_any_replica(
    tmp_path: Path,
) -> None:
    with redis_server(tmp_path) as server:
        async with cluster(replicas=2, store=server) as world:
            first, second = world.replicas
            world.simulator.state.set_behaviour(LLAMA3, {"never_finishes": True})
            operation = await first.stub.SubmitText(_submit_text(), timeout=10)
            cancels = [
                replica.ops.CancelOperation(
                    operations_pb2.CancelOperationRequest(name=operation.name), timeout=10
                )
                for replica in (first, second, first, second)
            ]
            await asyncio.gather(*cancels)
            ended = await _wait(second, operation.name)
            await first.ops.CancelOperation(
                operations_pb2.CancelOperationRequest(name=operation.name), timeout=10
            )
            assert world.simulator.state.requests.count("cancel") == 1
            assert ended.error.code == code_pb2.CANCELLED
            assert _reason(ended.error) == "OPERATION_CANCELLED"
            assert operation_metadata(ended).status == pb.PREDICTION_STATUS_CANCELED
            (prediction_id,) = operation_metadata(ended).prediction_ids
            assert world.simulator.state.predictions[prediction_id].status == "canceled"


async def test_an_unwatched_prediction_ends_at_its_deadline(tmp_path: Path) -> None:
    # A 5 s deadline lasts 0.5 s at this scale; the model never gets a worker.
    async with cluster(
        simulator_config=SimulatorConfig(time_scale=10.0, token_interval_seconds=0.0),
    ) as world:
        (replica,) = world.replicas
        world.simulator.state.force_cold_boot(LLAMA3, 10_000.0)
        operation = await replica.stub.SubmitText(_submit_text(deadline=_seconds(5)), timeout=10)
        (create,) = world.simulator.state.requests.matching("create")
        assert create.headers["cancel-after"] == "5s"
        assert "prefer" not in create.headers
        (prediction_id,) = operation_metadata(operation).prediction_ids
        prediction = world.simulator.state.predictions[prediction_id]
        await wait_until(prediction, lambda p: p.is_terminal)
        assert prediction.status == "aborted"
        ended = await _wait(replica, operation.name)
        assert ended.error.code == code_pb2.DEADLINE_EXCEEDED
        assert _reason(ended.error) == "PREDICTION_ABORTED"
        assert operation_metadata(ended).status == pb.PREDICTION_STATUS_ABORTED
        assert world.simulator.state.requests.count("cancel") == 0


async def test_a_deadline_outside_the_range_is_refused_before_anything_is_created() -> None:
    async with cluster() as world:
        (replica,) = world.replicas
        for seconds in (1.0, 86_401.0):
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await replica.stub.SubmitText(_submit_text(deadline=_seconds(seconds)))
            assert refused.value.code() is grpc.StatusCode.INVALID_ARGUMENT
            assert "GATEWAY_OPERATION_MAX_DEADLINE" in (refused.value.details() or "")
        assert world.simulator.state.requests.count("create") == 0


async def test_an_alias_timeout_bounds_a_submission_as_it_bounds_a_blocking_call(
    tmp_path: Path,
) -> None:
    # Was: the alias's timeout_seconds capped GenerateText, while SubmitText on the same
    # alias ran up to GATEWAY_OPERATION_MAX_DEADLINE (24 h) upstream.
    path = tmp_path / "gateway.yaml"
    path.write_text(f"aliases:\n  capped: {{model: {LLAMA3}, timeout_seconds: 60}}\n")
    async with cluster(config=load_config(path, {})) as world:
        (replica,) = world.replicas
        capped = pb.GenerateTextRequest(model="capped", prompt="hi")
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await replica.stub.SubmitText(
                pb.SubmitTextRequest(request=capped, deadline=_seconds(600)), timeout=10
            )
        assert refused.value.code() is grpc.StatusCode.INVALID_ARGUMENT
        assert "timeout_seconds" in (refused.value.details() or "")
        assert error_info(refused.value).reason == "INVALID_DEADLINE"
        assert world.simulator.state.requests.count("create") == 0
        operation = await replica.stub.SubmitText(pb.SubmitTextRequest(request=capped), timeout=10)
        (create,) = world.simulator.state.requests.matching("create")
        assert create.headers["cancel-after"] == "60s"
        metadata = operation_metadata(operation)
        assert metadata.deadline.seconds - metadata.create_time.seconds <= 61


async def test_list_operations_lists_the_callers_own_filtered_and_paged(tmp_path: Path) -> None:
    async with cluster(config=_config(tmp_path)) as world:
        (replica,) = world.replicas
        world.simulator.state.set_behaviour(LLAMA3, {"never_finishes": True})
        running = await replica.stub.SubmitText(_submit_text("a"), metadata=_auth(ALICE))
        canceled = await replica.stub.SubmitText(_submit_text("b"), metadata=_auth(ALICE))
        bobs = await replica.stub.SubmitText(_submit_text("c"), metadata=_auth(BOB))
        await replica.ops.CancelOperation(
            operations_pb2.CancelOperationRequest(name=canceled.name), metadata=_auth(ALICE)
        )
        await _wait(replica, canceled.name, ALICE)

        async def names(filter_text: str = "", **page: object) -> tuple[list[str], str]:
            listed = await replica.ops.ListOperations(
                operations_pb2.ListOperationsRequest(
                    name="operations",
                    filter=filter_text,
                    **page,
                ),
                metadata=_auth(ALICE),
            )
            return [o.name for o in listed.operations], listed.next_page_token

        assert (await names())[0] == [running.name, canceled.name]
        assert bobs.name not in (await names())[0]
        assert (await names("done=true"))[0] == [canceled.name]
        assert (await names("done=false"))[0] == [running.name]
        assert (await names("status=CANCELED"))[0] == [canceled.name]
        assert (await names("status=PREDICTION_STATUS_STARTING AND done=false"))[0] == [
            running.name
        ]
        first_page, token = await names(page_size=1)
        assert first_page == [running.name]
        assert token
        assert await names(page_size=1, page_token=token) == ([canceled.name], "")
        for bad in ({"filter_text": "colour=red"}, {"page_token": "not-a-token"}):
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await names(**bad)
            assert refused.value.code() is grpc.StatusCode.INVALID_ARGUMENT


@pytest.mark.slow
async def test_removed_outputs_are_reported_and_include_data_keeps_the_bytes() -> None:
    async with cluster(
        # The follower polls every 5 s (as a blocking call does after its held create):
        # outputs last 6 s here, SDXL runs 0.1 s.
        simulator_config=SimulatorConfig(
            time_scale=10.0, output_retention_seconds=60.0, token_interval_seconds=0.0
        ),
        settings=_operation_settings(output_check_seconds=0.0),
    ) as world:
        (replica,) = world.replicas
        plain = await replica.stub.SubmitImage(_image_request(), timeout=10)
        kept = await replica.stub.SubmitImage(_image_request(include_data=True), timeout=10)
        plain_done = await _wait(replica, plain.name)
        kept_done = await _wait(replica, kept.name)
        for operation in (plain_done, kept_done):
            (prediction_id,) = operation_metadata(operation).prediction_ids
            prediction = world.simulator.state.predictions[prediction_id]
            await wait_until(prediction, lambda p: p.data_removed)

        removed = await replica.ops.GetOperation(
            operations_pb2.GetOperationRequest(name=plain.name)
        )
        assert removed.done
        assert removed.error.code == code_pb2.FAILED_PRECONDITION
        assert _reason(removed.error) == "OUTPUT_REMOVED"
        assert operation_metadata(removed).data_removed
        still = await replica.ops.GetOperation(operations_pb2.GetOperationRequest(name=kept.name))
        images = image_response(still).images
        assert images
        assert all(image.data.startswith(b"\x89PNG\r\n\x1a\n") for image in images)
        assert image_response(kept_done).images == images
        # A listing leaves the bytes out, so it stays small whatever was kept.
        listed = await replica.ops.ListOperations(operations_pb2.ListOperationsRequest())
        (kept_listed,) = [o for o in listed.operations if o.name == kept.name]
        listed_images = image_response(kept_listed).images
        assert [image.uri for image in listed_images] == [image.uri for image in images]
        assert not any(image.data for image in listed_images)


async def test_leaving_a_wait_or_shutting_a_replica_down_cancels_nothing(tmp_path: Path) -> None:
    with redis_server(tmp_path) as server:
        async with cluster(store=server) as world:
            (survivor,) = world.replicas
            # A replica of its own, stopped by the test (a rolling update, say).
            async with contextlib.AsyncExitStack() as own:
                leaving = await _replica(
                    world.simulator,
                    server,
                    _operation_settings(),
                    GatewayConfig.empty(),
                    own,
                )
                world.simulator.state.set_behaviour(LLAMA3, {"token_interval_seconds": 0.1})
                operation = await leaving.stub.SubmitText(_submit_text(), timeout=10)
                # A wait held to the caller's deadline answers with the state so far.
                waited = await leaving.ops.WaitOperation(
                    operations_pb2.WaitOperationRequest(name=operation.name), timeout=0.5
                )
                assert not waited.done
                assert leaving.running.metrics.operations_in_flight._value.get() == 1
            # `leaving` has stopped: its lease lapses and the survivor follows the prediction.
            ended = await _wait(survivor, operation.name)
            (prediction_id,) = operation_metadata(ended).prediction_ids
            prediction = world.simulator.state.predictions[prediction_id]
            assert prediction.status == "succeeded"
            assert text_response(ended).text == world.simulator.state.expected_text(
                LLAMA3, prediction.input
            )
            assert world.simulator.state.requests.count("cancel") == 0
            histogram = survivor.running.metrics.operation_duration
            assert histogram.labels(LLAMA3, "succeeded")._sum.get() > 0


async def _buf_curl(port: int, method: str, data: dict[str, object]) -> dict[str, Any]:
    process = await asyncio.create_subprocess_exec(
        str(BUF), "curl", "--protocol", "grpc", "--http2-prior-knowledge",
        "--data", json.dumps(data), f"http://127.0.0.1:{port}/{method}",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode == 0, err.decode()
    answer: dict[str, Any] = json.loads(out)
    return answer


async def test_buf_curl_drives_submit_get_wait_and_cancel_through_reflection() -> None:
    assert BUF.exists(), "buf is missing: `make test` installs it with npm"
    async with cluster() as world:
        (replica,) = world.replicas
        port = replica.running.port
        submitted = await _buf_curl(
            port,
            "inference.gateway.v1.InferenceGateway/SubmitText",
            {"request": {"model": LLAMA3, "prompt": "Hello"}},
        )
        name = submitted["name"]
        assert submitted["metadata"]["@type"].endswith("inference.gateway.v1.OperationMetadata")
        got = await _buf_curl(port, f"{OPERATIONS}/GetOperation", {"name": name})
        assert got["name"] == name
        waited = await _buf_curl(
            port, f"{OPERATIONS}/WaitOperation", {"name": name, "timeout": "30s"}
        )
        assert waited["done"] is True
        assert waited["response"]["@type"].endswith("inference.gateway.v1.GenerateTextResponse")
        prediction = world.simulator.state.predictions[waited["response"]["prediction"]["id"]]
        expected = world.simulator.state.expected_text(LLAMA3, prediction.input)
        assert waited["response"]["text"] == expected

        world.simulator.state.set_behaviour(LLAMA3, {"never_finishes": True})
        running = await _buf_curl(
            port,
            "inference.gateway.v1.InferenceGateway/SubmitText",
            {"request": {"model": LLAMA3, "prompt": "Hello"}, "deadline": "600s"},
        )
        assert (
            await _buf_curl(port, f"{OPERATIONS}/CancelOperation", {"name": running["name"]}) == {}
        )
        canceled = await _buf_curl(
            port, f"{OPERATIONS}/WaitOperation", {"name": running["name"], "timeout": "30s"}
        )
        assert canceled["error"]["code"] == code_pb2.CANCELLED
        assert world.simulator.state.requests.count("cancel") == 1


async def test_a_request_id_makes_one_prediction_across_submits_and_blocking_calls(
    tmp_path: Path,
) -> None:
    with redis_server(tmp_path) as server:
        async with cluster(replicas=2, store=server) as world:
            first, second = world.replicas
            requests = world.simulator.state.requests
            request_id = str(uuid.uuid4())
            submit = _submit_text("once")
            submit.request.request_id = request_id
            operations = await asyncio.gather(
                first.stub.SubmitText(submit, timeout=10),
                second.stub.SubmitText(submit, timeout=10),
            )
            assert operations[0].name == operations[1].name
            done = await _wait(second, operations[0].name)
            again = await first.stub.SubmitText(submit, timeout=10)
            assert again.name == operations[0].name
            assert again.done
            assert text_response(again).text == text_response(done).text
            assert requests.count("create") == 1

            # A blocking call's request_id, submitted afterwards, follows its prediction.
            blocking_id = str(uuid.uuid4())
            blocking = pb.GenerateTextRequest(model=LLAMA3, prompt="twice", request_id=blocking_id)
            answer = await first.stub.GenerateText(blocking, timeout=30)
            follow = await second.stub.SubmitText(
                pb.SubmitTextRequest(request=blocking), timeout=10
            )
            assert operation_metadata(follow).prediction_ids == [answer.prediction.id]
            followed = await _wait(first, follow.name)
            assert text_response(followed).text == answer.text
            assert requests.count("create") == 2

            # The same request_id with another request is refused.
            reused = _submit_text("something else")
            reused.request.request_id = request_id
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await first.stub.SubmitText(reused, timeout=10)
            assert refused.value.code() is grpc.StatusCode.INVALID_ARGUMENT
            assert requests.count("create") == 2


async def test_a_submission_holds_its_alias_slot_until_its_prediction_ends(
    tmp_path: Path,
) -> None:
    path = tmp_path / "gateway.yaml"
    path.write_text(f"aliases:\n  solo: {{model: {LLAMA3}, max_concurrency: 1}}\n")
    async with cluster(config=load_config(path, {})) as world:
        (replica,) = world.replicas
        world.simulator.state.set_behaviour(LLAMA3, {"never_finishes": True})
        solo = pb.SubmitTextRequest(request=pb.GenerateTextRequest(model="solo", prompt="hi"))
        running = await replica.stub.SubmitText(solo, timeout=10)
        for call in (replica.stub.SubmitText(solo), replica.stub.GenerateText(solo.request)):
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await call
            assert refused.value.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
        await replica.ops.CancelOperation(operations_pb2.CancelOperationRequest(name=running.name))
        await _wait(replica, running.name)
        world.simulator.state.reset_behaviour(LLAMA3)
        # The slot is free by the time the operation says it ended.
        again = await replica.stub.SubmitText(solo, timeout=10)
        assert (await _wait(replica, again.name)).WhichOneof("result") == "response"


async def test_a_killed_replicas_operations_are_taken_over_when_its_lease_lapses(
    tmp_path: Path,
) -> None:
    with redis_server(tmp_path) as server:
        async with (
            cluster(store=server) as world,
            gateway_process(world.simulator, server) as doomed,
        ):
            (survivor,) = world.replicas
            world.simulator.state.set_behaviour(LLAMA3, {"token_interval_seconds": 0.1})
            operation = await doomed.stub.SubmitText(_submit_text(), timeout=10)
            doomed.process.kill()  # SIGKILL: no drain, no lease released
            await doomed.process.wait()
            ended = await _wait(survivor, operation.name)
            (prediction_id,) = operation_metadata(ended).prediction_ids
            prediction = world.simulator.state.predictions[prediction_id]
            assert text_response(ended).text == world.simulator.state.expected_text(
                LLAMA3, prediction.input
            )
            assert world.simulator.state.requests.count("cancel") == 0
            assert world.simulator.state.requests.count("create") == 1


async def test_bytes_that_are_not_protobuf_are_invalid_argument_on_every_operations_rpc() -> None:
    bad_utf8 = b"\x0a\x02\xff\xfe"  # field 1 (name, a proto3 string) that is not UTF-8
    async with cluster() as world:
        (replica,) = world.replicas
        methods = [
            f"/google.longrunning.Operations/{m}"
            for m in ("GetOperation", "WaitOperation", "CancelOperation", "DeleteOperation")
        ]
        methods += [
            f"/inference.gateway.v1.InferenceGateway/{m}" for m in ("SubmitText", "SubmitImage")
        ]
        for method in methods:
            call = replica.channel.unary_unary(
                method, request_serializer=lambda b: b, response_deserializer=lambda b: b
            )
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await call(bad_utf8, timeout=10)
            assert refused.value.code() is grpc.StatusCode.INVALID_ARGUMENT, method
            assert error_info(refused.value).reason == "UNDECODABLE_REQUEST", method


async def test_a_duration_protobuf_cannot_hold_is_invalid_argument_on_every_rpc() -> None:
    # Was INTERNAL: Duration.ToTimedelta() overflows past about 2**31 days.
    huge = duration_pb2.Duration(seconds=2**62)
    async with cluster() as world:
        (replica,) = world.replicas
        submitted = await replica.stub.SubmitText(_submit_text(), timeout=10)
        calls = {
            "deadline": replica.stub.SubmitText(_submit_text(deadline=huge), timeout=10),
            "timeout": replica.ops.WaitOperation(
                operations_pb2.WaitOperationRequest(name=submitted.name, timeout=huge), timeout=10
            ),
            "duration": replica.stub.WarmModel(
                pb.WarmModelRequest(model="deployments/acme/llama3-prod", duration=huge),
                timeout=10,
            ),
        }
        for field, call in calls.items():
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await call
            assert refused.value.code() is grpc.StatusCode.INVALID_ARGUMENT, field
            info = error_info(refused.value)
            assert info.reason == "INVALID_DURATION"
            assert info.metadata["field"] == field
        assert world.simulator.state.requests.count("create") == 1


async def test_a_page_of_operations_reads_the_records_of_that_page() -> None:
    # Was: every ListOperations call read every record the caller had (thousands over a
    # day of submissions), whatever its page_size.
    async with cluster(simulator_config=SimulatorConfig(token_interval_seconds=0.0)) as world:
        (replica,) = world.replicas
        submitted = [
            (await replica.stub.SubmitText(_submit_text(f"n{i}"), timeout=10)).name
            for i in range(12)
        ]
        # The store's reads, counted where the gateway makes them.
        store = replica.running.gateway.state.store
        keys: list[str] = []
        read = store.get

        async def counted(key: str) -> bytes | None:
            keys.append(key)
            return await read(key)

        store.get = counted  # type: ignore[method-assign]
        listed: list[str] = []
        token = ""
        while True:
            keys.clear()
            page = await replica.ops.ListOperations(
                operations_pb2.ListOperationsRequest(page_size=3, page_token=token), timeout=10
            )
            assert len(page.operations) == 3
            assert len(keys) == 3, keys
            listed.extend(operation.name for operation in page.operations)
            token = page.next_page_token
            if not token:
                break
        assert listed == submitted


@pytest.mark.slow
async def test_a_wait_held_to_the_callers_deadline_answers_before_it() -> None:
    # Was DEADLINE_EXCEEDED: gRPC rounds a sent timeout up (30.001 s arrives as 30.1 s),
    # and WaitOperation waited out the rounded one, less 50 ms, answering after the caller
    # had given up. Operations now end a caller's time as every other RPC does.
    async with cluster() as world:
        (replica,) = world.replicas
        world.simulator.state.set_behaviour(LLAMA3, {"never_finishes": True})
        running = await replica.stub.SubmitText(_submit_text(), timeout=10)
        waited = await replica.ops.WaitOperation(
            operations_pb2.WaitOperationRequest(name=running.name), timeout=30.001
        )
        assert not waited.done
        await replica.ops.CancelOperation(operations_pb2.CancelOperationRequest(name=running.name))


@pytest.mark.slow
async def test_a_file_host_that_fails_for_a_moment_does_not_lose_the_images() -> None:
    # Was: one 503 from the file host while the follower fetched include_data bytes ended
    # the operation with UNAVAILABLE for good, though the prediction had succeeded.
    async with cluster(simulator_config=SimulatorConfig(token_interval_seconds=0.0)) as world:
        (replica,) = world.replicas
        world.simulator.state.faults.add(kind="file", status=503, times=1)
        submitted = await replica.stub.SubmitImage(_image_request(include_data=True), timeout=10)
        done = await _wait(replica, submitted.name)
        images = image_response(done).images
        assert images
        assert all(image.data for image in images)
        assert world.simulator.state.requests.count("file") == len(images) + 1


async def test_reads_and_warm_ups_count_against_the_callers_requests_per_minute(
    tmp_path: Path,
) -> None:
    # Was: GetOperation, WaitOperation, ListOperations, GetUsage and WarmModel (dry run or
    # not) never counted, so a caller held to 3 requests a minute read the store, and
    # Replicate, as often as it liked. A cancel is never refused: it stops spending.
    path = tmp_path / "gateway.yaml"
    digest = hashlib.sha256(ALICE.encode()).hexdigest()
    path.write_text(
        "callers:\n"
        f"  alice: {{token_sha256: '{digest}', aliases: ['*'], models: ['*'],\n"
        "          requests_per_minute: 4}\n"
    )
    auth = _auth(ALICE)
    async with cluster(config=load_config(path, {})) as world:
        world.simulator.state.set_behaviour(LLAMA3, {"never_finishes": True})
        operation = await world.replicas[0].stub.SubmitText(
            _submit_text(), metadata=auth, timeout=10
        )
        ops = world.replicas[0].ops
        name = operation.name
        await ops.GetOperation(operations_pb2.GetOperationRequest(name=name), metadata=auth)
        await ops.ListOperations(operations_pb2.ListOperationsRequest(), metadata=auth)
        await ops.WaitOperation(
            operations_pb2.WaitOperationRequest(name=name, timeout=_seconds(0.1)), metadata=auth
        )
        stub = world.replicas[0].stub
        refused = [
            ops.GetOperation(operations_pb2.GetOperationRequest(name=name), metadata=auth),
            ops.WaitOperation(operations_pb2.WaitOperationRequest(name=name), metadata=auth),
            ops.ListOperations(operations_pb2.ListOperationsRequest(), metadata=auth),
            stub.GetUsage(pb.GetUsageRequest(), metadata=auth),
            stub.WarmModel(
                pb.WarmModelRequest(model="deployments/acme/warm", dry_run=True), metadata=auth
            ),
        ]
        for call in refused:
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await call
            assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            info = error_info(caught.value)
            assert info.reason == "CALLER_QUOTA_EXCEEDED"
            assert info.metadata["quota"] == "requests_per_minute"
        await ops.CancelOperation(operations_pb2.CancelOperationRequest(name=name), metadata=auth)
        assert world.simulator.state.requests.count("cancel") == 1


@pytest.mark.slow
async def test_checking_done_operations_outputs_takes_a_bounded_share_of_the_rate() -> None:
    # Was: every read of a done image operation over a minute old asked Replicate whether
    # its files were gone, so reads of many operations could spend the account's whole
    # other budget (3,000 a minute), starving live calls' polls. At 120 a minute, checks
    # get 5 %: 6 a minute, a burst of 1.
    settings = _operation_settings(output_check_seconds=0.0, other_per_minute=120)
    async with cluster(settings=settings) as world:
        (replica,) = world.replicas
        names = [
            (await replica.stub.SubmitImage(_image_request(), timeout=10)).name for _ in range(4)
        ]
        for name in names:
            await _wait(replica, name)
        gets = world.simulator.state.requests.count("get")
        for _ in range(2):
            for name in names:
                read = await replica.ops.GetOperation(
                    operations_pb2.GetOperationRequest(name=name), timeout=10
                )
                assert image_response(read).images
        # Eight reads, each due a check: at most the burst of one asks (a wait above may
        # have taken it already).
        assert world.simulator.state.requests.count("get") - gets <= 1
