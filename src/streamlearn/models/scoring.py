"""The metrics a pipeline chooses: each kept prequentially (test-then-train, over every
example scored) and over a rolling window of the last ``window`` examples.

The first metric is the pipeline's primary one (what ``top``, ``models list``, the report
and the alert rule show). Defaults by the label's type: a boolean label gets ROC AUC and
accuracy, a categorical one macro F1 and accuracy, a numeric one MAE and RMSE.

Each metric gets what River's ``progressive_val_score`` gives it: the class probabilities
when it does not require labels (ROC AUC, log loss), else the predicted label; an example
without a prediction (an untrained tree answers ``{}``) is not scored. River's binary
metrics read the probability of ``True`` and compare labels with ``True``: with another
positive class (``positive="fraud"``) the label and the probabilities are mapped to
booleans first, ``y == positive`` and ``{True: p(positive), False: 1 - p(positive)}``.

ROC AUC is River's ``ROCAUC`` computed from a histogram of the probabilities over its
thresholds instead of a confusion matrix per threshold: the same counts, so the same
value (asserted ``==`` in the tests), at a tenth of the cost per example.

>>> from river import metrics
>>> scoring = Scoring.of([metrics.ROCAUC(), "accuracy"], window=3)
>>> scorer = scoring.new()
>>> for y, p in [(True, 0.8), (False, 0.3), (True, 0.4), (False, 0.6)]:
...     scorer.update(y, p > 0.5, {True: p, False: 1 - p})
>>> scorer.names, scorer.primary
(('roc_auc', 'accuracy'), 'roc_auc')
>>> scorer.values(), scorer.rolling_values()
([0.75, 0.5], [0.5, 0.3333333333333333])
"""

from __future__ import annotations

import bisect
import re
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from river import metrics
from river.metrics.base import BinaryMetric, Metric
from scipy import integrate

__all__ = ["DEFAULT_METRICS", "FastROCAUC", "MetricError", "Scorer", "Scoring", "metric_name"]

ROLLING_WINDOW = 1000

DEFAULT_METRICS: dict[str | None, tuple[str, ...]] = {
    "boolean": ("roc_auc", "accuracy"),
    "categorical": ("macro_f1", "accuracy"),
    "numeric": ("mae", "rmse"),
}
"""By label type; a classifier whose label type is not declared gets accuracy."""

NAMES: dict[str, type[Metric]] = {
    "roc_auc": metrics.ROCAUC, "accuracy": metrics.Accuracy,
    "balanced_accuracy": metrics.BalancedAccuracy, "f1": metrics.F1,
    "macro_f1": metrics.MacroF1, "micro_f1": metrics.MicroF1,
    "weighted_f1": metrics.WeightedF1, "precision": metrics.Precision,
    "recall": metrics.Recall, "log_loss": metrics.LogLoss,
    "cross_entropy": metrics.CrossEntropy, "mcc": metrics.MCC,
    "cohen_kappa": metrics.CohenKappa, "mae": metrics.MAE, "mse": metrics.MSE,
    "rmse": metrics.RMSE, "r2": metrics.R2, "smape": metrics.SMAPE,
}
"""The names a pipeline may give instead of a metric object."""

ALERT_THRESHOLDS = {"roc_auc": 0.7, "accuracy": 0.6, "balanced_accuracy": 0.6, "f1": 0.3,
                    "macro_f1": 0.3, "micro_f1": 0.6, "weighted_f1": 0.5}
"""Default alert thresholds of a primary metric's rolling value (the shipped rule fires
below them); an error metric such as MAE has none: its scale is the label's."""


class MetricError(ValueError):
    """A metric a pipeline cannot use (unknown name, no rolling form, wrong task)."""


def metric_name(metric: Metric) -> str:
    """The name a metric is exported and shown under: its class in snake case.

    >>> metric_name(metrics.ROCAUC()), metric_name(metrics.MacroF1()), metric_name(metrics.MAE())
    ('roc_auc', 'macro_f1', 'mae')
    """
    name = type(metric).__name__
    if name == "ROCAUC":
        return "roc_auc"
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name).lower()


@dataclass(frozen=True)
class Scoring:
    """A pipeline's metric choice: prototypes (never updated), the positive class, the
    rolling window; :meth:`new` makes the state a model carries."""

    metrics: tuple[Metric, ...]
    positive: Any = True
    window: int = ROLLING_WINDOW

    @classmethod
    def of(cls, chosen: Sequence[Any], positive: Any = True,
           window: int = ROLLING_WINDOW) -> Scoring:
        """From metric objects or names; raises :class:`MetricError`."""
        made = []
        for each in chosen:
            if isinstance(each, str):
                if each not in NAMES:
                    raise MetricError(f"unknown metric {each!r}; use a river.metrics object "
                                      f"or one of {', '.join(NAMES)}")
                each = NAMES[each]()
            if not isinstance(each, Metric):
                raise MetricError(f"{each!r} is not a river metric")
            if not hasattr(each, "revert"):
                raise MetricError(f"metric {metric_name(each)} cannot be kept over a rolling "
                                  f"window (it has no revert)")
            made.append(each)
        if not made:
            raise MetricError("metrics: give at least one")
        names = [metric_name(m) for m in made]
        if len(set(names)) != len(names):
            raise MetricError(f"metrics: each at most once ({', '.join(names)})")
        return cls(tuple(made), positive, window)

    @classmethod
    def default(cls, label_type: str | None, is_classifier: bool,
                positive: Any = True, window: int = ROLLING_WINDOW) -> Scoring:
        names = DEFAULT_METRICS.get(label_type) if label_type else None
        if names is None:
            names = ("accuracy",) if is_classifier else ("mae", "rmse")
        return cls.of(names, positive, window)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(metric_name(m) for m in self.metrics)

    @property
    def primary(self) -> Metric:
        return self.metrics[0]

    def check(self, estimator: Any) -> None:
        """Each metric suits the model's task (River's ``works_with``)."""
        for metric in self.metrics:
            if not metric.works_with(estimator):
                task = ("classification" if isinstance(metric, metrics.base.ClassificationMetric)
                        else "regression")
                raise MetricError(f"metric {metric_name(metric)} ({task}) does not work with "
                                  f"{type(estimator).__name__}")

    def new(self) -> Scorer:
        return Scorer(self)


class FastROCAUC:
    """River's ``ROCAUC`` (``n_thresholds``, positive ``True``), from a histogram: bucket
    ``k`` counts the examples whose probability is above exactly ``k`` thresholds, so
    threshold ``i``'s confusion matrix is the sums over buckets above ``i``. The counts
    are the same integers, so :meth:`get` is River's value exactly."""

    requires_labels = False
    bigger_is_better = True

    def __init__(self, n_thresholds: int = 10) -> None:
        river = metrics.ROCAUC(n_thresholds=n_thresholds)
        self.n_thresholds = n_thresholds
        self.thresholds = river.thresholds
        self.hist = {True: [0] * (n_thresholds + 1), False: [0] * (n_thresholds + 1)}

    def code(self, y_true: Any, y_pred: Any) -> int:
        """One example as an int: its bucket, and whether it is positive (the low bit)."""
        p = y_pred.get(True, 0.0) if isinstance(y_pred, dict) else y_pred
        return bisect.bisect_left(self.thresholds, p) << 1 | (y_true == True)  # noqa: E712

    def add(self, code: int, count: int) -> None:
        self.hist[bool(code & 1)][code >> 1] += count

    def update(self, y_true: Any, y_pred: Any) -> None:
        self.add(self.code(y_true, y_pred), 1)

    def revert(self, y_true: Any, y_pred: Any) -> None:
        self.add(self.code(y_true, y_pred), -1)

    @property
    def classes_seen(self) -> bool:
        return any(self.hist[True]) and any(self.hist[False])

    def get(self) -> float:
        n = self.n_thresholds
        tprs: list[float] = [0.0] * n
        fprs: list[float] = [0.0] * n
        pos, neg = self.hist[True], self.hist[False]
        tp, fp = sum(pos), sum(neg)  # above no threshold yet: all predicted positive
        p_total, n_total = tp, fp
        for i in range(n):
            tp -= pos[i]  # bucket i is above i thresholds: not above threshold i
            fp -= neg[i]
            tprs[i] = tp / p_total if p_total else 0.0
            fprs[i] = fp / n_total if n_total else 0.0
        return float(-integrate.trapezoid(x=fprs, y=tprs))


class _Rolling:
    """A metric over the last ``size`` updates (River's ``utils.Rolling``: revert the oldest)."""

    def __init__(self, metric: Any, size: int) -> None:
        self.metric = metric
        self.window: deque[tuple[Any, Any]] = deque(maxlen=size)

    def update(self, y_true: Any, y_pred: Any) -> None:
        window = self.window
        if len(window) == window.maxlen:
            self.metric.revert(*window[0])
        self.metric.update(y_true, y_pred)
        window.append((y_true, y_pred))

    def get(self) -> float:
        return self.metric.get()


class _RollingROCAUC:
    """:class:`FastROCAUC` over the last ``size`` examples, each kept as one int (a window
    of probability dicts would add tens of kB to every snapshot)."""

    def __init__(self, n_thresholds: int, size: int) -> None:
        self.metric = FastROCAUC(n_thresholds)
        self.window: deque[int] = deque(maxlen=size)

    def update(self, y_true: Any, y_pred: Any) -> None:
        window, metric = self.window, self.metric
        if len(window) == window.maxlen:
            metric.add(window[0], -1)
        code = metric.code(y_true, y_pred)
        metric.add(code, 1)
        window.append(code)

    def get(self) -> float:
        return self.metric.get()


def _rolling(metric: Metric, size: int) -> Any:
    if type(metric) is metrics.ROCAUC and metric.pos_val is True:
        return _RollingROCAUC(metric.n_thresholds, size)
    return _Rolling(metric.clone(), size)


def _working(metric: Metric) -> Any:
    """The object that keeps ``metric``'s state: a fresh copy (the fast twin of ROCAUC)."""
    if type(metric) is metrics.ROCAUC and metric.pos_val is True:
        return FastROCAUC(metric.n_thresholds)
    return metric.clone()


class Scorer:
    """Every chosen metric of one model, prequential and rolling; lives in its snapshot."""

    def __init__(self, scoring: Scoring) -> None:
        self.names = scoring.names
        self.primary = self.names[0]
        self.positive = scoring.positive
        self.window = scoring.window
        self.metrics = [_working(m) for m in scoring.metrics]
        self.rolling = [_rolling(m, scoring.window) for m in scoring.metrics]
        self.uses_proba = [not getattr(m, "requires_labels", True) for m in scoring.metrics]
        self.binary = [isinstance(m, BinaryMetric) for m in scoring.metrics]
        self.bigger_is_better = [m.bigger_is_better for m in scoring.metrics]
        self.scored = 0
        """Examples scored (the prequential count)."""
        self.recent: deque[bool] = deque(maxlen=scoring.window)
        """Whether each example of the rolling window was positive; ``positives`` counts
        them, so both classes being in the window is known without a scan."""
        self.positives = 0

    def update(self, y: Any, label: Any, proba: dict[Any, float] | None) -> None:
        """Score one example: ``label`` was served for it, with ``proba`` (classifiers)."""
        if label is None:
            return  # no prediction (River skips it too)
        self.scored += 1
        recent, positive = self.recent, bool(y == self.positive)
        if len(recent) == recent.maxlen:
            self.positives -= recent[0]
        recent.append(positive)
        self.positives += positive
        mapped = None
        for i, metric in enumerate(self.metrics):
            if self.binary[i] and self.positive is not True:
                if mapped is None:
                    positive = self.positive
                    p = (proba or {}).get(positive, 0.0)
                    mapped = (y == positive, label == positive, {True: p, False: 1.0 - p})
                y_true, y_pred = mapped[0], mapped[2] if self.uses_proba[i] else mapped[1]
            else:
                y_true, y_pred = y, proba if self.uses_proba[i] else label
            if y_pred is None or y_pred == {}:
                continue
            metric.update(y_true, y_pred)
            self.rolling[i].update(y_true, y_pred)

    def values(self) -> list[float]:
        return [m.get() for m in self.metrics]

    def rolling_values(self) -> list[float]:
        return [r.get() for r in self.rolling]

    def score(self) -> float:
        """The primary metric, prequential."""
        return self.metrics[0].get()

    def ready(self, min_examples: int) -> bool:
        """Enough examples scored for the rolling value to mean something, and for a binary
        primary metric both classes in the window (ROC AUC of one class is 0)."""
        if self.scored < min_examples:
            return False
        if self.binary[0]:
            return 0 < self.positives < len(self.recent)
        return True

    def summary(self) -> dict[str, list[float]]:
        """Each metric's ``[prequential, rolling]`` value, by name."""
        return {name: [m.get(), r.get()]
                for name, m, r in zip(self.names, self.metrics, self.rolling, strict=True)}
