"""Admission rules: per-request size limits, callers' quotas, and an alias's concurrency.

The gRPC receive limit (`--max-request-bytes`) bounds a message's total size before it is
even parsed; these bound what inside a message costs money or memory downstream. Counts
(chat messages, input images) are checked on the request as it arrives. Sizes are
measured in one place, `RequestLimits.check_input`, on the input the gateway is about to
send: after templates and defaults, so whatever field the caller used (prompt, messages,
system_prompt, prefix, suffix, an extra_input value at any depth, an input image) and
whatever the configuration added is counted, before anything goes upstream. Each refusal
names the limit, the field that broke it, and the setting that raises it.

This is the only bound on inline images (`data`, or a `data:` URI wherever it appears):
Replicate recommends data URIs only for small files and fetches larger ones from a URL, so
the refusal says so.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager, nullcontext
from dataclasses import dataclass
from typing import Protocol

from inference_gateway.config import AliasConfig, CallerConfig
from inference_gateway.deadlines import Deadline
from inference_gateway.domain import ImageRequest, TextRequest
from inference_gateway.errors import FieldViolation, InvalidArgument, ResourceExhausted
from inference_gateway.inputs import ModelInput, is_data_uri
from inference_gateway.state import Guarantee, SharedState

__all__ = [
    "Admission",
    "LimitExceeded",
    "QuotaObserver",
    "RequestLimits",
    "data_uri_bytes",
]


class LimitExceeded(InvalidArgument):
    """A request over one of the gateway's size limits; `metadata` names limit and setting."""


@dataclass(frozen=True, slots=True)
class _Limit:
    what: str
    reason: str
    flag: str
    env: str
    # What the caller can change to fit.
    remedy: str = "Send less"


_TEXT = _Limit(
    "characters of text", "PROMPT_TOO_LONG", "--max-prompt-chars", "GATEWAY_MAX_PROMPT_CHARS"
)
_MESSAGES = _Limit("chat messages", "TOO_MANY_MESSAGES", "--max-messages", "GATEWAY_MAX_MESSAGES")
_IMAGES = _Limit(
    "input images", "TOO_MANY_INPUT_IMAGES", "--max-input-images", "GATEWAY_MAX_INPUT_IMAGES"
)
_IMAGE_BYTES = _Limit(
    "bytes in one input image",
    "INPUT_IMAGE_TOO_LARGE",
    "--max-input-image-bytes",
    "GATEWAY_MAX_INPUT_IMAGE_BYTES",
    remedy="Pass a larger image as an https URL",
)


def _refuse(
    limit: _Limit, field: str, actual: int, allowed: int, *, subject: str | None = None
) -> LimitExceeded:
    return LimitExceeded(
        f"{subject or field} has {actual} {limit.what}; the limit is {allowed}. "
        f"{limit.remedy}, or ask the operators to raise {limit.flag} ({limit.env})",
        reason=limit.reason,
        metadata={
            "field": field,
            "limit": str(allowed),
            "actual": str(actual),
            "setting": limit.env,
        },
        violations=(FieldViolation(field, f"{actual} {limit.what}, over the limit of {allowed}"),),
    )


def data_uri_bytes(uri: str) -> int:
    """The bytes a data: URI carries: a base64 payload counts as the bytes it decodes to,
    so the image limit means the same for `data` and for a data: URI."""
    header, _, payload = uri.partition(",")
    if header.lower().endswith(";base64"):
        return len(payload.rstrip("=")) * 3 // 4
    return len(payload.encode())


_SCALARS = frozenset({bool, int, float})


def _strings(value: object) -> Iterator[str]:
    """Every string in `value`, object keys too, depth first; no paths, for speed."""
    stack = [value]
    while stack:
        node = stack.pop()
        if node is None or type(node) in _SCALARS:
            continue  # the bulk of a large list: skipped before any slower check
        if isinstance(node, str):
            yield node
        elif isinstance(node, list | tuple):
            stack.extend(node)
        elif isinstance(node, Mapping):
            yield from node
            stack.extend(node.values())


def _path_of(value: object, target: str, path: str) -> str | None:
    """Where `target` (that very string) sits in `value`: only a refusal needs it."""
    if value is target:
        return path
    items = (
        ((f".{k}", v) for k, v in value.items())
        if isinstance(value, Mapping)
        else ((f"[{i}]", v) for i, v in enumerate(value))
        if isinstance(value, list | tuple)
        else ()
    )
    for step, item in items:
        found = _path_of(item, target, path + step)
        if found is not None:
            return found
    return None


@dataclass(frozen=True, slots=True)
class RequestLimits:
    """The limits one request must keep (their defaults live in Settings)."""

    max_prompt_chars: int
    max_messages: int
    max_input_images: int
    max_input_image_bytes: int

    def check(self, request: TextRequest | ImageRequest) -> None:
        """Counts, on the request as it arrives: chat messages and input images."""
        if isinstance(request, TextRequest):
            if len(request.messages) > self.max_messages:
                raise _refuse(_MESSAGES, "messages", len(request.messages), self.max_messages)
        elif len(request.input_images) > self.max_input_images:
            images = len(request.input_images)
            raise _refuse(_IMAGES, "input_images", images, self.max_input_images)

    def check_input(self, model_input: ModelInput) -> None:
        """Measures everything the input would send, the one place request size is measured.

        Every data: URI, at any depth, is held to the image byte limit, and named by the
        request field it came from. All text, every string and object key at any depth
        (the input names and data: URI headers included), counts toward the text limit
        together; the
        refusal names the field holding the most of it. Defaults the model's schema later
        drops are counted too: the check runs before anything, the schema included, is
        fetched.
        """
        by_field: dict[str, int] = {}
        for name, value in model_input.values.items():
            field = model_input.explicit.get(name, name)
            chars = len(name)
            for string in _strings(value):
                if not is_data_uri(string):
                    chars += len(string)
                    continue
                # A data: URI's header (its MIME type and parameters) is text like any other.
                header_end = string.find(",")
                chars += len(string) if header_end < 0 else header_end + 1
                if (size := data_uri_bytes(string)) > self.max_input_image_bytes:
                    path = _path_of(value, string, field) or field
                    raise _refuse(_IMAGE_BYTES, path, size, self.max_input_image_bytes)
            by_field[field] = by_field.get(field, 0) + chars
        text = sum(by_field.values())
        if text > self.max_prompt_chars:
            field = max(by_field, key=by_field.__getitem__)
            subject = "the input for the model" + (
                f" (most of it in {field})" if len(by_field) > 1 else f" ({field})"
            )
            raise _refuse(_TEXT, field, text, self.max_prompt_chars, subject=subject)


# What a call with no limits holds: nothing (nullcontext keeps no state, so one serves all).
_NOTHING_HELD: AbstractAsyncContextManager[None] = nullcontext()


class QuotaObserver(Protocol):
    def quota_refused(self, caller: str, quota: str) -> None: ...


@dataclass(frozen=True, slots=True)
class _Quota:
    """One set of limits a call is held to, where it is kept, and who it names."""

    key: str
    guarantee: Guarantee
    per_minute: int | None
    concurrency: int | None
    # Where it is configured, for the refusal: "callers: entry", "alias 'x' per_caller".
    where: str
    caller: str | None
    alias: str | None


class Admission:
    """What a call holds while it runs: its caller's quotas, the alias's per-caller limits,
    and a slot of the alias.

    Counted in the shared state, so the limits hold across replicas: slots are leases
    refreshed while the call runs, so a replica killed mid-call frees its slots within
    `lease_seconds`; requests a minute are a sliding window.
    """

    def __init__(
        self, state: SharedState, *, lease_seconds: float, observer: QuotaObserver
    ) -> None:
        self._state = state
        self._lease_seconds = lease_seconds
        self._observer = observer

    def hold(
        self, caller: CallerConfig | None, alias: AliasConfig | None, deadline: Deadline
    ) -> AbstractAsyncContextManager[None]:
        """Holds what the call needs for the block; refuses at once what is spent."""
        quotas = [
            quota
            for quota in _quotas(caller, alias)
            if quota.per_minute is not None or quota.concurrency is not None
        ]
        # Nothing to count or hold (no limits configured): nothing kept while the call
        # waits, where a generator, an exit stack and its deque were 1.5 KB of each call.
        return self._holding(quotas, deadline) if quotas else _NOTHING_HELD

    @asynccontextmanager
    async def _holding(self, quotas: list[_Quota], deadline: Deadline) -> AsyncIterator[None]:
        async with AsyncExitStack() as held:
            for quota in quotas:
                if quota.per_minute is not None:
                    await self._per_minute(quota, quota.per_minute, deadline)
                if quota.concurrency is not None:
                    lease = await self._state.acquire_lease(
                        quota.guarantee,
                        quota.key,
                        quota.concurrency,
                        self._lease_seconds,
                        deadline,
                    )
                    if lease is None:
                        raise self._refuse(quota, "max_concurrency", quota.concurrency, 1.0)
                    held.push_async_callback(lease.release)
            yield

    async def count(self, caller: CallerConfig | None, deadline: Deadline) -> None:
        """A call that runs no prediction of its own (reading operations or usage, a
        warm-up, dry or not) counts once against its caller's own requests_per_minute:
        cheap, but each reads the shared store or Replicate. It takes no slot, so a caller
        may always wait on or read what its running predictions already hold."""
        for quota in _quotas(caller, None):
            if quota.per_minute is not None:
                await self._per_minute(quota, quota.per_minute, deadline)

    async def _per_minute(self, quota: _Quota, limit: int, deadline: Deadline) -> None:
        retry = await self._state.call(
            quota.guarantee,
            "hit_window",
            deadline,
            lambda s: s.hit_window(f"rpm:{quota.key}", limit, 60.0),
        )
        if retry > 0:
            raise self._refuse(quota, "requests_per_minute", limit, retry)

    def _refuse(self, quota: _Quota, name: str, limit: int, retry: float) -> ResourceExhausted:
        if quota.caller is None:
            assert quota.alias is not None
            return ResourceExhausted(
                f"alias {quota.alias!r} is running its limit of {limit} concurrent requests "
                "(max_concurrency); retry shortly",
                reason="ALIAS_CONCURRENCY_LIMIT",
                metadata={"alias": quota.alias, "limit": str(limit)},
                retry_after_seconds=retry,
            )
        self._observer.quota_refused(quota.caller, name)
        metadata = {"caller": quota.caller, "quota": name, "limit": str(limit)}
        if quota.alias is not None:
            metadata["alias"] = quota.alias
        return ResourceExhausted(
            f"caller {quota.caller!r} is at its limit of {limit} ({name} in {quota.where}); "
            f"retry in {retry:.1f}s, or ask the operators to raise it",
            reason="CALLER_QUOTA_EXCEEDED",
            metadata=metadata,
            retry_after_seconds=retry,
        )


def _quotas(caller: CallerConfig | None, alias: AliasConfig | None) -> list[_Quota]:
    """The caller's own quotas, then the alias's per-caller limits, then the alias's slots."""
    quotas = []
    if caller is not None:
        quotas.append(
            _Quota(
                f"caller:{caller.name}",
                Guarantee.QUOTA,
                caller.limits.requests_per_minute,
                caller.limits.max_concurrency,
                "its callers: entry",
                caller.name,
                None,
            )
        )
        if alias is not None:
            quotas.append(
                _Quota(
                    f"alias-caller:{alias.name}:{caller.name}",
                    Guarantee.QUOTA,
                    alias.per_caller.requests_per_minute,
                    alias.per_caller.max_concurrency,
                    f"alias {alias.name!r} per_caller",
                    caller.name,
                    alias.name,
                )
            )
    if alias is not None:
        quotas.append(
            _Quota(
                f"alias:{alias.name}",
                Guarantee.CONCURRENCY,
                None,
                alias.max_concurrency,
                f"alias {alias.name!r}",
                None,
                alias.name,
            )
        )
    return quotas
