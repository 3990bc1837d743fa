"""The worker: the faust app that hosts it (``app``, wired by ``worker``), the hot path and
its parts (``hot_path``, ``outputs``, ``batches``, ``marks``, ``offsets``, ``checkpoint``,
``restore``, ``transactions``), per-partition processing (``processor``), the label join
(``label_join``, ``join``), the global learner (``learner``) and the model it serves
(``serving``), the event-time merge (``merge``, ``catch_up``), the supervisor of
``--workers N`` and test failpoints. Import the modules themselves; this package re-exports
nothing, so importing one never pulls in faust."""

__all__: list[str] = []
