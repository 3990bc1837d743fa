"""Kafka for everything but the worker's hot path: the security settings translated for
each client library (``security``), admin calls and topic creation (``admin``). The worker's
own confluent-kafka clients are configured from the same translation."""
