"""What each call cost, end to end: a token-, an image- and a hardware-priced model, for
several callers, in the response, the request log line and the chargeback metrics.

Expected amounts are computed here from the price table below and from what the
simulator itself recorded for each prediction (its metrics), never from the gateway.
"""

from __future__ import annotations

import logging
import textwrap
from decimal import Decimal
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.longrunning import operations_pb2, operations_pb2_grpc
from google.protobuf import struct_pb2

from inference_gateway.config import GatewayConfig, hash_token, load_config
from inference_gateway_protos.inference.gateway.v1 import gateway_pb2 as pb
from tests.gateway_harness import Harness, running_gateway
from tests.support.models import LLAMA3, SDXL_PINNED
from tests.support.rpc_status import error_info

pytestmark = pytest.mark.asyncio

FLUX = "black-forest-labs/flux-schnell"
TOKENS = {
    "team-a": "cgw_test_team_a_0123456789abcdef",
    "team-b": "cgw_test_team_b_fedcba9876543210",
}
INPUT_TOKEN, OUTPUT_TOKEN = Decimal("0.001"), Decimal("0.002")
IMAGE = Decimal("0.30")
GPU_SECOND = Decimal("0.50")
CENT = Decimal("0.01")


def priced_config(tmp_path: Path, extra_caller: str = "") -> GatewayConfig:
    callers = "".join(
        f"""
              {name}:
                token_sha256: {hash_token(token)}
                aliases: ["*"]
                {extra_caller}"""
        for name, token in TOKENS.items()
    )
    path = tmp_path / "gateway.yaml"
    path.write_text(
        textwrap.dedent(
            f"""\
            aliases:
              llama3: {{model: {LLAMA3}}}
            pricing:
              currency: USD
              hardware:
                gpu-a40-large: "{GPU_SECOND}"
              models:
                meta/*: {{input_token: "{INPUT_TOKEN}", output_token: "{OUTPUT_TOKEN}"}}
                {FLUX}: {{image: "{IMAGE}"}}
                stability-ai/sdxl: {{hardware: gpu-a40-large}}
                deployments/acme/sdxl-prod: {{hardware: gpu-a40-large}}
            callers:{callers}
            """
        )
    )
    return load_config(path, {})


def auth(caller: str) -> tuple[tuple[str, str]]:
    return (("authorization", f"Bearer {TOKENS[caller]}"),)


def reported(h: Harness, prediction_id: str) -> dict[str, Any]:
    """The metrics the simulator sent for a prediction: the ground truth of a bill."""
    metrics: dict[str, Any] = h.simulator.state.predictions[prediction_id].to_json()["metrics"]
    return metrics


def request_lines(caplog: pytest.LogCaptureFixture) -> list[dict[str, Any]]:
    return [
        r.request  # type: ignore[attr-defined]
        for r in caplog.records
        if r.name == "inference_gateway.requests"
    ]


def sample(h: Harness, name: str, **labels: str) -> float:
    return h.gateway.metrics.registry.get_sample_value(name, labels) or 0.0


def two_images() -> struct_pb2.Struct:
    struct = struct_pb2.Struct()
    struct.update({"num_outputs": 2})
    return struct


def money(text: str) -> Decimal:
    return Decimal(text)


async def test_token_image_and_hardware_prices_reach_response_log_and_metrics(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="inference_gateway.requests")
    async with running_gateway(config=priced_config(tmp_path)) as h:
        expected: dict[tuple[str, str], Decimal] = {}
        costs: dict[str, str] = {}
        for who in TOKENS:
            text = await h.stub.GenerateText(
                pb.GenerateTextRequest(model="llama3", prompt=f"hello from {who}"),
                metadata=auth(who),
            )
            m = reported(h, text.prediction.id)
            want = m["input_token_count"] * INPUT_TOKEN + m["output_token_count"] * OUTPUT_TOKEN
            assert money(text.cost.amount) == want
            assert text.cost.known
            assert text.cost.currency == "USD"
            assert {i.unit for i in text.cost.items} == {"input_token", "output_token"}
            expected[(who, "llama3")] = want
            costs[text.prediction.id] = text.cost.amount

            image = await h.stub.GenerateImage(
                pb.GenerateImageRequest(model=FLUX, prompt="a fox", extra_input=two_images()),
                metadata=auth(who),
            )
            assert reported(h, image.prediction.id)["image_count"] == 2
            assert money(image.cost.amount) == 2 * IMAGE == Decimal("0.60")
            [item] = image.cost.items
            assert (item.unit, money(item.quantity), money(item.price)) == (
                "image",
                Decimal(2),
                IMAGE,
            )
            expected[(who, FLUX)] = 2 * IMAGE
            costs[image.prediction.id] = image.cost.amount

            for model, label in (
                (SDXL_PINNED, "stability-ai/sdxl"),
                ("replicate/deployments/acme/sdxl-prod", "acme/sdxl-prod"),
            ):
                gpu = await h.stub.GenerateImage(
                    pb.GenerateImageRequest(model=model, prompt="a fox"), metadata=auth(who)
                )
                seconds = Decimal(str(reported(h, gpu.prediction.id)["predict_time"]))
                assert seconds > 0
                assert money(gpu.cost.amount) == seconds * GPU_SECOND
                assert gpu.cost.hardware == "gpu-a40-large"
                expected[(who, label)] = seconds * GPU_SECOND
                costs[gpu.prediction.id] = gpu.cost.amount

        # The log line of each call carries the same amount as its response.
        logged = {line["prediction_id"]: line for line in request_lines(caplog)}
        for prediction_id, amount in costs.items():
            assert logged[prediction_id]["cost"] == amount
            assert logged[prediction_id]["currency"] == "USD"
        # The metrics add up per caller and model, to the cent.
        for (who, label), want in expected.items():
            counted = sample(h, "inference_gateway_cost_total", caller=who, model=label)
            assert abs(Decimal(str(counted)) - want) < CENT
        assert sample(h, "inference_gateway_caller_images_total", caller="team-a", model=FLUX) == 2
        deployment_seconds = sample(
            h,
            "inference_gateway_caller_predict_seconds_total",
            caller="team-b",
            model="acme/sdxl-prod",
            endpoint="deployment",
        )
        assert deployment_seconds > 0


async def test_unpriced_model_is_unknown_never_guessed(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="inference_gateway.requests")
    async with running_gateway(config=priced_config(tmp_path)) as h:
        reply = await h.stub.GenerateText(
            pb.GenerateTextRequest(model="mistralai/mixtral-8x7b-instruct-v0.1", prompt="hi"),
            metadata=auth("team-a"),
        )
        assert not reply.cost.known
        assert reply.cost.amount == ""
        assert [line["cost"] for line in request_lines(caplog)] == ["unknown"]
        assert (
            sample(
                h,
                "inference_gateway_unpriced_predictions_total",
                caller="team-a",
                model="mistralai/mixtral-8x7b-instruct-v0.1",
            )
            == 1
        )


async def test_get_usage_reports_the_callers_own_spend(tmp_path: Path) -> None:
    budget = 'budget: {amount: "5.00", per: month}'
    async with running_gateway(config=priced_config(tmp_path, budget)) as h:
        image = await h.stub.GenerateImage(
            pb.GenerateImageRequest(model=FLUX, prompt="a fox"), metadata=auth("team-a")
        )
        mine = await h.stub.GetUsage(pb.GetUsageRequest(), metadata=auth("team-a"))
        theirs = await h.stub.GetUsage(pb.GetUsageRequest(), metadata=auth("team-b"))
    assert money(image.cost.amount) == IMAGE
    assert (mine.caller, mine.period, mine.currency) == ("team-a", "month", "USD")
    assert money(mine.spent) == IMAGE
    assert money(mine.reserved) == 0
    assert money(mine.limit) == 5
    assert money(mine.remaining) == Decimal("4.70")
    assert mine.resets_at.ToDatetime() > mine.period_start.ToDatetime()
    assert money(theirs.spent) == 0
    assert theirs.caller == "team-b"


async def test_budgeted_caller_cannot_run_a_model_without_a_price(tmp_path: Path) -> None:
    budget = 'budget: {amount: "5.00", per: day}'
    async with running_gateway(config=priced_config(tmp_path, budget)) as h:
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await h.stub.GenerateText(
                pb.GenerateTextRequest(model="mistralai/mixtral-8x7b-instruct-v0.1", prompt="x"),
                metadata=auth("team-a"),
            )
        assert h.requests.count("create") == 0
    assert refused.value.code() is grpc.StatusCode.FAILED_PRECONDITION
    assert error_info(refused.value).reason == "COST_NOT_BOUNDED"


@pytest.mark.slow
async def test_submissions_carry_their_cost_and_their_follower_settles_the_budget(
    tmp_path: Path,
) -> None:
    budget = 'budget: {amount: "1.00", per: day}'
    outcomes: list[str] = []
    async with running_gateway(config=priced_config(tmp_path, budget)) as h:
        operations = operations_pb2_grpc.OperationsStub(h.channel)
        for _ in range(4):
            submit = pb.SubmitImageRequest(
                request=pb.GenerateImageRequest(model=FLUX, prompt="a fox")
            )
            try:
                operation = await h.stub.SubmitImage(submit, metadata=auth("team-a"))
            except grpc.aio.AioRpcError as refused:
                outcomes.append(error_info(refused).reason)
                continue
            wait = operations_pb2.WaitOperationRequest(name=operation.name)
            wait.timeout.FromSeconds(30)
            done = await operations.WaitOperation(wait, metadata=auth("team-a"), timeout=40)
            response = pb.GenerateImageResponse()
            assert done.response.Unpack(response)
            outcomes.append(response.cost.amount)
        usage = await h.stub.GetUsage(pb.GetUsageRequest(), metadata=auth("team-a"))
        creates = h.requests.count("create")
        counted = sample(h, "inference_gateway_cost_total", caller="team-a", model=FLUX)
    assert outcomes == ["0.300000000"] * 3 + ["CALLER_BUDGET_EXHAUSTED"]
    assert creates == 3
    assert money(usage.spent) == Decimal("0.90")
    assert money(usage.reserved) == 0
    # The follower runs outside the submitting call, and still names its caller.
    assert abs(Decimal(str(counted)) - Decimal("0.90")) < CENT
