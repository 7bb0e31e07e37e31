"""Caller authentication: a bearer token per calling service, and what each may run.

The gateway spends the organisation's Replicate account, so when the configuration names
`callers:`, every call outside the open services (health, for probes; reflection, for
tools) must carry `authorization: Bearer <token>`. The interceptor only establishes who is
calling; whether that caller may use a model is decided after the core resolves the
model's name, by `CallerDirectory.authorize`, the core's permission hook.

Tokens are held as sha256 digests, and a presented token is compared against every
caller's digest with `hmac.compare_digest`, without stopping at a match, so neither the
time taken nor the message tells a stranger whether a token is close to a real one.
"""

from __future__ import annotations

import contextvars
import hmac
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any, TypeAlias, cast

import grpc

from inference_gateway.config import CallerConfig, hash_token
from inference_gateway.errors import PermissionDenied, Unauthenticated
from inference_gateway.model_ids import EndpointKind, ModelRef
from inference_gateway.registry import ResolvedModel

__all__ = [
    "OPEN_SERVICES",
    "CallerAuthInterceptor",
    "CallerDirectory",
    "check_permission",
]

# Open without a token: probes cannot carry one, and reflection only describes the API.
OPEN_SERVICES = frozenset(
    {
        "grpc.health.v1.Health",
        "grpc.reflection.v1alpha.ServerReflection",
        "grpc.reflection.v1.ServerReflection",
    }
)
_SCHEME = "bearer"
_CALLER: contextvars.ContextVar[CallerConfig | None] = contextvars.ContextVar(
    "caller", default=None
)
_HOW = "send metadata `authorization: Bearer <token>` with the token issued to your service"

if TYPE_CHECKING:  # grpc's generics exist only in its type stubs
    from inference_gateway.grpc_api._types import Context, Continuation, Handler, UnaryBehaviour

    StreamBehaviour: TypeAlias = Callable[[Any, Context], AsyncIterator[Any]]
    Metadata: TypeAlias = Sequence[tuple[str, str | bytes]]


def _bearer_token(metadata: Metadata | None) -> str:
    values = [value for key, value in metadata or () if key.lower() == "authorization"]
    if not values:
        raise Unauthenticated(
            f"this gateway requires a caller token: {_HOW}", reason="CALLER_TOKEN_MISSING"
        )
    scheme, _, token = str(values[0]).strip().partition(" ")
    if len(values) > 1 or scheme.lower() != _SCHEME or not token.strip():
        raise Unauthenticated(
            f"the authorization metadata is not one bearer token: {_HOW}",
            reason="CALLER_TOKEN_MALFORMED",
        )
    return token.strip()


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


class CallerDirectory:
    """The configured callers: who a token belongs to, and what each may run."""

    def __init__(self, callers: Iterable[CallerConfig]) -> None:
        self._callers = tuple(callers)

    def authenticate(self, metadata: Metadata | None) -> CallerConfig:
        """The caller whose token the metadata carries; Unauthenticated otherwise."""
        digest = hash_token(_bearer_token(metadata))
        found = None
        for caller in self._callers:
            # Every digest is compared, so the time taken does not depend on which matched.
            if hmac.compare_digest(digest, caller.token_sha256):
                found = caller
        if found is None:
            raise Unauthenticated(
                f"the caller token is not one this gateway accepts: {_HOW}",
                reason="CALLER_TOKEN_UNKNOWN",
            )
        return found

    def authorize(self, resolved: ResolvedModel) -> None:
        """The core's permission hook: refuses a model the current caller may not use."""
        caller = _CALLER.get()
        if caller is None:  # a call that bypassed the interceptor: fail closed
            raise Unauthenticated(f"no caller was authenticated: {_HOW}", reason="NO_CALLER")
        check_permission(caller, resolved)


def check_permission(caller: CallerConfig, resolved: ResolvedModel) -> None:
    """Raises PermissionDenied unless `caller` may run `resolved`.

    A named alias must be in the caller's aliases; a model id named directly must be in its
    models. `aliases: ["*"]` allows both, `models: ["*"]` any model id.
    """
    if caller.all_aliases:
        return
    if resolved.alias is not None:
        name = resolved.alias.name
        if name not in caller.aliases:
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


class CallerAuthInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[type-arg]
    """Authenticates every call outside OPEN_SERVICES and makes its caller current.

    A refusal is raised inside the handler rather than returned as a status here, so the
    interceptor outside this one reports and counts it like any other error.
    """

    def __init__(self, directory: CallerDirectory) -> None:
        self._directory = directory

    async def intercept_service(
        self, continuation: Continuation, handler_call_details: grpc.HandlerCallDetails
    ) -> Handler:
        handler = await continuation(handler_call_details)
        service = handler_call_details.method.lstrip("/").partition("/")[0]
        if handler is None or service in OPEN_SERVICES:
            return handler
        metadata = cast("Metadata | None", handler_call_details.invocation_metadata)
        outcome: CallerConfig | Unauthenticated
        try:
            outcome = self._directory.authenticate(metadata)
        except Unauthenticated as refused:
            outcome = refused
        return _guarded(handler, outcome)


def _enter(outcome: CallerConfig | Unauthenticated) -> contextvars.Token[CallerConfig | None]:
    if isinstance(outcome, Unauthenticated):
        raise outcome
    return _CALLER.set(outcome)


def _guarded(handler: Handler, outcome: CallerConfig | Unauthenticated) -> Handler:
    """`handler` with its behaviour run as the authenticated caller, or refused."""

    def unary(inner: UnaryBehaviour) -> UnaryBehaviour:
        async def behaviour(request: Any, context: Context) -> Any:
            token = _enter(outcome)
            try:
                return await inner(request, context)
            finally:
                _CALLER.reset(token)

        return behaviour

    def streaming(inner: StreamBehaviour) -> StreamBehaviour:
        async def behaviour(request: Any, context: Context) -> AsyncIterator[Any]:
            token = _enter(outcome)
            try:
                async for response in inner(request, context):
                    yield response
            finally:
                _CALLER.reset(token)

        return behaviour

    codec = {
        "request_deserializer": handler.request_deserializer,
        "response_serializer": handler.response_serializer,
    }
    if handler.unary_unary is not None:
        behaviour = unary(cast("UnaryBehaviour", handler.unary_unary))
        return grpc.unary_unary_rpc_method_handler(behaviour, **codec)
    if handler.unary_stream is not None:
        stream = streaming(cast("StreamBehaviour", handler.unary_stream))
        return grpc.unary_stream_rpc_method_handler(stream, **codec)
    if handler.stream_unary is not None:
        behaviour = unary(cast("UnaryBehaviour", handler.stream_unary))
        return grpc.stream_unary_rpc_method_handler(behaviour, **codec)
    if handler.stream_stream is not None:
        stream = streaming(cast("StreamBehaviour", handler.stream_stream))
        return grpc.stream_stream_rpc_method_handler(stream, **codec)
    raise TypeError("a gRPC method handler with no behaviour")
