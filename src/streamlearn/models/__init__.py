"""River models behind a small interface (:mod:`.online`) and their signed snapshots
(:mod:`.snapshot`). Knows nothing of Kafka or faust."""

__all__: list[str] = []
