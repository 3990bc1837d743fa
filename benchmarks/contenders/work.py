"""What a user writes around a River model in a hand-written loop (contenders B, C, C2, D).

The same work as streamlearn's processor, minus its metrics: split the event into
features, id and label, predict, keep an accuracy, build the prediction, learn. The id and
label fields are the workload's (``event_id``/``is_phishing``, or ``tx_id``/``is_fraud``).

>>> from river import linear_model
>>> step = PredictLearn(linear_model.LogisticRegression())
>>> key, value = step.handle(b'{"a": 1.0, "event_id": "e1", "is_phishing": true}')
>>> key, orjson.loads(value)["prediction"]
(b'e1', False)
>>> step.version
1
"""

from __future__ import annotations

import argparse
import signal
import time
from types import FrameType
from typing import Any

import orjson
from river import metrics

from benchmarks.workloads import EVENT_ID_FIELD, LABEL_FIELD, WORKLOADS, model_factory

__all__ = ["PredictLearn", "Stop", "kafka_arguments"]


class PredictLearn:
    """Test-then-train on one event; the prediction carries the model version that served."""

    def __init__(self, model: Any, id_field: str = EVENT_ID_FIELD,
                 label_field: str = LABEL_FIELD) -> None:
        self.model = model
        self.id_field = id_field
        self.label_field = label_field
        self.accuracy = metrics.Accuracy()
        self.version = 0
        self._predict = model.predict_proba_one
        self._learn = model.learn_one

    @classmethod
    def for_workload(cls, workload: str) -> PredictLearn:
        w = WORKLOADS[workload]
        return cls(model_factory(workload)(), w.id_field, w.label_field)

    def __call__(self, event: dict[str, Any]) -> dict[str, Any]:
        event_id = event.pop(self.id_field)
        y = event.pop(self.label_field)
        proba = self._predict(event)
        prediction = max(proba, key=proba.get) if proba else None
        if prediction is not None:
            self.accuracy.update(y, prediction)
        out = {
            "event_id": event_id,
            "prediction": prediction,
            "proba": {str(k): p for k, p in proba.items()},
            "model_version": self.version,
            "predicted_at": int(time.time() * 1000),
        }
        self._learn(event, y)
        self.version += 1
        return out

    def handle(self, raw: bytes) -> tuple[bytes, bytes]:
        """(key, value) of the prediction for one JSON event."""
        out = self(orjson.loads(raw))
        return out["event_id"].encode(), orjson.dumps(out)


class Stop:
    """SIGTERM/SIGINT set ``requested``; a loop checks it between batches and exits cleanly."""

    def __init__(self) -> None:
        self.requested = False
        signal.signal(signal.SIGTERM, self.request)
        signal.signal(signal.SIGINT, self.request)

    def request(self, signum: int, frame: FrameType | None) -> None:
        self.requested = True


def kafka_arguments(description: str) -> argparse.ArgumentParser:
    """The command line every Kafka contender takes from the harness."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--input", required=True, help="Topic to consume (from the start).")
    parser.add_argument("--output", required=True, help="Topic to produce predictions to.")
    parser.add_argument("--group", required=True, help="Consumer group (fresh per run).")
    parser.add_argument("--workload", required=True)
    return parser
