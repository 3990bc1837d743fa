"""The pure-Python murmur2 puts every key where Kafka's clients do."""

from __future__ import annotations

import random

from kafka.partitioner.default import murmur2 as kafka_python_murmur2

from streamlearn.features.offline import key_partition as offline_key_partition
from streamlearn.spec.partitioner import key_partition, murmur2


def test_murmur2_equals_kafka_pythons_on_every_length():
    rng = random.Random(7)
    for _ in range(5000):
        data = bytes(rng.randrange(256) for _ in range(rng.randrange(0, 70)))
        assert murmur2(data) == kafka_python_murmur2(data), data


def test_keys_land_where_kafka_puts_them():
    rng = random.Random(8)
    for _ in range(2000):
        key = f"card-{rng.randrange(10**9)}"
        partitions = rng.randrange(1, 64)
        expected = (kafka_python_murmur2(key.encode()) & 0x7FFFFFFF) % partitions
        assert key_partition(key.encode(), partitions) == expected
        assert offline_key_partition(key, partitions) == expected
