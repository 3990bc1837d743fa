"""Candidates and drift policies on small seeded sequences: what each policy does, when,
and that nothing changes on noise."""

from __future__ import annotations

import pickle
import random
from typing import Any

import pytest
from river import base, drift, dummy, linear_model, optim, preprocessing, tree
from river.datasets import synth

from streamlearn.models.candidates import Candidates, CandidatesError, Duel
from streamlearn.models.policies import POLICIES, Alert, Best, Challenger, Policy, Reset


class Scripted(base.Classifier):
    """Right exactly when ``x[field]`` says so: the test scripts every hit and miss."""

    def __init__(self, field: str = "a") -> None:
        self.field = field

    def learn_one(self, x: dict[str, Any], y: Any) -> None:
        pass

    def predict_proba_one(self, x: dict[str, Any]) -> dict[Any, float]:
        label = x["y"] if x[self.field] else not x["y"]
        return {label: 1.0, not label: 0.0}


def scripted(n: int, accuracy: dict[str, Any], seed: int) -> list[tuple[dict, bool]]:
    """``n`` examples on which each field's model is right with the probability given
    (a number, or a function of the example's index)."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        y = rng.random() < 0.5
        x: dict[str, Any] = {"y": y}
        for field, p in accuracy.items():
            x[field] = rng.random() < (p(i) if callable(p) else p)
        rows.append((x, y))
    return rows


def run(candidates: Candidates, rows: list[tuple[dict, Any]]) -> list[tuple[str, int]]:
    """Serve and learn ``rows`` in order, as the learner does; the actions taken."""
    actions = []
    for x, y in rows:
        actions += candidates.learn(x, y, candidates.predict(x))
    return [(a.kind, a.at_example) for a in actions]


def prior_rows(n: int, p_true: Any, seed: int) -> list[tuple[dict, bool]]:
    rng = random.Random(seed)
    return [({}, rng.random() < (p_true(i) if callable(p_true) else p_true)) for i in range(n)]


def sudden(at: int) -> Any:
    return lambda i: 0.8 if i < at else 0.2


def sea_drift(seed: int, variant: int) -> list[tuple[dict, Any]]:
    """6,000 SEA examples whose concept switches from variant 0 to ``variant`` at 3,000."""
    return list(synth.ConceptDriftStream(synth.SEA(variant=0, seed=seed),
                                         synth.SEA(variant=variant, seed=seed), position=3000,
                                         width=50, seed=seed).take(6000))


TREE_AND_LR = {"tree": tree.HoeffdingTreeClassifier,
               "lr": lambda: preprocessing.StandardScaler() | linear_model.LogisticRegression()}


def test_the_four_policies_are_chosen_by_name():
    assert sorted(POLICIES) == ["alert", "best", "challenger", "reset"]
    assert all(issubclass(cls, Policy) and cls.name == name for name, cls in POLICIES.items())


def test_the_champion_comes_first_and_must_be_a_candidate():
    candidates = Candidates({"a": dummy.PriorClassifier, "b": dummy.NoChangeClassifier},
                            champion="b")
    assert candidates.names == ["b", "a"] and candidates.ids == {"b": "b#0", "a": "a#0"}
    with pytest.raises(CandidatesError, match="'c' is not one of"):
        Candidates({"a": dummy.PriorClassifier}, champion="c")


def test_each_candidate_is_scored_on_the_prediction_served_for_it():
    candidates = Candidates({"a": lambda: Scripted("a"), "b": lambda: Scripted("b")})
    for x, y in scripted(100, {"a": 1.0, "b": 1.0}, seed=1):
        candidates.learn(x, y, served={"a": (not y, None)})  # b is not served: it predicts itself
    assert candidates.rolling("a") == 0.0 and candidates.rolling("b") == 1.0


def test_alert_reports_the_drift_where_adwin_fires_and_changes_nothing():
    rows = scripted(6000, {"a": lambda i: 0.9 if i < 3000 else 0.6}, seed=2)
    candidates = Candidates({"a": Scripted}, policy=Alert())
    actions = run(candidates, rows)
    adwin, fired = drift.ADWIN(), []
    for i, (x, _) in enumerate(rows, 1):
        adwin.update(0.0 if x["a"] else 1.0)
        if adwin.drift_detected:
            fired.append(i)
    assert actions == [("alert", fired[0])] and 3000 < fired[0] < 3300
    assert candidates.ids == {"a": "a#0"}


def test_reset_replaces_the_drifting_model_at_the_detection_pretrained():
    rows = prior_rows(6000, sudden(3000), seed=3)
    alerts = run(Candidates({"prior": dummy.PriorClassifier}, policy=Alert()), rows)
    candidates = Candidates({"prior": dummy.PriorClassifier}, policy=Reset(pretrain=50))
    actions, learned = [], None
    for x, y in rows:
        taken = candidates.learn(x, y)
        if taken:
            learned = candidates.models["prior"].version  # right after the reset
        actions += taken
    assert [(a.kind, a.source, a.target) for a in actions] == [("reset", "prior#0", "prior#1")]
    at_reset = actions[0].at_example
    assert alerts == [("alert", at_reset)] and 3000 < at_reset < 3100
    # The fresh model learned the 50 examples up to the detection, then every one after.
    assert learned == 50 and candidates.models["prior"].version == 50 + 6000 - at_reset
    assert candidates.predict_champion({})[0] is False  # the new majority, at once


def test_reset_does_not_react_to_a_model_that_is_still_improving():
    rows = scripted(6000, {"a": lambda i: 0.6 if i < 3000 else 0.9}, seed=4)
    assert run(Candidates({"a": Scripted}, policy=Reset()), rows) == []


def test_challenger_promotes_at_a_deterministic_example_after_a_sudden_drift():
    rows = prior_rows(8000, lambda i: 0.9 if i < 4000 else 0.1, seed=0)
    outcomes = []
    for _ in range(2):
        candidates = Candidates({"prior": dummy.PriorClassifier}, policy=Challenger())
        outcomes.append((run(candidates, rows), candidates.ids["prior"]))
    assert outcomes[0] == outcomes[1]
    actions, instance = outcomes[0]
    # A warning on noise before the drift: its challenger is retired after 1,000.
    assert actions == [("challenge", 1055), ("retire", 2055), ("challenge", 4017),
                       ("promote", 4118)]
    assert instance == "prior#2"


def test_challenger_retires_its_challengers_on_a_stationary_stream():
    data = synth.SEA(variant=0, noise=0.1, seed=0).take(20_000)
    candidates = Candidates({"lr": lambda: preprocessing.StandardScaler()
                             | linear_model.LogisticRegression()}, policy=Challenger())
    actions = run(candidates, list(data))
    kinds = [kind for kind, _ in actions]
    assert "promote" not in kinds and candidates.ids["lr"] == "lr#0"
    assert kinds.count("challenge") >= 1 and kinds.count("retire") == kinds.count("challenge")


def test_best_serves_a_clearly_better_candidate_once_and_only_after_the_dwell():
    rows = scripted(20_000, {"a": 0.80, "b": 0.86}, seed=7)
    candidates = Candidates({"a": lambda: Scripted("a"), "b": lambda: Scripted("b")},
                            policy=Best(dwell=500))
    actions = run(candidates, rows)
    assert [kind for kind, _ in actions] == ["switch"] and actions[0][1] >= 500
    assert candidates.champion == "b"


def test_best_does_not_switch_between_equals_or_on_short_leads():
    # b leads by 10 points for 150 examples in every 600, then trails: no switch.
    def burst(i: int) -> float:
        return 0.9 if i % 600 < 150 else 0.8

    equals = scripted(20_000, {"a": 0.85, "b": 0.85}, seed=8)
    bursts = scripted(20_000, {"a": 0.82, "b": burst}, seed=9)
    for rows in (equals, bursts):
        candidates = Candidates({"a": lambda: Scripted("a"), "b": lambda: Scripted("b")},
                                policy=Best())
        assert run(candidates, rows) == [] and candidates.champion == "a"


def test_best_keeps_its_champion_on_a_stationary_stream():
    def logreg(rate: float) -> Any:
        return lambda: (preprocessing.StandardScaler()
                        | linear_model.LogisticRegression(optimizer=optim.SGD(rate)))

    data = synth.SEA(variant=0, noise=0.1, seed=0).take(20_000)
    candidates = Candidates({"lr": logreg(0.01), "fast": logreg(0.05)}, policy=Best())
    actions = run(candidates, list(data))
    kinds = [kind for kind, _ in actions]
    assert "switch" not in kinds and "promote" not in kinds and candidates.champion == "lr"
    assert kinds.count("challenge") >= 1 and kinds.count("retire") == kinds.count("challenge")


def test_duel_tells_a_real_lead_from_noise():
    rng = random.Random(11)
    noise, real = Duel(1000, is_classifier=True), Duel(1000, is_classifier=True)
    for _ in range(1000):
        noise.update(float(rng.random() < 0.85), float(rng.random() < 0.85))
        real.update(float(rng.random() < 0.90), float(rng.random() < 0.85))
    assert abs(noise.t) < 3 < real.t and real.lead > 0.03


def test_a_pickled_candidate_set_predicts_and_acts_exactly_as_the_original():
    rows = sea_drift(seed=12, variant=2)
    original = Candidates(TREE_AND_LR, policy=Best())
    run(original, rows[:3300])  # past the drift: a challenge may be under way
    copy = pickle.loads(pickle.dumps(original))
    with pytest.raises(CandidatesError, match="bind"):
        copy.fresh("tree")
    copy.bind(TREE_AND_LR)
    probe = [x for x, _ in rows[3300:3500]]
    assert [copy.predict(x) for x in probe] == [original.predict(x) for x in probe]
    rest = rows[3300:]
    assert run(copy, rest) == run(original, rest)
    assert [copy.predict(x) for x in probe] == [original.predict(x) for x in probe]
    assert copy.ids == original.ids and copy.champion == original.champion


def test_every_detector_signal_reaches_the_policy_at_the_example_river_raises_it():
    # Accuracy falls, recovers, falls: DDM warns, drifts and warns again; ADWIN cuts.
    def phases(i: int) -> float:
        return (0.95, 0.6, 0.95, 0.5)[i // 3000]

    rows = scripted(12_000, {"a": phases}, seed=13)
    candidates = Candidates({"a": Scripted}, policy=Alert())
    run(candidates, rows)
    adwin, ddm, in_warning, expected = drift.ADWIN(), drift.binary.DDM(), False, []
    for i, (x, _) in enumerate(rows, 1):
        error = 0.0 if x["a"] else 1.0
        adwin.update(error)
        ddm.update(error)
        if adwin.drift_detected:
            expected.append(("ADWIN", "drift", i, adwin.estimation))
        if ddm.warning_detected and not in_warning:
            expected.append(("DDM", "warning", i, error))
        in_warning = ddm.warning_detected and not ddm.drift_detected
        if ddm.drift_detected:
            expected.append(("DDM", "drift", i, error))
    got = [(s.detector, s.level, s.position, s.statistic) for _, s in candidates.signals]
    assert got == expected
    assert {level for _, level, _, _ in got} == {"drift", "warning"} and len(got) >= 6


def test_candidates_that_predict_again_act_as_when_scored_on_what_was_just_served():
    # The production learner lets every candidate predict before learning; fed the
    # predictions served a moment earlier by the same models, it must decide the same.
    rows = sea_drift(seed=14, variant=3)
    served, predicted = (Candidates(TREE_AND_LR, policy=Best()),
                         Candidates(TREE_AND_LR, policy=Best()))
    actions = run(served, rows)
    again = []
    for x, y in rows:
        again += predicted.learn(x, y)
    assert actions and [(a.kind, a.at_example) for a in again] == actions
    assert predicted.summary() == served.summary()
