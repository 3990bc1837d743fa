"""``streamlearn reset``: forget what a pipeline learned, so its next run relearns.

What it learned is in its model snapshots, its feature state, the re-keyed copies of its
events and, under global learning, the learner's examples and commands; where its workers
got to is in its consumer groups. Events, predictions and dead letters are kept.

>>> from streamlearn import Pipeline, features as f
>>> spec = Pipeline(name="pay", key_field="card", model=dict, label_field="y",
...                 label_type="boolean", features={"shop": "categorical"},
...                 derived={"shop_n": f.count("1h", by="shop")}, learning="global")
>>> learned_topics(spec)
['pay.models', 'pay.state', 'pay.by-shop', 'pay.training', 'pay.commands']
"""

from __future__ import annotations

from dataclasses import dataclass

from streamlearn.errors import StreamlearnError
from streamlearn.kafka.admin import GroupNotEmpty, delete_group, delete_topics, topic_partitions
from streamlearn.spec.pipeline import Pipeline

__all__ = ["Reset", "learned_topics", "reset_pipeline"]


@dataclass(frozen=True)
class Reset:
    topics: list[str]
    """The topics deleted (those of the request that existed)."""
    group_deleted: bool
    """False if the workers' consumer group did not exist."""


def learned_topics(spec: Pipeline) -> list[str]:
    """The topics holding what ``spec`` learned, the ones a reset deletes."""
    # Re-keyed copies of the events go too: their stages' state is forgotten with the rest.
    topics = [spec.models_topic, spec.state_topic, *(s.topic for s in spec.stages[1:])]
    if spec.global_learner:  # the learner's examples: rebuilt by the joins from the start
        # Commands go with the snapshots that record which were applied (else replayed).
        topics += [spec.training_topic, spec.commands_topic]
    return topics


def reset_pipeline(spec: Pipeline, bootstrap: str, topics: list[str]) -> Reset:
    """Delete the pipeline's consumer groups, then those of ``topics`` that exist.

    Refused (:class:`StreamlearnError`) while workers are in the group.
    """
    # The group first: while workers are in it, nothing is deleted.
    try:
        group_deleted = delete_group(bootstrap, spec.group_id)
        if spec.global_learner:
            delete_group(bootstrap, f"{spec.group_id}-learner")
    except GroupNotEmpty:
        raise StreamlearnError(
            f"consumer group {spec.group_id} still has members: stop the pipeline's "
            f"workers (`streamlearn run` of {spec.name!r}) first, then reset"
        ) from None
    present = [t for t in topics if topic_partitions(bootstrap, t) is not None]
    delete_topics(bootstrap, present)
    return Reset(present, group_deleted)
