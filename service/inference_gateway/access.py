"""What a caller may use: the one rule for running a model and for seeing an alias.

The caller arrives with each request (`TextRequest.caller`, `ImageRequest.caller`), named
by the transport that authenticated it; the core asks here before anything is sent to
Replicate, and ListModels shows a caller only the aliases this rule lets it run.
"""

from __future__ import annotations

from collections.abc import Iterable

from inference_gateway.config import CallerConfig
from inference_gateway.errors import PermissionDenied, Unauthenticated
from inference_gateway.model_ids import EndpointKind, ModelRef
from inference_gateway.registry import ResolvedModel

__all__ = ["ANONYMOUS", "check_may_warm", "check_permission", "may_use_alias"]

# Who calls when the configuration names no callers: authentication is off, so anyone
# may use everything, and request logs name the caller "anonymous".
ANONYMOUS = CallerConfig(
    name="anonymous",
    token_sha256="",
    token_source="authentication is off",
    aliases=frozenset(),
    all_aliases=True,
    models=(),
    all_models=True,
    source="",
    # With authentication off the gateway is open: warming included (see WarmModel).
    may_warm=True,
)


def may_use_alias(caller: CallerConfig, alias: str) -> bool:
    return caller.all_aliases or alias in caller.aliases


def check_permission(caller: CallerConfig | None, resolved: ResolvedModel) -> None:
    """Raises unless `caller` may run `resolved`; a request without a caller is refused.

    A named alias must be in the caller's aliases; a model id named directly must be in its
    models. `aliases: ["*"]` allows both, `models: ["*"]` any model id.
    """
    if caller is None:  # a transport that named nobody: fail closed
        raise Unauthenticated("no caller was authenticated for this request", reason="NO_CALLER")
    if resolved.alias is not None:
        name = resolved.alias.name
        if not may_use_alias(caller, name):
            mine = ", ".join(sorted(caller.aliases)) or "none"
            raise _refusal(caller, f"alias {name!r}", f"its aliases are: {mine}", {"alias": name})
        return
    if caller.all_models or _model_listed(resolved.ref, caller.models):
        return
    model = str(resolved.ref)
    raise _refusal(
        caller,
        f"model {model!r} by its id",
        "name one of its aliases, or ask the operators to add the model to"
        f" callers.{caller.name}.models",
        {"model": model},
    )


def check_may_warm(caller: CallerConfig | None, resolved: ResolvedModel) -> None:
    """Warming costs instance-hours: only callers granted `warm: true`, on what they may use."""
    check_permission(caller, resolved)
    assert caller is not None  # check_permission refuses a request without one
    if not caller.may_warm:
        raise _refusal(
            caller,
            "WarmModel",
            f"ask the operators to set callers.{caller.name}.warm: true",
            {"rpc": "WarmModel"},
        )


def _refusal(
    caller: CallerConfig, what: str, fix: str, metadata: dict[str, str]
) -> PermissionDenied:
    return PermissionDenied(
        f"caller {caller.name!r} may not use {what}; {fix}",
        reason="CALLER_NOT_PERMITTED",
        metadata={"caller": caller.name, **metadata},
    )


def _model_listed(ref: ModelRef, allowed: Iterable[ModelRef]) -> bool:
    """Whether `ref` is one of the listed model ids.

    A version matches by its version id alone, because that is all Replicate runs: the
    owner/name in front of it is decoration anyone could write. Official models and
    deployments match by owner/name and endpoint; listing `owner/name` does not allow
    pinning versions of it.
    """
    for listed in allowed:
        if ref.kind is not listed.kind:
            continue
        if ref.kind is EndpointKind.VERSION:
            if ref.version == listed.version:
                return True
        elif (ref.owner, ref.name) == (listed.owner, listed.name):
            return True
    return False
