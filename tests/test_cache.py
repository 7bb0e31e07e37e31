"""The response cache's rules: who may use it, and its bounds in the shared store."""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from dataclasses import replace

import pytest

from inference_gateway.cache import CacheSettings, ResponseCache
from inference_gateway.config import AliasConfig
from inference_gateway.deadlines import Deadline
from inference_gateway.domain import (
    CacheMode,
    ImageOutput,
    ImageResult,
    PredictionSummary,
    TextResult,
)
from inference_gateway.metrics import Metrics
from inference_gateway.settings import Settings
from inference_gateway.state import MemoryStore, SharedState
from tests.support.models import alias_config

SUMMARY = PredictionSummary("p1", "o/m", "v1", "succeeded", 0.1, 0.2, 0.3, cold_boot=False)


def alias(*, cache: bool = False, deterministic: bool = False) -> AliasConfig:
    return alias_config(
        "a",
        "o/m",
        cache=cache,
        deterministic=deterministic,
    )


def cache(**bounds: int) -> tuple[ResponseCache, Metrics]:
    """A cache on one process's store, with the gateway's default settings but `bounds`."""
    defaults = Settings()
    settings = CacheSettings(
        ttl_seconds=defaults.cache_ttl,
        max_bytes=defaults.cache_max_bytes,
        max_entry_bytes=defaults.cache_max_entry_bytes,
    )
    metrics = Metrics()
    return ResponseCache(SharedState(MemoryStore()), metrics, replace(settings, **bounds)), metrics


def lookups(metrics: Metrics, result: str) -> float:
    value = metrics.registry.get_sample_value(
        "inference_gateway_cache_lookups_total", {"model": "a", "result": result}
    )
    return value or 0.0


SEEDED = {"input": {"prompt": "x", "seed": 1}}
UNSEEDED = {"input": {"prompt": "x"}}


@pytest.mark.parametrize(
    ("mode", "config", "body", "version", "cached"),
    [
        (CacheMode.DEFAULT, alias(cache=True), SEEDED, "v1", True),
        (CacheMode.DEFAULT, alias(), SEEDED, "v1", False),  # the alias did not opt in
        (CacheMode.USE, alias(), SEEDED, "v1", True),  # the request did
        (CacheMode.BYPASS, alias(cache=True), SEEDED, "v1", False),
        (CacheMode.DEFAULT, alias(cache=True), UNSEEDED, "v1", False),  # not reproducible
        (CacheMode.DEFAULT, alias(cache=True, deterministic=True), UNSEEDED, "v1", True),
        (CacheMode.DEFAULT, alias(cache=True), SEEDED, None, False),  # version unknown
        (CacheMode.USE, None, SEEDED, "v1", True),  # a model id, by request
    ],
)
def test_only_opted_in_reproducible_requests_of_a_known_version_get_a_key(
    mode: CacheMode,
    config: AliasConfig | None,
    body: dict[str, object],
    version: str | None,
    cached: bool,
) -> None:
    responses, _ = cache()
    key = responses.key(mode, config, version, body, "a")
    assert (key is not None) is cached


def test_the_key_is_the_version_and_the_whole_input() -> None:
    responses, _ = cache()
    key = responses.key(CacheMode.USE, None, "v1", SEEDED, "a")
    assert key == responses.key(
        CacheMode.USE, None, "v1", {"input": {"seed": 1, "prompt": "x"}}, "a"
    )
    assert key != responses.key(CacheMode.USE, None, "v2", SEEDED, "a")
    assert key != responses.key(
        CacheMode.USE, None, "v1", {"input": {"prompt": "y", "seed": 1}}, "a"
    )
    # An image request is cached only with its bytes.
    assert responses.key(CacheMode.USE, None, "v1", SEEDED, "a", images=True) is None


def _no_hold(size: int, prediction_id: str) -> AbstractContextManager[None]:
    return nullcontext()


async def test_a_stored_answer_comes_back_as_a_free_hit() -> None:
    responses, metrics = cache()
    key = responses.key(CacheMode.USE, None, "v1", SEEDED, "a")
    assert key is not None
    assert await responses.get(key, "a", Deadline.after(5), "USD", _no_hold) is None
    await responses.put("v1", SEEDED["input"], TextResult("hello", SUMMARY, "none"))
    hit = await responses.get(key, "a", Deadline.after(5), "USD", _no_hold)
    assert isinstance(hit, TextResult)
    assert hit.text == "hello"
    assert hit.prediction.id == "p1"
    assert hit.prediction.cost is not None
    assert hit.prediction.cost.cache_hit
    assert hit.prediction.cost.amount == 0
    assert (lookups(metrics, "miss"), lookups(metrics, "hit")) == (1, 1)


async def test_the_size_bounds_hold() -> None:
    responses, metrics = cache(max_bytes=1500, max_entry_bytes=1000)

    def stores(result: str) -> float:
        value = metrics.registry.get_sample_value(
            "inference_gateway_cache_stores_total", {"result": result}
        )
        return value or 0.0

    await responses.put("v1", {"seed": 1}, TextResult("x" * 2000, SUMMARY, "none"))
    assert stores("too_large") == 1
    await responses.put("v1", {"seed": 2}, TextResult("x" * 600, SUMMARY, "none"))
    await responses.put("v1", {"seed": 3}, TextResult("x" * 600, SUMMARY, "none"))
    assert (stores("stored"), stores("full")) == (1, 1)
    # Images without their bytes are never stored: the URLs expire.
    urls = ImageResult((ImageOutput("https://replicate.delivery/x.png", "image/png"),), SUMMARY)
    await responses.put("v1", {"seed": 4}, urls)
    assert stores("stored") == 1
