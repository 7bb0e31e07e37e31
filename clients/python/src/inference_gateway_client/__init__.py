"""A typed asyncio client for the inference gateway.

One channel set up the way the gateway expects to be called: keepalive within what the
server permits, gRPC's own retries for UNAVAILABLE and RESOURCE_EXHAUSTED (made safe by a
`request_id` the client fills in when the caller left it empty), the bearer token on every
call, a deadline on every call, and failures raised as `GatewayError` subclasses that
carry the status's ErrorInfo, RetryInfo and BadRequest details.
"""

from inference_gateway_client._channel import SERVICE_CONFIG, channel_options
from inference_gateway_client._client import GatewayClient
from inference_gateway_client._errors import (
    Aborted,
    DeadlineExceeded,
    FailedPrecondition,
    FieldViolation,
    GatewayError,
    Internal,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    ResourceExhausted,
    Unauthenticated,
    Unavailable,
    error_from,
)

__all__ = [
    "SERVICE_CONFIG",
    "Aborted",
    "DeadlineExceeded",
    "FailedPrecondition",
    "FieldViolation",
    "GatewayClient",
    "GatewayError",
    "Internal",
    "InvalidArgument",
    "NotFound",
    "PermissionDenied",
    "ResourceExhausted",
    "Unauthenticated",
    "Unavailable",
    "channel_options",
    "error_from",
]
