"""Parsers for the two request headers that change how a create behaves.

Both follow Replicate's OpenAPI document (`components.parameters`). `Prefer` must
match the spec's pattern `^wait(=([1-9]|[1-9][0-9]|60))?$`; a value that does not is
ignored, as RFC 7240 §2 asks of servers that do not understand a preference, and the
create then runs asynchronously. `Cancel-After` takes `30s`, `5m`, `1h30m45s` or bare
seconds, at least 5 s; a bad value is the caller's mistake and gets a 400.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

__all__ = [
    "MAX_WAIT_SECONDS",
    "MIN_CANCEL_AFTER_SECONDS",
    "HeaderError",
    "WaitPreference",
    "parse_cancel_after",
    "parse_prefer",
]

MAX_WAIT_SECONDS = 60
MIN_CANCEL_AFTER_SECONDS = 5.0

# The spec's own pattern; it admits 61-99 too, which we clamp to the documented 60.
_PREFER = re.compile(r"wait(?:=([1-9]|[1-9][0-9]|60))?")
_NUMBER = r"\d+(?:\.\d+)?"
_BARE_SECONDS = re.compile(_NUMBER, re.ASCII)
_UNIT_DURATION = re.compile(rf"(?:{_NUMBER}[hms])+", re.ASCII)
_UNIT_PART = re.compile(rf"({_NUMBER})([hms])", re.ASCII)
_UNIT_SECONDS = {"h": 3600.0, "m": 60.0, "s": 1.0}


class HeaderError(ValueError):
    """A request header has a value the simulator cannot honour."""


@dataclass(frozen=True, slots=True)
class WaitPreference:
    """A honoured `Prefer: wait[=n]`: how long to hold the create, and what to echo."""

    seconds: int
    applied: str


def parse_prefer(value: str | None) -> WaitPreference | None:
    """Return the wait to apply, or None for an absent or unrecognised `Prefer`."""
    if value is None:
        return None
    match = _PREFER.fullmatch(value.strip())
    if match is None:
        return None
    if match.group(1) is None:
        return WaitPreference(seconds=MAX_WAIT_SECONDS, applied="wait")
    seconds = min(int(match.group(1)), MAX_WAIT_SECONDS)
    return WaitPreference(seconds=seconds, applied=f"wait={seconds}")


def parse_cancel_after(value: str) -> float:
    """Return the `Cancel-After` duration in seconds, or raise HeaderError saying what to fix."""
    text = value.strip()
    if _BARE_SECONDS.fullmatch(text):
        seconds = float(text)
    elif _UNIT_DURATION.fullmatch(text):
        seconds = sum(
            float(amount) * _UNIT_SECONDS[unit] for amount, unit in _UNIT_PART.findall(text)
        )
    else:
        raise HeaderError(
            f"Cancel-After {value!r} is not a duration: give seconds (e.g. '30') or "
            "h/m/s units (e.g. '30s', '5m', '1h30m45s')"
        )
    if not math.isfinite(seconds):
        raise HeaderError(f"Cancel-After {value!r} is too large")
    if seconds < MIN_CANCEL_AFTER_SECONDS:
        raise HeaderError(
            f"Cancel-After {value!r} is {seconds:g} s; the minimum is "
            f"{MIN_CANCEL_AFTER_SECONDS:g} s"
        )
    return seconds
