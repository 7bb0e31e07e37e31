"""Admission rules: per-request size limits, and how many calls an alias may run at once.

The gRPC receive limit (`--max-request-bytes`) bounds a message's total size before it is
even parsed; these bound what inside a message costs money or memory downstream: the text
sent to a model, the turns a template renders, and the images forwarded inline. Each
refusal names the limit, the value that broke it, and the setting that raises it.

This is the only bound on inline images (`data`, or a `data:` URI): Replicate recommends
data URIs only for small files and fetches larger ones from a URL, so the refusal says so.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from inference_gateway.config import AliasConfig
from inference_gateway.domain import ImageRequest, InputImage, TextRequest
from inference_gateway.errors import FieldViolation, InvalidArgument, ResourceExhausted

__all__ = ["AliasSlots", "LimitExceeded", "RequestLimits", "inline_image_bytes"]


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


_PROMPT = _Limit(
    "characters of prompt text", "PROMPT_TOO_LONG", "--max-prompt-chars", "GATEWAY_MAX_PROMPT_CHARS"
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


def _refuse(limit: _Limit, field: str, actual: int, allowed: int) -> LimitExceeded:
    return LimitExceeded(
        f"{field} has {actual} {limit.what}; the limit is {allowed}. {limit.remedy}, or ask "
        f"the operators to raise {limit.flag} ({limit.env})",
        reason=limit.reason,
        metadata={
            "field": field,
            "limit": str(allowed),
            "actual": str(actual),
            "setting": limit.env,
        },
        violations=(FieldViolation(field, f"{actual} {limit.what}, over the limit of {allowed}"),),
    )


def inline_image_bytes(image: InputImage) -> int:
    """How many image bytes the request carries inline: `data`, or a data: URI's payload.

    An https URL costs nothing here (Replicate fetches it), so it counts as 0. A base64
    payload is counted as the bytes it decodes to, so the limit means the same for both.
    """
    if image.data:
        return len(image.data)
    if not image.uri or not image.uri.startswith("data:"):
        return 0
    header, _, payload = image.uri.partition(",")
    if header.endswith(";base64"):
        return len(payload.rstrip("=")) * 3 // 4
    return len(payload.encode())


@dataclass(frozen=True, slots=True)
class RequestLimits:
    """The limits one request must keep (their defaults live in Settings)."""

    max_prompt_chars: int
    max_messages: int
    max_input_images: int
    max_input_image_bytes: int

    def check(self, request: TextRequest | ImageRequest) -> None:
        """Raises LimitExceeded for the first limit the request breaks."""
        if isinstance(request, TextRequest):
            self._check_text(request)
        else:
            self._check_image(request)

    def _check_text(self, request: TextRequest) -> None:
        if len(request.messages) > self.max_messages:
            raise _refuse(_MESSAGES, "messages", len(request.messages), self.max_messages)
        chars = len(request.prompt or "") + sum(len(m.content) for m in request.messages)
        self._check_prompt("messages" if request.messages else "prompt", chars)

    def _check_image(self, request: ImageRequest) -> None:
        self._check_prompt("prompt", len(request.prompt))
        images = request.input_images
        if len(images) > self.max_input_images:
            raise _refuse(_IMAGES, "input_images", len(images), self.max_input_images)
        for index, image in enumerate(images):
            size = inline_image_bytes(image)
            if size > self.max_input_image_bytes:
                field = f"input_images[{index}]"
                raise _refuse(_IMAGE_BYTES, field, size, self.max_input_image_bytes)

    def _check_prompt(self, field: str, chars: int) -> None:
        if chars > self.max_prompt_chars:
            raise _refuse(_PROMPT, field, chars, self.max_prompt_chars)


class AliasSlots:
    """The calls each alias is running, held to its `max_concurrency`.

    `hold` is the whole interface, so the count can move to shared state (one lease per
    call) without its callers changing. Here it lives in this process.
    """

    def __init__(self) -> None:
        self._taken: dict[str, int] = {}

    @asynccontextmanager
    async def hold(self, alias: AliasConfig | None) -> AsyncIterator[None]:
        """Holds one of the alias's slots for the block; refuses at once when all are taken."""
        if alias is None or alias.max_concurrency is None:
            yield
            return
        taken = self._taken.get(alias.name, 0)
        if taken >= alias.max_concurrency:
            raise ResourceExhausted(
                f"alias {alias.name!r} is running its limit of {alias.max_concurrency} "
                "concurrent requests (max_concurrency); retry shortly",
                reason="ALIAS_CONCURRENCY_LIMIT",
                metadata={"alias": alias.name, "limit": str(alias.max_concurrency)},
                retry_after_seconds=1.0,
            )
        self._taken[alias.name] = taken + 1
        try:
            yield
        finally:
            self._taken[alias.name] -= 1
            if not self._taken[alias.name]:
                del self._taken[alias.name]
