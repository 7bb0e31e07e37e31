"""Environment defaults, alias defaults and the model's schema decide what is sent."""

from __future__ import annotations

import textwrap
from pathlib import Path

import grpc
import pytest

from inference_gateway.defaults import env_defaults
from inference_gateway_protos.inference.gateway.v1 import gateway_pb2 as pb
from replicate_simulator import SimulatorConfig
from tests.gateway_harness import running_gateway
from tests.support.models import LLAMA3

SEEDED = "acme/seeded-t5"
# A model in the style of Replicate's flan-t5: it takes max_length and seed.
SEEDED_CATALOGUE = textwrap.dedent(
    f"""
    models:
      - name: {SEEDED}
        kind: text
        official: true
        versions:
          - id: {"a" * 64}
            created_at: "2024-01-01T00:00:00Z"
            cog_version: 0.9.0
            output: {{type: array, items: {{type: string}}, x-cog-array-type: iterator}}
            input:
              type: object
              required: [prompt]
              properties:
                prompt: {{type: string}}
                max_length: {{type: integer, minimum: 1}}
                temperature: {{type: number, minimum: 0, maximum: 5}}
                seed: {{type: integer}}
    """
)
ENV = {"REPLICATE_TEMPERATURE": "0.3", "REPLICATE_MAX_LENGTH": "77", "REPLICATE_SEED": "5"}


async def test_explicit_zero_wins_and_seed_goes_only_where_the_schema_has_it(
    tmp_path: Path,
) -> None:
    catalogue = tmp_path / "catalogue.yaml"
    catalogue.write_text(SEEDED_CATALOGUE)
    async with running_gateway(
        simulator_config=SimulatorConfig(catalogue_path=catalogue, token_interval_seconds=0.002),
        env_defaults=env_defaults(ENV),
    ) as h:
        for model in (SEEDED, LLAMA3):
            await h.stub.GenerateText(
                pb.GenerateTextRequest(model=model, prompt="hi", temperature=0.0), timeout=20
            )
        seeded, llama = (r.body["input"] for r in h.requests.matching("create"))
        assert seeded == {"prompt": "hi", "temperature": 0, "max_length": 77, "seed": 5}
        # Llama 3 has no seed (the default is dropped) and calls the length max_tokens.
        assert llama == {"prompt": "hi", "temperature": 0, "max_tokens": 77}


async def test_an_explicit_parameter_the_model_lacks_is_refused_before_any_create() -> None:
    async with running_gateway() as h:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await h.stub.GenerateText(
                pb.GenerateTextRequest(model=LLAMA3, prompt="hi", seed=3), timeout=20
            )
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        details = caught.value.details() or ""
        assert "seed" in details
        assert "max_tokens" in details  # the inputs the model does accept are listed
        assert h.requests.count("create") == 0


async def test_a_value_outside_the_schemas_bounds_is_refused() -> None:
    async with running_gateway() as h:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await h.stub.GenerateText(
                pb.GenerateTextRequest(model=LLAMA3, prompt="hi", top_p=7.5), timeout=20
            )
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "top_p" in (caught.value.details() or "")
        assert h.requests.count("create") == 0


async def test_stop_sequences_are_sent_as_one_comma_separated_string() -> None:
    async with running_gateway() as h:
        await h.stub.GenerateText(
            pb.GenerateTextRequest(model=LLAMA3, prompt="hi", stop_sequences=["</s>", "END"]),
            timeout=20,
        )
        [create] = h.requests.matching("create")
        assert create.body["input"]["stop_sequences"] == "</s>,END"


async def test_the_schema_is_fetched_once_for_many_requests() -> None:
    async with running_gateway() as h:
        for _ in range(3):
            await h.stub.GenerateText(pb.GenerateTextRequest(model=LLAMA3, prompt="hi"), timeout=20)
        assert h.requests.count("model") == 1
        assert h.requests.count("create") == 3
