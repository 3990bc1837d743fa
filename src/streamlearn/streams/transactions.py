"""Exactly-once: a worker's outputs and its input offsets commit in one Kafka transaction.

Under ``STREAMLEARN_PROCESSING_GUARANTEE=exactly_once`` every record a worker writes for
its input (predictions, served records, dead letters, drift events, re-keyed events,
training examples, watermark records) goes through one transactional producer; every
``STREAMLEARN_COMMIT_INTERVAL`` seconds the consumed offsets join the transaction
(``send_offsets_to_transaction`` with the consumer's group metadata, KIP-447: the group
coordinator refuses the offsets of a member that lost its partitions) and it commits. A
``read_committed`` consumer sees nothing of a transaction that did not commit.

Errors, as librdkafka classifies them (its INTRODUCTION.md, "Transactional Producer"):

- retriable: the same call again;
- abortable (``txn_requires_abort``, e.g. a fenced group generation): the transaction is
  aborted and :class:`TransactionAborted` tells the caller to rewind its state to the
  committed offsets;
- anything else is fatal (a fenced producer): :class:`ProducerFenced`; the caller makes a
  new producer and restores.

Checkpoints (feature state, model snapshots) are not written here: they go on a producer of
their own, right after a commit, and carry the offsets they reflect (``streams.hot_path``).
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
from collections.abc import Callable
from typing import Any, TypeVar

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka import TopicPartition as TP

from streamlearn.kafka.producer import Producer

__all__ = ["COMMITTED_TIMEOUT_S", "ProducerFenced", "TransactionAborted", "Transactions",
           "discard", "transactional_id"]

log = logging.getLogger(__name__)

T = TypeVar("T")

# A worker killed with a transaction open holds back every read_committed reader of the
# partitions it wrote until the broker aborts it: 10 s, as Kafka Streams sets under
# exactly-once (the client default is 60 s).
TRANSACTION_TIMEOUT_MS = 10_000
RETRY_WAIT_S = 0.1
COMMITTED_TIMEOUT_S = 30.0
"""How long a restore waits for the group's committed offsets: a read_committed consumer's
request waits while a killed member's transaction still holds offsets for them (until the
broker aborts it: the timeout, plus up to its cleanup interval, 10 s by default)."""


def discard(*args: Any, **kwargs: Any) -> None:
    """Where a replay's outputs go (an ``Emit``): they were committed before the crash."""


class TransactionAborted(Exception):
    """The open transaction was aborted: state must go back to the committed offsets."""


class ProducerFenced(Exception):
    """The producer can no longer be used (fenced, or a fatal error): make a new one."""


def transactional_id(group: str, configured: str, role: str) -> str:
    """The producer's transactional id: ``STREAMLEARN_TRANSACTIONAL_ID`` (stable across
    restarts of one worker: its successor aborts what it left open at once) or one unique
    to this process (what it left open is aborted by the broker after the timeout).

    >>> transactional_id("g", "pod-0", "hot-path")
    'g-pod-0-hot-path'
    """
    me = configured or f"{socket.gethostname()}-{os.getpid()}"
    return f"{group}-{me}-{role}"


class Transactions:
    """One transactional producer; a transaction is always open between commits."""

    def __init__(self, config: dict[str, Any], tid: str,
                 make: Callable[[dict[str, Any]], Producer] = Producer) -> None:
        self.tid = tid
        self.producer = make({
            **config,
            "transactional.id": tid,
            "transaction.timeout.ms": TRANSACTION_TIMEOUT_MS,
        })
        # Aborts what an earlier producer with this id left open, and fences it.
        self._retry(lambda: self.producer.init_transactions(TRANSACTION_TIMEOUT_MS / 1000))
        self._begin()
        self.commits = 0
        self.aborts = 0

    def commit(self, offsets: list[TP], group_metadata: Any) -> None:
        """Commit what was written since the last commit with ``offsets``; begin the next.

        Raises :class:`TransactionAborted` (aborted; the next one is open) or
        :class:`ProducerFenced`.
        """
        producer = self.producer
        try:
            if offsets:
                self._retry(lambda: producer.send_offsets_to_transaction(
                    offsets, group_metadata, TRANSACTION_TIMEOUT_MS / 1000))
            self._retry(lambda: producer.commit_transaction(TRANSACTION_TIMEOUT_MS / 1000))
        except KafkaException as exc:
            self._failed(exc)
        self.commits += 1
        self._begin()

    def abort(self) -> None:
        """Abort the open transaction (nothing in it becomes visible) and begin the next."""
        try:
            self._retry(lambda: self.producer.abort_transaction(TRANSACTION_TIMEOUT_MS / 1000))
        except KafkaException as exc:
            raise ProducerFenced(str(exc)) from exc
        self.aborts += 1
        self._begin()

    def _begin(self) -> None:
        try:
            self.producer.begin_transaction()
        except KafkaException as exc:  # only a fatal state refuses it
            raise ProducerFenced(str(exc)) from exc

    def close(self) -> None:
        """Abort what is open (a clean stop commits first) and let the producer go."""
        with contextlib.suppress(KafkaException):
            self.producer.abort_transaction(TRANSACTION_TIMEOUT_MS / 1000)

    def _failed(self, exc: KafkaException) -> None:
        error: KafkaError = exc.args[0]
        if error.txn_requires_abort():
            log.warning("transaction aborted (%s): rewinding to the committed offsets", error)
            self.abort()
            raise TransactionAborted(str(error)) from exc
        log.error("transactional producer %s fenced or failed (%s): a new one takes over",
                  self.tid, error)
        raise ProducerFenced(str(error)) from exc

    def _retry(self, call: Callable[[], T]) -> T:
        """``call`` until it is not refused as retriable (a broker outage is waited out;
        meanwhile the producer's callbacks report it)."""
        attempt = 0
        while True:
            try:
                return call()
            except KafkaException as exc:
                if not exc.args[0].retriable():
                    raise
                if attempt % 50 == 0:  # about every 5 s
                    log.warning("transaction: retrying after %s", exc.args[0])
                attempt += 1
                self.producer.poll(RETRY_WAIT_S)
