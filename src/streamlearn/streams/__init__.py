"""Kafka side of the worker: the hot path, per-partition processing, snapshots on Kafka,
wire formats, and the faust app that hosts them. Import the modules themselves; this package
re-exports nothing, so importing a wire-format helper never pulls in faust."""

__all__: list[str] = []
