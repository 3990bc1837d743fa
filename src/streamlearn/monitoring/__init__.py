"""Prometheus metrics and the /metrics endpoint: each metric declared once (:mod:`.catalog`),
built on a registry and bound per pipeline (:mod:`.metrics`), with one view per subsystem
(:mod:`.views`) and a histogram observed a batch at a time (:mod:`.batch_histogram`); served
by :mod:`.exporter`. The streams drive the metrics; nothing here reads Kafka."""

__all__: list[str] = []
