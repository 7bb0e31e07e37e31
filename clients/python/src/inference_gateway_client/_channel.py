"""The channel: keepalive the server permits, and the retry policy request_id makes safe."""

from __future__ import annotations

import json
from typing import Any

__all__ = ["RETRIED_METHODS", "SERVICE", "SERVICE_CONFIG", "channel_options"]

SERVICE = "inference.gateway.v1.InferenceGateway"
# The calls that create a prediction and take a request_id: retried only because the
# client always sends one, so a repeat attaches to the first attempt's prediction.
RETRIED_METHODS = ("GenerateText", "StreamText", "GenerateImage")

SERVICE_CONFIG: dict[str, Any] = {
    "methodConfig": [
        {
            "name": [{"service": SERVICE, "method": method} for method in RETRIED_METHODS],
            "retryPolicy": {
                "maxAttempts": 4,
                "initialBackoff": "0.5s",
                "maxBackoff": "10s",
                "backoffMultiplier": 2,
                # UNAVAILABLE: a replica or Replicate was briefly out of reach;
                # RESOURCE_EXHAUSTED: a budget or quota, whose grpc-retry-pushback-ms
                # trailer gRPC waits out.
                "retryableStatusCodes": ["UNAVAILABLE", "RESOURCE_EXHAUSTED"],
            },
        },
        {
            # ListModels changes nothing: always safe to retry.
            "name": [{"service": SERVICE, "method": "ListModels"}],
            "retryPolicy": {
                "maxAttempts": 3,
                "initialBackoff": "0.2s",
                "maxBackoff": "2s",
                "backoffMultiplier": 2,
                "retryableStatusCodes": ["UNAVAILABLE"],
            },
        },
    ]
}

# The gateway allows a client ping every 10 s when no data flows
# (grpc.http2.min_recv_ping_interval_without_data_ms); 30 s stays well inside, so a long
# generation that sends nothing for minutes keeps its connection through NATs and LBs.
_KEEPALIVE_MS = 30_000
_KEEPALIVE_TIMEOUT_MS = 10_000
# GenerateImage with include_data may answer up to the gateway's send limit (64 MiB).
_MAX_RECEIVE_BYTES = 64 << 20


def channel_options(*, retries: bool = True) -> list[tuple[str, Any]]:
    """grpc channel options for the gateway; `retries=False` turns gRPC's retries off."""
    return [
        ("grpc.keepalive_time_ms", _KEEPALIVE_MS),
        ("grpc.keepalive_timeout_ms", _KEEPALIVE_TIMEOUT_MS),
        ("grpc.keepalive_permit_without_calls", 1),
        ("grpc.http2.max_pings_without_data", 0),
        ("grpc.max_receive_message_length", _MAX_RECEIVE_BYTES),
        ("grpc.enable_retries", int(retries)),
        ("grpc.service_config", json.dumps(SERVICE_CONFIG)),
    ]
