"""Percentiles and ratios of samples, kept apart so they can be tested on their own."""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

__all__ = ["StatsError", "gaps", "percentile", "ratio"]


class StatsError(ValueError):
    """Samples that cannot give the statistic asked for."""


def percentile(samples: Sequence[float], q: float) -> float:
    """The q-th percentile, interpolating between closest ranks (numpy's default method).

    Interpolation keeps p99 of a few hundred samples from being just the maximum.
    """
    if not samples:
        raise StatsError("no samples: the measurement produced nothing to summarise")
    if not 0.0 <= q <= 100.0:
        raise StatsError(f"percentile must be between 0 and 100, got {q!r}")
    if any(not math.isfinite(value) for value in samples):
        raise StatsError("samples must be finite numbers")
    ordered = sorted(samples)
    position = q / 100.0 * (len(ordered) - 1)
    low = math.floor(position)
    high = math.ceil(position)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def ratio(measured: float, baseline: float) -> float | None:
    """measured / baseline, or None where none can be given (a zero or missing figure)."""
    if not (math.isfinite(measured) and math.isfinite(baseline)) or baseline == 0:
        return None
    return measured / baseline


def gaps(times: Sequence[float]) -> list[float]:
    """Differences between consecutive instants (the pauses between tokens)."""
    return [later - earlier for earlier, later in itertools.pairwise(times)]
