"""The response cache: saves money on repeated reproducible requests, never correctness.

Opt in per alias (`cache: true`) or per request (`cache: CACHE_MODE_USE`); a request
may always force a fresh prediction (`CACHE_MODE_BYPASS`). An answer is reused only when
the same input would give the same output: a seed reaches the model (from the request
or a default), or the alias declares the model `deterministic`. The key is the model
version and the full input sent to Replicate. A version endpoint names its version; a
model or deployment endpoint is keyed by the latest version the schema cache knows,
which may be up to GATEWAY_SCHEMA_TTL seconds stale after a new version is pushed (an
answer is stored under the version that actually ran, so a stale key can only miss, or
find an answer that version gave).

Entries live in the shared store, so every replica shares them, for GATEWAY_CACHE_TTL
seconds and within GATEWAY_CACHE_MAX_BYTES altogether (an index of live entries and
their sizes; when full, new answers are not stored until old ones expire). Text is
stored; images only with their bytes (include_data), since Replicate deletes output
files after about an hour. The store failing is a miss, never an error.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, replace
from typing import Any

from inference_gateway.config import AliasConfig
from inference_gateway.deadlines import Deadline
from inference_gateway.domain import CacheMode, ImageResult, TextResult, dump_result, load_result
from inference_gateway.metrics import Metrics
from inference_gateway.pricing import Cost
from inference_gateway.state import SharedState, StateStore, StoreError

__all__ = ["CacheSettings", "Hold", "ResponseCache"]

# Holds (size, prediction id) output bytes against the process-wide budget (outputs.py).
Hold = Callable[[int, str], AbstractContextManager[None]]

_log = logging.getLogger(__name__)
_INDEX = "cache-index"


@dataclass(frozen=True, slots=True)
class CacheSettings:
    """Built from the gateway's Settings (grpc_api/server.py), where each default is defined."""

    ttl_seconds: float
    max_bytes: int
    max_entry_bytes: int


class ResponseCache:
    def __init__(self, state: SharedState, metrics: Metrics, settings: CacheSettings) -> None:
        self._state = state
        self._metrics = metrics
        self._settings = settings

    def key(
        self,
        mode: CacheMode,
        alias: AliasConfig | None,
        version: str | None,
        body: Mapping[str, object],
        label: str,
        *,
        images: bool = False,
        include_data: bool = False,
    ) -> str | None:
        """The entry's key, or None when this request may not use the cache."""
        opted_in = mode is CacheMode.USE or (
            mode is CacheMode.DEFAULT and alias is not None and alias.cache
        )
        if not opted_in or (images and not include_data):
            return None
        model_input = body.get("input")
        seeded = isinstance(model_input, Mapping) and model_input.get("seed") is not None
        if not seeded and not (alias is not None and alias.deterministic):
            self._metrics.cache_lookups.labels(label, "unreproducible").inc()
            return None
        if version is None:
            # Nothing says which version would run; an answer could be any version's.
            self._metrics.cache_lookups.labels(label, "unreproducible").inc()
            return None
        return _digest(version, model_input, images)

    def bypassed(self, mode: CacheMode, label: str) -> None:
        if mode is CacheMode.BYPASS:
            self._metrics.cache_lookups.labels(label, "bypass").inc()

    async def get(
        self, key: str, label: str, deadline: Deadline, currency: str, hold: Hold
    ) -> TextResult | ImageResult | None:
        """The stored answer; an image entry's bytes are decoded within `hold` (the output
        bytes budget), taken for their size, so concurrent hits cannot pass it."""
        data = await self._call("cache_get", deadline, lambda s: s.get(_entry(key)))
        if data is None:
            self._metrics.cache_lookups.labels(label, "miss").inc()
            return None
        parsed = json.loads(data)
        held: AbstractContextManager[None] = nullcontext()
        if "images" in parsed:
            # The bytes the decoded images will take (base64 carries 3 in every 4).
            size = sum(len(image["data"] or "") * 3 // 4 for image in parsed["images"])
            held = hold(size, parsed["prediction"]["id"])
        with held:
            result = load_result(parsed)
        self._metrics.cache_lookups.labels(label, "hit").inc()
        summary = replace(result.prediction, cost=Cost.from_cache(currency))
        return replace(result, prediction=summary)

    async def put(self, version: str, key_input: Any, result: TextResult | ImageResult) -> None:
        """Stores an answer under the version that gave it, within the size bounds."""
        images = isinstance(result, ImageResult)
        if isinstance(result, ImageResult) and any(image.data is None for image in result.images):
            return
        key = _digest(version, key_input, images)
        data = json.dumps(dump_result(result), separators=(",", ":")).encode()
        size = len(data)
        if size > self._settings.max_entry_bytes:
            self._metrics.cache_stores.labels("too_large").inc()
            return
        members = await self._call("cache_index", None, lambda s: s.index_members(_INDEX))
        if members is None:
            self._metrics.cache_stores.labels("failed").inc()
            return
        held = sum(int(member.rpartition(":")[2] or 0) for member in members)
        if held + size > self._settings.max_bytes:
            self._metrics.cache_stores.labels("full").inc()
            return
        ttl = self._settings.ttl_seconds

        async def store(s: StateStore) -> bool:
            await s.put(_entry(key), data, ttl)
            await s.index_add(_INDEX, f"{key}:{size}", ttl)
            return True

        stored = await self._call("cache_put", None, store)
        self._metrics.cache_stores.labels("stored" if stored else "failed").inc()

    async def _call(self, op: str, deadline: Deadline | None, fn: Any) -> Any:
        try:
            return await self._state.call_on(self._state.store, op, deadline, fn)
        except StoreError as exc:
            _log.info("response cache unavailable (%s): a miss", exc)
            return None


def _entry(key: str) -> str:
    return f"cache:{key}"


def _digest(version: str, model_input: object, images: bool) -> str:
    canonical = json.dumps(
        {"version": version, "input": model_input, "images": images},
        sort_keys=True,
        separators=(",", ":"),
        default=str,
    )
    return hashlib.sha256(canonical.encode()).hexdigest()
