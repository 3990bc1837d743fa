"""``learn_history`` leaves no drift signal pending for the live worker."""

from __future__ import annotations

from pathlib import Path

import pytest

from streamlearn.datasets import fraud
from streamlearn.models.online import OnlineModel
from streamlearn.spec.pipeline import load_pipeline
from streamlearn.tools.warm_start import learn_history

ROOT = Path(__file__).resolve().parents[2]


def test_the_historys_drift_signals_are_not_handed_to_the_live_worker(
        monkeypatch: pytest.MonkeyPatch):
    pending: list[int] = []
    learn = OnlineModel.learn

    def counting(self: OnlineModel, *args: object, **kwargs: object) -> object:
        result = learn(self, *args, **kwargs)
        pending.append(len(self.signals))
        return result

    monkeypatch.setattr(OnlineModel, "learn", counting)
    history = learn_history(load_pipeline(ROOT / "examples" / "fraud.py"), fraud.frame(5000))
    assert max(pending) > 0, "the history has drift for the detector to find"
    assert history.model.signals == []  # else the first live event publishes each as drift
