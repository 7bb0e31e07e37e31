"""Models of the simulator's default catalogue, as the tests name them."""

from __future__ import annotations

from typing import Any

from inference_gateway.config import AliasConfig
from inference_gateway.model_ids import ModelRef, Task, parse_model_id

LLAMA3 = "meta/meta-llama-3-8b-instruct"
LLAMA3_VERSION = "9c6da3c589ca2d8c35fe03d540250f3bda6af4e6780c3dc1632a38ed34690bb4"
LLAMA2 = "meta/llama-2-7b-chat"
LLAMA2_VERSION = "f1d50bb24186c52daae319ca8366e53debdaa9e0ae7ff976e918df752732ccc4"
MIXTRAL = "mistralai/mixtral-8x7b-instruct-v0.1"
MIXTRAL_VERSION = "f9a497e54c0c9a54e489cf35a6dfcc2fc020ab34c8884e1d7e034c1616afcedf"
GEMMA = "google-deepmind/gemma-7b-it"
SDXL = "stability-ai/sdxl"
SDXL_VERSION = "7762fd07cf82c948538e41f63f77d685e02b063e37e496e96eefd46c929f9bdc"
SDXL_PINNED = f"{SDXL}:{SDXL_VERSION}"
"""SDXL named by its version, as image models must be unless they are official."""


def alias_config(name: str = "a", model: str | ModelRef = LLAMA3, **fields: Any) -> AliasConfig:
    """An alias as the configuration would load it, with nothing set but `fields`."""
    given: dict[str, Any] = {
        "task": Task.TEXT,
        "defaults": {},
        "prefix": None,
        "suffix": None,
        "template": None,
        "add_bos": False,
        "api_key": None,
        "timeout_seconds": None,
        "max_concurrency": None,
        "source": "gateway.yaml:1",
        **fields,
    }
    ref = model if isinstance(model, ModelRef) else parse_model_id(model)
    return AliasConfig(name=name, model=ref, **given)
