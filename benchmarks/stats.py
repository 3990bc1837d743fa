"""Small statistics over run results: percentiles, medians, rates.

>>> percentile([1, 2, 3, 4], 50)
2.5
>>> rate_from_timestamps([1000, 1500, 2000])
2.0
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
    """Events/s from first to last record timestamp: (n - 1) / (last - first)."""
    stamps = list(timestamps_ms)
    if len(stamps) < 2:
        return None
    span = (max(stamps) - min(stamps)) / 1000
    return (len(stamps) - 1) / span if span > 0 else None


def median(values: Iterable[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    if numerator is None or not denominator:
        return None
    return numerator / denominator
