"""A librdkafka producer whose ``produce`` waits for room instead of raising.

librdkafka holds at most ``queue.buffering.max.messages`` records that the broker has not
acknowledged yet and raises ``BufferError`` beyond that. The worker's bursts can pass it: a
label join checkpointed on a rebalance writes one record per label still waiting for its
prediction (all of them, when a backlog of labels is read ahead of its events), and a big
model's snapshot is many chunks. Raising there crashed the worker when a second one joined
its group under load; waiting lets the broker acknowledge what is queued (delivery reports
are served meanwhile), which is what every caller wants.

>>> producer = Producer({"bootstrap.servers": "127.0.0.1:9", "message.timeout.ms": 50,
...                      "queue.buffering.max.messages": 2, "log_level": 0})
>>> for i in range(3):  # the third waits until the first ones time out, then is queued
...     producer.produce("t", b"v")
>>> len(producer) <= 2
True
>>> producer.flush(5)
0
"""

from __future__ import annotations

from typing import Any

import confluent_kafka

__all__ = ["Producer"]

WAIT_S = 0.05


class Producer(confluent_kafka.Producer):
    def produce(self, *args: Any, **kwargs: Any) -> None:
        while True:
            try:
                return super().produce(*args, **kwargs)
            except BufferError:  # librdkafka's queue is full: let the broker drain it
                self.poll(WAIT_S)
