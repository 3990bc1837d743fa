"""Small statistics over run results: percentiles, medians, rates.

>>> percentile([1, 2, 3, 4], 50)
2.5
>>> rate_from_timestamps([1000, 1500, 2000])
2.0
>>> rate_from_timestamps([1000] * 500 + [1500] * 500)  # two batches of 500, 0.5 s apart
1000.0
>>> median([3.0, None, 1.0, 2.0])
2.0
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Sequence

__all__ = ["median", "percentile", "rate_from_timestamps", "ratio"]


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile with linear interpolation between closest ranks."""
    ordered = sorted(values)
    if not ordered:
        raise ValueError("percentile of no values")
    pos = (len(ordered) - 1) * q / 100
    low = int(pos)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


def rate_from_timestamps(timestamps_ms: Iterable[int]) -> float | None:
    """Events/s from first to last record timestamp: the records stamped after the first
    timestamp, over the span between the two.

    Records sharing the first timestamp were done before the span began: for a contender
    that produces a batch at a time that is its whole first batch, and counting it (as
    ``(n - 1) / span`` does) would credit bigger batches with more free work.
    """
    stamps = list(timestamps_ms)
    if len(stamps) < 2:
        return None
    first = min(stamps)
    span = (max(stamps) - first) / 1000
    return sum(1 for s in stamps if s > first) / span if span > 0 else None


def median(values: Iterable[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    if numerator is None or not denominator:
        return None
    return numerator / denominator
