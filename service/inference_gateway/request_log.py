"""Logging setup and the one structured line written per request.

The edge (grpc_api/interceptors.py) alone fills a request's record, from the events the
lower layers report (call_events.py), and writes it when the call ends. Prompts are left
out unless asked for (`configure_logging(..., log_prompts=True)`); tokens never enter a
record. Every line carries trace_id and span_id while a span is current.
"""

from __future__ import annotations

import datetime
import json
import logging
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from inference_gateway import tracing

__all__ = [
    "LOG_FORMATS",
    "LOG_LEVELS",
    "LogSetupError",
    "RequestRecord",
    "configure_logging",
    "finish_record",
    "prompts_logged",
    "set_prompt_logging",
]

LOG_LEVELS = ("debug", "info", "warning", "error")
LOG_FORMATS = ("json", "text")

REQUEST_LOGGER = logging.getLogger("inference_gateway.requests")


class LogSetupError(ValueError):
    """A log level or format the gateway does not know."""


@dataclass
class _Options:
    # Process-wide, like the logging configuration it belongs to.
    log_prompts: bool = False


_OPTIONS = _Options()
# A field the caller can influence (the model as written, an error reason) is cut to this
# length, so one call cannot make a long line. The prompt is bounded by the prompt limit.
_MAX_FIELD_CHARS = 256


@dataclass
class RequestRecord:
    rpc: str
    # Who called: a configured caller's name, "anonymous" when authentication is off.
    caller: str | None = None
    started: float = field(default_factory=time.monotonic)
    model: str | None = None
    prediction_id: str | None = None
    prediction_status: str | None = None
    grpc_code: str = "OK"
    queue_seconds: float | None = None
    predict_seconds: float | None = None
    cold_boot: bool | None = None
    error_reason: str | None = None
    upstream_requests: int = 0
    # The estimated cost (a decimal string, or "unknown"), its currency, and whether the
    # response cache answered.
    cost: str | None = None
    currency: str | None = None
    cache_hit: bool | None = None
    prompt: str | None = None

    def note_failure(self, reason: str, metadata: Mapping[str, str]) -> None:
        """Keeps what an error says about the prediction, where no result said it first.

        A deadline, or a failure the stream itself reports, ends a call without a final
        prediction; the error's metadata is then the only place its id appears.
        """
        self.error_reason = reason
        self.prediction_id = self.prediction_id or metadata.get("predictionId")
        self.prediction_status = self.prediction_status or metadata.get("predictionStatus")

    def fields(self) -> dict[str, Any]:
        # Every field is a plain value, so the instance's own dict (in field order) serves:
        # `asdict` deep-copies recursively, a visible share of every call's CPU.
        data = {k: v for k, v in vars(self).items() if v is not None}
        del data["started"]
        for key, value in data.items():
            if type(value) is str and len(value) > _MAX_FIELD_CHARS and key != "prompt":
                data[key] = value[: _MAX_FIELD_CHARS - 1] + "…"
        data["total_seconds"] = round(time.monotonic() - self.started, 6)
        return data


def set_prompt_logging(enabled: bool) -> None:
    """Whether request lines carry the prompt sent to the model (they are private data)."""
    _OPTIONS.log_prompts = enabled


def prompts_logged() -> bool:
    return _OPTIONS.log_prompts


def finish_record(record: RequestRecord) -> None:
    """Writes the request's line.

    The record is made here, not by `Logger.info`, which walks the stack for the caller's
    file and line on every call: a line a request always writes from here has no use for
    them, and the walk was a quarter of the line's cost.
    """
    if REQUEST_LOGGER.isEnabledFor(logging.INFO):
        line = REQUEST_LOGGER.makeRecord(
            REQUEST_LOGGER.name,
            logging.INFO,
            __file__,
            0,
            "request",
            (),
            None,
            "finish_record",
            {"request": record.fields()},
        )
        REQUEST_LOGGER.handle(line)


def _timestamp(record: logging.LogRecord) -> str:
    """ISO 8601 in UTC with milliseconds and the offset: lines from replicas sort and join."""
    moment = datetime.datetime.fromtimestamp(record.created, datetime.UTC)
    return moment.isoformat(timespec="milliseconds")


# One encoder for every line: `json.dumps` with an argument builds a new one per call.
_JSON = json.JSONEncoder(default=str)


class _JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": _timestamp(record),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        line.update(tracing.log_ids())
        request = getattr(record, "request", None)
        if isinstance(request, dict):
            line.update(request)
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return _JSON.encode(line)


def _logfmt_value(value: object) -> str:
    """Quotes a value that would otherwise split the line or blur where it ends."""
    text = str(value)
    if text and all(c.isprintable() and not c.isspace() and c not in '"=\\' for c in text):
        return text
    return json.dumps(text)


class _TextFormatter(logging.Formatter):
    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        return _timestamp(record)

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        request = getattr(record, "request", None)
        if isinstance(request, dict):
            text += " " + " ".join(f"{k}={_logfmt_value(v)}" for k, v in request.items())
        for key, value in tracing.log_ids():
            text += f" {key}={value}"
        return text


def configure_logging(level: str, fmt: str, *, log_prompts: bool = False) -> None:
    """Sends every log line to stderr as JSON or text; raises LogSetupError on a bad name."""
    if level.lower() not in LOG_LEVELS:
        raise LogSetupError(f"unknown log level {level!r}: use one of {', '.join(LOG_LEVELS)}")
    if fmt.lower() not in LOG_FORMATS:
        raise LogSetupError(f"unknown log format {fmt!r}: use one of {', '.join(LOG_FORMATS)}")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        _JsonFormatter()
        if fmt.lower() == "json"
        else _TextFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    # Neither format shows a line's thread or process, and looking them up for every
    # record was a tenth of the request line's cost (logging's documented switches).
    logging.logThreads = logging.logProcesses = logging.logMultiprocessing = False
    root.setLevel(level.upper())
    set_prompt_logging(log_prompts)
    # httpx logs every request URL at INFO; the gateway's own lines say what matters.
    logging.getLogger("httpx").setLevel(logging.WARNING)
