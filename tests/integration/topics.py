"""Reading topics the way the tests need: whole, up to the end offsets, never an idle window.

``streamlearn.tools.tail.read_to_end`` takes the end offsets first and reads until it has reached
them, so a duplicate already written cannot hide behind a quiet period; ``wait_until`` is
the one deadline loop the tests share.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

import orjson

from streamlearn.config import Settings
from streamlearn.tools.tail import read_to_end

T = TypeVar("T")


def wait_until(check: Callable[[], T], timeout: float, what: str, every: float = 0.5) -> T:
    """``check()``'s first truthy value; AssertionError naming ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(every)


def predictions(kafka: str, topic: str, settings: Settings | None = None
                ) -> list[dict[str, Any]]:
    """Every prediction on ``topic`` (duplicates included), with its partition."""
    return [{**orjson.loads(r.value or b"{}"), "_partition": r.partition}
            for r in read_to_end(kafka, topic, settings or Settings())]


def first_per_event(records: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """What a consumer keeps under at-least-once: the first prediction of each event_id."""
    kept: dict[str, dict[str, Any]] = {}
    for record in records:
        kept.setdefault(record["event_id"], record)
    return kept


def wait_for_predictions(kafka: str, topic: str, event_ids: set[str], timeout: float,
                         alive: Callable[[], bool] = lambda: True,
                         settings: Settings | None = None) -> dict[str, dict[str, Any]]:
    """The first prediction of each of ``event_ids``, once all of them are there."""

    def check() -> dict[str, dict[str, Any]] | None:
        assert alive(), "the worker exited"
        kept = first_per_event(predictions(kafka, topic, settings))
        return kept if event_ids <= kept.keys() else None

    return wait_until(check, timeout, f"{len(event_ids)} predictions on {topic}", every=1.0)


def model_scores(port: int | str, pipeline: str, partition: str = "0") -> dict[str, float]:
    """The ``streamlearn_model_score`` samples of one partition on a worker's /metrics, by
    metric (Prometheus' text format writes each float exactly: ``repr``)."""
    import urllib.request

    from prometheus_client.parser import text_string_to_metric_families

    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
            text = response.read().decode()
    except OSError:
        return {}
    return {s.labels["metric"]: s.value
            for family in text_string_to_metric_families(text)
            if family.name == "streamlearn_model_score" for s in family.samples
            if s.labels.get("pipeline") == pipeline and s.labels.get("partition") == partition}


def rivers_scores(dataset: Callable[[], Any], model: Callable[[], Any],
                  chosen: list[tuple[str, Any]]) -> dict[str, float]:
    """Each metric of ``chosen`` ((name, River metric)) by River's progressive_val_score."""
    from river import evaluate

    return {name: evaluate.progressive_val_score(dataset(), model(), metric.clone()).get()
            for name, metric in chosen}


def final_scores(port: int | str, pipeline: str, examples: int,
                 timeout: float = 30) -> dict[str, float]:
    """The exported scores once the model has scored ``examples`` (its
    ``streamlearn_examples_learned_total`` reached them and the batch's gauges are set)."""
    import urllib.request

    def done() -> dict[str, float] | None:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
                text = r.read().decode()
        except OSError:
            return None
        learned = 'streamlearn_examples_learned_total{'
        total = sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
                    if line.startswith(learned) and f'pipeline="{pipeline}"' in line)
        return model_scores(port, pipeline) if total >= examples else None

    return wait_until(done, timeout, f"{examples} examples scored")
