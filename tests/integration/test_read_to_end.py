"""Readers "to the end" stop at the partition's end position, not at a record at ``high - 1``.

A transaction ends with a control marker, the partition's last offset, which is never
delivered: a reader that waits for a record at ``high - 1`` would wait until its timeout.
"""

from __future__ import annotations

import time
import uuid

from confluent_kafka import Producer

from streamlearn.kafka.admin import create_topics
from streamlearn.kafka.snapshots import records
from streamlearn.tools.tail import read_to_end

from .topics import wait_until

PROMPTLY_S = 15.0  # well under the readers' 30 s no-progress timeout


def _transaction(producer: Producer, topic: str, values: list[bytes], commit: bool) -> None:
    producer.begin_transaction()
    for value in values:
        producer.produce(topic, key=value, value=value)
    if commit:
        producer.commit_transaction(30)
    else:
        producer.flush(30)  # the records are written, then aborted: on the log, never read
        producer.abort_transaction(30)


def test_readers_stop_at_the_end_position_after_transactions(kafka: str) -> None:
    topic = f"t-{uuid.uuid4().hex[:10]}.txn"
    create_topics(kafka, {topic: 1})
    producer = Producer({"bootstrap.servers": kafka,
                         "transactional.id": f"streamlearn-test-{uuid.uuid4().hex[:8]}"})
    producer.init_transactions(30)
    committed = [b"a", b"b", b"c"]
    _transaction(producer, topic, committed, commit=True)

    # commit_transaction returns once the coordinator has decided; the partition's commit
    # marker (and with it the last stable offset a read_committed reader stops at) follows
    # a moment later, so the first read may see nothing yet, never a part.
    started = time.monotonic()
    wait_until(lambda: [r.value for r in read_to_end(kafka, topic)] == committed, PROMPTLY_S,
               "the committed records to be visible")
    assert [v for _, v in records({"bootstrap.servers": kafka}, topic)] == committed
    assert time.monotonic() - started < PROMPTLY_S

    # Now the log ends in aborted records and their abort marker.
    _transaction(producer, topic, [b"x", b"y"], commit=False)
    started = time.monotonic()
    assert [v for _, v in records({"bootstrap.servers": kafka}, topic)] == committed
    assert [r.value for r in read_to_end(kafka, topic)] == committed
    assert time.monotonic() - started < PROMPTLY_S
