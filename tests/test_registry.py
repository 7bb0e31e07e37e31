"""Resolving a request's `model`: aliases first, then model ids, with clear refusals."""

from __future__ import annotations

from types import MappingProxyType

import pytest
from hypothesis import given
from hypothesis import strategies as st

from inference_gateway.config import AliasConfig, GatewayConfig
from inference_gateway.errors import InvalidArgument, NotFound
from inference_gateway.model_ids import EndpointKind, ModelIdError, ModelRef, Task
from inference_gateway.registry import (
    ModelRegistry,
    ResolvedModel,
    UnknownAliasError,
    WrongTaskError,
)
from tests.support.models import alias_config

V = "0123456789abcdef" * 4
LLAMA = ModelRef(EndpointKind.OFFICIAL_MODEL, "meta", "meta-llama-3-8b-instruct", None, None)
SDXL = ModelRef(EndpointKind.VERSION, "stability-ai", "sdxl", V, Task.IMAGE)
MISTRAL = ModelRef(EndpointKind.DEPLOYMENT, "acme", "mistral", None, None)


def alias(name: str, model: ModelRef, task: Task = Task.TEXT) -> AliasConfig:
    return alias_config(name, model, task=task)


def registry(*aliases: AliasConfig) -> ModelRegistry:
    config = GatewayConfig(
        aliases=MappingProxyType({a.name: a for a in aliases}), path=None, format="native"
    )
    return ModelRegistry(config)


LLAMA_ALIAS = alias("llama-3", LLAMA)
SDXL_ALIAS = alias("sdxl", SDXL, Task.IMAGE)
# An alias spelled like a model id: the alias must win over the id's own meaning.
SHADOW_ALIAS = alias("meta/llama", MISTRAL)
REGISTRY = registry(SDXL_ALIAS, SHADOW_ALIAS, LLAMA_ALIAS)


def test_aliases_resolve_to_their_model_and_settings() -> None:
    assert REGISTRY.resolve("llama-3", Task.TEXT) == ResolvedModel(LLAMA_ALIAS, LLAMA)
    assert REGISTRY.resolve("sdxl", Task.IMAGE) == ResolvedModel(SDXL_ALIAS, SDXL)


def test_an_alias_wins_over_the_model_id_it_is_spelled_like() -> None:
    assert REGISTRY.resolve("meta/llama", Task.TEXT) == ResolvedModel(SHADOW_ALIAS, MISTRAL)


@pytest.mark.parametrize(
    ("text", "ref"),
    [
        ("meta/meta-llama-3-8b-instruct", LLAMA),
        ("replicate/deployments/acme/mistral", MISTRAL),
        (V, ModelRef(EndpointKind.VERSION, None, None, V, None)),
    ],
)
def test_other_names_are_read_as_model_ids(text: str, ref: ModelRef) -> None:
    assert REGISTRY.resolve(text, Task.TEXT) == ResolvedModel(None, ref)


def test_an_untyped_model_id_serves_either_task() -> None:
    assert REGISTRY.resolve("acme/anything", Task.IMAGE).ref.task is None
    assert REGISTRY.resolve("acme/anything", Task.TEXT).ref.task is None


def test_unknown_alias_is_not_found_with_the_closest_names() -> None:
    with pytest.raises(UnknownAliasError) as caught:
        registry(LLAMA_ALIAS, SDXL_ALIAS).resolve("llama3", Task.TEXT)
    error = caught.value
    assert isinstance(error, NotFound)
    assert error.reason == "UNKNOWN_ALIAS"
    assert "'llama3' is not a configured alias; did you mean 'llama-3'?" in error.message
    assert error.metadata == {"alias": "llama3", "suggestions": "llama-3"}
    assert [violation.field for violation in error.violations] == ["model"]


def test_unknown_alias_lists_the_aliases_when_none_is_close() -> None:
    with pytest.raises(UnknownAliasError, match=r"aliases available: llama-3, meta/llama, sdxl"):
        REGISTRY.resolve("qwen", Task.TEXT)


def test_unknown_alias_without_any_configured() -> None:
    with pytest.raises(UnknownAliasError, match="no aliases are available"):
        registry().resolve("llama", Task.TEXT)


@pytest.mark.parametrize("text", ["", "meta/llama/extra", "Meta/Llama", "x" * 64, "a:b:c"])
def test_malformed_ids_are_invalid_arguments(text: str) -> None:
    with pytest.raises(ModelIdError) as caught:
        REGISTRY.resolve(text, Task.TEXT)
    assert isinstance(caught.value, InvalidArgument)
    assert not isinstance(caught.value, NotFound)


@pytest.mark.parametrize(
    ("text", "task", "message"),
    [
        (
            f"replicate:image:stability-ai/sdxl:{V}",
            Task.TEXT,
            f"'replicate:image:stability-ai/sdxl:{V}' is an image model; call GenerateImage"
            " instead, or name a text model",
        ),
        (
            "sdxl",
            Task.TEXT,
            "alias 'sdxl' is an image model; call GenerateImage instead, or name a text model",
        ),
        (
            "llama-3",
            Task.IMAGE,
            "alias 'llama-3' is a text model; call GenerateText or StreamText instead,"
            " or name an image model",
        ),
    ],
)
def test_task_mismatch_names_the_right_rpc(text: str, task: Task, message: str) -> None:
    with pytest.raises(WrongTaskError) as caught:
        REGISTRY.resolve(text, task)
    assert isinstance(caught.value, InvalidArgument)
    assert caught.value.reason == "WRONG_TASK"
    assert caught.value.message == message


def test_aliases_are_sorted_by_name() -> None:
    assert REGISTRY.aliases() == [LLAMA_ALIAS, SHADOW_ALIAS, SDXL_ALIAS]


def test_the_empty_configuration_has_no_aliases() -> None:
    assert ModelRegistry(GatewayConfig.empty()).aliases() == []


@given(text=st.text(max_size=80), task=st.sampled_from(Task))
def test_any_text_resolves_or_raises_a_gateway_error(text: str, task: Task) -> None:
    try:
        resolved = REGISTRY.resolve(text, task)
    except (NotFound, InvalidArgument):
        return
    assert resolved.alias is not None or resolved.ref.task in (None, task)
