"""The pipeline's declared shape, as every layer needs it: here, how keys map to partitions
(more of the spec moves here with the one-house layout)."""

from streamlearn.spec.partitioner import key_partition, murmur2

__all__ = ["key_partition", "murmur2"]
