"""The stages of a pipeline: one per entity its features are keyed by.

Features of the key field are computed where the events arrive. Features ``by`` another
field need that field's entities in one place, so the events are re-keyed: the first stage
forwards each event (with the features computed so far) to ``<name>.by-<field>``, keyed by
the field's value, where the next stage computes that field's features; the last stage
predicts and learns. Without ``by`` features there is one stage, and nothing is forwarded.

>>> from streamlearn import Pipeline, features as f
>>> spec = Pipeline(name="pay", key_field="card", model=dict,
...                 features={"amount": "numeric", "shop": "categorical"},
...                 derived={"n": f.count("1h"), "shop_n": f.count("1h", by="shop")})
>>> [(s.topic, s.entity_field, list(s.features.derived), s.next_field) for s in spec.stages]
[('pay', 'card', ['n'], 'shop'), ('pay.by-shop', 'shop', ['shop_n'], None)]
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from streamlearn.features.declare import Feature
from streamlearn.features.featureset import FeatureSet
from streamlearn.features.online import DEFAULT_OPERATOR

__all__ = ["Stage", "plan_stages", "stage_topic"]


@dataclass(frozen=True)
class Stage:
    index: int
    topic: str
    """Its input: the events topic, or ``<name>.by-<field>``."""
    entity_field: str
    features: FeatureSet
    operator: str
    """Prefix of its records in ``<name>.state``."""
    next_field: str | None
    """The field its output is keyed by; None for the last stage, which predicts."""

    @property
    def final(self) -> bool:
        return self.next_field is None


def stage_topic(name: str, field: str) -> str:
    return f"{name}.by-{field}"


def plan_stages(name: str, events_topic: str, key_field: str,
                derived: Mapping[str, Feature], raw: Mapping[str, str],
                options: Mapping[str, Any]) -> tuple[Stage, ...]:
    """The stages, in order: the key field's, then each ``by`` field's in first use order."""
    groups: dict[str, dict[str, Feature]] = {key_field: {}}
    for feature_name, feature in derived.items():
        field = feature.by if isinstance(feature, Feature) and feature.by else key_field
        if isinstance(feature, Feature) and feature.kind == "transform" and feature.by:
            raise ValueError(f"derived feature {feature_name!r}: a transform has no entity")
        groups.setdefault(field, {})[feature_name] = feature
    fields = list(groups)
    stages = []
    for index, field in enumerate(fields):
        last = index == len(fields) - 1
        stages.append(Stage(
            index=index,
            topic=events_topic if index == 0 else stage_topic(name, field),
            entity_field=field,
            features=FeatureSet(groups[field], raw, **options),
            operator=DEFAULT_OPERATOR if index == 0 else f"{DEFAULT_OPERATOR}.by-{field}",
            next_field=None if last else fields[index + 1],
        ))
    return tuple(stages)
