"""What a pipeline is, as every layer needs it: the :class:`Pipeline` and its topic names
(``pipeline``), the configs of the topics its worker creates (``topics``), the typed event
schema (``schema``) and how keys map to partitions (``partitioner``, Kafka's murmur2 in pure
Python, so the offline twin needs no Kafka client)."""

from streamlearn.spec.partitioner import key_partition, murmur2

__all__ = ["key_partition", "murmur2"]
