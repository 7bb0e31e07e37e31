"""The one parser for model ids, so every caller's spelling becomes the same Replicate request.

Callers write ids the way their tools do: the official clients (`owner/name[:VERSION]`),
promptfoo (`replicate:[image:]owner/name[:VERSION]`) and LiteLLM (`replicate/owner/name`,
`replicate/deployments/owner/name`, `replicate/VERSION`, `replicate/name:VERSION`). Each form
maps to exactly one of Replicate's three create endpoints; anything else is refused here, with
the accepted forms in the message, rather than turned into a request that is sure to fail.
"""

from __future__ import annotations

import enum
import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass

from inference_gateway.errors import FieldViolation, InvalidArgument

__all__ = [
    "ACCEPTED_FORMS",
    "MAX_MODEL_ID_CHARS",
    "EndpointKind",
    "ModelIdError",
    "ModelRef",
    "Task",
    "check_model_id_length",
    "parse_model_id",
]

ACCEPTED_FORMS: tuple[str, ...] = (
    "owner/name                           official model: POST /v1/models/owner/name/predictions",
    "owner/name:VERSION                   model version: POST /v1/predictions",
    "VERSION                              bare version id: POST /v1/predictions",
    "deployments/owner/name               deployment: POST /v1/deployments/owner/name/predictions",
    "replicate:owner/name[:VERSION]       promptfoo's text provider id",
    "replicate:image:owner/name[:VERSION] promptfoo's image provider id",
    "replicate:deployments/owner/name     deployment, with promptfoo's prefix",
    "replicate/owner/name[:VERSION]       LiteLLM's model string",
    "replicate/deployments/owner/name     LiteLLM's deployment string",
    "replicate/VERSION                    LiteLLM's bare version",
    "replicate/name:VERSION               LiteLLM's legacy version string",
    "(owner and name: lowercase letters, digits, '-', '_', '.'; VERSION: 64 lowercase hex digits)",
)

_PROMPTFOO_PREFIX = "replicate:"
_LITELLM_PREFIX = "replicate/"
_DEPLOYMENTS = "deployments/"
_IMAGE = "image:"
_MODERATION = "moderation:"

# Replicate's rule for owner and model names. Starting with a letter or digit also keeps
# "." and ".." out of the URL path we build from the segments.
_SEGMENT = re.compile(r"[a-z0-9][a-z0-9._-]*")
# Only 64-hex version ids are accepted after a colon. POST /v1/predictions answers 422 for
# anything else a caller could pin: official models report "dp-…" ids, but those models are
# run through /v1/models/owner/name/predictions, which takes no version at all.
_VERSION = re.compile(r"[0-9a-f]{64}")
_SHOWN_LIMIT = 200
# Replicate publishes no limit for owner/name; a version id is 64 hex. This leaves room for
# the longest prefix, a version and owner and name of ~80 characters each, and keeps every id
# short enough for a URL path, a log field and a metrics label.
MAX_MODEL_ID_CHARS = 256
# Model ids kept parsed, the least recently used forgotten first.
_PARSED_IDS = 1024


class EndpointKind(enum.Enum):
    """Which of Replicate's create endpoints a model id resolves to."""

    OFFICIAL_MODEL = "official_model"
    VERSION = "version"
    DEPLOYMENT = "deployment"


class Task(enum.Enum):
    """What a model produces; decides which RPCs may use it."""

    TEXT = "text"
    IMAGE = "image"


class ModelIdError(InvalidArgument):
    """A model id that no accepted form matches."""


@dataclass(frozen=True, slots=True)
class ModelRef:
    """A parsed model id: enough to build the create request, nothing more."""

    kind: EndpointKind
    owner: str | None
    name: str | None
    version: str | None
    task: Task | None

    def __post_init__(self) -> None:
        named = self.owner is not None and self.name is not None
        if self.kind is EndpointKind.VERSION:
            consistent = self.version is not None and (named or self.owner is None)
        else:
            consistent = named and self.version is None
        if not consistent:
            raise ValueError(f"inconsistent ModelRef fields for {self.kind.name}: {self!r}")

    @property
    def model_name(self) -> str | None:
        if self.owner is None or self.name is None:
            return None
        return f"{self.owner}/{self.name}"

    def create_path(self) -> str:
        if self.kind is EndpointKind.OFFICIAL_MODEL:
            return f"/v1/models/{self.owner}/{self.name}/predictions"
        if self.kind is EndpointKind.DEPLOYMENT:
            return f"/v1/deployments/{self.owner}/{self.name}/predictions"
        return "/v1/predictions"

    def create_body(self, model_input: Mapping[str, object]) -> dict[str, object]:
        """The create request's JSON body; only the version endpoint takes `version`."""
        if self.kind is EndpointKind.VERSION:
            return {"version": self.version, "input": dict(model_input)}
        return {"input": dict(model_input)}

    def __str__(self) -> str:
        """A canonical id that parses back to this ref.

        The plain forms are used unless they would read differently: image refs keep
        promptfoo's `replicate:image:` prefix, and models owned by "replicate" take the
        `replicate:` prefix because `replicate/...` is also LiteLLM's prefix.
        """
        if self.kind is EndpointKind.DEPLOYMENT:
            body = f"deployments/{self.owner}/{self.name}"
        elif self.kind is EndpointKind.OFFICIAL_MODEL:
            body = f"{self.owner}/{self.name}"
        elif self.name is None:
            body = str(self.version)
        elif self.owner is None:
            return f"{_LITELLM_PREFIX}{self.name}:{self.version}"
        else:
            body = f"{self.owner}/{self.name}:{self.version}"
        if self.task is Task.IMAGE:
            return f"{_PROMPTFOO_PREFIX}{_IMAGE}{body}"
        if self.owner == "replicate" and self.kind is not EndpointKind.DEPLOYMENT:
            return f"{_PROMPTFOO_PREFIX}{body}"
        return body


def check_model_id_length(text: str) -> None:
    """Refuses an id longer than MAX_MODEL_ID_CHARS, before anything else reads it."""
    if len(text) > MAX_MODEL_ID_CHARS:
        raise _error(
            text,
            f"the model id is {len(text)} characters; the longest accepted is {MAX_MODEL_ID_CHARS}",
            reason="MODEL_ID_TOO_LONG",
        )


def parse_model_id(text: str) -> ModelRef:
    """Parse any accepted spelling of a model id; raise ModelIdError for anything else."""
    check_model_id_length(text)
    return _parse_model_id(text)


@functools.lru_cache(maxsize=_PARSED_IDS)
def _parse_model_id(text: str) -> ModelRef:
    # Every call parses its model id, mostly the same few: each is parsed once. Only ids
    # that parse are kept (an error is raised, never cached), each at most
    # MAX_MODEL_ID_CHARS long.
    if not text:
        raise _error(text, "the model id is empty")
    if any(ch.isspace() for ch in text):
        raise _error(text, "a model id contains no whitespace")
    if "://" in text:
        raise _error(text, "a model id is not a URL; give owner/name instead")
    if text.startswith(_PROMPTFOO_PREFIX):
        return _parse_promptfoo(text, text.removeprefix(_PROMPTFOO_PREFIX))
    if text.startswith(_LITELLM_PREFIX):
        return _parse_litellm(text, text.removeprefix(_LITELLM_PREFIX))
    return _parse_plain(text, text, task=None)


def _parse_promptfoo(text: str, rest: str) -> ModelRef:
    if rest.startswith(_MODERATION):
        raise _error(
            text,
            "promptfoo's moderation provider (replicate:moderation:...) is not supported;"
            " call the moderation model as a text model with replicate:owner/name",
            reason="UNSUPPORTED_MODEL_KIND",
        )
    if rest.startswith(_IMAGE):
        return _parse_plain(text, rest.removeprefix(_IMAGE), task=Task.IMAGE)
    return _parse_plain(text, rest, task=None)


def _parse_litellm(text: str, rest: str) -> ModelRef:
    if "/" in rest:
        return _parse_plain(text, rest, task=None)
    name, colon, version = rest.partition(":")
    if colon:
        # LiteLLM's legacy "replicate/name:VERSION": only the version reaches Replicate.
        _check_segment(text, name, "model name")
        _check_version(text, version)
        return ModelRef(EndpointKind.VERSION, None, name, version, None)
    if _VERSION.fullmatch(rest):
        return ModelRef(EndpointKind.VERSION, None, None, rest, None)
    if rest == _DEPLOYMENTS.rstrip("/"):
        raise _error(text, "a deployment is written deployments/owner/name")
    # "replicate/x" is also the official clients' spelling of model x owned by "replicate";
    # LiteLLM would post it to /v1/models/x/predictions, which cannot exist.
    return _parse_plain(text, text, task=None)


def _parse_plain(text: str, rest: str, *, task: Task | None) -> ModelRef:
    if rest.startswith(_DEPLOYMENTS):
        return _parse_deployment(text, rest.removeprefix(_DEPLOYMENTS), task)
    if "/" not in rest and ":" not in rest:
        if _VERSION.fullmatch(rest):
            return ModelRef(EndpointKind.VERSION, None, None, rest, task)
        raise _error(text, "expected owner/name, a deployment or a 64-hex version id")
    if rest.count(":") > 1:
        raise _error(text, "only one ':' is allowed, between the model and its version")
    path, colon, version = rest.partition(":")
    owner, name = _split_owner_name(text, path)
    if not colon:
        return ModelRef(EndpointKind.OFFICIAL_MODEL, owner, name, None, task)
    _check_version(text, version)
    return ModelRef(EndpointKind.VERSION, owner, name, version, task)


def _parse_deployment(text: str, path: str, task: Task | None) -> ModelRef:
    if ":" in path:
        raise _error(text, "a deployment takes no version; it runs the version it was given")
    owner, name = _split_owner_name(text, path)
    return ModelRef(EndpointKind.DEPLOYMENT, owner, name, None, task)


def _split_owner_name(text: str, path: str) -> tuple[str, str]:
    parts = path.split("/")
    if len(parts) != 2:
        raise _error(text, f"expected owner/name with exactly one '/', got {len(parts)} segments")
    owner, name = parts
    _check_segment(text, owner, "owner")
    _check_segment(text, name, "model name")
    return owner, name


def _check_segment(text: str, segment: str, what: str) -> None:
    if not segment:
        raise _error(text, f"the {what} is empty")
    if _SEGMENT.fullmatch(segment):
        return
    if _SEGMENT.fullmatch(segment.lower()):
        raise _error(text, f"the {what} {segment!r} must be lowercase: {segment.lower()!r}")
    raise _error(
        text,
        f"the {what} {_shown(segment)} may only use lowercase letters, digits, '-', '_'"
        " and '.', starting with a letter or digit",
    )


def _check_version(text: str, version: str) -> None:
    if not version:
        raise _error(text, "the version after ':' is empty")
    if _VERSION.fullmatch(version):
        return
    if _VERSION.fullmatch(version.lower()):
        raise _error(text, "the version id must be lowercase hex")
    raise _error(
        text,
        f"the version {_shown(version)} is not a 64-hex version id; leave the version out to"
        " run an official model's current version",
    )


def _shown(text: str) -> str:
    if len(text) <= _SHOWN_LIMIT:
        return repr(text)
    return repr(text[:_SHOWN_LIMIT]) + "…"


def _error(text: str, problem: str, *, reason: str = "INVALID_MODEL_ID") -> ModelIdError:
    forms = "\n  ".join(ACCEPTED_FORMS)
    return ModelIdError(
        message=f"model {_shown(text)} is not a model id the gateway can run: {problem}."
        f"\nAccepted forms:\n  {forms}",
        reason=reason,
        metadata={"model": text[:_SHOWN_LIMIT]},
        violations=(FieldViolation(field="model", description=problem),),
    )
