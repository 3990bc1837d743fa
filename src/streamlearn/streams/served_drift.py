"""Drift of a partition's served predictions: its data-drift watch, and what a signal becomes.

A detector's signal (concept: the model's error; data: a feature's values; prediction;
label) becomes a metric, a log line and a record on ``<name>.drift``; ADWIN's estimates are
exported once per batch; every ``STREAMLEARN_DRIFT_PSI_EVERY`` events each field's
stability index is, and above the threshold it is a drift event too (once, until it falls
back). The per-event observations stay in the processor's loop, bound there once.
"""

from __future__ import annotations

import logging
from typing import Any

import orjson

from streamlearn.models.data_drift import DataDrift
from streamlearn.models.drift import DriftOptions, DriftSignal
from streamlearn.models.online import OnlineModel, PredictorState
from streamlearn.monitoring.views import DriftMetrics
from streamlearn.spec.pipeline import Pipeline
from streamlearn.spec.schema import NUMERIC, Schema
from streamlearn.streams.messages import Emit

__all__ = ["ServedDrift", "data_drift_watch"]

# The processor's logger, as before drift events had a module: operators filter on it.
log = logging.getLogger("streamlearn.streams.processor")


def data_drift_watch(spec: Pipeline, schema: Schema, options: DriftOptions, model: OnlineModel,
                     holder: OnlineModel | PredictorState) -> DataDrift:
    """The partition's data-drift state: it travels in the partition's snapshot (in
    ``holder``: its model, or under global learning its :class:`PredictorState`)."""
    if holder.data_drift is None:
        watch = DataDrift(dict(spec.features or {}), options.reference_events,
                          adwin_delta=options.adwin_delta)
        watch.add("prediction", not model.is_classifier, "prediction")
        if schema.label is not None:
            watch.add("label", schema.label[1] == NUMERIC, "label")
        holder.data_drift = watch
    return holder.data_drift


class ServedDrift:
    """The drift events and gauges of one partition; :meth:`start_batch` says where they go.

    ``watch``: the partition's data-drift state (None when off, or nothing is served);
    ``learns``: the partition's model learns (not under global learning), so its concept
    detector is the partition's to export.
    """

    def __init__(self, spec: Pipeline, options: DriftOptions, metrics: DriftMetrics,
                 watch: DataDrift | None, learns: bool) -> None:
        self.topic, self.options, self.metrics = spec.drift_topic, options, metrics
        self.watch, self.learns = watch, learns
        self._psi_high: set[str] = set()
        self._emit: Emit | None = None
        self._model: OnlineModel | None = None
        self._partition = 0

    def start_batch(self, emit: Emit, model: OnlineModel | None, partition: int) -> None:
        """Where this batch's events go, the model it serves, the input partition."""
        self._emit, self._model, self._partition = emit, model, partition

    def event(self, kind: str, feature: str, signal: DriftSignal, event_time: Any,
              offset: int | None) -> None:
        """A drift signal as a metric, a log line and a record on ``<name>.drift``."""
        model, emit = self._model, self._emit
        assert model is not None and emit is not None
        self.metrics.count(kind, signal.detector, feature, signal.level)
        record: dict[str, Any] = {
            "model": model.name, "kind": kind, "detector": signal.detector,
            "level": signal.level, "statistic": signal.statistic,
            "at_example": signal.position if kind == "concept" else model.version,
            "at_time": event_time, "partition": self._partition, "action": "alert",
        }
        if kind != "concept":
            record["feature"] = feature
            record["at_offset"] = offset
        log.warning("%s %s (%s%s) at %s %s: %.4g", kind, signal.level, signal.detector,
                    f" on {feature}" if feature else "", "example" if kind == "concept" else
                    "offset", record["at_example"] if kind == "concept" else offset,
                    signal.statistic)
        emit(self.topic, orjson.dumps(record), model.name.encode())

    def end_batch(self, model: OnlineModel) -> None:
        """ADWIN's estimates, once per batch; the batch's values binned (numpy)."""
        p = self._partition
        if self.learns and model.version and model.concept is not None:
            self.metrics.set_estimate("concept", "ADWIN", "", p, model.concept.estimate)
        if self.watch is not None:
            self.watch.end_batch()
            for feature, value in self.watch.estimates().items():
                self.metrics.set_estimate("data", "ADWIN", feature, p, value)

    def stability(self, event_time: Any, position: int | None) -> None:
        """Each field's stability index since the last one; above the threshold, an event.

        Every ``STREAMLEARN_DRIFT_PSI_EVERY`` events of the partition, right after the event
        that completes them: a function of the log, like every other state change.
        """
        assert self.watch is not None
        threshold = self.options.psi_threshold
        for feature, value in self.watch.stability().items():
            kind = self.watch.watches[feature].kind
            self.metrics.set_stability(kind, feature, self._partition, value)
            if value > threshold and feature not in self._psi_high:
                signal = DriftSignal("PSI", "drift", self._model.version if self._model else 0,
                                     value)
                self.event(kind, feature, signal, event_time, position)
                self._psi_high.add(feature)
            elif value <= threshold:
                self._psi_high.discard(feature)
