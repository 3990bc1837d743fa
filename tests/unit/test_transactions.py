"""How the transactional producer's errors are handled (librdkafka's three classes)."""

from __future__ import annotations

from typing import Any

import pytest
from confluent_kafka import KafkaError, KafkaException

from streamlearn.streams.transactions import (
    ProducerFenced,
    TransactionAborted,
    Transactions,
    transactional_id,
)


class FakeProducer:
    """Records the calls; ``fail`` maps a method to the errors it raises, in turn."""

    def __init__(self, config: dict[str, Any]) -> None:
        self.config = config
        self.calls: list[str] = []
        self.fail: dict[str, list[KafkaError]] = {}

    def __getattr__(self, name: str) -> Any:
        def call(*args: Any, **kwargs: Any) -> None:
            self.calls.append(name)
            errors = self.fail.get(name)
            if errors:
                raise KafkaException(errors.pop(0))
        return call


def txn() -> tuple[Transactions, FakeProducer]:
    t = Transactions({"bootstrap.servers": "x"}, "g-me-hot-path", make=FakeProducer)
    producer = t.producer
    assert isinstance(producer, FakeProducer)
    assert producer.calls == ["init_transactions", "begin_transaction"]
    assert producer.config["transactional.id"] == "g-me-hot-path"
    assert producer.config["transaction.timeout.ms"] == 10_000
    producer.calls.clear()
    return t, producer


def test_a_commit_sends_the_offsets_then_commits_and_begins_the_next():
    t, producer = txn()
    t.commit(["offsets"], "group")  # type: ignore[list-item]
    assert producer.calls == ["send_offsets_to_transaction", "commit_transaction",
                              "begin_transaction"]
    t.commit([], "group")
    assert producer.calls[3:] == ["commit_transaction", "begin_transaction"]


def test_retriable_errors_retry_the_same_call():
    t, producer = txn()
    producer.fail["commit_transaction"] = [
        KafkaError(KafkaError._TIMED_OUT, "broker away", retriable=True)] * 2
    t.commit([], "group")
    assert producer.calls == ["commit_transaction", "poll"] * 2 + [
        "commit_transaction", "begin_transaction"]


def test_an_abortable_error_aborts_and_asks_for_a_rewind():
    t, producer = txn()
    producer.fail["send_offsets_to_transaction"] = [
        KafkaError(KafkaError.ILLEGAL_GENERATION, "fenced group generation",
                   txn_requires_abort=True)]
    with pytest.raises(TransactionAborted):
        t.commit(["offsets"], "group")  # type: ignore[list-item]
    assert producer.calls == ["send_offsets_to_transaction", "abort_transaction",
                              "begin_transaction"]
    assert t.aborts == 1 and t.commits == 0


def test_a_fatal_error_asks_for_a_new_producer():
    t, producer = txn()
    producer.fail["commit_transaction"] = [
        KafkaError(KafkaError._FENCED, "fenced by a newer instance", fatal=True)]
    with pytest.raises(ProducerFenced):
        t.commit([], "group")
    assert "begin_transaction" not in producer.calls


def test_ids_are_unique_per_process_unless_configured():
    a = transactional_id("g", "", "learner")
    assert a.startswith("g-") and a.endswith("-learner") and a != "g--learner"
    assert transactional_id("g", "pod-3", "hot-path") == "g-pod-3-hot-path"
