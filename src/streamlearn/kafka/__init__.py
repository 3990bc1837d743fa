"""The Kafka layer: every Kafka client of the project is configured here, over the pure core.

Three client libraries, each where it fits:

- confluent-kafka (librdkafka) where speed matters: the worker's hot path and its stores,
  and the tools that read or write what the stores hold (``models``, ``bootstrap``,
  ``report``). ``clients`` builds their config, ``producer`` is its producer that waits
  for room instead of raising, ``snapshots`` the model store on ``<name>.models`` with the
  confluent read-to-end (``records``) the stores restore with.
- kafka-python for admin calls and the interactive tools (``produce``, ``tail``, ``dlq``,
  ``demo``): ``python_clients`` makes every such producer, consumer (no group,
  ``read_committed``) and admin client; ``admin`` holds the admin calls (readiness,
  topics, consumer groups); ``reader`` reads a topic to its end or from an offset on.
- aiokafka only inside faust, which brings it; ``streams.app`` (the one module that imports
  faust) builds faust's credentials from ``security``'s table.

``security`` translates the security settings for all three, from one table. ``records``
holds the wire formats, with no client at all.
"""

__all__: list[str] = []
