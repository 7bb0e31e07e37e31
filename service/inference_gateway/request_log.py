"""Logging setup and the one structured line written per request.

A request's record lives in a context variable, so the core and the Replicate client
can add to it (model, prediction id, upstream request count) without being handed it.
Prompts are left out unless asked for; tokens never enter a record.
"""

from __future__ import annotations

import contextvars
import json
import logging
import sys
import time
from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = [
    "RequestRecord",
    "configure_logging",
    "current_record",
    "finish_record",
    "request_record",
]

_RECORD: contextvars.ContextVar[RequestRecord | None] = contextvars.ContextVar(
    "request_record", default=None
)
REQUEST_LOGGER = logging.getLogger("inference_gateway.requests")


@dataclass
class RequestRecord:
    rpc: str
    started: float = field(default_factory=time.monotonic)
    model: str | None = None
    prediction_id: str | None = None
    prediction_status: str | None = None
    grpc_code: str = "OK"
    queue_seconds: float | None = None
    predict_seconds: float | None = None
    cold_boot: bool | None = None
    upstream_requests: int = 0
    prompt: str | None = None

    def fields(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("started")
        data["total_seconds"] = round(time.monotonic() - self.started, 6)
        return {k: v for k, v in data.items() if v is not None}


def current_record() -> RequestRecord | None:
    return _RECORD.get()


def request_record(rpc: str) -> tuple[RequestRecord, contextvars.Token[RequestRecord | None]]:
    record = RequestRecord(rpc=rpc)
    return record, _RECORD.set(record)


def finish_record(token: contextvars.Token[RequestRecord | None]) -> None:
    record = _RECORD.get()
    _RECORD.reset(token)
    if record is not None:
        REQUEST_LOGGER.info("request", extra={"request": record.fields()})


class _JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        request = getattr(record, "request", None)
        if isinstance(request, dict):
            line.update(request)
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str)


class _TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        request = getattr(record, "request", None)
        if isinstance(request, dict):
            text += " " + " ".join(f"{k}={v}" for k, v in request.items())
        return text


def configure_logging(level: str, fmt: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        _JsonFormatter()
        if fmt == "json"
        else _TextFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # httpx logs every request URL at INFO; the gateway's own lines say what matters.
    logging.getLogger("httpx").setLevel(logging.WARNING)
