"""Data drift at a predicting partition: ADWIN per numeric value, a stability index per field.

Two views of each field the model sees, without labels:

- **ADWIN on the value**, per event, for numeric fields: a change in the mean, at a
  position (the event's offset), which the same detector offline on the same sequence
  reproduces exactly.
- **Population stability index** (PSI) of the recent values against a reference: the
  first ``reference_size`` values (or a history given by ``bootstrap``), cut into
  ``bins`` quantile bins for a numeric field and into its ``top_k`` categories plus
  "other" for a categorical one. Values are binned per batch with numpy; the index is
  computed every so often (the caller says when) over the values since the last time.
  0.1 is a moderate shift, 0.25 a large one (the usual reading of PSI).

The prediction and the label are watched the same way, as fields ``prediction`` and
``label`` (kind ``prediction`` and ``label``).

>>> import random
>>> rng = random.Random(1)
>>> watch = DataDrift({"amount": "numeric"}, reference_size=500)
>>> for i in range(2000):
...     signals = watch.observe({"amount": rng.gauss(10 if i < 1500 else 14, 1)}, offset=i)
>>> watch.end_batch()
>>> round(watch.stability()["amount"], 1) > 0.25
True
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from river import drift

from streamlearn.models.drift import DriftSignal
from streamlearn.spec.schema import NUMERIC

__all__ = ["DataDrift", "FieldWatch", "psi"]

OTHER = "\x00other"
EPSILON = 1e-4  # an empty bin counts as this share, so the index stays finite


def psi(reference: np.ndarray, recent: np.ndarray) -> float:
    """Population stability index of two count vectors over the same bins.

    >>> psi(np.array([50, 50]), np.array([50, 50]))
    0.0
    >>> round(psi(np.array([50, 50]), np.array([90, 10])), 3)
    0.879
    """
    p = np.maximum(reference / max(reference.sum(), 1), EPSILON)
    q = np.maximum(recent / max(recent.sum(), 1), EPSILON)
    return float(np.sum((q - p) * np.log(q / p)))


@dataclass
class FieldWatch:
    """One field's reference, recent counts and (numeric) ADWIN."""

    name: str
    numeric: bool
    kind: str = "data"
    adwin: Any = None
    sample: list[Any] = field(default_factory=list)
    """Values until the reference is full; then the pending batch's values."""
    edges: np.ndarray | None = None
    categories: dict[Any, int] | None = None
    reference: np.ndarray | None = None
    recent: np.ndarray | None = None

    @property
    def ready(self) -> bool:
        return self.reference is not None


class DataDrift:
    """The data-drift state of one partition; picklable with its model snapshot."""

    def __init__(self, fields: dict[str, str], reference_size: int = 1000, bins: int = 10,
                 top_k: int = 10, adwin_delta: float = 0.002) -> None:
        self.reference_size = reference_size
        self.bins = bins
        self.top_k = top_k
        self.watches = {
            name: FieldWatch(name, kind == NUMERIC,
                             adwin=drift.ADWIN(delta=adwin_delta) if kind == NUMERIC else None)
            for name, kind in fields.items()
        }
        self._plan: list[tuple[str, Any, Any]] | None = None
        self.since_index = 0
        """Events observed since the last stability index (in the snapshot)."""

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update({"since_index": 0, **state})  # older snapshots lack it

    def index_due(self, every: int) -> bool:
        """Count an event; True (values binned) every ``every`` events: then :meth:`stability`
        covers exactly the events since the last index, however they were batched."""
        self.since_index += 1
        if self.since_index < every:
            return False
        self.since_index = 0
        self.end_batch()
        return True

    def add(self, name: str, numeric: bool, kind: str) -> None:
        """Watch another value (the prediction, the label) by its distribution."""
        if name not in self.watches:
            self.watches[name] = FieldWatch(name, numeric, kind)
            self._plan = None

    def observe(self, values: dict[str, Any], offset: int) -> list[tuple[str, DriftSignal]]:
        """One event's values (absent or unwatched ones skipped); the ADWIN signals raised."""
        plan = self._plan or self._compile()
        signals = []
        get = values.get
        for name, append, adwin in plan:
            value = get(name)
            if value is None:
                continue
            append(value)
            if adwin is not None:
                # ADWIN.update inlined: its Python wrapper costs more than the Cython core,
                # once per numeric field per event. Same steps, same order (a new window
                # after a detection); tests check the positions against ADWIN.update's.
                if adwin._drift_detected:
                    adwin._reset()
                if adwin._helper.update(value):
                    adwin._drift_detected = True
                    signals.append((name, DriftSignal("ADWIN", "drift", offset,
                                                      float(adwin.estimation))))
        return signals

    def _compile(self) -> list[tuple[str, Any, Any]]:
        # Bound methods, once: this runs per event for every field.
        self._plan = [(w.name, w.sample.append, w.adwin)
                      for w in self.watches.values() if w.kind == "data"]
        return self._plan

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_plan"] = None  # bound methods do not pickle; rebuilt on first use
        return state

    def observe_value(self, name: str, value: Any) -> None:
        """A value watched by its distribution only (the prediction, the label)."""
        watch = self.watches.get(name)
        if watch is not None and value is not None:
            watch.sample.append(value)

    def end_batch(self) -> None:
        """Bin the batch's values (numpy), or build the reference once enough are seen."""
        for watch in self.watches.values():
            if not watch.sample:
                continue
            if watch.reference is None:
                if len(watch.sample) < self.reference_size:
                    continue
                self._set_reference(watch, watch.sample[: self.reference_size])
                del watch.sample[: self.reference_size]
            self._count(watch, watch.sample)
            watch.sample.clear()  # the same list: the compiled plan appends to it

    def set_reference(self, name: str, values: list[Any]) -> None:
        """Use these values (a history) as the field's reference."""
        watch = self.watches.get(name)
        if watch is not None and values:
            self._set_reference(watch, values)

    def _set_reference(self, watch: FieldWatch, values: list[Any]) -> None:
        if watch.numeric:
            data = np.asarray(values, dtype=float)
            quantiles = np.quantile(data, np.linspace(0, 1, self.bins + 1)[1:-1])
            watch.edges = np.unique(quantiles)
        else:
            top = Counter(values).most_common(self.top_k)
            watch.categories = {value: i for i, (value, _) in enumerate(top)}
        watch.reference = self._bin(watch, values)
        watch.recent = np.zeros_like(watch.reference)

    def _bin(self, watch: FieldWatch, values: list[Any]) -> np.ndarray:
        if watch.numeric:
            assert watch.edges is not None
            index = np.searchsorted(watch.edges, np.asarray(values, dtype=float), side="right")
            return np.bincount(index, minlength=len(watch.edges) + 1)
        assert watch.categories is not None
        other = len(watch.categories)
        codes = [watch.categories.get(v, other) for v in values]
        return np.bincount(np.asarray(codes, dtype=int), minlength=other + 1)

    def _count(self, watch: FieldWatch, values: list[Any]) -> None:
        assert watch.recent is not None
        watch.recent += self._bin(watch, values)

    def stability(self, min_values: int = 200) -> dict[str, float]:
        """PSI of each ready field's values since the last index against its reference.

        A field with fewer than ``min_values`` new values keeps gathering them: an index over
        a handful of values is noise (it would raise drift on a stationary stream).
        """
        out = {}
        for name, watch in self.watches.items():
            if watch.reference is None or watch.recent is None:
                continue
            if watch.recent.sum() < min(min_values, self.reference_size):
                continue
            value = psi(watch.reference, watch.recent)
            out[name] = 0.0 if math.isclose(value, 0.0, abs_tol=1e-12) else value
            watch.recent = np.zeros_like(watch.recent)
        return out

    def estimates(self) -> dict[str, float]:
        """ADWIN's current mean of each numeric field."""
        return {n: float(w.adwin.estimation) for n, w in self.watches.items() if w.adwin}
