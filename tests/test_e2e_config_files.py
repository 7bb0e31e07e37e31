"""Configuration files copied from LiteLLM's and promptfoo's documentation run unchanged."""

from __future__ import annotations

from pathlib import Path

import pytest

from inference_gateway_protos.inference.gateway.v1 import gateway_pb2 as pb
from tests.gateway_harness import TEST_TOKEN, running_gateway

CONFIGS = Path(__file__).parent / "data" / "configs"
DOC_FILES = [
    "litellm_replicate_docs.yaml",
    "promptfoo_replicate_docs.yaml",
    "promptfoo_gemma_docs.yaml",
    "promptfoo_image_docs.yaml",
]


@pytest.mark.parametrize("name", DOC_FILES)
async def test_documentation_config_starts_and_every_alias_answers(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # LiteLLM's example reads its key from os.environ/REPLICATE_API_KEY.
    env = {"REPLICATE_API_KEY": TEST_TOKEN}
    monkeypatch.setenv("REPLICATE_API_KEY", TEST_TOKEN)
    async with running_gateway(config=CONFIGS / name, env=env) as h:
        listed = await h.stub.ListModels(pb.ListModelsRequest(), timeout=5)
        assert listed.models
        for alias in listed.models:
            if alias.task == pb.TASK_IMAGE:
                image = await h.stub.GenerateImage(
                    pb.GenerateImageRequest(model=alias.alias, prompt="a fox"), timeout=20
                )
                assert image.images
            else:
                text = await h.stub.GenerateText(
                    pb.GenerateTextRequest(model=alias.alias, prompt="hello"), timeout=20
                )
                assert text.text
        creates = h.requests.matching("create")
        assert len(creates) == len(listed.models)
        assert all(r.response_status == 201 for r in creates)


async def test_promptfoo_prefix_suffix_and_parameters_reach_replicate() -> None:
    async with running_gateway(config=CONFIGS / "promptfoo_replicate_docs.yaml") as h:
        [alias] = (await h.stub.ListModels(pb.ListModelsRequest(), timeout=5)).models
        await h.stub.GenerateText(
            pb.GenerateTextRequest(model=alias.alias, prompt="hi"), timeout=20
        )
        [create] = h.requests.matching("create")
        sent = create.body["input"]
        assert sent["prompt"] == "[INST] hi [/INST]"
        assert sent["temperature"] == 0.01
        # The docs' max_length is the length llama-2-chat calls max_new_tokens.
        assert sent["max_new_tokens"] == 1024
