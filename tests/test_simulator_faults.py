"""Scripted faults and the control routes: each fault kind has a visible effect."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import httpx
import pytest

from replicate_simulator import Fault, FaultError, RunningSimulator
from tests.simulator_fixtures import auth_headers, running_simulator, wait_until
from tests.support.models import LLAMA3, MIXTRAL, SDXL

UNAVAILABLE = "The service is temporarily unavailable. Please try again later."


@pytest.fixture
async def sim() -> AsyncIterator[RunningSimulator]:
    async with running_simulator() as running:
        yield running


@pytest.fixture
async def http(sim: RunningSimulator) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=sim.base_url, headers=auth_headers()) as client:
        yield client


async def create(http: httpx.AsyncClient, model: str = LLAMA3) -> httpx.Response:
    return await http.post(f"/v1/models/{model}/predictions", json={"input": {"prompt": "x"}})


async def finished_image(sim: RunningSimulator, http: httpx.AsyncClient) -> dict[str, str]:
    version = sim.state.catalogue.models[SDXL].latest_version.id
    body: dict[str, str] = (
        await http.post(
            "/v1/predictions", json={"version": version, "input": {}}, headers={"Prefer": "wait"}
        )
    ).json()
    return body


@pytest.mark.parametrize(
    ("status", "title", "detail"),
    [
        (500, "Internal Server Error", "An unexpected error occurred."),
        (503, "Service Unavailable", UNAVAILABLE),
        (401, "Unauthenticated", "You did not pass a valid authentication token"),
        (404, None, "The requested resource could not be found."),
    ],
)  # fmt: skip
async def test_status_fault_answers_once_with_a_problem(
    sim: RunningSimulator, http: httpx.AsyncClient, status: int, title: str | None, detail: str
) -> None:
    fault = sim.state.faults.add(kind="create", status=status)

    faulted = await create(http)
    normal = await create(http)

    assert faulted.status_code == status
    assert faulted.headers["content-type"].startswith("application/problem+json")
    expected = {"detail": detail, "status": status}
    if title is not None:
        expected["title"] = title
    assert faulted.json() == expected
    assert normal.status_code == 201
    assert fault.fired == 1
    assert sim.state.faults.pending() == []
    assert len(sim.state.predictions) == 1


async def test_billing_fault_uses_replicates_402_body(
    sim: RunningSimulator, http: httpx.AsyncClient
) -> None:
    sim.state.faults.add(kind="create", status=402)

    body = (await create(http)).json()

    assert body["title"] == "Billing required"
    assert body["detail"].startswith("You need to set up billing to run this model.")


async def test_throttle_fault_with_retry_after_header(
    sim: RunningSimulator, http: httpx.AsyncClient
) -> None:
    sim.state.faults.add(kind="create", status=429, retry_after=7, retry_after_header=True)

    response = await create(http)

    assert response.status_code == 429
    assert response.json() == {
        "detail": "Request was throttled. Your rate limit resets in ~7s.",
        "status": 429,
        "retry_after": 7,
    }
    assert response.headers["Retry-After"] == "7"
    assert "ratelimit-remaining" in response.headers


async def test_throttle_fault_without_header_has_only_the_body_field(
    sim: RunningSimulator, http: httpx.AsyncClient
) -> None:
    sim.state.faults.add(kind="create", status=429, retry_after=3)

    response = await create(http)

    assert response.json()["retry_after"] == 3
    assert "Retry-After" not in response.headers


async def test_custom_body_and_headers_are_sent_verbatim(
    sim: RunningSimulator, http: httpx.AsyncClient
) -> None:
    sim.state.faults.add(
        kind="model", status=500, body={"detail": "odd"}, headers={"X-Why": "test"}
    )

    response = await http.get(f"/v1/models/{LLAMA3}")

    assert (response.status_code, response.json(), response.headers["X-Why"]) == (
        500,
        {"detail": "odd"},
        "test",
    )


async def test_drop_connection_fault_closes_without_answering(
    sim: RunningSimulator, http: httpx.AsyncClient
) -> None:
    sim.state.faults.add(kind="create", drop_connection=True)

    with pytest.raises(httpx.RemoteProtocolError):
        await create(http)

    (dropped,) = sim.state.requests.matching(kind="create")
    assert dropped.response_status is None
    assert sim.state.predictions == {}
    assert (await create(http)).status_code == 201


async def test_delay_fault_slows_one_response(
    sim: RunningSimulator, http: httpx.AsyncClient
) -> None:
    sim.state.faults.add(kind="model", delay_seconds=0.3)

    began = time.monotonic()
    delayed = await http.get(f"/v1/models/{LLAMA3}")
    delayed_for = time.monotonic() - began
    began = time.monotonic()
    await http.get(f"/v1/models/{LLAMA3}")
    normal_for = time.monotonic() - began

    assert delayed.status_code == 200
    assert delayed_for >= 0.3 > normal_for


async def test_delay_then_status(sim: RunningSimulator, http: httpx.AsyncClient) -> None:
    sim.state.faults.add(kind="create", delay_seconds=0.2, status=503)

    began = time.monotonic()
    response = await create(http)

    assert response.status_code == 503
    assert time.monotonic() - began >= 0.2


async def read_events(
    http: httpx.AsyncClient, url: str, last_id: str | None
) -> tuple[list[dict[str, str]], bool]:
    """The complete events one connection delivers, and whether it was cut mid-body."""
    text, cut = "", False
    try:
        headers = {"Last-Event-ID": last_id} if last_id else {}
        async with http.stream("GET", url, headers=headers) as response:
            async for chunk in response.aiter_text():
                text += chunk
    except httpx.RemoteProtocolError:
        cut = True
    events = []
    for block in text.split("\n\n")[:-1]:  # the last piece is incomplete or empty
        fields: dict[str, list[str]] = {}
        for line in block.split("\n"):
            if not line.startswith(":"):
                name, _, value = line.partition(": ")
                fields.setdefault(name, []).append(value)
        if fields:
            events.append({name: "\n".join(values) for name, values in fields.items()})
    return events, cut


async def test_stream_cut_fault_drops_the_stream_before_done(
    sim: RunningSimulator, http: httpx.AsyncClient
) -> None:
    created = (await create(http)).json()
    await wait_until(sim.state.predictions[created["id"]], lambda p: p.is_terminal)
    sim.state.faults.add(kind="stream", stream_cut_after_events=3)

    partial, was_cut = await read_events(http, created["urls"]["stream"], None)
    complete, cut_again = await read_events(http, created["urls"]["stream"], None)

    assert (len(partial), was_cut) == (3, True)
    assert "done" not in [event["event"] for event in partial]
    assert complete[:3] == partial
    assert (complete[-1]["event"], cut_again) == ("done", False)


async def test_endless_line_fault_sends_events_then_one_line_without_end(
    sim: RunningSimulator, http: httpx.AsyncClient
) -> None:
    created = (await create(http)).json()
    await wait_until(sim.state.predictions[created["id"]], lambda p: p.is_terminal)
    fault = sim.state.faults.add(kind="stream", stream_endless_line_after_events=2)

    received = b""
    async with http.stream("GET", created["urls"]["stream"]) as response:
        async for chunk in response.aiter_bytes():
            received += chunk
            if len(received) > 1 << 20:
                break  # hang up, as a client with a bound would

    head, _, line = received.partition(b"id: endless\ndata: ")
    assert head.count(b"\nid: ") == 2  # the two events, then the line
    assert len(line) > 1 << 19
    assert set(line) == {ord("x")}  # no line break: it never ends
    assert fault.endless_line_bytes >= len(line) - 65536
    assert fault.to_json()["stream_endless_line_after_events"] == 2


def test_endless_line_fault_is_for_streams_only() -> None:
    with pytest.raises(FaultError, match="stream_endless_line_after_events needs kind 'stream'"):
        Fault(kind="get", stream_endless_line_after_events=0)
    with pytest.raises(FaultError, match="at most one of"):
        Fault(kind="stream", stream_cut_after_events=1, stream_endless_line_after_events=1)


async def test_model_behaviour_cuts_every_stream_and_last_event_id_resumes(
    sim: RunningSimulator, http: httpx.AsyncClient
) -> None:
    sim.state.set_behaviour(LLAMA3, stream_cut_after_events=4)
    input = {"prompt": "Resume me", "max_tokens": 9}
    created = (await http.post(f"/v1/models/{LLAMA3}/predictions", json={"input": input})).json()
    await wait_until(sim.state.predictions[created["id"]], lambda p: p.is_terminal)

    connections: list[list[dict[str, str]]] = []
    cuts: list[bool] = []
    last_id = None
    while not connections or connections[-1][-1]["event"] != "done":
        events, cut = await read_events(http, created["urls"]["stream"], last_id)
        connections.append(events)
        cuts.append(cut)
        last_id = events[-1]["id"]

    # 1 logs + 9 outputs + done = 11 events, at most 4 per connection.
    assert [len(events) for events in connections] == [4, 4, 3]
    assert cuts == [True, True, False]
    outputs = [e["data"] for events in connections for e in events if e["event"] == "output"]
    assert outputs == sim.state.expected_tokens(LLAMA3, input)


async def test_faults_can_target_one_model(sim: RunningSimulator, http: httpx.AsyncClient) -> None:
    sim.state.faults.add(kind="create", model=MIXTRAL, status=500)

    other = await create(http, LLAMA3)
    targeted = await create(http, MIXTRAL)

    assert (other.status_code, targeted.status_code) == (201, 500)


async def test_model_matching_covers_version_ids_and_deployments(
    sim: RunningSimulator, http: httpx.AsyncClient
) -> None:
    sim.state.faults.add(kind="create", model=LLAMA3, status=503, times=2)
    version = sim.state.catalogue.models[LLAMA3].latest_version.id

    by_version = await http.post("/v1/predictions", json={"version": version, "input": {}})
    by_deployment = await http.post(
        "/v1/deployments/acme/llama3-prod/predictions", json={"input": {}}
    )

    assert (by_version.status_code, by_deployment.status_code) == (503, 503)


async def test_counted_and_unlimited_faults(sim: RunningSimulator, http: httpx.AsyncClient) -> None:
    sim.state.faults.add(kind="model", status=503, times=2)
    counted = [(await http.get(f"/v1/models/{LLAMA3}")).status_code for _ in range(3)]
    forever = sim.state.faults.add(kind="version", status=500, times=None)
    version = sim.state.catalogue.models[LLAMA3].latest_version.id
    unlimited = [
        (await http.get(f"/v1/models/{LLAMA3}/versions/{version}")).status_code for _ in range(4)
    ]
    sim.state.faults.clear()

    assert counted == [503, 503, 200]
    assert unlimited == [500] * 4
    assert forever.fired == 4
    assert (await http.get(f"/v1/models/{LLAMA3}/versions/{version}")).status_code == 200


async def test_a_fault_without_kind_hits_any_endpoint(
    sim: RunningSimulator, http: httpx.AsyncClient
) -> None:
    sim.state.faults.add(status=502)

    response = await http.get("/v1/deployments/acme/llama3-prod")

    assert response.status_code == 502


async def test_each_endpoint_kind_can_be_faulted(
    sim: RunningSimulator, http: httpx.AsyncClient
) -> None:
    image = await finished_image(sim, http)
    text = (await create(http)).json()
    await wait_until(sim.state.predictions[text["id"]], lambda p: p.is_terminal)
    version = sim.state.catalogue.models[LLAMA3].latest_version.id
    requests: dict[str, tuple[str, str, dict[str, object] | None]] = {
        "create": ("POST", f"/v1/models/{LLAMA3}/predictions", {"input": {}}),
        "get": ("GET", f"/v1/predictions/{text['id']}", None),
        "cancel": ("POST", f"/v1/predictions/{text['id']}/cancel", None),
        "stream": ("GET", f"/v1/streams/{text['id']}", None),
        "model": ("GET", f"/v1/models/{LLAMA3}", None),
        "version": ("GET", f"/v1/models/{LLAMA3}/versions/{version}", None),
        "deployment": ("GET", "/v1/deployments/acme/llama3-prod", None),
        "file": ("GET", image["output"][0].removeprefix(sim.base_url), None),
    }
    for kind, (method, path, body) in requests.items():
        sim.state.faults.add(kind=kind, status=500)
        response = await http.request(method, path, json=body)
        assert response.status_code == 500, kind
        assert sim.state.requests.matching(kind=kind)[-1].response_status == 500


# -- behaviour and fault control over HTTP ----------------------------------------------


async def test_faults_over_the_control_routes(
    sim: RunningSimulator, http: httpx.AsyncClient
) -> None:
    async with httpx.AsyncClient(base_url=sim.base_url) as control:  # no token needed
        added = await control.post(
            "/_simulator/faults", json={"kind": "create", "status": 429, "retry_after": 2}
        )
        listed = (await control.get("/_simulator/faults")).json()["faults"]
        faulted = await create(http)
        after = (await control.get("/_simulator/faults")).json()["faults"]
        bad = await control.post("/_simulator/faults", json={"kind": "teapot", "status": 500})
        pointless = await control.post("/_simulator/faults", json={"kind": "get"})
        typo = await control.post("/_simulator/faults", json={"stauts": 500})

    assert added.status_code == 201
    assert [f["status"] for f in listed] == [429]
    assert faulted.json()["retry_after"] == 2
    assert after == []
    assert bad.status_code == 400
    assert "teapot" in bad.json()["detail"]
    assert pointless.status_code == 400
    assert "needs an effect" in pointless.json()["detail"]
    assert typo.status_code == 400
    assert "stauts" in typo.json()["detail"]
    assert sim.state.requests.count() == 1  # control calls are not recorded


async def test_behaviour_over_the_control_routes(
    sim: RunningSimulator, http: httpx.AsyncClient
) -> None:
    path = f"/_simulator/models/{LLAMA3}/behaviour"

    patched = await http.patch(path, json={"fail_error": "scripted failure", "output_tokens": 3})
    failed = (
        await http.post(
            f"/v1/models/{LLAMA3}/predictions", json={"input": {}}, headers={"Prefer": "wait"}
        )
    ).json()
    reset = await http.delete(path)
    bad_value = await http.patch(path, json={"output_tokens": -1})
    bad_key = await http.patch(path, json={"speed": 2})
    unknown_model = await http.get("/_simulator/models/nobody/nothing/behaviour")

    assert patched.json()["fail_error"] == "scripted failure"
    assert (failed["status"], failed["error"]) == ("failed", "scripted failure")
    assert reset.json()["fail_error"] is None
    assert (await http.get(path)).json() == reset.json()
    assert bad_value.status_code == 400
    assert "output_tokens" in bad_value.json()["detail"]
    assert bad_key.status_code == 400
    assert "speed" in bad_key.json()["detail"]
    assert unknown_model.status_code == 404


async def test_cold_boot_over_the_control_route(
    sim: RunningSimulator, http: httpx.AsyncClient
) -> None:
    forced = await http.post(f"/_simulator/models/{LLAMA3}/cold-boot", json={"seconds": 0.2})
    created = (await create(http)).json()
    await wait_until(sim.state.predictions[created["id"]], lambda p: p.is_terminal)

    prediction = sim.state.predictions[created["id"]]
    assert forced.status_code == 204
    assert prediction.started_at is not None
    assert prediction.started_at - prediction.created_at >= 0.2
    assert (await http.post(f"/_simulator/models/{LLAMA3}/cold-boot", json={})).status_code == 400


async def test_expected_text_over_the_control_route(
    sim: RunningSimulator, http: httpx.AsyncClient
) -> None:
    input = {"prompt": "Predict me", "max_tokens": 5}

    expected = (
        await http.post("/_simulator/expected-text", json={"model": LLAMA3, "input": input})
    ).json()
    actual = (
        await http.post(
            f"/v1/models/{LLAMA3}/predictions", json={"input": input}, headers={"Prefer": "wait"}
        )
    ).json()
    image = await http.post("/_simulator/expected-text", json={"model": SDXL, "input": {}})

    assert expected["text"] == "".join(actual["output"])
    assert expected["tokens"] == actual["output"]
    assert image.status_code == 404
    assert "image model" in image.json()["detail"]


async def test_reset_forgets_scripting(sim: RunningSimulator, http: httpx.AsyncClient) -> None:
    sim.state.faults.add(kind="get", status=500)
    sim.state.set_behaviour(LLAMA3, fail_error="x")
    await http.get(f"/v1/models/{LLAMA3}")

    assert (await http.post("/_simulator/reset")).status_code == 204

    assert sim.state.faults.pending() == []
    assert sim.state.behaviour(LLAMA3).fail_error is None
    assert sim.state.requests.count() == 0


def test_fault_definitions_are_checked() -> None:
    with pytest.raises(FaultError, match="at most one"):
        Fault(status=500, drop_connection=True)
    with pytest.raises(FaultError, match="kind 'stream'"):
        Fault(kind="get", stream_cut_after_events=2)
    with pytest.raises(FaultError, match="400-599"):
        Fault(status=200)
    with pytest.raises(FaultError, match="times"):
        Fault(status=500, times=0)
    with pytest.raises(FaultError, match="retry_after"):
        Fault(status=429, retry_after_header=True)
