"""Every model-id form, called through gRPC, sends exactly the request it should."""

from __future__ import annotations

import textwrap
from pathlib import Path

import grpc
import pytest

from inference_gateway_protos.inference.gateway.v1 import gateway_pb2 as pb
from replicate_simulator import default_catalogue
from tests.gateway_harness import running_gateway
from tests.support.models import LLAMA3

_CATALOGUE = default_catalogue()


def _version(model: str) -> str:
    spec = _CATALOGUE.model(model)
    assert spec is not None
    return spec.versions[0].id


LLAMA2_V = _version("meta/llama-2-7b-chat")
SDXL_V = _version("stability-ai/sdxl")
PREDICTIONS = "/v1/predictions"


@pytest.mark.parametrize(
    ("model", "path", "version"),
    [
        (f"replicate:{LLAMA3}", f"/v1/models/{LLAMA3}/predictions", None),
        (f"replicate:meta/llama-2-7b-chat:{LLAMA2_V}", PREDICTIONS, LLAMA2_V),
        (f"replicate/{LLAMA3}", f"/v1/models/{LLAMA3}/predictions", None),
        (f"replicate/meta/llama-2-7b-chat:{LLAMA2_V}", PREDICTIONS, LLAMA2_V),
        (
            "replicate/deployments/acme/llama3-prod",
            "/v1/deployments/acme/llama3-prod/predictions",
            None,
        ),
        (f"replicate/{LLAMA2_V}", PREDICTIONS, LLAMA2_V),
        (LLAMA2_V, PREDICTIONS, LLAMA2_V),
        (f"replicate/llama-2-7b-chat:{LLAMA2_V}", PREDICTIONS, LLAMA2_V),
        (f"meta/llama-2-7b-chat:{LLAMA2_V}", PREDICTIONS, LLAMA2_V),
        (LLAMA3, f"/v1/models/{LLAMA3}/predictions", None),
    ],
)
async def test_text_id_form_sends_the_exact_request(
    model: str, path: str, version: str | None
) -> None:
    async with running_gateway() as h:
        reply = await h.stub.GenerateText(
            pb.GenerateTextRequest(model=model, prompt="hello"), timeout=20
        )
        [create] = h.requests.matching("create")
        assert (create.method, create.path) == ("POST", path)
        assert create.body.get("version") == version
        assert create.body["input"] == {"prompt": "hello"}
        assert reply.text


@pytest.mark.parametrize(
    ("model", "path", "version"),
    [
        (f"replicate:image:stability-ai/sdxl:{SDXL_V}", PREDICTIONS, SDXL_V),
        (
            "replicate/deployments/acme/sdxl-prod",
            "/v1/deployments/acme/sdxl-prod/predictions",
            None,
        ),
    ],
)
async def test_image_id_form_sends_the_exact_request(
    model: str, path: str, version: str | None
) -> None:
    async with running_gateway() as h:
        reply = await h.stub.GenerateImage(
            pb.GenerateImageRequest(model=model, prompt="a fox"), timeout=20
        )
        [create] = h.requests.matching("create")
        assert (create.method, create.path) == ("POST", path)
        assert create.body.get("version") == version
        assert create.body["input"] == {"prompt": "a fox"}
        assert reply.images


async def test_an_alias_resolves_to_its_model(tmp_path: Path) -> None:
    config = tmp_path / "gateway.yaml"
    config.write_text(
        textwrap.dedent(
            f"""
            aliases:
              chat:
                model: replicate/meta/llama-2-7b-chat:{LLAMA2_V}
            """
        )
    )
    async with running_gateway(config=config) as h:
        await h.stub.GenerateText(pb.GenerateTextRequest(model="chat", prompt="hi"), timeout=20)
        [create] = h.requests.matching("create")
        assert (create.path, create.body["version"]) == (PREDICTIONS, LLAMA2_V)
        listed = await h.stub.ListModels(pb.ListModelsRequest(), timeout=5)
        [alias] = listed.models
        assert (alias.alias, alias.endpoint_kind, alias.task) == (
            "chat",
            pb.ENDPOINT_KIND_VERSION,
            pb.TASK_TEXT,
        )


async def test_text_rpc_refuses_an_image_id_and_the_reverse() -> None:
    async with running_gateway() as h:
        with pytest.raises(grpc.aio.AioRpcError) as text_call:
            await h.stub.GenerateText(
                pb.GenerateTextRequest(
                    model=f"replicate:image:stability-ai/sdxl:{SDXL_V}", prompt="x"
                ),
                timeout=5,
            )
        assert text_call.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "GenerateImage" in (text_call.value.details() or "")
        assert h.requests.count("create") == 0


async def test_an_unknown_alias_is_not_found_naming_the_closest(tmp_path: Path) -> None:
    config = tmp_path / "gateway.yaml"
    config.write_text(f"aliases:\n  llama-chat:\n    model: {LLAMA3}\n")
    async with running_gateway(config=config) as h:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await h.stub.GenerateText(
                pb.GenerateTextRequest(model="lama-chat", prompt="x"), timeout=5
            )
        assert caught.value.code() == grpc.StatusCode.NOT_FOUND
        assert "llama-chat" in (caught.value.details() or "")
