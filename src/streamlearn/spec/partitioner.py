"""Kafka's default partitioner, in pure Python: the partition a key lands in.

Every producer of the project uses murmur2 on the key bytes (librdkafka's
``murmur2_random``, the Java client's and kafka-python's default), so the offline twin, the
scale-out benchmark and the tests can say where a key goes without a Kafka client.

>>> murmur2(b"card-1") & 0x7FFFFFFF
830907359
>>> [key_partition(b"card-1", n) for n in (1, 2, 12)]
[0, 1, 11]
"""

from __future__ import annotations

__all__ = ["key_partition", "murmur2"]

_SEED = 0x9747B28C
_M = 0x5BD1E995
_MASK = 0xFFFFFFFF


def murmur2(data: bytes) -> int:
    """MurmurHash2 as Kafka computes it (``Utils.murmur2``), as an unsigned 32-bit int
    (kafka-python's; Java's is the signed reading of the same bits)."""
    length = len(data)
    h = (_SEED ^ length) & _MASK
    end = length - length % 4
    for i in range(0, end, 4):
        k = int.from_bytes(data[i:i + 4], "little")
        k = (k * _M) & _MASK
        k ^= k >> 24
        k = (k * _M) & _MASK
        h = ((h * _M) & _MASK) ^ k
    extra = length % 4
    if extra == 3:
        h ^= data[end + 2] << 16
    if extra >= 2:
        h ^= data[end + 1] << 8
    if extra >= 1:
        h ^= data[end]
        h = (h * _M) & _MASK
    h ^= h >> 13
    h = (h * _M) & _MASK
    h ^= h >> 15
    return h


def key_partition(key: bytes, partitions: int) -> int:
    """The partition of ``partitions`` that Kafka's default partitioner gives ``key``."""
    return (murmur2(key) & 0x7FFFFFFF) % partitions
