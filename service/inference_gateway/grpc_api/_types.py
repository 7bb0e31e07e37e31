"""Aliases for grpc's generics, which exist only in its stubs: import under TYPE_CHECKING."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeAlias

import grpc

Handler: TypeAlias = grpc.RpcMethodHandler[Any, Any]
Context: TypeAlias = grpc.aio.ServicerContext[Any, Any]
Continuation: TypeAlias = Callable[[grpc.HandlerCallDetails], Awaitable[Handler]]
UnaryBehaviour: TypeAlias = Callable[[Any, Context], Awaitable[Any]]
