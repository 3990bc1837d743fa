"""A River estimator behind the small interface the stream processors need.

Prediction follows River's own rule (``Classifier.predict_one`` is the arg-max of
``predict_proba_one``, first class wins ties), so one ``predict_proba_one`` call serves both
the label and the probabilities and the served label equals what
``river.evaluate.progressive_val_score`` scores.

>>> from river import linear_model, preprocessing
>>> model = OnlineModel(preprocessing.StandardScaler() | linear_model.LogisticRegression())
>>> model.name, model.is_classifier
('StandardScaler | LogisticRegression', True)
>>> model.predict({"a": 1.0})
(False, {False: 0.5, True: 0.5})
>>> model.learn({"a": 1.0}, True, served=False, proba={False: 0.5, True: 0.5})
>>> model.version, model.scorer.names, model.scorer.values()
(1, ('accuracy',), [0.0])
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Any

from river import base, compose

from streamlearn.models.data_drift import DataDrift
from streamlearn.models.drift import ConceptDrift, DriftSignal
from streamlearn.models.scoring import ROLLING_WINDOW, Scorer, Scoring

__all__ = ["OnlineModel", "Prediction", "PredictorState", "RollingMean", "is_classifier"]

Prediction = tuple[Any, dict[Any, float] | None]
"""(label or value, class probabilities or None)."""

class RollingMean:
    """Mean of the last ``size`` values: the rolling accuracy (of hits) or MAE (of errors),
    the per-example score the drift policies compare.

    The same figure as ``utils.Rolling(metrics.Accuracy, size)`` at a tenth of its cost per
    update (it reverts a confusion matrix; this subtracts one number).

    >>> window = RollingMean(2)
    >>> for hit in (1.0, 0.0, 0.0):
    ...     window.update(hit)
    >>> window.get()
    0.0
    """

    def __init__(self, size: int) -> None:
        self.values: deque[float] = deque(maxlen=size)
        self.total = 0.0

    def update(self, value: float) -> None:
        values = self.values
        if len(values) == values.maxlen:
            self.total -= values[0]
        values.append(value)
        self.total += value

    def get(self) -> float:
        return self.total / len(self.values) if self.values else 0.0


def _final_step(estimator: base.Estimator) -> base.Estimator:
    if isinstance(estimator, compose.Pipeline):
        return _final_step(estimator._last_step)
    return estimator


def is_classifier(estimator: base.Estimator) -> bool:
    """True when ``estimator`` (or a pipeline's last step) is a River classifier."""
    return isinstance(_final_step(estimator), base.Classifier)


class OnlineModel:
    """Predicts, then learns (test-then-train), and keeps its prequential scores: the
    pipeline's metrics (``scorer``, ``models.scoring``) and the per-example score the drift
    policies compare over a rolling window (``rolling_score``: accuracy, or MAE)."""

    def __init__(self, estimator: base.Estimator, name: str | None = None,
                 adwin_delta: float | None = 0.002, scoring: Scoring | None = None) -> None:
        self.estimator = estimator
        self.name = name or str(estimator)
        self.is_classifier = is_classifier(estimator)
        self.scorer: Scorer = (scoring or Scoring.default(None, self.is_classifier)).new()
        self.rolling_score = RollingMean(ROLLING_WINDOW)
        self.version = 0
        """Examples learned so far; a prediction carries the version that served it."""
        self.concept = (ConceptDrift(self.is_classifier, adwin_delta)
                        if adwin_delta is not None else None)
        """Drift detectors on the error stream, in training order (``models.drift``); None:
        detection is off."""
        self.signals: list[DriftSignal] = []
        """Drift signals since the caller last took them."""
        self.data_drift: DataDrift | None = None
        """The data-drift state of the partition this model serves (set by its processor)."""
        self._bind()

    def _bind(self) -> None:
        estimator: Any = self.estimator
        self._predict: Callable[[dict[str, Any]], Any] = (
            estimator.predict_proba_one if self.is_classifier else estimator.predict_one
        )
        self._learn = estimator.learn_one

    # A snapshot pickles the model's state, not its bound methods.
    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        del state["_predict"], state["_learn"]
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        if "concept" not in state:  # a snapshot from before drift detection
            self.concept, self.signals, self.data_drift = ConceptDrift(self.is_classifier), [], None
        if "scorer" not in state:  # a snapshot from before chosen metrics: they start over
            self.__dict__.pop("score", None)
            self.__dict__.pop("metric_name", None)
            self.scorer = Scoring.default(None, self.is_classifier).new()
        self._bind()

    def manifest_scores(self) -> dict[str, Any]:
        """What a snapshot's manifest says of its scores (``models list`` shows them): the
        primary metric's name and each metric's ``[prequential, rolling]``."""
        return {"metric": self.scorer.primary, "metrics": self.scorer.summary()}

    def rescore(self, scoring: Scoring) -> bool:
        """Start the pipeline's metrics over when they are not the ones this model keeps
        (a pipeline that chose others since the snapshot); True if it did."""
        if self.scorer.names == scoring.names and self.scorer.positive == scoring.positive:
            return False
        self.scorer = scoring.new()
        return True

    def predict(self, x: dict[str, Any]) -> Prediction:
        if not self.is_classifier:
            return self._predict(x), None
        proba = self._predict(x)
        if not proba:  # untrained trees answer {}: no prediction, as in River
            return None, None
        return max(proba, key=proba.get), proba

    def learn(self, x: dict[str, Any], y: Any, served: Any,
              proba: dict[Any, float] | None = None) -> None:
        """Score the prediction that was served for ``x`` (``proba``: its probabilities),
        then learn ``(x, y)``."""
        if served is not None:
            self.scorer.update(y, served, proba)
            if self.is_classifier:
                hit = 1.0 if served == y else 0.0
                self.rolling_score.update(hit)
                error = 1.0 - hit
            else:
                error = abs(y - served)
                self.rolling_score.update(error)
            if self.concept is not None:
                signals = self.concept.update(error, self.version + 1)
                if signals:
                    self.signals.extend(signals)
        self._learn(x, y)
        self.version += 1


class PredictorState:
    """What a predicting partition checkpoints under global learning, where the model
    itself belongs to the learner: its data-drift state (positions are its offsets)."""

    def __init__(self) -> None:
        self.data_drift: DataDrift | None = None
        self.merge_time = float("-inf")
        """The partition's event time so far, as of the snapshot (``streams.merge``)."""
