"""The hot path's producers: where outputs go, when they are acknowledged, and the
transactions that carry them under exactly-once.

At-least-once: one idempotent producer for outputs and checkpoints alike; a checkpoint or
a commit waits until every output before it is acknowledged (:meth:`Outputs.settled`).
Exactly-once: outputs go through the transactional producer (``streams.transactions``),
checkpoints through a plain one beside it, so readers of ``<name>.state`` and
``<name>.models`` never wait for a transaction.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from confluent_kafka import KafkaError, KafkaException

from streamlearn.kafka.producer import Producer
from streamlearn.streams.broker_watch import BrokerWatch
from streamlearn.streams.transactions import Transactions

__all__ = ["Outputs"]

log = logging.getLogger(__name__)

FLUSH_WAIT_S = 1.0
SETTLE_WAIT_S = 2.0
MAX_UNACKED = 50_000


def _txn_delivery(error: KafkaError | None, message: Any) -> None:
    if error is not None:
        log.debug("a transactional record failed (%s): its transaction aborts", error)


class Outputs:
    """The producer of outputs (transactional under exactly-once) and of checkpoints."""

    def __init__(self, config: dict[str, Any], watch: BrokerWatch,
                 clock: Callable[[], float], transactional_id: str | None) -> None:
        self.config = {**config, "on_delivery": self._on_delivery}
        self.watch, self.clock = watch, clock
        self._delivery_errors: list[KafkaError] = []
        self._unsettled_since: float | None = None
        self.txn: Transactions | None = None
        """Exactly-once: the transactional producer of every output."""
        self._tid = transactional_id
        if transactional_id is not None:
            self.txn = self.transactions(transactional_id)
            self.producer = self.txn.producer
            self.state_producer = Producer(self.config)
        else:
            self.producer = self.state_producer = Producer(self.config)

    def transactions(self, transactional_id: str) -> Transactions:
        """A transactional producer with this config (the hot path's, or the learner's).
        A record of a transaction that fails is reported by the commit, which aborts it (an
        abort purges what is queued): a delivery error is not the worker's end."""
        return Transactions({**self.config, "on_delivery": _txn_delivery}, transactional_id)

    def renew(self) -> None:
        """A fenced or failed transactional producer gives way to a new one."""
        assert self.txn is not None and self._tid is not None
        self.txn.close()
        self.txn = self.transactions(self._tid)
        self.producer = self.txn.producer

    def produce(self, *args: Any, **kwargs: Any) -> None:
        self.producer.produce(*args, **kwargs)

    def poll(self) -> None:
        """Serve delivery reports (failures only); flush when they failed or pile up."""
        self.producer.poll(0)
        if self.state_producer is not self.producer:
            self.state_producer.poll(0)
        if self._delivery_errors or len(self.producer) > MAX_UNACKED:
            self.flush()

    def flush(self) -> None:
        """Wait until every produced record is acknowledged; a failed delivery is fatal."""
        producers = {id(p): p for p in (self.producer, self.state_producer)}.values()
        while sum(p.flush(FLUSH_WAIT_S) for p in producers):
            if not self.watch.quiet:
                log.warning("waiting for the broker to acknowledge outputs")
        if self._delivery_errors:
            errors, self._delivery_errors = self._delivery_errors, []
            raise KafkaException(errors[0])

    def settled(self) -> bool:
        """True once every output so far is acknowledged; waits only if that is overdue.

        A snapshot or a commit needs every output before it acknowledged. Waiting for that
        (a flush) holds up every event behind it, so the loop takes the first moment when
        nothing is in flight, and flushes only after ``SETTLE_WAIT_S`` without one.
        """
        now = self.clock()
        if len(self.producer) == 0:
            self._unsettled_since = None
            return True
        if self._unsettled_since is None:
            self._unsettled_since = now
        if now - self._unsettled_since < SETTLE_WAIT_S:
            return False
        self.flush()
        self._unsettled_since = None
        return True

    def close(self, timeout: float) -> None:
        self.producer.flush(timeout)
        if self.txn is not None:
            self.txn.close()
            self.state_producer.flush(timeout)

    def _on_delivery(self, error: KafkaError | None, message: Any) -> None:
        if error is not None:
            self._delivery_errors.append(error)
