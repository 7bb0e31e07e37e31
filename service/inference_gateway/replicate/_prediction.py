"""A typed view of Replicate's prediction object, read once at the edge."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from inference_gateway.errors import bad_response

__all__ = ["TERMINAL_STATUSES", "Prediction", "parse_timestamp"]

TERMINAL_STATUSES = frozenset({"succeeded", "failed", "canceled", "aborted"})
_KNOWN_STATUSES = TERMINAL_STATUSES | {"starting", "processing"}
# An id goes into paths sent with the token (/v1/predictions/{id}, .../cancel). Replicate's
# are lowercase base32; nothing that could step out of that path (/, ., ?, #, %) passes.
_PLAIN_ID = re.compile(r"[A-Za-z0-9_-]{1,128}")


def parse_timestamp(value: object) -> datetime | None:
    """RFC 3339 with `Z` and any number of fraction digits, as Replicate writes them.

    Always zone-aware (a missing zone is read as UTC), so any two can be subtracted.
    """
    if not isinstance(value, str) or not value:
        return None
    text = value.replace("Z", "+00:00")
    head, dot, rest = text.partition(".")
    if dot:
        zone = rest.lstrip("0123456789")
        digits = rest[: len(rest) - len(zone)]
        text = f"{head}.{digits[:6].ljust(6, '0')}{zone}"
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


@dataclass(frozen=True, slots=True)
class Prediction:
    id: str
    status: str
    raw: Mapping[str, Any]

    @classmethod
    def parse(cls, data: object, *, endpoint: str) -> Prediction:
        if not isinstance(data, Mapping):
            raise bad_response(endpoint=endpoint, detail="the body is not a JSON object")
        pid, status = data.get("id"), data.get("status")
        if not isinstance(pid, str) or not pid:
            raise bad_response(endpoint=endpoint, detail="the prediction has no id")
        if _PLAIN_ID.fullmatch(pid) is None:
            raise bad_response(endpoint=endpoint, detail="the prediction id is not a plain token")
        if status not in _KNOWN_STATUSES:
            raise bad_response(endpoint=endpoint, detail=f"unknown prediction status {status!r}")
        return cls(id=pid, status=str(status), raw=data)

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL_STATUSES

    @property
    def output(self) -> Any:
        return self.raw.get("output")

    @property
    def error(self) -> object:
        return self.raw.get("error")

    @property
    def logs(self) -> object:
        return self.raw.get("logs")

    def _url(self, name: str) -> str | None:
        urls = self.raw.get("urls")
        value = urls.get(name) if isinstance(urls, Mapping) else None
        return value if isinstance(value, str) and value else None

    @property
    def stream_url(self) -> str | None:
        return self._url("stream")

    @property
    def model(self) -> str:
        value = self.raw.get("model")
        return value if isinstance(value, str) else ""

    @property
    def version(self) -> str:
        value = self.raw.get("version")
        return value if isinstance(value, str) else ""

    @property
    def created_at(self) -> datetime | None:
        return parse_timestamp(self.raw.get("created_at"))

    @property
    def started_at(self) -> datetime | None:
        return parse_timestamp(self.raw.get("started_at"))

    def metric(self, name: str) -> float | None:
        metrics = self.raw.get("metrics")
        return _number(metrics.get(name)) if isinstance(metrics, Mapping) else None

    @property
    def queue_seconds(self) -> float | None:
        """From creation to start: queueing plus, when long, a cold boot."""
        created, started = self.created_at, self.started_at
        if created is None or started is None:
            return None
        return max(0.0, (started - created).total_seconds())
