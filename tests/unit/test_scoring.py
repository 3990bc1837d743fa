"""The chosen metrics equal River's, ``==``: the fast ROC AUC against River's ``ROCAUC``
(prequential and over a rolling window, probabilities on the thresholds included), every
metric against ``progressive_val_score``, and a positive class other than ``True``."""

from __future__ import annotations

import random

import pytest
from river import datasets, evaluate, linear_model, metrics, preprocessing, tree, utils

from streamlearn.models.online import OnlineModel
from streamlearn.models.scoring import FastROCAUC, MetricError, Scoring, metric_name


def stream(n: int, seed: int) -> list[tuple[bool, float]]:
    rng = random.Random(seed)
    on_thresholds = [i / 9 for i in range(10)] + [0.0, 1.0]
    return [(rng.random() < 0.3,
             rng.choice(on_thresholds) if rng.random() < 0.2 else rng.random())
            for _ in range(n)]


@pytest.mark.parametrize("seed", range(5))
def test_fast_roc_auc_is_rivers(seed):
    fast, river = FastROCAUC(), metrics.ROCAUC()
    scorer = Scoring.of([metrics.ROCAUC()], window=50).new()  # its rolling form
    reverted, rolling_river = FastROCAUC(), utils.Rolling(metrics.ROCAUC, window_size=50)
    window: list[tuple[bool, dict]] = []
    for y, p in stream(2000, seed):
        proba = {True: p, False: 1 - p}
        fast.update(y, proba)
        river.update(y, proba)
        scorer.update(y, p > 0.5, proba)
        rolling_river.update(y, proba)
        window.append((y, proba))
        reverted.update(y, proba)
        if len(window) > 50:
            reverted.revert(*window.pop(0))
        assert fast.get() == river.get() == scorer.values()[0]
        assert reverted.get() == rolling_river.get() == scorer.rolling_values()[0]


def test_metrics_equal_progressive_val_score():
    def model():
        return preprocessing.StandardScaler() | linear_model.LogisticRegression()
    chosen = [metrics.ROCAUC(), metrics.Accuracy(), metrics.F1(), metrics.LogLoss(),
              metrics.MacroF1()]
    online = OnlineModel(model(), scoring=Scoring.of(chosen))
    for x, y in datasets.Phishing():
        label, proba = online.predict(x)
        online.learn(x, y, served=label, proba=proba)
    expected = [evaluate.progressive_val_score(datasets.Phishing(), model(), m.clone()).get()
                for m in chosen]
    assert online.scorer.values() == expected


def test_untrained_tree_predictions_are_not_scored_as_in_river():
    chosen = [metrics.ROCAUC(), metrics.Accuracy()]
    online = OnlineModel(tree.HoeffdingTreeClassifier(), scoring=Scoring.of(chosen))
    for x, y in datasets.Phishing():
        label, proba = online.predict(x)
        online.learn(x, y, served=label, proba=proba)
    expected = [evaluate.progressive_val_score(
        datasets.Phishing(), tree.HoeffdingTreeClassifier(), m.clone()).get() for m in chosen]
    assert online.scorer.values() == expected


def test_regression_metrics_equal_progressive_val_score():
    def model():
        return preprocessing.StandardScaler() | linear_model.LinearRegression()
    online = OnlineModel(model())
    assert online.scorer.names == ("mae", "rmse")
    for x, y in datasets.TrumpApproval():
        prediction, _ = online.predict(x)
        online.learn(x, y, served=prediction)
    expected = [evaluate.progressive_val_score(datasets.TrumpApproval(), model(), m).get()
                for m in (metrics.MAE(), metrics.RMSE())]
    assert online.scorer.values() == expected


def test_a_positive_class_other_than_true():
    """Labels "phish"/"ok" (the model's, mapped): the scores equal River's on booleans."""
    def model():
        return preprocessing.StandardScaler() | linear_model.LogisticRegression()
    online = OnlineModel(model())
    scorer = Scoring.of(["roc_auc", "f1"], positive="phish").new()
    named = {True: "phish", False: "ok"}
    for x, y in datasets.Phishing():
        label, proba = online.predict(x)
        if label is not None:
            scorer.update(named[y], named[label], {named[k]: p for k, p in proba.items()})
        online.learn(x, y, served=label, proba=proba)
    expected = [evaluate.progressive_val_score(datasets.Phishing(), model(), m).get()
                for m in (metrics.ROCAUC(), metrics.F1())]
    assert scorer.values() == expected


def test_names_defaults_and_errors():
    assert [metric_name(m) for m in Scoring.default("boolean", True).metrics] == [
        "roc_auc", "accuracy"]
    assert Scoring.default("categorical", True).names == ("macro_f1", "accuracy")
    assert Scoring.default("numeric", False).names == ("mae", "rmse")
    with pytest.raises(MetricError, match="unknown metric 'auc'"):
        Scoring.of(["auc"])
    with pytest.raises(MetricError, match="each at most once"):
        Scoring.of(["accuracy", metrics.Accuracy()])
    with pytest.raises(MetricError, match="does not work with LinearRegression"):
        Scoring.of(["roc_auc"]).check(linear_model.LinearRegression())


def test_ready_needs_enough_examples_and_both_classes_in_the_window():
    scorer = Scoring.of(["roc_auc"], window=4).new()
    for y in (True, False, True):
        scorer.update(y, True, {True: 0.6, False: 0.4})
    assert not scorer.ready(min_examples=4)  # too few scored
    scorer.update(True, True, {True: 0.6, False: 0.4})
    assert scorer.ready(min_examples=4)
    for _ in range(3):  # the False leaves the window: one class only
        scorer.update(True, True, {True: 0.6, False: 0.4})
    assert not scorer.ready(min_examples=4)
