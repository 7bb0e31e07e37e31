"""What a finished google.longrunning Operation of the gateway carries, unpacked."""

from __future__ import annotations

from typing import TypeVar

from google.longrunning import operations_pb2
from google.protobuf.message import Message

from inference_gateway_protos.inference.gateway.v1 import gateway_pb2 as pb

M = TypeVar("M", bound=Message)


def operation_metadata(operation: operations_pb2.Operation) -> pb.OperationMetadata:
    metadata = pb.OperationMetadata()
    assert operation.metadata.Unpack(metadata)
    return metadata


def _response(operation: operations_pb2.Operation, response: M) -> M:
    assert operation.WhichOneof("result") == "response", operation.error
    assert operation.response.Unpack(response)
    return response


def text_response(operation: operations_pb2.Operation) -> pb.GenerateTextResponse:
    return _response(operation, pb.GenerateTextResponse())


def image_response(operation: operations_pb2.Operation) -> pb.GenerateImageResponse:
    return _response(operation, pb.GenerateImageResponse())
