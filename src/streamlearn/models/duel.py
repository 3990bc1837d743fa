"""What a drift policy decides with, and what it records: the paired comparison of two
candidates on the same examples (:class:`Duel`), each example's loss (:func:`scored_value`),
and the :class:`Action` a policy took. Shared by :mod:`.candidates`, which runs the
candidates, and :mod:`.policies`, which decides what to do with them."""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from typing import Any

from streamlearn.errors import StreamlearnError
from streamlearn.models.online import OnlineModel

__all__ = ["Action", "CandidatesError", "Duel", "scored_value"]


class CandidatesError(StreamlearnError):
    """A candidate set or drift policy that cannot work: no candidates, an unknown
    champion, a missing factory, a bad policy setting."""


@dataclass(frozen=True)
class Action:
    """What a drift policy did, for ``<name>.drift`` and the registry.

    ``kind`` is ``alert`` (reported only), ``reset`` (a fresh model replaced a drifting
    one), ``challenge`` (a challenger started learning in the background), ``promote`` (it
    replaced its incumbent), ``retire`` (it was dropped) or ``switch`` (another candidate
    became the champion). ``source`` and ``target`` are instance ids (``tree#1``).
    """

    kind: str
    at_example: int
    """The number of the labelled example it happened at (1 for the first)."""
    source: str | None
    target: str | None
    reason: str

    def as_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "at_example": self.at_example, "from": self.source,
                "to": self.target, "reason": self.reason}


def scored_value(model: OnlineModel, prediction: Any, y: Any) -> float | None:
    """What ``model``'s rolling window gets for ``prediction`` of ``y``: a hit (1 or 0) or
    the absolute error; None when there was no prediction to score."""
    if prediction is None:
        return None
    if model.is_classifier:
        return 1.0 if prediction == y else 0.0
    return float(abs(y - prediction))


class Duel:
    """Two models compared example by example over the last ``size`` examples both scored.

    ``lead`` is how far the first leads the second: accuracy points, or for a regressor
    the relative cut in MAE; ``t`` is the paired t statistic of the per-example
    differences, so a lead that noise could make is told from a real one (for a classifier
    this is close to McNemar's test on the examples the two disagree on).

    >>> duel = Duel(100, is_classifier=True)
    >>> for i in range(100):
    ...     duel.update(1.0, 0.0 if i % 5 == 0 else 1.0)
    >>> duel.lead, round(duel.t, 2), duel.count
    (0.2, 4.97, 100)
    """

    def __init__(self, size: int, is_classifier: bool) -> None:
        self.is_classifier = is_classifier
        self.diffs: deque[tuple[float, float]] = deque(maxlen=size)
        """(first's gain over the second, second's value) per example."""
        self.total = self.total_sq = self.base = 0.0

    def update(self, first: float | None, second: float | None) -> None:
        if first is None or second is None:
            return
        diff = first - second if self.is_classifier else second - first
        diffs = self.diffs
        if len(diffs) == diffs.maxlen:
            old, old_base = diffs[0]
            self.total -= old
            self.total_sq -= old * old
            self.base -= old_base
        diffs.append((diff, second))
        self.total += diff
        self.total_sq += diff * diff
        self.base += second

    @property
    def count(self) -> int:
        return len(self.diffs)

    @property
    def lead(self) -> float:
        if not self.diffs:
            return 0.0
        if self.is_classifier:
            return self.total / len(self.diffs)
        return self.total / self.base if self.base > 0 else 0.0

    @property
    def t(self) -> float:
        k = len(self.diffs)
        if k < 2:
            return 0.0
        mean = self.total / k
        variance = max(self.total_sq - self.total * mean, 0.0) / (k - 1)
        if variance <= 1e-12:
            return math.copysign(math.inf, mean) if mean else 0.0
        return mean / math.sqrt(variance / k)
