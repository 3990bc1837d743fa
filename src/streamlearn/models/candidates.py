"""Several named models side by side: one champion serves, the others shadow it.

Every candidate is scored on every labelled example, then learns from it (test-then-train),
so each has its prequential score, overall and over a rolling window, and its own concept
drift detectors. The prediction scored is the one that was served for the candidate when
the caller passes it (the served record's ``predictions``), otherwise the candidate
predicts the example itself just before learning it. After each example the drift policy
(:mod:`.policies`) may replace, promote or switch candidates; what it did comes back as
:class:`Action` records, in order.

A candidate's models come from its factory; a model that replaces another gets the next
*instance id* of its name (``tree#0``, ``tree#1``, ...), so records say which model a
prediction or an action concerns. The object pickles without its factories (a pipeline's
are often lambdas): after unpickling, :meth:`Candidates.bind` gives them back.

>>> from river import linear_model, tree
>>> candidates = Candidates({"lr": linear_model.LogisticRegression,
...                          "tree": tree.HoeffdingTreeClassifier}, champion="tree")
>>> candidates.names, candidates.ids
(['tree', 'lr'], {'tree': 'tree#0', 'lr': 'lr#0'})
>>> for i in range(200):
...     x = {"a": i % 7 - 3.0}
...     served = candidates.predict(x)
...     actions = candidates.learn(x, x["a"] > 0, served)
>>> {name: label for name, (label, proba) in candidates.predict({"a": 2.0}).items()}
{'tree': True, 'lr': True}
>>> candidates.examples, round(candidates.rolling("tree"), 3), candidates.rolling("lr"), actions
(200, 0.99, 1.0, [])
>>> candidates.policy.name, candidates.models["tree"].scorer.summary()
('alert', {'accuracy': [0.9899497487437185, 0.9899497487437185]})
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

from river import base

from streamlearn.models.drift import DriftSignal
from streamlearn.models.duel import Action, CandidatesError, Duel, scored_value
from streamlearn.models.online import OnlineModel, Prediction, RollingMean
from streamlearn.models.policies import Alert, Policy
from streamlearn.models.scoring import ROLLING_WINDOW, Scoring

__all__ = ["Action", "Candidates", "CandidatesError", "Duel", "scored_value"]

log = logging.getLogger(__name__)

Factory = Callable[[], base.Estimator]


class Candidates:
    """Named models, one champion; scores and trains them all on every labelled example.

    ``factories`` maps each name to a callable returning a fresh River estimator; the
    champion (default: the first name) comes first in :attr:`names`. ``window`` is the
    rolling window of every candidate's score (examples); ``adwin_delta`` the drift
    detectors' setting (None: no detection, so no policy ever acts); ``scoring`` the
    pipeline's metrics (default: by the model's task).
    """

    def __init__(self, factories: Mapping[str, Factory], champion: str | None = None, *,
                 policy: Policy | None = None, window: int = ROLLING_WINDOW,
                 adwin_delta: float | None = 0.002, scoring: Scoring | None = None) -> None:
        if not factories:
            raise CandidatesError("candidates need at least one model factory")
        champion = next(iter(factories)) if champion is None else champion
        if champion not in factories:
            raise CandidatesError(f"champion {champion!r} is not one of the candidates "
                                  f"{sorted(factories)}")
        if window < 1:
            raise CandidatesError(f"window must be >= 1 (got {window})")
        if policy is None:
            policy = Alert()
        self.factories: dict[str, Factory] = dict(factories)
        self.window = window
        self.adwin_delta = adwin_delta
        self.scoring = scoring
        self.policy = policy
        self.champion = champion
        self.examples = 0
        """Labelled examples learned so far."""
        self.errors: dict[str, int] = {}
        """Examples a candidate raised on (logged; the others still learned them)."""
        self.error_before: dict[str, float] = {}
        """Each candidate's ADWIN error estimate before the latest example: a drift that
        raised it is a worsening (ADWIN also fires when a learning model improves)."""
        self.scored: dict[str, float | None] = {}
        """What each candidate scored on the latest example (:func:`scored_value`)."""
        self.signals: list[tuple[str, DriftSignal]] = []
        """(candidate, drift signal) since the caller last took them: the raw detector
        output, whatever the policy made of it."""
        self._generations: dict[str, int] = {}
        self.models: dict[str, OnlineModel] = {}
        self.ids: dict[str, str] = {}
        for name in [champion, *(n for n in factories if n != champion)]:
            self.ids[name], self.models[name] = self.fresh(name)

    @property
    def names(self) -> list[str]:
        """Candidate names, the champion first."""
        return list(self.models)

    # A snapshot holds the models' state, not their factories (often lambdas).
    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["factories"] = {}
        return state

    def adopt(self, model: OnlineModel) -> None:
        """Make ``model`` (e.g. bootstrapped on history) the champion's current instance."""
        model.name = self.champion
        if model.rolling_score.values.maxlen != self.window:
            model.rolling_score = RollingMean(self.window)
        self.models[self.champion] = model

    def summary(self) -> dict[str, dict[str, Any]]:
        """Each candidate's instance, examples learned and scores (for the registry): the
        primary metric as ``metric``/``score``/``rolling``, every metric in ``metrics``."""
        out = {}
        for name, model in self.models.items():
            scorer = model.scorer
            metrics = scorer.summary()
            out[name] = {"instance": self.ids[name], "examples": model.version,
                         "metric": scorer.primary, "score": metrics[scorer.primary][0],
                         "rolling": metrics[scorer.primary][1], "metrics": metrics}
        return out

    def rescore(self, scoring: Scoring) -> list[str]:
        """Use ``scoring`` from now on; returns the candidates whose metrics started over."""
        self.scoring = scoring
        return [name for name, model in self.models.items() if model.rescore(scoring)]

    def bind(self, factories: Mapping[str, Factory]) -> None:
        """Give an unpickled candidate set its factories back (needed to reset, challenge)."""
        missing = sorted(set(self.models) - set(factories))
        if missing:
            raise CandidatesError(f"no factory for candidates {missing}")
        self.factories = dict(factories)

    def fresh(self, name: str) -> tuple[str, OnlineModel]:
        """A new untrained model of candidate ``name`` and its instance id."""
        factory = self.factories.get(name)
        if factory is None:
            raise CandidatesError(f"no factory for candidate {name!r} (after unpickling, "
                                  "call bind(factories))")
        generation = self._generations.get(name, -1) + 1
        self._generations[name] = generation
        model = OnlineModel(factory(), name=name, adwin_delta=self.adwin_delta,
                            scoring=getattr(self, "scoring", None))
        model.rolling_score = RollingMean(self.window)
        return f"{name}#{generation}", model

    def replace(self, name: str, instance: str, model: OnlineModel) -> str:
        """Put ``model`` (instance id ``instance``) in place of candidate ``name``; returns
        the instance id it replaced."""
        old = self.ids[name]
        self.ids[name], self.models[name] = instance, model
        return old

    def crown(self, name: str) -> None:
        """Make ``name`` the champion (it moves to the front of :attr:`names`)."""
        self.champion = name
        self.models = {name: self.models[name],
                       **{n: m for n, m in self.models.items() if n != name}}
        self.ids = {n: self.ids[n] for n in self.models}

    def predict(self, x: dict[str, Any]) -> dict[str, Prediction]:
        """Every candidate's prediction, the champion's (served) first, then the shadows."""
        return {name: model.predict(x) for name, model in self.models.items()}

    def predict_champion(self, x: dict[str, Any]) -> Prediction:
        return self.models[self.champion].predict(x)

    def rolling(self, name: str) -> float:
        """Candidate ``name``'s score over its rolling window (accuracy or MAE)."""
        return self.models[name].rolling_score.get()

    def learn(self, x: dict[str, Any], y: Any,
              served: Mapping[str, Prediction] | None = None) -> list[Action]:
        """Score each candidate's prediction for ``x`` (``served[name]``, a label and its
        probabilities, when given, else its own now), let it learn ``(x, y)``, then let the
        policy act."""
        self.examples += 1
        fired: list[tuple[str, DriftSignal]] = []
        scored, before = self.scored, self.error_before
        for name, model in self.models.items():
            concept = model.concept
            if concept is not None:
                before[name] = concept.estimate
            try:
                if served is not None and name in served:
                    prediction, proba = served[name]
                else:
                    prediction, proba = model.predict(x)
                model.learn(x, y, served=prediction, proba=proba)
                scored[name] = scored_value(model, prediction, y)
            except Exception as exc:  # one candidate's failure must not stop the others
                scored[name] = None
                self.errors[name] = self.errors.get(name, 0) + 1
                log.warning("candidate %s raised on example %d: %r", self.ids[name],
                            self.examples, exc)
                continue
            signals = model.signals
            if signals:
                fired.extend((name, signal) for signal in signals)
                signals.clear()
        if fired:
            self.signals.extend(fired)
        return self.policy.update(self, x, y, fired)
