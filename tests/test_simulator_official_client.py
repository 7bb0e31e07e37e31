"""The official `replicate` client (1.0.x) works against the simulator unchanged."""

from __future__ import annotations

import ssl
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from replicate.client import Client
from replicate.exceptions import ModelError, ReplicateError
from replicate.helpers import FileOutput

from replicate_simulator import RunningSimulator, SimulatorConfig
from tests.simulator_fixtures import (
    FAST_CONFIG,
    TEST_TOKEN,
    call_in_loop,
    simulator_in_thread,
)
from tests.support.models import LLAMA2, LLAMA3, SDXL

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def simulator() -> Iterator[RunningSimulator]:
    with simulator_in_thread(FAST_CONFIG) as running:
        yield running


@pytest.fixture
def client(simulator: RunningSimulator) -> Iterator[Client]:
    call_in_loop(simulator, simulator.state.reset)
    with httpx.HTTPTransport() as transport:  # ours, so its connections get closed
        client = Client(api_token=TEST_TOKEN, base_url=simulator.base_url, transport=transport)
        client.poll_interval = 0.01
        yield client


def expected(simulator: RunningSimulator, model: str, input: dict[str, object]) -> str:
    return simulator.state.expected_text(model, input)


def test_run_official_model_by_name(simulator: RunningSimulator, client: Client) -> None:
    input = {"prompt": "Name a colour", "max_tokens": 12}

    output = client.run(LLAMA3, input=input)

    assert "".join(output) == expected(simulator, LLAMA3, input)
    (create,) = simulator.state.requests.matching(kind="create")
    assert create.path == f"/v1/models/{LLAMA3}/predictions"
    assert create.headers["prefer"] == "wait"
    assert create.headers["authorization"] == f"Bearer {TEST_TOKEN}"


def test_run_with_version_reads_the_version_and_iterates(
    simulator: RunningSimulator, client: Client
) -> None:
    version = simulator.state.catalogue.models[LLAMA2].latest_version.id
    input = {"prompt": "Tell me about rivers", "max_new_tokens": 30, "seed": 7}

    output = client.run(f"{LLAMA2}:{version}", input=input)

    # An iterator-typed Output schema makes run() return a generator of chunks.
    assert not isinstance(output, list)
    assert "".join(output) == expected(simulator, LLAMA2, input)
    assert simulator.state.requests.count(kind="version") == 1
    (create,) = simulator.state.requests.matching(kind="create")
    assert create.body == {"version": version, "input": input}


def test_run_without_wait_polls_until_done(simulator: RunningSimulator, client: Client) -> None:
    input = {"prompt": "Poll me", "max_tokens": 8}

    output = client.run(LLAMA3, input=input, wait=False)

    assert "".join(output) == expected(simulator, LLAMA3, input)
    assert "prefer" not in simulator.state.requests.matching(kind="create")[0].headers


def test_stream_yields_the_whole_text(simulator: RunningSimulator, client: Client) -> None:
    input = {"prompt": "Stream a story", "max_tokens": 40}

    events = list(client.stream(LLAMA3, input=input))

    text = "".join(str(event) for event in events)
    assert text == expected(simulator, LLAMA3, input)
    assert events[-1].event.value == "done"
    assert simulator.state.requests.matching(kind="create")[0].body["stream"] is True


def test_create_then_cancel(simulator: RunningSimulator, client: Client) -> None:
    call_in_loop(simulator, lambda: simulator.state.set_behaviour(LLAMA3, never_finishes=True))
    model = client.models.get(LLAMA3)

    prediction = client.predictions.create(model=model, input={"prompt": "Never ends"})
    assert prediction.status == "starting"
    canceled = client.predictions.cancel(prediction.id)

    assert canceled.status == "canceled"
    assert canceled.completed_at is not None
    assert client.predictions.get(prediction.id).status == "canceled"


def test_failed_prediction_raises_model_error(simulator: RunningSimulator, client: Client) -> None:
    call_in_loop(
        simulator,
        lambda: simulator.state.set_behaviour(
            LLAMA3, fail_error="CUDA out of memory", fail_logs="loading weights\n"
        ),
    )

    with pytest.raises(ModelError) as raised:
        client.run(LLAMA3, input={"prompt": "Fail please"})

    assert raised.value.prediction.error == "CUDA out of memory"
    assert "loading weights" in (raised.value.prediction.logs or "")


def test_deployment_prediction(simulator: RunningSimulator, client: Client) -> None:
    deployment = client.deployments.get("acme/llama3-prod")
    assert deployment.current_release is not None
    assert deployment.current_release.model == LLAMA3
    input = {"prompt": "Deployed", "max_tokens": 5}

    prediction = deployment.predictions.create(input=input)
    prediction.wait()

    assert prediction.status == "succeeded"
    assert isinstance(prediction.output, list)
    assert "".join(prediction.output) == expected(simulator, LLAMA3, input)


def test_api_errors_surface_as_replicate_errors(client: Client) -> None:
    with pytest.raises(ReplicateError) as unknown_version:
        client.predictions.create(version="0" * 64, input={})
    assert unknown_version.value.status == 422
    assert unknown_version.value.title == "Invalid version or not permitted"

    with pytest.raises(ReplicateError) as not_official:
        client.run(SDXL, input={})
    assert not_official.value.status == 404


def test_image_run_returns_readable_urls(simulator: RunningSimulator, client: Client) -> None:
    version = simulator.state.catalogue.models[SDXL].latest_version.id

    output = client.run(f"{SDXL}:{version}", input={"prompt": "a fox", "num_outputs": 2})

    # Over plain http the client leaves URLs as strings (it wraps only https: and data:).
    assert [url.rsplit("/", 1)[-1] for url in output] == ["out-0.png", "out-1.png"]
    for url in output:
        response = httpx.get(url)
        assert response.headers["content-type"] == "image/png"
        assert response.content.startswith(PNG_SIGNATURE)


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    try:
        subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
             "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
             "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
            check=True, capture_output=True, timeout=30,
        )  # fmt: skip
    except (OSError, subprocess.CalledProcessError) as exc:
        pytest.skip(f"cannot make a self-signed certificate with openssl: {exc}")
    return cert, key


def test_image_run_over_https_gives_file_outputs(tls_files: tuple[Path, Path]) -> None:
    cert, key = tls_files
    config = SimulatorConfig(
        tls_certfile=cert, tls_keyfile=key, model_behaviour={SDXL: {"predict_seconds": 0.0}}
    )
    with simulator_in_thread(config) as simulator:
        assert simulator.base_url.startswith("https://")
        trusting_our_cert = ssl.create_default_context(cafile=str(cert))
        with httpx.HTTPTransport(verify=trusting_our_cert) as transport:
            client = Client(api_token=TEST_TOKEN, base_url=simulator.base_url, transport=transport)
            version = simulator.state.catalogue.models[SDXL].latest_version.id

            output = client.run(f"{SDXL}:{version}", input={"prompt": "a heron"})

            (file_output,) = output
            assert isinstance(file_output, FileOutput)
            assert file_output.read().startswith(PNG_SIGNATURE)
