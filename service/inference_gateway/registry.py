"""Resolving what a caller wrote in `model` to a model: a configured alias first, else an id.

Aliases win so an operator can give any string (even one that parses as a model id, like a
promptfoo provider id) its own defaults. A word with no "/" and no ":" cannot be a model id
unless it is a bare version, so when it is not an alias either the caller gets NOT_FOUND with
the nearest alias names, not a lecture on id syntax.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from dataclasses import dataclass

from inference_gateway.config import AliasConfig, GatewayConfig
from inference_gateway.errors import FieldViolation, InvalidArgument, NotFound
from inference_gateway.model_ids import ModelRef, Task, check_model_id_length, parse_model_id

__all__ = ["ModelRegistry", "ResolvedModel", "UnknownAliasError", "WrongTaskError", "check_task"]

_BARE_VERSION_LENGTH = 64
_SUGGESTIONS = 3
_RPC_FOR_TASK = {Task.TEXT: "GenerateText or StreamText", Task.IMAGE: "GenerateImage"}
_KIND_OF_MODEL = {Task.TEXT: "a text model", Task.IMAGE: "an image model"}


@dataclass(frozen=True, slots=True)
class ResolvedModel:
    """The model to run and, when the caller named an alias, the alias's settings."""

    alias: AliasConfig | None
    ref: ModelRef


class UnknownAliasError(NotFound):
    """A name that is neither a configured alias nor a model id."""


class WrongTaskError(InvalidArgument):
    """An image model asked for text, or a text model asked for an image."""


class ModelRegistry:
    """The configured aliases, and the rules for reading everything else as a model id."""

    def __init__(self, config: GatewayConfig) -> None:
        self._aliases = dict(config.aliases)

    def resolve(
        self, text: str, task: Task, *, visible: Callable[[str], bool] = lambda _: True
    ) -> ResolvedModel:
        """What `text` names. `visible` says which aliases the asker may know of: only
        those are suggested or described, so an error never reveals another team's."""
        alias = self._aliases.get(text)
        if alias is not None:
            if visible(alias.name):  # else the permission check refuses it, saying no more
                check_task(f"alias {text!r}", alias.task, task)
            return ResolvedModel(alias, alias.model)
        # Before the text is quoted in an error, a log line or a label, or put in a URL.
        check_model_id_length(text)
        if text and "/" not in text and ":" not in text and not _could_be_version(text):
            raise self._unknown_alias(text, visible)
        ref = parse_model_id(text)
        if ref.task is not None:
            check_task(repr(text), ref.task, task)
        return ResolvedModel(None, ref)

    def resolve_any(self, text: str) -> ResolvedModel:
        """What `text` names, whatever its task (a deployment is warmed for either)."""
        alias = self._aliases.get(text)
        if alias is not None:
            return ResolvedModel(alias, alias.model)
        check_model_id_length(text)
        return ResolvedModel(None, parse_model_id(text))

    def alias(self, name: str) -> AliasConfig | None:
        return self._aliases.get(name)

    def aliases(self) -> list[AliasConfig]:
        return sorted(self._aliases.values(), key=lambda alias: alias.name)

    def _unknown_alias(self, text: str, visible: Callable[[str], bool]) -> UnknownAliasError:
        names = sorted(name for name in self._aliases if visible(name))
        close = difflib.get_close_matches(text, names, n=_SUGGESTIONS)
        if close:
            hint = f"did you mean {' or '.join(map(repr, close))}?"
        elif names:
            hint = f"aliases available: {', '.join(names)}."
        else:
            hint = "no aliases are available."
        return UnknownAliasError(
            message=f"model {text!r} is not a configured alias; {hint} A model id is written"
            " owner/name, owner/name:VERSION or deployments/owner/name.",
            reason="UNKNOWN_ALIAS",
            metadata={"alias": text, "suggestions": ",".join(close)},
            violations=(FieldViolation("model", "not a configured alias or a model id"),),
        )


def _could_be_version(text: str) -> bool:
    # Length only: parse_model_id decides whether it is hex and says so if it is not.
    return len(text) == _BARE_VERSION_LENGTH


def check_task(what: str, actual: Task, wanted: Task) -> None:
    """Refuses a model (an alias, an id, or what its schema says it makes) for the wrong RPC."""
    if actual is wanted:
        return
    raise WrongTaskError(
        message=f"{what} is {_KIND_OF_MODEL[actual]}; call {_RPC_FOR_TASK[actual]} instead,"
        f" or name {_KIND_OF_MODEL[wanted]}",
        reason="WRONG_TASK",
        metadata={"modelTask": actual.value, "requestedTask": wanted.value},
        violations=(FieldViolation("model", f"is {_KIND_OF_MODEL[actual]}"),),
    )
