"""Concept drift on a model's error stream: River's detectors, positions in examples.

Where learning happens, each labelled example's error (0/1 for a classifier, the absolute
error for a regressor) goes to ADWIN, which signals a change in the error's mean, and to a
warning-level detector that speaks earlier (``drift.binary.DDM`` for a classifier,
``drift.PageHinkley`` for a regressor). A signal's position is the example's number in
training order (1 for the first example learned), so the same detector run offline on the
same sequence fires at the same positions.

>>> detector = ConceptDrift(is_classifier=True)
>>> signals = [s for i in range(1, 3001)
...            for s in detector.update(0.0 if i % 10 else 1.0, i) if i <= 1500]
>>> signals
[]
>>> fired = [s for i in range(3001, 4001) for s in detector.update(1.0, i)]
>>> [(s.detector, s.level) for s in fired][:2]
[('DDM', 'warning'), ('DDM', 'drift')]
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from river import drift

__all__ = ["ConceptDrift", "DriftOptions", "DriftSignal"]


@dataclass(frozen=True)
class DriftOptions:
    """The detectors' settings (``STREAMLEARN_DRIFT_*``)."""

    enabled: bool = True
    adwin_delta: float = 0.002
    reference_events: int = 1000
    psi_threshold: float = 0.25
    psi_every: int = 10_000
    """Events of a partition between two stability indexes."""


@dataclass(frozen=True)
class DriftSignal:
    detector: str
    level: str
    """``drift`` or ``warning``."""
    position: int
    """The example's number in training order."""
    statistic: float
    """What the detector estimates at that point: ADWIN's mean error, or the error."""


class ConceptDrift:
    """An error-stream drift detector pair; picklable with the model it watches."""

    def __init__(self, is_classifier: bool, adwin_delta: float = 0.002) -> None:
        self.adwin = drift.ADWIN(delta=adwin_delta)
        self.warning: Any = drift.binary.DDM() if is_classifier else drift.PageHinkley()
        self.warning_name = type(self.warning).__name__
        self.in_warning = False

    def update(self, error: float, position: int) -> Sequence[DriftSignal]:
        """Feed one example's error; the signals it raised (usually none: an empty tuple,
        which costs no allocation on the path every example takes)."""
        adwin, warning = self.adwin, self.warning
        adwin.update(error)
        warning.update(error)
        warned = bool(getattr(warning, "warning_detected", False))
        adwin_drift, warning_drift = adwin.drift_detected, warning.drift_detected
        newly_warned = warned and not self.in_warning
        self.in_warning = warned and not warning_drift
        if not (adwin_drift or newly_warned or warning_drift):
            return ()
        signals = []
        if adwin_drift:
            signals.append(DriftSignal("ADWIN", "drift", position, adwin.estimation))
        if newly_warned:
            signals.append(DriftSignal(self.warning_name, "warning", position, error))
        if warning_drift:
            signals.append(DriftSignal(self.warning_name, "drift", position, error))
        return signals

    @property
    def estimate(self) -> float:
        """ADWIN's current estimate of the mean error: ``ADWIN.estimation`` (total / width)
        with one read of the width instead of two, as it is read for every candidate on
        every example."""
        adwin = self.adwin
        width = adwin.width
        return adwin.total / width if width else 0.0
