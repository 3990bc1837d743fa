"""Drift detectors as the worker runs them: positions, references, indexes, snapshots."""

from __future__ import annotations

import pickle
import random

import numpy as np
from river import drift, linear_model

from streamlearn.models.data_drift import DataDrift, psi
from streamlearn.models.drift import ConceptDrift
from streamlearn.models.online import OnlineModel


def errors(n: int, rate_before: float, rate_after: float, at: int, seed: int) -> list[float]:
    rng = random.Random(seed)
    return [float(rng.random() < (rate_before if i < at else rate_after)) for i in range(n)]


def test_concept_drift_fires_where_adwin_fires_alone():
    stream = errors(6000, 0.1, 0.4, 3000, seed=1)
    detector, reference = ConceptDrift(is_classifier=True), drift.ADWIN()
    ours = [s.position for i, e in enumerate(stream, 1) for s in detector.update(e, i)
            if s.detector == "ADWIN"]
    theirs = []
    for i, e in enumerate(stream, 1):
        reference.update(e)
        if reference.drift_detected:
            theirs.append(i)
    assert ours == theirs and ours and all(p > 3000 for p in ours)


def test_adwin_raises_no_drift_on_a_stationary_error_stream():
    detector = ConceptDrift(is_classifier=True)
    signals = [s for i, e in enumerate(errors(30_000, 0.1, 0.1, 0, seed=2), 1)
               for s in detector.update(e, i) if s.detector == "ADWIN"]
    assert signals == []


def test_a_regressor_gets_page_hinkley_as_its_early_detector():
    assert ConceptDrift(is_classifier=False).warning_name == "PageHinkley"


def test_the_model_counts_its_errors_in_training_order_and_pickles_its_detectors():
    model = OnlineModel(linear_model.LogisticRegression())
    rng = random.Random(3)
    for i in range(4000):
        x = {"a": rng.gauss(0, 1)}
        y = x["a"] > 0 if i < 2000 else x["a"] < 0
        model.learn(x, y, served=model.predict(x)[0])
    positions = [s.position for s in model.signals if s.detector == "ADWIN"]
    assert any(2000 < p <= 2600 for p in positions), positions  # (and as it first learns)
    copy = pickle.loads(pickle.dumps(model))
    assert copy.concept.estimate == model.concept.estimate


def test_psi_is_zero_for_the_same_distribution_and_grows_with_the_shift():
    assert psi(np.array([10, 20, 30]), np.array([1, 2, 3])) == 0.0
    small = psi(np.array([50, 50]), np.array([55, 45]))
    large = psi(np.array([50, 50]), np.array([90, 10]))
    assert 0 < small < 0.1 < 0.25 < large


def test_data_drift_builds_its_reference_then_indexes_recent_values():
    rng = random.Random(4)
    watch = DataDrift({"amount": "numeric", "shop": "categorical"}, reference_size=1000)
    for i in range(2000):
        watch.observe({"amount": rng.gauss(0, 1), "shop": rng.choice("abc")}, offset=i)
        if i % 500 == 499:
            watch.end_batch()
    steady = watch.stability()
    assert set(steady) == {"amount", "shop"} and max(steady.values()) < 0.05
    for i in range(2000, 3000):
        watch.observe({"amount": rng.gauss(2, 1), "shop": rng.choice("ccd")}, offset=i)
    watch.end_batch()
    shifted = watch.stability()
    assert shifted["amount"] > 0.25 and shifted["shop"] > 0.25
    assert watch.stability() == {}, "each index covers the values since the last one"


def test_data_drift_adwin_positions_are_offsets_and_survive_a_pickle():
    rng = random.Random(5)
    values = [rng.gauss(0 if i < 1500 else 3, 1) for i in range(3000)]
    watch = DataDrift({"v": "numeric"})
    reference = drift.ADWIN()
    ours, theirs = [], []
    for i, v in enumerate(values[:1000]):
        ours += [s.position for _, s in watch.observe({"v": v}, offset=i)]
    watch = pickle.loads(pickle.dumps(watch))  # a snapshot in the middle
    for i, v in enumerate(values[1000:], start=1000):
        ours += [s.position for _, s in watch.observe({"v": v}, offset=i)]
    for i, v in enumerate(values):
        reference.update(v)
        if reference.drift_detected:
            theirs.append(i)
    assert ours == theirs and ours


def test_a_given_reference_is_used_instead_of_the_first_values():
    watch = DataDrift({"v": "numeric"}, reference_size=10)
    watch.set_reference("v", [float(i % 10) for i in range(1000)])
    for i in range(100):
        watch.observe({"v": float(i % 10)}, offset=i)
    watch.end_batch()
    assert watch.stability()["v"] < 0.01


def test_an_index_waits_for_enough_new_values():
    rng = random.Random(6)
    watch = DataDrift({"v": "numeric"}, reference_size=1000)
    for i in range(1050):
        watch.observe({"v": rng.gauss(0, 1)}, offset=i)
    watch.end_batch()
    assert watch.stability() == {}, "50 values are too few for an index"
    for i in range(1050, 1300):
        watch.observe({"v": rng.gauss(0, 1)}, offset=i)
    watch.end_batch()
    assert watch.stability()["v"] < 0.1, "300 values since the last index: one is made"


def test_the_stability_index_is_due_every_n_events_whatever_the_batches():
    """A replay in other batches (a catch-up: larger ones) gives the same indexes at the
    same events, and the count survives a snapshot."""
    rng = random.Random(4)
    values = [rng.gauss(0 if i < 2500 else 1.5, 1) for i in range(4000)]

    def indexes(batch_sizes: list[int], pickle_at: int | None = None) -> list:
        watch, out, i = DataDrift({"a": "numeric"}, reference_size=500), [], 0
        while i < len(values):
            size = batch_sizes[len(out) % len(batch_sizes)] if batch_sizes else 1
            for value in values[i:i + size]:
                i += 1
                watch.observe({"a": value}, i)
                if watch.index_due(700):
                    out.append((i, watch.stability()))
                if i == pickle_at:
                    watch = pickle.loads(pickle.dumps(watch))
            watch.end_batch()
        return out

    real_time = indexes([1])
    assert len(real_time) == 4000 // 700 and real_time[-1][1]["a"] > 0.25
    assert indexes([500, 37]) == real_time
    assert indexes([64], pickle_at=1234) == real_time
