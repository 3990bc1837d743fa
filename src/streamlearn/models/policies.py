"""What a pipeline does when a candidate's error drifts: the four drift policies.

After every labelled example, which every candidate has just scored and learned, the
policy is told the drift signals the candidates' detectors raised on it (:mod:`.drift`)
and returns :class:`~.candidates.Action` records of what it did.

A reaction needs a *worsening*: ADWIN fires on any change in the mean error, including
the fall of a model still learning, so an ADWIN drift counts only when the part of the
window it cut away had the lower error (its estimate rose). DDM, a classifier's early
detector, only ever warns of a rise.

- :class:`Alert` reports each worsening drift and changes nothing.
- :class:`Reset` replaces the drifting candidate by a fresh model from its factory,
  trained first on the last ``pretrain`` examples.
- :class:`Challenger`: on a warning (or a worsening drift) of a champion that has learned
  at least ``limit / 2`` examples (a younger one is fresh already), a fresh challenger
  learns in the background, test-then-train, and is compared with the champion example by
  example (:class:`~.candidates.Duel`). It is promoted once it leads by ``margin`` with a
  paired t statistic of at least ``z`` over at least ``min_examples``; retired after
  ``limit`` examples, or from ``limit / 2`` on once it trails with ``t <= -z``.
- :class:`Best` serves whichever candidate leads: a shadow becomes the champion when it
  leads it by ``margin`` with ``t >= z`` over the ``dwell`` examples or more since either
  last changed. A drifting shadow is reset at once; a drifting champion gets a challenger
  as above, which replaces it if it leads it (whether it still serves or not).

Hysteresis comes from the margin, the significance and the dwell together: a lead that
noise could make does not count, and every change starts the comparisons afresh. Nothing
here reads a clock or draws a random number: the same examples give the same actions.

The defaults were chosen once for every stream of ``benchmarks/drift_policies.py``:
``pretrain=100`` for a reset (ADWIN flags a sudden rise some 30-150 examples late, so
those are mostly the new concept; a challenger starts earlier, on a warning, and learns
from scratch); ``margin=0.01`` (one point: on imbalanced data real differences are
small); ``z=4`` (a comparison is re-tested after every example: at ``z=3`` two equally
good scripted candidates swapped 3 times in 10 runs of 20,000 examples, at 4 never);
``min_examples=100``, ``limit=1000``, ``dwell=300``.

>>> from river import linear_model
>>> from streamlearn.models.candidates import Candidates
>>> candidates = Candidates({"lr": linear_model.LogisticRegression}, policy=Reset())
>>> actions = []
>>> for i in range(6000):
...     x = {"a": i % 7 - 3.0}
...     actions += candidates.learn(x, (x["a"] > 0) == (i < 3000))
>>> [(a.kind, a.at_example, a.source, a.target) for a in actions]
[('reset', 3040, 'lr#0', 'lr#1')]
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from streamlearn.models.drift import DriftSignal
from streamlearn.models.duel import Action, CandidatesError, Duel, scored_value
from streamlearn.models.online import OnlineModel

if TYPE_CHECKING:
    from streamlearn.models.candidates import Candidates

__all__ = ["POLICIES", "Alert", "Best", "Challenger", "Policy", "Reset"]

DRIFT_DETECTOR = "ADWIN"
Fired = list[tuple[str, DriftSignal]]


class Policy:
    """Common ground: the worsening drifts of an example, and fresh pretrained models."""

    name = "policy"

    def __init__(self, pretrain: int = 0) -> None:
        if pretrain < 0:
            raise CandidatesError(f"pretrain must be >= 0 (got {pretrain})")
        self.pretrain = pretrain
        self.buffer: deque[tuple[dict[str, Any], Any]] = deque(maxlen=pretrain)
        """The last ``pretrain`` examples, which a fresh model learns first."""

    def settings(self) -> dict[str, Any]:
        """The policy's name and numeric settings (a pipeline that changed them gets a fresh
        policy on restore, not the snapshot's)."""
        return {"policy": self.name, **{k: v for k, v in vars(self).items()
                                        if type(v) in (int, float)}}

    def update(self, candidates: Candidates, x: dict[str, Any], y: Any,
               fired: Fired) -> list[Action]:
        """React to the signals ``fired`` on example ``(x, y)``; returns what was done."""
        if self.pretrain:
            self.buffer.append((x, y))
        return self.react(candidates, x, y, fired)

    def react(self, candidates: Candidates, x: dict[str, Any], y: Any,
              fired: Fired) -> list[Action]:
        raise NotImplementedError

    def drifts(self, candidates: Candidates, fired: Fired) -> Fired:
        """The worsening ADWIN drifts among ``fired``."""
        if not fired:  # nearly every example: skip building an empty list
            return []
        before = candidates.error_before
        return [(name, s) for name, s in fired
                if s.detector == DRIFT_DETECTOR and s.level == "drift"
                and s.statistic > before.get(name, s.statistic)]

    def renew(self, candidates: Candidates, name: str) -> tuple[str, OnlineModel]:
        """A fresh model of candidate ``name``, trained (unscored) on the buffer."""
        instance, model = candidates.fresh(name)
        for bx, by in self.buffer:
            model.learn(bx, by, served=None)
        return instance, model

    def reset(self, candidates: Candidates, name: str, reason: str) -> Action:
        instance, model = self.renew(candidates, name)
        old = candidates.replace(name, instance, model)
        return Action("reset", candidates.examples, old, instance, reason)


def _reason(name: str, signal: DriftSignal) -> str:
    what = "error estimate" if signal.detector == DRIFT_DETECTOR else "error"
    return f"{signal.detector} {signal.level} on {name}: {what} {signal.statistic:.3f}"


def _versus(duel: Duel) -> str:
    return f"lead {duel.lead:+.4f}, t {duel.t:+.2f} over {duel.count} examples"


class Alert(Policy):
    """Reports each worsening drift as an ``alert`` action; changes nothing."""

    name = "alert"

    def react(self, candidates: Candidates, x: dict[str, Any], y: Any,
              fired: Fired) -> list[Action]:
        return [Action("alert", candidates.examples, candidates.ids[name], None,
                       _reason(name, signal))
                for name, signal in self.drifts(candidates, fired)]


class Reset(Policy):
    """Replaces a drifting candidate by a fresh one, pretrained on the last ``pretrain``
    examples."""

    name = "reset"

    def __init__(self, pretrain: int = 100) -> None:
        super().__init__(pretrain)

    def react(self, candidates: Candidates, x: dict[str, Any], y: Any,
              fired: Fired) -> list[Action]:
        return [self.reset(candidates, name, _reason(name, signal))
                for name, signal in self.drifts(candidates, fired)]


@dataclass
class _Challenge:
    incumbent: str
    """The candidate the challenger may replace (the champion when it started)."""
    instance: str
    model: OnlineModel
    started_at: int
    duel: Duel
    """The challenger against its incumbent."""


class Challenger(Policy):
    """A fresh challenger of the champion on a warning; promoted when it leads, else
    retired."""

    name = "challenger"

    def __init__(self, margin: float = 0.01, z: float = 4.0, min_examples: int = 100,
                 limit: int = 1000, pretrain: int = 0) -> None:
        super().__init__(pretrain)
        if not 0 < min_examples <= limit:
            raise CandidatesError(f"need 0 < min_examples <= limit (got {min_examples}, {limit})")
        self.margin, self.z, self.min_examples, self.limit = margin, z, min_examples, limit
        self.challenge: _Challenge | None = None

    def react(self, candidates: Candidates, x: dict[str, Any], y: Any,
              fired: Fired) -> list[Action]:
        actions = []
        if self.challenge is not None:
            self._step(candidates, self.challenge, x, y)
            actions += self._decide(candidates, self.challenge)
        if self.challenge is None:
            actions += self._start(candidates, fired)
        return actions

    def leads(self, duel: Duel, examples: int) -> bool:
        """Asked after every example: the cheap tests first, ``t`` (a square root) last."""
        return len(duel.diffs) >= examples and duel.lead >= self.margin and duel.t >= self.z

    def _step(self, candidates: Candidates, challenge: _Challenge, x: dict[str, Any],
              y: Any) -> None:
        """The challenger predicts, then learns, like the candidates."""
        model = challenge.model
        prediction, proba = model.predict(x)
        model.learn(x, y, served=prediction, proba=proba)
        model.signals.clear()  # its detectors matter once it is promoted
        challenge.duel.update(scored_value(model, prediction, y),
                              candidates.scored.get(challenge.incumbent))

    def _start(self, candidates: Candidates, fired: Fired) -> list[Action]:
        if not fired:
            return []
        champion = candidates.champion
        if candidates.models[champion].version < self.limit // 2:
            return []  # a young champion is a fresh model already
        triggers = [s for name, s in self.drifts(candidates, fired) if name == champion]
        triggers += [s for name, s in fired if name == champion and s.level == "warning"]
        if not triggers:
            return []
        instance, model = self.renew(candidates, champion)
        self.challenge = _Challenge(champion, instance, model, candidates.examples,
                                    Duel(candidates.window, model.is_classifier))
        return [Action("challenge", candidates.examples, candidates.ids[champion], instance,
                       _reason(champion, triggers[0]))]

    def _decide(self, candidates: Candidates, challenge: _Challenge) -> list[Action]:
        duel, age = challenge.duel, candidates.examples - challenge.started_at
        if self.leads(duel, self.min_examples):
            self.challenge = None
            old = candidates.replace(challenge.incumbent, challenge.instance, challenge.model)
            self.replaced(candidates, challenge.incumbent)
            return [Action("promote", candidates.examples, old, challenge.instance,
                           _versus(duel))]
        behind = age >= self.limit // 2 and duel.t <= -self.z
        if behind or age >= self.limit:
            self.challenge = None
            why = "trails" if behind else f"no lead after {age} examples"
            return [Action("retire", candidates.examples, challenge.instance, None,
                           f"{why}: {_versus(duel)}")]
        return []

    def replaced(self, candidates: Candidates, name: str) -> None:
        """Called once a challenger has replaced candidate ``name``."""


class Best(Challenger):
    """Serves the leading candidate, with hysteresis (``margin``, ``z``, ``dwell``)."""

    name = "best"

    def __init__(self, margin: float = 0.01, z: float = 4.0, dwell: int = 300,
                 min_examples: int = 100, limit: int = 1000, pretrain: int = 0) -> None:
        super().__init__(margin, z, min_examples, limit, pretrain)
        if dwell < 1:
            raise CandidatesError(f"dwell must be >= 1 (got {dwell})")
        self.dwell = dwell
        self.duels: dict[str, Duel] = {}
        """Each shadow against the champion, since either last changed."""

    def react(self, candidates: Candidates, x: dict[str, Any], y: Any,
              fired: Fired) -> list[Action]:
        champion, scored, duels = candidates.champion, candidates.scored, self.duels
        champion_scored = scored.get(champion)
        for name, model in candidates.models.items():
            if name != champion:
                duel = duels.get(name)
                if duel is None:
                    duel = duels[name] = Duel(candidates.window, model.is_classifier)
                duel.update(scored.get(name), champion_scored)
        actions = []
        challenged = self.challenge.incumbent if self.challenge is not None else None
        for name, signal in self.drifts(candidates, fired):
            if name not in (champion, challenged):
                actions.append(self.reset(candidates, name, _reason(name, signal)))
                duels.pop(name, None)
        actions += super().react(candidates, x, y, fired)
        return actions + self._switch(candidates)

    def replaced(self, candidates: Candidates, name: str) -> None:
        if name == candidates.champion:
            self.duels.clear()
        else:
            self.duels.pop(name, None)

    def _switch(self, candidates: Candidates) -> list[Action]:
        leaders = [(duel.lead, name) for name, duel in self.duels.items()
                   if self.leads(duel, self.dwell)]
        if not leaders:
            return []
        _, leader = max(leaders)
        old = candidates.champion
        reason = _versus(self.duels[leader])
        candidates.crown(leader)
        self.duels.clear()
        return [Action("switch", candidates.examples, candidates.ids[old],
                       candidates.ids[leader], reason)]


POLICIES: dict[str, type[Policy]] = {
    policy.name: policy for policy in (Alert, Reset, Challenger, Best)
}
"""Each policy class by the name a pipeline chooses it by."""
