"""google.longrunning.Operations over the core's operations: protobuf in, protobuf out."""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

import grpc
from google.longrunning import operations_pb2
from google.protobuf import empty_pb2

from inference_gateway.config import CallerConfig
from inference_gateway.grpc_api.auth import Identify, Metadata
from inference_gateway.grpc_api.servicer import (
    Undecodable,
    add_to_server,
    decoded,
    duration_seconds,
    operation_message,
)
from inference_gateway.operations import Operations

__all__ = ["OPERATIONS_SERVICE", "OperationsServicer", "add_operations_to_server"]

if TYPE_CHECKING:  # grpc's generics exist only in its type stubs
    from inference_gateway.grpc_api._types import Context

_DESCRIPTOR = operations_pb2.DESCRIPTOR.services_by_name["Operations"]
OPERATIONS_SERVICE: str = _DESCRIPTOR.full_name


def add_operations_to_server(servicer: OperationsServicer, server: grpc.aio.Server) -> None:
    add_to_server(servicer, server, _DESCRIPTOR)


class OperationsServicer:
    """The caller comes from the call's metadata, as for the gateway's own service."""

    def __init__(self, operations: Operations, identify: Identify) -> None:
        self._operations = operations
        self._identify = identify

    def _caller(self, context: Context) -> CallerConfig:
        return self._identify(cast("Metadata | None", context.invocation_metadata()))

    async def GetOperation(
        self, message: operations_pb2.GetOperationRequest | Undecodable, context: Context
    ) -> operations_pb2.Operation:
        request = decoded(message)
        view = await self._operations.get(request.name, self._caller(context))
        return operation_message(view)

    async def WaitOperation(
        self, message: operations_pb2.WaitOperationRequest | Undecodable, context: Context
    ) -> operations_pb2.Operation:
        request = decoded(message)
        wait = duration_seconds(request.timeout, "timeout") if request.HasField("timeout") else None
        view = await self._operations.wait(
            request.name,
            self._caller(context),
            wait_seconds=wait,
            time_remaining=context.time_remaining(),
        )
        return operation_message(view)

    async def CancelOperation(
        self, message: operations_pb2.CancelOperationRequest | Undecodable, context: Context
    ) -> empty_pb2.Empty:
        request = decoded(message)
        await self._operations.cancel(request.name, self._caller(context))
        return empty_pb2.Empty()

    async def DeleteOperation(
        self, message: operations_pb2.DeleteOperationRequest | Undecodable, context: Context
    ) -> empty_pb2.Empty:
        request = decoded(message)
        await self._operations.delete(request.name, self._caller(context))
        return empty_pb2.Empty()

    async def ListOperations(
        self, message: operations_pb2.ListOperationsRequest | Undecodable, context: Context
    ) -> operations_pb2.ListOperationsResponse:
        request = decoded(message)
        page = await self._operations.list_operations(
            self._caller(context),
            filter_text=request.filter,
            page_size=request.page_size,
            page_token=request.page_token,
        )
        return operations_pb2.ListOperationsResponse(
            operations=[operation_message(view) for view in page.operations],
            next_page_token=page.next_page_token,
        )
