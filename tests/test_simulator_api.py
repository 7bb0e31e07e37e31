"""The simulator's HTTP API over loopback: endpoints, lifecycle, sync mode, SSE and files.

Bodies are checked against the schemas in Replicate's OpenAPI document, and the
expected values are written out here rather than read back from the simulator.
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
import struct
import time
import zlib
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

import aiohttp
import httpx
import pytest

from replicate_simulator import RunningSimulator, SimulatorConfig, start_simulator
from tests.simulator_fixtures import (
    TEST_TOKEN,
    auth_headers,
    openapi_response_validator,
    openapi_validator,
    running_simulator,
    wait_until,
)
from tests.support.models import GEMMA, LLAMA2, LLAMA3, MIXTRAL, MIXTRAL_VERSION, SDXL

NOT_FOUND = {"detail": "The requested resource could not be found.", "status": 404}
INVALID_VERSION = {
    "title": "Invalid version or not permitted",
    "detail": "The specified version does not exist "
    "(or perhaps you don't have permission to use it?)",
    "status": 422,
}
EXTRA = "additional_property_not_allowed"


def invalid(kind: str, field: str, description: str) -> dict[str, str]:
    return {"type": kind, "field": field, "description": description}


@pytest.fixture
async def sim() -> AsyncIterator[RunningSimulator]:
    async with running_simulator() as running:
        yield running


@pytest.fixture
async def http(sim: RunningSimulator) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=sim.base_url, headers=auth_headers()) as client:
        yield client


def version_of(sim: RunningSimulator, model: str) -> str:
    return sim.state.catalogue.models[model].latest_version.id


def assert_prediction_shape(body: dict[str, Any]) -> None:
    errors = sorted(openapi_validator("schemas_prediction_response").iter_errors(body), key=str)
    assert not errors, [error.message for error in errors]


async def settle(sim: RunningSimulator, prediction_id: str) -> None:
    await wait_until(sim.state.predictions[prediction_id], lambda p: p.is_terminal)


def parse_sse(text: str) -> tuple[list[str], list[dict[str, str]]]:
    """A small independent SSE parser: (comments, events with event/id/data)."""
    comments: list[str] = []
    events: list[dict[str, str]] = []
    for block in text.split("\n\n"):
        fields: dict[str, list[str]] = {}
        for line in block.split("\n"):
            if line.startswith(":"):
                comments.append(line[1:].strip())
            elif line:
                name, _, value = line.partition(":")
                fields.setdefault(name, []).append(value.removeprefix(" "))
        if fields:
            events.append({name: "\n".join(values) for name, values in fields.items()})
    return comments, events


# -- creating predictions -----------------------------------------------------------


async def test_create_by_version_id_then_get_until_succeeded(
    sim: RunningSimulator, http: httpx.AsyncClient
) -> None:
    input = {"prompt": "Say something", "max_tokens": 10}

    created = await http.post(
        "/v1/predictions", json={"version": version_of(sim, LLAMA3), "input": input}
    )

    assert created.status_code == 201
    body = created.json()
    assert_prediction_shape(body)
    assert body["status"] == "starting"
    assert body["logs"] == ""
    assert body["error"] is None
    assert body["output"] is None
    assert body["model"] == LLAMA3
    assert body["input"] == input
    assert "metrics" not in body
    assert "started_at" not in body
    assert body["urls"] == {
        "get": f"{sim.base_url}/v1/predictions/{body['id']}",
        "cancel": f"{sim.base_url}/v1/predictions/{body['id']}/cancel",
        "web": f"https://replicate.com/p/{body['id']}",
        "stream": f"{sim.base_url}/v1/streams/{body['id']}",
    }
    assert re.fullmatch(r"[a-z2-7]{26}", body["id"])

    await settle(sim, body["id"])
    done = (await http.get(f"/v1/predictions/{body['id']}")).json()

    assert_prediction_shape(done)
    assert done["status"] == "succeeded"
    assert len(done["output"]) == 10
    assert "".join(done["output"]) == sim.state.expected_text(LLAMA3, input)
    assert done["created_at"] <= done["started_at"] <= done["completed_at"]
    metrics = done["metrics"]
    assert 0 <= metrics["predict_time"] <= metrics["total_time"]
    assert metrics["output_token_count"] == 10
    # "Say something" plus the default system prompt inside llama-3's default template.
    assert metrics["input_token_count"] > len(["Say", "something", "You", "are", "a", "helpful"])


@pytest.mark.parametrize("form", ["owner/name:version", "owner/name"])
async def test_create_accepts_the_other_version_forms(
    sim: RunningSimulator, http: httpx.AsyncClient, form: str
) -> None:
    version = f"{LLAMA3}:{version_of(sim, LLAMA3)}" if form == "owner/name:version" else LLAMA3

    response = await http.post("/v1/predictions", json={"version": version, "input": {}})

    assert response.status_code == 201
    assert response.json()["model"] == LLAMA3
    assert response.json()["version"] == version_of(sim, LLAMA3)


@pytest.mark.parametrize(
    "version",
    [
        "0" * 64,  # unknown id
        SDXL,  # bare name of a model that is not official
        f"{LLAMA2}:{MIXTRAL_VERSION}",  # another model's version
        "nobody/nothing",
        "short",
    ],
)
async def test_create_rejects_bad_versions(http: httpx.AsyncClient, version: str) -> None:
    response = await http.post("/v1/predictions", json={"version": version, "input": {}})

    assert response.status_code == 422
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json() == INVALID_VERSION


async def test_models_endpoint_serves_official_models_only(
    sim: RunningSimulator, http: httpx.AsyncClient
) -> None:
    official = await http.post(
        f"/v1/models/{MIXTRAL}/predictions", json={"input": {"prompt": "hi"}}
    )
    community = await http.post(f"/v1/models/{GEMMA}/predictions", json={"input": {"prompt": "hi"}})
    unknown = await http.post("/v1/models/nobody/nothing/predictions", json={"input": {}})

    assert official.status_code == 201
    assert official.json()["model"] == MIXTRAL
    for refused in (community, unknown):
        assert refused.status_code == 404
        assert refused.json() == NOT_FOUND
        openapi_response_validator("/files/{file_id}", "get", 404).validate(refused.json())


async def test_deployment_endpoint_runs_the_pinned_version(
    sim: RunningSimulator, http: httpx.AsyncClient
) -> None:
    response = await http.post("/v1/deployments/acme/llama3-prod/predictions", json={"input": {}})
    unknown = await http.post("/v1/deployments/acme/nothing/predictions", json={"input": {}})

    assert response.status_code == 201
    body = response.json()
    assert_prediction_shape(body)
    assert (body["model"], body["version"], body["deployment"]) == (
        LLAMA3,
        version_of(sim, LLAMA3),
        "acme/llama3-prod",
    )
    assert unknown.status_code == 404


@pytest.mark.parametrize(
    ("path", "body", "expected_field", "detail"),
    [
        (
            "/v1/predictions",
            {"version": LLAMA3, "input": {}, "signal": 1},
            invalid(EXTRA, "", "Additional property signal is not allowed"),
            "- Additional property signal is not allowed\n",
        ),
        (
            f"/v1/models/{LLAMA3}/predictions",
            {"version": "x", "input": {}},
            invalid(EXTRA, "", "Additional property version is not allowed"),
            "- Additional property version is not allowed\n",
        ),
        (
            "/v1/predictions",
            {"version": LLAMA3},
            invalid("required", "", "input is required"),
            "- input is required\n",
        ),
        (
            "/v1/predictions",
            {"version": LLAMA3, "input": "hello"},
            invalid("invalid_type", "input", "Invalid type. Expected: object, given: string"),
            "- input: Invalid type. Expected: object, given: string\n",
        ),
    ],
)
async def test_request_body_is_validated(
    http: httpx.AsyncClient,
    path: str,
    body: dict[str, Any],
    expected_field: dict[str, str],
    detail: str,
) -> None:
    response = await http.post(path, json=body)

    assert response.status_code == 422
    assert response.json() == {
        "title": "Input validation failed",
        "detail": detail,
        "status": 422,
        "invalid_fields": [expected_field],
    }


async def test_a_body_that_is_not_json_is_a_400(http: httpx.AsyncClient) -> None:
    response = await http.post(
        "/v1/predictions", content=b"{not json", headers={"Content-Type": "application/json"}
    )

    assert response.status_code == 400
    assert "not valid JSON" in response.json()["detail"]


REFINE_CHOICES = '"no_refiner", "expert_ensemble_refiner", "base_image_refiner"'
INTEGER_GOT_STRING = "Invalid type. Expected: integer, given: string"


@pytest.mark.parametrize(
    ("model", "input", "expected"),
    [
        (
            SDXL,
            {"colour": "red"},
            invalid(EXTRA, "input", "Additional property colour is not allowed"),
        ),
        (SDXL, {"width": "wide"}, invalid("invalid_type", "input.width", INTEGER_GOT_STRING)),
        (
            SDXL,
            {"width": 512.5},
            invalid(
                "invalid_type", "input.width", "Invalid type. Expected: integer, given: number"
            ),
        ),
        (
            SDXL,
            {"num_outputs": 0},
            invalid("number_gte", "input.num_outputs", "Must be greater than or equal to 1"),
        ),
        (
            SDXL,
            {"num_outputs": 5},
            invalid("number_lte", "input.num_outputs", "Must be less than or equal to 4"),
        ),
        (
            SDXL,
            {"num_inference_steps": 501},
            invalid("number_lte", "input.num_inference_steps", "Must be less than or equal to 500"),
        ),
        (
            SDXL,
            {"refine": "best"},
            invalid(
                "enum",
                "input.refine",
                f"input.refine must be one of the following: {REFINE_CHOICES}",
            ),
        ),
        (
            SDXL,
            {"apply_watermark": "yes"},
            invalid(
                "invalid_type",
                "input.apply_watermark",
                "Invalid type. Expected: boolean, given: string",
            ),
        ),
        (LLAMA2, {"max_new_tokens": 10}, invalid("required", "input", "prompt is required")),
        (LLAMA3, {"seed": 1}, invalid(EXTRA, "input", "Additional property seed is not allowed")),
        (
            LLAMA3,
            {"temperature": True},
            invalid(
                "invalid_type",
                "input.temperature",
                "Invalid type. Expected: number, given: boolean",
            ),
        ),
    ],
)
async def test_model_input_is_validated_against_its_schema(
    sim: RunningSimulator,
    http: httpx.AsyncClient,
    model: str,
    input: dict[str, Any],
    expected: dict[str, str],
) -> None:
    response = await http.post(
        "/v1/predictions", json={"version": version_of(sim, model), "input": input}
    )

    assert response.status_code == 422
    assert response.json()["invalid_fields"] == [expected]
    assert response.json()["detail"] == f"- {expected['field']}: {expected['description']}\n"
    assert sim.state.predictions == {}


async def test_valid_inputs_of_every_type_are_accepted(
    sim: RunningSimulator, http: httpx.AsyncClient
) -> None:
    input = {
        "prompt": "a lighthouse",
        "width": 768.0,  # an integral float is an integer, as in JSON Schema
        "num_outputs": 4,
        "scheduler": "DDIM",
        "guidance_scale": 3,
        "apply_watermark": False,
        "image": "data:image/png;base64,AAAA",
    }

    response = await http.post(
        "/v1/predictions", json={"version": version_of(sim, SDXL), "input": input}
    )

    assert response.status_code == 201


# -- sync mode ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("prefer", "applied"), [("wait", "wait"), ("wait=5", "wait=5"), ("wait=99", "wait=60")]
)
async def test_prefer_wait_returns_the_finished_prediction(
    sim: RunningSimulator, http: httpx.AsyncClient, prefer: str, applied: str
) -> None:
    input = {"prompt": "Quick answer", "max_tokens": 6}

    response = await http.post(
        f"/v1/models/{LLAMA3}/predictions", json={"input": input}, headers={"Prefer": prefer}
    )

    assert response.status_code == 201
    assert response.headers["Preference-Applied"] == applied
    body = response.json()
    assert_prediction_shape(body)
    assert body["status"] == "succeeded"
    assert "".join(body["output"]) == sim.state.expected_text(LLAMA3, input)
    assert {"completed_at", "metrics"} <= body.keys()


@pytest.mark.parametrize("prefer", ["wait=0", "wait=100", "respond-async", "wait=abc", "Wait"])
async def test_unrecognised_prefer_is_ignored(http: httpx.AsyncClient, prefer: str) -> None:
    response = await http.post(
        f"/v1/models/{LLAMA3}/predictions", json={"input": {}}, headers={"Prefer": prefer}
    )

    assert response.status_code == 201
    assert "Preference-Applied" not in response.headers
    assert response.json()["status"] == "starting"


async def test_prefer_wait_that_runs_out_reports_starting(
    sim: RunningSimulator, http: httpx.AsyncClient
) -> None:
    sim.state.set_behaviour(LLAMA3, never_finishes=True, output_tokens=3)
    started = time.monotonic()

    response = await http.post(
        f"/v1/models/{LLAMA3}/predictions", json={"input": {}}, headers={"Prefer": "wait=1"}
    )

    assert time.monotonic() - started >= 1.0
    body = response.json()
    assert_prediction_shape(body)
    # It is really processing with all its output, but the clients treat anything other
    # than "starting" as done, so a sync wait that runs out must say "starting".
    assert sim.state.predictions[body["id"]].status == "processing"
    assert (body["status"], body["output"], body["logs"]) == ("starting", None, "")
    assert "started_at" not in body


async def test_prefer_wait_returns_a_failed_prediction_at_once(
    sim: RunningSimulator, http: httpx.AsyncClient
) -> None:
    sim.state.set_behaviour(LLAMA3, fail_error="boom")

    response = await http.post(
        f"/v1/models/{LLAMA3}/predictions", json={"input": {}}, headers={"Prefer": "wait"}
    )

    assert (response.json()["status"], response.json()["error"]) == ("failed", "boom")


# -- lifecycle ------------------------------------------------------------------------


async def test_cancel_stops_generation_and_keeps_partial_output(
    sim: RunningSimulator, http: httpx.AsyncClient
) -> None:
    sim.state.set_behaviour(LLAMA3, never_finishes=True, output_tokens=5)
    input = {"prompt": "Cancel me"}
    created = (await http.post(f"/v1/models/{LLAMA3}/predictions", json={"input": input})).json()
    prediction = sim.state.predictions[created["id"]]
    await wait_until(prediction, lambda p: p.output_count == 5)

    canceled = await http.post(f"/v1/predictions/{created['id']}/cancel")

    assert canceled.status_code == 200
    body = canceled.json()
    assert_prediction_shape(body)
    assert body["status"] == "canceled"
    assert body["output"] == sim.state.expected_tokens(LLAMA3, input)
    assert body["completed_at"] >= body["started_at"]
    assert prediction.task is not None
    assert prediction.task.done()
    assert prediction.events[-1].event == "done"


async def test_cancel_while_starting_goes_straight_to_canceled(
    sim: RunningSimulator, http: httpx.AsyncClient
) -> None:
    sim.state.set_behaviour(LLAMA3, queue_seconds=30)
    created = (await http.post(f"/v1/models/{LLAMA3}/predictions", json={"input": {}})).json()

    body = (await http.post(f"/v1/predictions/{created['id']}/cancel")).json()

    assert body["status"] == "canceled"
    assert "started_at" not in body
    assert body["metrics"]["predict_time"] == 0


async def test_cancel_of_a_finished_prediction_changes_nothing(
    sim: RunningSimulator, http: httpx.AsyncClient
) -> None:
    created = (await http.post(f"/v1/models/{LLAMA3}/predictions", json={"input": {}})).json()
    await settle(sim, created["id"])
    before = (await http.get(f"/v1/predictions/{created['id']}")).json()

    after = await http.post(f"/v1/predictions/{created['id']}/cancel")

    assert after.status_code == 200
    assert after.json() == before


async def test_unknown_predictions_are_404(http: httpx.AsyncClient) -> None:
    for response in (
        await http.get("/v1/predictions/nope"),
        await http.post("/v1/predictions/nope/cancel"),
        await http.get("/v1/streams/nope"),
        await http.get("/v1/not-an-endpoint"),
    ):
        assert response.status_code == 404
        assert response.json() == NOT_FOUND


async def test_a_failing_model_reports_error_and_logs(
    sim: RunningSimulator, http: httpx.AsyncClient
) -> None:
    sim.state.set_behaviour(
        LLAMA3,
        fail_error="CUDA error: out of memory",
        fail_logs="OOM at layer 7\n",
        fail_after_outputs=3,
    )
    input = {"prompt": "Fail midway"}
    created = (await http.post(f"/v1/models/{LLAMA3}/predictions", json={"input": input})).json()
    await settle(sim, created["id"])

    body = (await http.get(f"/v1/predictions/{created['id']}")).json()

    assert_prediction_shape(body)
    assert body["status"] == "failed"
    assert body["error"] == "CUDA error: out of memory"
    assert body["logs"].endswith("OOM at layer 7\n")
    assert body["output"] == sim.state.expected_tokens(LLAMA3, input)[:3]


async def test_a_model_that_never_finishes_stays_processing(
    sim: RunningSimulator, http: httpx.AsyncClient
) -> None:
    sim.state.set_behaviour(LLAMA3, never_finishes=True, output_tokens=4)
    created = (await http.post(f"/v1/models/{LLAMA3}/predictions", json={"input": {}})).json()
    prediction = sim.state.predictions[created["id"]]
    await wait_until(prediction, lambda p: p.output_count == 4)

    with pytest.raises(TimeoutError):
        await asyncio.wait_for(prediction.settled.wait(), 0.2)

    body = (await http.get(f"/v1/predictions/{created['id']}")).json()
    assert (body["status"], len(body["output"])) == ("processing", 4)
    assert "completed_at" not in body


async def test_token_pace_and_predict_time_set_the_timing(
    sim: RunningSimulator, http: httpx.AsyncClient
) -> None:
    sim.state.set_behaviour(LLAMA3, predict_seconds=0.1, token_interval_seconds=0.05)
    sim.state.set_behaviour(SDXL, predict_seconds=0.2)
    text = (
        await http.post(f"/v1/models/{LLAMA3}/predictions", json={"input": {"max_tokens": 4}})
    ).json()
    image = (
        await http.post("/v1/predictions", json={"version": version_of(sim, SDXL), "input": {}})
    ).json()
    for created in (text, image):
        await settle(sim, created["id"])

    text_metrics = (await http.get(f"/v1/predictions/{text['id']}")).json()["metrics"]
    image_metrics = (await http.get(f"/v1/predictions/{image['id']}")).json()["metrics"]
    # First token after predict_seconds plus one interval; then three more intervals.
    assert text_metrics["time_to_first_token"] >= 0.15
    assert text_metrics["predict_time"] >= 0.1 + 4 * 0.05
    assert image_metrics["predict_time"] >= 0.2
    assert "output_token_count" not in image_metrics


async def test_backdated_predictions_report_a_long_queue_without_waiting(
    sim: RunningSimulator, http: httpx.AsyncClient
) -> None:
    sim.state.set_behaviour(LLAMA3, backdate_seconds=45)
    began = time.monotonic()
    created = (await http.post(f"/v1/models/{LLAMA3}/predictions", json={"input": {}})).json()
    await settle(sim, created["id"])

    body = (await http.get(f"/v1/predictions/{created['id']}")).json()

    assert time.monotonic() - began < 5
    queued = _seconds_between(body["created_at"], body["started_at"])
    assert 45 <= queued < 46
    assert body["metrics"]["total_time"] >= 45 > body["metrics"]["predict_time"]


def _seconds_between(earlier: str, later: str) -> float:
    return (datetime.fromisoformat(later) - datetime.fromisoformat(earlier)).total_seconds()


async def test_forced_cold_boot_holds_only_the_next_prediction_in_starting(
    sim: RunningSimulator, http: httpx.AsyncClient
) -> None:
    sim.state.force_cold_boot(LLAMA3, 0.3)

    cold = (await http.post(f"/v1/models/{LLAMA3}/predictions", json={"input": {}})).json()
    await settle(sim, cold["id"])
    warm = (await http.post(f"/v1/models/{LLAMA3}/predictions", json={"input": {}})).json()
    await settle(sim, warm["id"])

    cold_body = (await http.get(f"/v1/predictions/{cold['id']}")).json()
    warm_body = (await http.get(f"/v1/predictions/{warm['id']}")).json()
    assert _seconds_between(cold_body["created_at"], cold_body["started_at"]) >= 0.3
    assert _seconds_between(warm_body["created_at"], warm_body["started_at"]) < 0.3


async def test_idle_models_boot_cold_and_concurrent_predictions_share_the_boot() -> None:
    config = SimulatorConfig(
        token_interval_seconds=0.0, cold_boot_seconds=0.3, cold_boot_idle_seconds=0.0
    )
    async with (
        running_simulator(config) as sim,
        httpx.AsyncClient(base_url=sim.base_url, headers=auth_headers()) as http,
    ):
        first = (await http.post(f"/v1/models/{LLAMA3}/predictions", json={"input": {}})).json()
        second = (await http.post(f"/v1/models/{LLAMA3}/predictions", json={"input": {}})).json()
        other_model = (
            await http.post(f"/v1/models/{MIXTRAL}/predictions", json={"input": {"prompt": "x"}})
        ).json()
        for created in (first, second, other_model):
            await settle(sim, created["id"])
        bodies = [
            (await http.get(f"/v1/predictions/{c['id']}")).json()
            for c in (first, second, other_model)
        ]

    first_body, second_body, other_body = bodies
    assert _seconds_between(first_body["created_at"], first_body["started_at"]) >= 0.3
    # The second was created while the first booted the model: it waits for the same boot.
    assert abs(_seconds_between(first_body["started_at"], second_body["started_at"])) < 0.1
    assert _seconds_between(other_body["created_at"], other_body["started_at"]) >= 0.3


# -- Cancel-After -------------------------------------------------------------------


async def test_cancel_after_sets_a_deadline_and_a_timer(
    sim: RunningSimulator, http: httpx.AsyncClient
) -> None:
    response = await http.post(
        f"/v1/models/{LLAMA3}/predictions", json={"input": {}}, headers={"Cancel-After": "1m30s"}
    )

    body = response.json()
    assert_prediction_shape(body)
    assert 89.9 < _seconds_between(body["created_at"], body["deadline"]) < 90.1
    timer = sim.state.predictions[body["id"]].deadline_timer
    assert timer is not None
    assert 89 < timer.when() - asyncio.get_running_loop().time() <= 90


@pytest.mark.parametrize("value", ["4s", "soon", "5x", "-10", ""])
async def test_bad_cancel_after_is_a_400(http: httpx.AsyncClient, value: str) -> None:
    response = await http.post(
        f"/v1/models/{LLAMA3}/predictions", json={"input": {}}, headers={"Cancel-After": value}
    )

    assert response.status_code == 400
    assert response.json()["title"] == "Invalid Cancel-After header"


async def test_a_deadline_before_start_aborts(
    sim: RunningSimulator, http: httpx.AsyncClient
) -> None:
    sim.state.set_behaviour(LLAMA3, queue_seconds=30)
    created = (
        await http.post(
            f"/v1/models/{LLAMA3}/predictions", json={"input": {}}, headers={"Cancel-After": "5s"}
        )
    ).json()

    sim.state.fire_deadline(sim.state.predictions[created["id"]])

    body = (await http.get(f"/v1/predictions/{created['id']}")).json()
    assert_prediction_shape(body)
    assert body["status"] == "aborted"
    assert "started_at" not in body


async def test_a_deadline_while_running_cancels(
    sim: RunningSimulator, http: httpx.AsyncClient
) -> None:
    sim.state.set_behaviour(LLAMA3, never_finishes=True, output_tokens=2)
    created = (
        await http.post(
            f"/v1/models/{LLAMA3}/predictions", json={"input": {}}, headers={"Cancel-After": "5"}
        )
    ).json()
    prediction = sim.state.predictions[created["id"]]
    await wait_until(prediction, lambda p: p.output_count == 2)

    fired = await http.post(f"/_simulator/predictions/{created['id']}/deadline")

    assert fired.json()["status"] == "canceled"
    assert len(fired.json()["output"]) == 2


# -- models, versions, deployments -----------------------------------------------------


@pytest.mark.parametrize("model", [LLAMA3, LLAMA2, GEMMA, MIXTRAL, SDXL])
async def test_get_model_and_version(
    sim: RunningSimulator, http: httpx.AsyncClient, model: str
) -> None:
    response = await http.get(f"/v1/models/{model}")

    assert response.status_code == 200
    body = response.json()
    openapi_validator("schemas_model_response").validate(body)
    assert (body["owner"], body["name"]) == tuple(model.split("/"))
    assert body["is_official"] == (model in (LLAMA3, LLAMA2, MIXTRAL))
    latest = body["latest_version"]
    openapi_validator("schemas_version_response").validate(latest)
    assert re.fullmatch("[0-9a-f]{64}", latest["id"])
    schemas = latest["openapi_schema"]["components"]["schemas"]
    assert schemas["Input"]["type"] == "object"

    version = await http.get(f"/v1/models/{model}/versions/{latest['id']}")
    assert version.json() == latest
    missing = await http.get(f"/v1/models/{model}/versions/{'1' * 64}")
    assert missing.status_code == 404


async def test_llm_schemas_declare_iterator_output_and_their_real_inputs(
    http: httpx.AsyncClient,
) -> None:
    expected_inputs = {
        LLAMA3: {
            "prompt",
            "system_prompt",
            "max_tokens",
            "min_tokens",
            "temperature",
            "top_p",
            "top_k",
            "presence_penalty",
            "frequency_penalty",
            "stop_sequences",
            "prompt_template",
        },
        LLAMA2: {
            "prompt",
            "system_prompt",
            "max_new_tokens",
            "min_new_tokens",
            "temperature",
            "top_p",
            "top_k",
            "repetition_penalty",
            "stop_sequences",
            "seed",
            "debug",
        },
        GEMMA: {
            "prompt",
            "max_new_tokens",
            "min_new_tokens",
            "temperature",
            "top_p",
            "top_k",
            "repetition_penalty",
        },
        MIXTRAL: {
            "prompt",
            "system_prompt",
            "max_new_tokens",
            "min_new_tokens",
            "temperature",
            "top_p",
            "top_k",
            "presence_penalty",
            "frequency_penalty",
            "prompt_template",
        },
    }
    for model, inputs in expected_inputs.items():
        schemas = (await http.get(f"/v1/models/{model}")).json()["latest_version"]["openapi_schema"]
        input_schema = schemas["components"]["schemas"]["Input"]
        assert set(input_schema["properties"]) == inputs, model
        orders = [p["x-order"] for p in input_schema["properties"].values()]
        assert sorted(orders) == list(range(len(inputs))), model
        assert schemas["components"]["schemas"]["Output"] == {
            "type": "array",
            "items": {"type": "string"},
            "title": "Output",
            "x-cog-array-type": "iterator",
            "x-cog-array-display": "concatenate",
        }


async def test_sdxl_enums_use_allof_refs(http: httpx.AsyncClient) -> None:
    schema = (await http.get(f"/v1/models/{SDXL}")).json()["latest_version"]["openapi_schema"]
    components = schema["components"]["schemas"]
    scheduler = components["Input"]["properties"]["scheduler"]

    assert scheduler["allOf"] == [{"$ref": "#/components/schemas/schedulerEnum"}]
    assert components["refineEnum"]["enum"] == [
        "no_refiner",
        "expert_ensemble_refiner",
        "base_image_refiner",
    ]
    assert components["Input"]["properties"]["num_outputs"]["maximum"] == 4


async def test_get_deployment(sim: RunningSimulator, http: httpx.AsyncClient) -> None:
    response = await http.get("/v1/deployments/acme/llama3-prod")

    body = response.json()
    openapi_validator("schemas_deployment_response").validate(body)
    release = body["current_release"]
    assert (release["model"], release["version"]) == (LLAMA3, version_of(sim, LLAMA3))
    assert set(release["configuration"]) == {"hardware", "min_instances", "max_instances"}
    assert (await http.get("/v1/deployments/acme/none")).status_code == 404


async def test_unknown_model_is_404(http: httpx.AsyncClient) -> None:
    response = await http.get("/v1/models/nobody/nothing")

    assert response.status_code == 404
    assert response.json() == NOT_FOUND


# -- streaming -------------------------------------------------------------------------


async def test_stream_follows_a_prediction_to_done(
    sim: RunningSimulator, http: httpx.AsyncClient
) -> None:
    sim.state.set_behaviour(LLAMA3, token_interval_seconds=0.002)
    input = {"prompt": "A longer tale", "max_tokens": 60}
    created = (await http.post(f"/v1/models/{LLAMA3}/predictions", json={"input": input})).json()

    async with httpx.AsyncClient() as anonymous:  # the stream needs no token
        response = await anonymous.get(
            created["urls"]["stream"], headers={"Accept": "text/event-stream"}
        )

    assert response.headers["content-type"] == "text/event-stream"
    comments, events = parse_sse(response.text)
    assert comments == ["hi"]
    assert events[0]["event"] == "logs"
    outputs = [e["data"] for e in events if e["event"] == "output"]
    expected_tokens = sim.state.expected_tokens(LLAMA3, input)
    assert outputs == expected_tokens
    assert any("\n" in token for token in expected_tokens), (
        "the text should exercise multi-line data"
    )
    assert events[-1] == {"event": "done", "id": events[-1]["id"], "data": "{}"}
    sequence = [int(e["id"].split(":")[1]) for e in events]
    assert sequence == list(range(len(events)))


async def test_late_stream_replays_everything(
    sim: RunningSimulator, http: httpx.AsyncClient
) -> None:
    input = {"prompt": "Replay", "max_tokens": 7}
    created = (await http.post(f"/v1/models/{LLAMA3}/predictions", json={"input": input})).json()
    await settle(sim, created["id"])

    _, events = parse_sse((await http.get(created["urls"]["stream"])).text)

    assert [e["data"] for e in events if e["event"] == "output"] == sim.state.expected_tokens(
        LLAMA3, input
    )
    assert events[-1]["event"] == "done"


async def test_stream_resumes_after_last_event_id(
    sim: RunningSimulator, http: httpx.AsyncClient
) -> None:
    input = {"prompt": "Resume", "max_tokens": 8}
    created = (await http.post(f"/v1/models/{LLAMA3}/predictions", json={"input": input})).json()
    await settle(sim, created["id"])
    _, everything = parse_sse((await http.get(created["urls"]["stream"])).text)

    resumed = await http.get(
        created["urls"]["stream"], headers={"Last-Event-ID": everything[3]["id"]}
    )

    assert parse_sse(resumed.text)[1] == everything[4:]


async def test_stream_of_a_failure_sends_error_then_done(
    sim: RunningSimulator, http: httpx.AsyncClient
) -> None:
    sim.state.set_behaviour(LLAMA3, fail_error="model crashed\nsecond line")
    created = (await http.post(f"/v1/models/{LLAMA3}/predictions", json={"input": {}})).json()

    _, events = parse_sse((await http.get(created["urls"]["stream"])).text)

    assert [e["event"] for e in events[-2:]] == ["error", "done"]
    assert events[-2]["data"] == "model crashed\nsecond line"
    assert json.loads(events[-1]["data"]) == {"reason": "error"}


async def test_stream_of_a_cancellation_ends_with_reason_canceled(
    sim: RunningSimulator, http: httpx.AsyncClient
) -> None:
    sim.state.set_behaviour(LLAMA3, never_finishes=True, output_tokens=2)
    created = (await http.post(f"/v1/models/{LLAMA3}/predictions", json={"input": {}})).json()

    async def cancel_when_streaming() -> None:
        await wait_until(sim.state.predictions[created["id"]], lambda p: p.output_count == 2)
        await http.post(f"/v1/predictions/{created['id']}/cancel")

    response, _ = await asyncio.gather(http.get(created["urls"]["stream"]), cancel_when_streaming())

    _, events = parse_sse(response.text)
    assert [e["event"] for e in events] == ["logs", "output", "output", "done"]
    assert json.loads(events[-1]["data"]) == {"reason": "canceled"}


async def test_image_models_do_not_stream_unless_configured(
    sim: RunningSimulator, http: httpx.AsyncClient
) -> None:
    plain = (
        await http.post("/v1/predictions", json={"version": version_of(sim, SDXL), "input": {}})
    ).json()
    sim.state.set_behaviour(SDXL, streams=True)
    streaming = (
        await http.post("/v1/predictions", json={"version": version_of(sim, SDXL), "input": {}})
    ).json()
    await settle(sim, streaming["id"])

    assert "stream" not in plain["urls"]
    _, events = parse_sse((await http.get(streaming["urls"]["stream"])).text)
    assert [e["data"] for e in events if e["event"] == "output"] == [
        f"{sim.files_url}/files/{streaming['id']}/out-0.png"
    ]


# -- files -----------------------------------------------------------------------------


def png_size(data: bytes) -> tuple[int, int]:
    """Check the signature and every chunk's CRC; return the IHDR width and height."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    offset, kinds, size = 8, [], (0, 0)
    while offset < len(data):
        (length,) = struct.unpack(">I", data[offset : offset + 4])
        kind = data[offset + 4 : offset + 8]
        payload = data[offset + 8 : offset + 8 + length]
        (crc,) = struct.unpack(">I", data[offset + 8 + length : offset + 12 + length])
        assert zlib.crc32(kind + payload) == crc
        if kind == b"IHDR":
            size = struct.unpack(">II", payload[:8])
        kinds.append(kind)
        offset += 12 + length
    assert kinds == [b"IHDR", b"IDAT", b"IEND"]
    return size


async def test_image_outputs_are_served_pngs(
    sim: RunningSimulator, http: httpx.AsyncClient
) -> None:
    created = await http.post(
        "/v1/predictions",
        json={"version": version_of(sim, SDXL), "input": {"prompt": "x", "num_outputs": 3}},
        headers={"Prefer": "wait"},
    )
    body = created.json()

    assert body["output"] == [f"{sim.files_url}/files/{body['id']}/out-{i}.png" for i in range(3)]
    images = [await http.get(url) for url in body["output"]]
    for image in images:
        assert image.headers["content-type"] == "image/png"
        assert png_size(image.content) == (16, 16)
    assert len({image.content for image in images}) == 3
    assert (await http.get(f"{sim.files_url}/files/{body['id']}/out-3.png")).status_code == 404
    assert (await http.get(f"{sim.files_url}/files/{body['id']}/secrets.txt")).status_code == 404
    # Files have an origin of their own, as on replicate.delivery: the API serves none,
    # and the file origin no API.
    assert (await http.get(f"/files/{body['id']}/out-0.png")).status_code == 404
    assert (await http.get(f"{sim.files_url}/v1/predictions/{body['id']}")).status_code == 404
    assert sim.files_url != sim.base_url


async def test_single_file_output_is_a_string(
    sim: RunningSimulator, http: httpx.AsyncClient
) -> None:
    sim.state.set_behaviour(SDXL, single_file_output=True)

    body = (
        await http.post(
            "/v1/predictions",
            json={"version": version_of(sim, SDXL), "input": {"num_outputs": 2}},
            headers={"Prefer": "wait"},
        )
    ).json()

    assert body["output"] == f"{sim.files_url}/files/{body['id']}/out-0.png"


async def test_data_uri_output_inlines_each_file_as_a_png(
    sim: RunningSimulator, http: httpx.AsyncClient
) -> None:
    sim.state.set_behaviour(SDXL, data_uri_output=True)

    body = (
        await http.post(
            "/v1/predictions",
            json={"version": version_of(sim, SDXL), "input": {"num_outputs": 2}},
            headers={"Prefer": "wait"},
        )
    ).json()

    prefix = "data:image/png;base64,"
    assert all(uri.startswith(prefix) for uri in body["output"])
    decoded = [base64.b64decode(uri[len(prefix) :], validate=True) for uri in body["output"]]
    assert [png_size(data) for data in decoded] == [(16, 16), (16, 16)]
    assert decoded[0] != decoded[1]
    # Nothing is left to download.
    assert (await http.get(f"{sim.files_url}/files/{body['id']}/out-0.png")).status_code == 404


async def test_output_url_base_moves_the_file_urls_elsewhere(
    sim: RunningSimulator, http: httpx.AsyncClient
) -> None:
    sim.state.set_behaviour(SDXL, output_url_base="https://replicate.delivery/pbxt/")

    body = (
        await http.post(
            "/v1/predictions",
            json={"version": version_of(sim, SDXL), "input": {"num_outputs": 2}},
            headers={"Prefer": "wait"},
        )
    ).json()

    assert body["output"] == [
        f"https://replicate.delivery/pbxt/files/{body['id']}/out-{i}.png" for i in range(2)
    ]


# -- auth, rate limits, recording ---------------------------------------------------------


@pytest.mark.parametrize("authorization", [None, "Bearer", "Token", "Basic abc", "r8_token"])
async def test_requests_without_a_token_are_401(
    sim: RunningSimulator, authorization: str | None
) -> None:
    headers = {"Authorization": authorization} if authorization is not None else {}
    async with httpx.AsyncClient(base_url=sim.base_url, headers=headers) as anonymous:
        response = await anonymous.get(f"/v1/models/{LLAMA3}")

    assert response.status_code == 401
    assert response.json() == {
        "title": "Unauthenticated",
        "detail": "You did not pass a valid authentication token",
        "status": 401,
    }


async def test_token_scheme_and_configured_tokens() -> None:
    config = SimulatorConfig(valid_tokens=frozenset({"r8_good"}))
    async with running_simulator(config) as sim, httpx.AsyncClient(base_url=sim.base_url) as http:
        good = await http.get(f"/v1/models/{LLAMA3}", headers={"Authorization": "Token r8_good"})
        bad = await http.get(f"/v1/models/{LLAMA3}", headers={"Authorization": "Bearer r8_bad"})

    assert (good.status_code, bad.status_code) == (200, 401)


async def test_auth_can_be_switched_off() -> None:
    async with (
        running_simulator(SimulatorConfig(require_token=False)) as sim,
        httpx.AsyncClient(base_url=sim.base_url) as http,
    ):
        assert (await http.get(f"/v1/models/{LLAMA3}")).status_code == 200


async def test_every_api_response_reports_rate_limit_headers(http: httpx.AsyncClient) -> None:
    created = await http.post(f"/v1/models/{LLAMA3}/predictions", json={"input": {}})
    model = await http.get(f"/v1/models/{LLAMA3}")
    missing = await http.get("/v1/predictions/nope")

    assert created.headers["ratelimit-remaining"] == "599"
    assert model.headers["ratelimit-remaining"] == "2999"
    # The bucket refills 50 a second: 20 ms between the reads (a loaded machine) put one back.
    assert missing.headers["ratelimit-remaining"] in {"2998", "2999"}
    for response in (created, model, missing):
        assert int(response.headers["ratelimit-reset"]) >= 1


async def test_creates_beyond_the_budget_are_throttled() -> None:
    config = SimulatorConfig(create_rate_per_minute=2, token_interval_seconds=0.0)
    async with (
        running_simulator(config) as sim,
        httpx.AsyncClient(base_url=sim.base_url, headers=auth_headers()) as http,
    ):
        statuses = [
            (await http.post(f"/v1/models/{LLAMA3}/predictions", json={"input": {}})).status_code
            for _ in range(2)
        ]
        throttled = await http.post(f"/v1/models/{LLAMA3}/predictions", json={"input": {}})
        other_token = await http.post(
            f"/v1/models/{LLAMA3}/predictions",
            json={"input": {}},
            headers=auth_headers("r8_someone_else"),
        )
        reads = await http.get(f"/v1/models/{LLAMA3}")

    assert statuses == [201, 201]
    assert throttled.status_code == 429
    body = throttled.json()
    # 2 a minute refills one request every 30 s.
    assert 1 <= body["retry_after"] <= 30
    assert body == {
        "detail": f"Request was throttled. Your rate limit resets in ~{body['retry_after']}s.",
        "status": 429,
        "retry_after": body["retry_after"],
    }
    assert throttled.headers["ratelimit-remaining"] == "0"
    assert other_token.status_code == 201
    assert reads.status_code == 200


async def test_requests_are_recorded_and_filterable(
    sim: RunningSimulator, http: httpx.AsyncClient
) -> None:
    created = (
        await http.post(
            f"/v1/models/{LLAMA3}/predictions",
            json={"input": {"prompt": "hi"}},
            headers={"X-Trace": "t1"},
        )
    ).json()
    await http.get(f"/v1/predictions/{created['id']}")
    await http.get(f"/v1/models/{SDXL}")

    creates = sim.state.requests.matching(kind="create")
    assert len(creates) == 1
    (create,) = creates
    assert (create.method, create.path, create.model) == (
        "POST",
        f"/v1/models/{LLAMA3}/predictions",
        LLAMA3,
    )
    assert create.body == {"input": {"prompt": "hi"}}
    assert create.headers["x-trace"] == "t1"
    assert create.headers["authorization"] == f"Bearer {TEST_TOKEN}"
    assert create.response_status == 201
    assert sim.state.requests.count(model=LLAMA3) == 2
    assert sim.state.requests.count(kind="model") == 1

    remote = (await http.get("/_simulator/requests", params={"kind": "get"})).json()
    assert remote["count"] == 1
    assert remote["requests"][0]["path"] == f"/v1/predictions/{created['id']}"

    assert (await http.delete("/_simulator/requests")).status_code == 204
    assert sim.state.requests.count() == 0


async def test_latency_is_added_to_every_response() -> None:
    config = SimulatorConfig(latency_seconds=0.2)
    async with (
        running_simulator(config) as sim,
        httpx.AsyncClient(base_url=sim.base_url, headers=auth_headers()) as http,
    ):
        began = time.monotonic()
        await http.get(f"/v1/models/{LLAMA3}")
        assert time.monotonic() - began >= 0.2


# -- shutdown and load ----------------------------------------------------------------------


async def test_stop_cleans_up_predictions_timers_and_waiters() -> None:
    config = SimulatorConfig(model_behaviour={LLAMA3: {"never_finishes": True}})
    sim = await start_simulator(config)
    async with httpx.AsyncClient(base_url=sim.base_url, headers=auth_headers()) as http:
        created = (
            await http.post(
                f"/v1/models/{LLAMA3}/predictions",
                json={"input": {}},
                headers={"Cancel-After": "1h"},
            )
        ).json()
        prediction = sim.state.predictions[created["id"]]
        held = asyncio.create_task(
            http.post(
                f"/v1/models/{LLAMA3}/predictions", json={"input": {}}, headers={"Prefer": "wait"}
            )
        )
        stream = asyncio.create_task(http.get(created["urls"]["stream"]))
        await wait_until(prediction, lambda p: p.output_count > 0)
        await sim.state.requests.wait_for(1, kind="stream")
        await sim.state.requests.wait_for(2, kind="create")

        began = time.monotonic()
        await sim.stop()

        assert time.monotonic() - began < 1.0
        assert (await held).json()["status"] == "starting"
        with pytest.raises(httpx.RemoteProtocolError):
            await stream
    assert prediction.task is not None
    assert prediction.task.done()
    assert prediction.deadline_timer is not None
    assert prediction.deadline_timer.cancelled()
    assert all(p.task is not None and p.task.done() for p in sim.state.predictions.values())


@pytest.mark.slow
async def test_thousands_of_held_sync_requests_are_served_together() -> None:
    count = 2000
    config = SimulatorConfig(
        create_rate_per_minute=100_000,
        token_interval_seconds=0.0,
        model_behaviour={LLAMA3: {"predict_seconds": 1.0, "output_tokens": 2}},
    )
    url = f"/v1/models/{LLAMA3}/predictions"
    # aiohttp's client, because httpx's connection pool slows down sharply at this size.
    connector = aiohttp.TCPConnector(limit=0)
    async with (
        running_simulator(config) as sim,
        aiohttp.ClientSession(
            sim.base_url, headers={**auth_headers(), "Prefer": "wait"}, connector=connector
        ) as session,
    ):

        async def create(index: int) -> str:
            async with session.post(url, json={"input": {"prompt": str(index)}}) as response:
                status: str = (await response.json())["status"]
                return status

        began = time.monotonic()
        statuses = await asyncio.gather(*(create(i) for i in range(count)))
        elapsed = time.monotonic() - began

    assert statuses == ["succeeded"] * count
    # Held side by side, each for its 1 s of predict time: far less than the count seconds
    # one after another would take (13 s on this machine at load 10).
    assert elapsed < 60, f"{count} held requests took {elapsed:.1f}s"


async def test_deployments_update_makes_a_release_and_min_instances_keeps_warm() -> None:
    """PATCH /v1/deployments/{owner}/{name}: fields replaced, release number bumped, and a
    deployment with min_instances >= 1 never boots cold from idling."""
    config = SimulatorConfig(cold_boot_idle_seconds=0.0, cold_boot_seconds=30.0, time_scale=1000)
    async with running_simulator(config) as simulator:
        state = simulator.state
        async with httpx.AsyncClient(base_url=simulator.base_url, headers=auth_headers()) as http:
            url = "/v1/deployments/acme/sdxl-prod"
            too_many = await http.patch(url, json={"min_instances": 3, "max_instances": 2})
            assert too_many.status_code == 400
            refused = await http.patch(url, json={"min_instances": 6})
            assert refused.status_code == 422
            response = await http.patch(url, json={"min_instances": 1})
            assert response.status_code == 200
            openapi_response_validator(
                "/deployments/{deployment_owner}/{deployment_name}", "patch", 200
            ).validate(response.json())
            release = response.json()["current_release"]
            assert release["number"] == 2
            assert release["configuration"]["min_instances"] == 1
            fetched = (await http.get(url)).json()["current_release"]
            assert fetched["configuration"]["min_instances"] == 1
            created = await http.post(
                f"{url}/predictions",
                json={"input": {"prompt": "a fox"}},
                headers={"Prefer": "wait"},
            )
            prediction = state.predictions[created.json()["id"]]
            await wait_until(prediction, lambda p: p.status == "succeeded")
            body = prediction.to_json()
            started = datetime.fromisoformat(body["started_at"].replace("Z", "+00:00"))
            created_at = datetime.fromisoformat(body["created_at"].replace("Z", "+00:00"))
            assert (started - created_at).total_seconds() < 30
            # Back to 0: the next prediction after idling boots cold again.
            assert (await http.patch(url, json={"min_instances": 0})).status_code == 200
            again = await http.post(f"{url}/predictions", json={"input": {"prompt": "a fox"}})
            cold = state.predictions[again.json()["id"]]
            await wait_until(cold, lambda p: p.started_at is not None)
            body = cold.to_json()
            started = datetime.fromisoformat(body["started_at"].replace("Z", "+00:00"))
            created_at = datetime.fromisoformat(body["created_at"].replace("Z", "+00:00"))
            assert (started - created_at).total_seconds() >= 30


# -- Replicate's stream and API as separate components -----------------------------------


async def test_the_api_can_lag_behind_the_streams_done(
    sim: RunningSimulator, http: httpx.AsyncClient
) -> None:
    sim.state.set_behaviour(LLAMA3, api_lag_seconds=60.0)
    created = await http.post(
        f"/v1/models/{LLAMA3}/predictions", json={"input": {}}, headers={"Prefer": "wait"}
    )
    prediction_id = created.json()["id"]
    await settle(sim, prediction_id)
    stream = await http.get(f"/v1/streams/{prediction_id}")
    lagging = (await http.get(f"/v1/predictions/{prediction_id}")).json()
    sim.state.set_behaviour(LLAMA3, api_lag_seconds=0.0)
    caught_up = (await http.get(f"/v1/predictions/{prediction_id}")).json()

    assert parse_sse(stream.text)[1][-1]["event"] == "done"
    assert_prediction_shape(lagging)
    assert lagging["status"] == "processing"
    assert "completed_at" not in lagging
    assert "metrics" not in lagging
    assert caught_up["status"] == "succeeded"
    assert caught_up["output"] == lagging["output"]


async def test_a_stream_with_nothing_to_say_sends_keepalive_comments(
    sim: RunningSimulator, http: httpx.AsyncClient
) -> None:
    sim.state.set_behaviour(
        LLAMA3, never_finishes=True, output_tokens=1, stream_keepalive_seconds=0.05
    )
    created = await http.post(f"/v1/models/{LLAMA3}/predictions", json={"input": {}})
    url = created.json()["urls"]["stream"]
    lines: list[str] = []
    async with asyncio.timeout(10), http.stream("GET", url) as response:
        async for line in response.aiter_lines():
            lines.append(line)
            if lines.count(": ping") == 3:
                break
    comments, events = parse_sse("\n".join(lines))
    assert comments.count("ping") == 3
    assert "done" not in [event.get("event") for event in events]
