"""Replicate's HTTP API, as the gateway uses it."""

from inference_gateway.replicate._budget import (
    ANSWER_MARGIN_SECONDS,
    AccountBudgets,
    Bucket,
    RateBudget,
    account_id,
)
from inference_gateway.replicate._client import (
    ClientSettings,
    FileResponse,
    ReplicateClient,
    StreamUnavailable,
    UpstreamObserver,
)
from inference_gateway.replicate._prediction import TERMINAL_STATUSES, Prediction, parse_timestamp
from inference_gateway.replicate._sse import ServerSentEvent, SSEDecoder, iter_events

__all__ = [
    "ANSWER_MARGIN_SECONDS",
    "TERMINAL_STATUSES",
    "AccountBudgets",
    "Bucket",
    "ClientSettings",
    "FileResponse",
    "Prediction",
    "RateBudget",
    "ReplicateClient",
    "SSEDecoder",
    "ServerSentEvent",
    "StreamUnavailable",
    "UpstreamObserver",
    "account_id",
    "iter_events",
    "parse_timestamp",
]
