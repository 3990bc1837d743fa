"""Every Prometheus metric in one module (:mod:`.metrics`) and the /metrics endpoint
(:mod:`.exporter`). The streams drive the metrics; nothing here reads Kafka."""

__all__: list[str] = []
