"""Caller authentication: a bearer token per calling service names the caller.

The gateway spends the organisation's Replicate account, so when the configuration names
`callers:`, every call outside the open services (health, for probes; reflection, for
tools) must carry `authorization: Bearer <token>`. Authentication only says who is
calling; the caller then travels with the request into the core, which decides what it may
run (`inference_gateway.access`).

Tokens are held as sha256 digests, and a presented token is compared against every
caller's digest with `hmac.compare_digest`, without stopping at a match, so neither the
time taken nor the message tells a stranger whether a token is close to a real one.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable, Iterable, Sequence
from typing import TypeAlias

from inference_gateway.access import ANONYMOUS
from inference_gateway.config import CallerConfig, hash_token
from inference_gateway.errors import Unauthenticated

__all__ = ["OPEN_SERVICES", "CallerDirectory", "Identify", "Metadata", "anonymous"]

# Open without a token: probes cannot carry one, and reflection only describes the API.
OPEN_SERVICES = frozenset(
    {
        "grpc.health.v1.Health",
        "grpc.reflection.v1alpha.ServerReflection",
        "grpc.reflection.v1.ServerReflection",
    }
)
_SCHEME = "bearer"
_HOW = "send metadata `authorization: Bearer <token>` with the token issued to your service"

Metadata: TypeAlias = Sequence[tuple[str, str | bytes]]
# Who a call's metadata names: raises Unauthenticated when it names nobody acceptable.
Identify: TypeAlias = Callable[[Metadata | None], CallerConfig]


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


def anonymous(metadata: Metadata | None) -> CallerConfig:
    """Identify when authentication is off: every call is the anonymous caller."""
    return ANONYMOUS


class CallerDirectory:
    """The configured callers, by token."""

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
