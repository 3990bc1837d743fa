"""What a :class:`~streamlearn.streams.processor.PartitionProcessor` is built with, besides
its pipeline, model and metrics: one frozen :class:`ProcessorOptions`.

Three modes follow from it: a partition that learns (a model, no ``serving``), one that only
predicts under global learning (``serving`` and its ``predictor_state``), and an earlier
stage that forwards re-keyed events (no model; its ``stage`` and ``features``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from streamlearn.features.online import PartitionFeatures
from streamlearn.features.stages import Stage
from streamlearn.models.drift import DriftOptions
from streamlearn.models.online import OnlineModel, PredictorState
from streamlearn.streams.serving import Served

__all__ = ["ProcessorOptions", "Serving"]


class Serving(Protocol):
    """Where a predictor takes its model under global learning: the newest snapshot read
    (``streams.serving.ModelFollower``); swapped between batches, never during one."""

    @property
    def model(self) -> OnlineModel: ...

    @property
    def current(self) -> Served: ...


@dataclass(frozen=True)
class ProcessorOptions:
    max_event_bytes: int
    """A larger event is a ``too_large`` dead letter."""
    clock: Callable[[], float] = time.time
    """Wall-clock seconds: when a prediction is produced."""
    drift: DriftOptions = field(default_factory=DriftOptions)
    stage: Stage | None = None
    """The stage the partition runs (default: the pipeline's first)."""
    features: PartitionFeatures | None = None
    """The partition's derived-feature state (None when the stage needs none)."""
    serving: Serving | None = None
    """Global learning: the model served; the partition predicts, the learner learns."""
    predictor_state: PredictorState | None = None
    """Global learning: what the partition checkpoints (its data-drift state)."""
