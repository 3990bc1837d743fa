"""The user-facing pipeline spec, and loading it from a short Python file.

A pipeline file defines one module-level ``pipeline``::

    from river import linear_model, preprocessing
    from streamlearn import Pipeline

    pipeline = Pipeline(
        name="phishing",
        key_field="event_id",
        event_id_field="event_id",
        features={"long_url": "numeric", "https": "numeric", "ip_in_url": "numeric"},
        label_field="is_phishing",
        label_type="boolean",
        model=lambda: preprocessing.StandardScaler() | linear_model.LogisticRegression(),
    )

Features are declared with their types (``numeric``, ``categorical``, ``boolean``; see
:mod:`streamlearn.spec.schema`); ``streamlearn infer SOURCE`` writes the declaration from a sample.
Topics derive from the name: events on ``<events_topic>`` (default: the name), predictions
on ``<name>.predictions``, dead letters on ``<name>.dlq``, model snapshots on
``<name>.models``.

>>> p = Pipeline(name="fraud", key_field="card", features={"amount": "numeric"},
...              label_field="is_fraud", label_type="boolean", model=dict)
>>> p.events_topic, p.predictions_topic, p.dlq_topic, p.models_topic, p.group_id
('fraud', 'fraud.predictions', 'fraud.dlq', 'fraud.models', 'streamlearn-fraud')
>>> sorted(p.topics)
['fraud', 'fraud.dlq', 'fraud.drift', 'fraud.models', 'fraud.predictions', 'fraud.served']
>>> Pipeline(name="bad name", key_field="k", features={}, model=dict)
Traceback (most recent call last):
...
streamlearn.errors.PipelineError: pipeline name 'bad name' may only use letters, digits, ...
"""

from __future__ import annotations

import copy
import hashlib
import re
import runpy
import traceback
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import orjson

from streamlearn.errors import PipelineError
from streamlearn.features import offline
from streamlearn.features.declare import Duration, Feature, parse_duration
from streamlearn.features.featureset import (
    DEFAULT_LATENESS,
    DEFAULT_MAX_ENTITY_EVENTS,
    DEFAULT_TTL,
    FeatureSet,
)
from streamlearn.features.stages import Stage, plan_stages
from streamlearn.models.online import is_classifier
from streamlearn.models.policies import POLICIES, Policy
from streamlearn.models.scoring import ALERT_THRESHOLDS, ROLLING_WINDOW, MetricError, Scoring
from streamlearn.spec.schema import Schema, check_types

__all__ = ["Pipeline", "load_pipeline"]

LEARNING_MODES = ("auto", "global", "per_partition")
DEFAULT_LABEL_TTL = "1d"
_TOPIC_NAME = re.compile(r"^[A-Za-z0-9._-]{1,200}$")
_CANDIDATE_NAME = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
_ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+")


@dataclass(frozen=True)
class Pipeline:
    """What to read, how to key it, what to learn, and which model to learn it with."""

    name: str
    key_field: str
    model: Callable[[], Any] = None  # type: ignore[assignment]  # set from models= if None
    """A factory that returns a fresh River estimator (called once per model). With
    ``models``, the champion's factory."""
    features: Mapping[str, str] | None = None
    """The fields the model sees, with their types: ``{"amount": "numeric", ...}``."""
    label_field: str | None = None
    """Field carrying the label inside the event; None when labels arrive separately."""
    label_type: str | None = None
    """Type of the label (``boolean``, ``categorical`` or ``numeric``); needs label_field."""
    event_id_field: str | None = None
    """Field carrying a unique event id; else the id is ``<topic>-<partition>-<offset>``."""
    time_field: str | None = None
    """Field carrying the event time; else the Kafka record timestamp (ms) is used."""
    events_topic: str = ""
    partitions: int = 1
    """Partitions of the pipeline's topics; 1 keeps strict event order for exact parity."""
    derived: Mapping[str, Feature] | None = None
    """Derived features by name: ``{"n_10m": features.count("10m"), ...}`` (per key_field)."""
    lateness: Duration = DEFAULT_LATENESS
    """How much older than its entity's newest event an event may be and still count."""
    entity_ttl: Duration = DEFAULT_TTL
    """Event time after which an idle entity's feature state is dropped."""
    max_entity_events: int = DEFAULT_MAX_ENTITY_EVENTS
    """Events one entity holds at most (the oldest beyond it are dropped, and counted)."""
    learning: str = "auto"
    """Where the model learns: ``"global"`` (one learner for the whole cluster, fed by the
    label join through ``<name>.training``; every worker serves its snapshots),
    ``"per_partition"`` (each input partition learns its own model from labels inside its
    events; on one partition this is exact River parity) or ``"auto"``: per partition on one
    partition with labels in the events, else global."""
    label_ttl: Duration = DEFAULT_LABEL_TTL
    """Event time a served prediction waits for its label on ``<name>.labels`` (global)."""
    models: Mapping[str, Callable[[], Any]] | None = None
    """Candidate models by name, instead of ``model``: ``{"lr": ..., "tree": ...}``. The
    learner trains every one on every example; predictors serve the champion and compute the
    others in shadow (global learning)."""
    champion: str | None = None
    """The candidate served first (default: the first of ``models``)."""
    drift_policy: Any = "alert"
    """What the learner does when a candidate's error drifts: ``"alert"``, ``"reset"``,
    ``"challenger"``, ``"best"`` (see :mod:`streamlearn.models.policies`), or a policy
    instance with other settings, e.g. ``policies.Challenger(margin=0.02)``."""
    metrics: Sequence[Any] | None = None
    """The metrics every model is scored with, prequentially and over its rolling window:
    river.metrics objects or names (``[metrics.ROCAUC(), "accuracy"]``; see
    :mod:`streamlearn.models.scoring`). The first is the primary one (``top``, ``models
    list``, the report, the alert rule). Default by ``label_type``: boolean ROC AUC and
    accuracy, categorical macro F1 and accuracy, numeric MAE and RMSE."""
    positive: Any = True
    """The positive class for binary metrics (ROC AUC, F1, precision...), when it is not
    ``True``: e.g. ``positive="fraud"`` for labels ``"fraud"``/``"legit"``."""
    alert_threshold: float | None = None
    """Where the shipped alert fires on the primary metric's rolling value: below it when
    bigger is better, above it otherwise. Default by metric (ROC AUC 0.7, accuracy 0.6, F1
    0.3; see ``models.scoring.ALERT_THRESHOLDS``); error metrics (MAE...) have none."""
    alert_min_examples: int = ROLLING_WINDOW
    """Examples a model must have scored before the alert may fire."""
    stages: tuple[Stage, ...] = field(init=False, repr=False, compare=False)
    """The compiled ``derived`` declaration: one stage per entity field (see features.stages)."""
    feature_set: FeatureSet = field(init=False, repr=False, compare=False)
    """The first stage's features (those of ``key_field``)."""

    def __post_init__(self) -> None:
        if not _TOPIC_NAME.match(self.name):
            raise PipelineError(
                f"pipeline name {self.name!r} may only use letters, digits, '.', '_' and '-'"
            )
        if not self.events_topic:
            object.__setattr__(self, "events_topic", self.name)
        if not _TOPIC_NAME.match(self.events_topic):
            raise PipelineError(f"events_topic {self.events_topic!r} is not a valid topic name")
        self._check_models()
        if self.partitions < 1:
            raise PipelineError(f"pipeline {self.name!r}: partitions must be >= 1")
        if not self.key_field:
            raise PipelineError(f"pipeline {self.name!r}: key_field is required")
        self._check_types()
        try:
            stages = plan_stages(
                self.name, self.events_topic, self.key_field, self.derived or {},
                self.features or {}, {
                    "label_field": self.label_field, "lateness": self.lateness,
                    "ttl": self.entity_ttl, "max_events": self.max_entity_events,
                },
            )
        except ValueError as exc:
            raise PipelineError(f"pipeline {self.name!r}: {exc}") from None
        clash = self.reserved_fields & set(self.derived or {})
        if clash:
            raise PipelineError(f"pipeline {self.name!r}: derived features {sorted(clash)} "
                                "have the name of the key, id, time or label field")
        if self.label_field and any(s.entity_field == self.label_field for s in stages):
            raise PipelineError(f"pipeline {self.name!r}: features cannot be by the label")
        self._check_learning()
        if self.metrics is not None:
            try:
                Scoring.of(self.metrics, self.positive)
            except MetricError as exc:
                raise PipelineError(f"pipeline {self.name!r}: metrics: {exc}") from None
        object.__setattr__(self, "stages", stages)
        object.__setattr__(self, "feature_set", stages[0].features)

    def _check_types(self) -> None:
        if self.features is None:
            raise PipelineError(
                f"pipeline {self.name!r}: declare its features with their types, "
                "features={'amount': 'numeric', ...} (`streamlearn infer SOURCE` writes them)"
            )
        try:
            check_types(self.features, "feature")
            if self.label_field:
                check_types({self.label_field: str(self.label_type)}, "label")
            elif self.label_type:  # labels on <name>.labels are checked against it
                check_types({"label": self.label_type}, "label")
        except ValueError as exc:
            raise PipelineError(f"pipeline {self.name!r}: {exc}") from None
        clash = self.reserved_fields & set(self.features)
        if clash:
            raise PipelineError(
                f"pipeline {self.name!r}: {sorted(clash)} cannot be both a feature and the "
                "key, id, time or label field"
            )

    def _check_models(self) -> None:
        if self.models is not None:
            champion = next(iter(self.models), "") if self.champion is None else self.champion
            # (a copy made by dataclasses.replace has model = the champion's factory already)
            if self.model is not None and self.model is not self.models.get(champion):
                raise PipelineError(f"pipeline {self.name!r}: give model= or models=, not both")
            if not self.models or not all(callable(f) for f in self.models.values()):
                raise PipelineError(f"pipeline {self.name!r}: models must map names to "
                                    "factories (callables)")
            bad = [n for n in self.models if not _CANDIDATE_NAME.match(str(n))]
            if bad:
                raise PipelineError(f"pipeline {self.name!r}: candidate names {bad} may only "
                                    "use letters, digits, '.', '_' and '-'")
            if champion not in self.models:
                raise PipelineError(f"pipeline {self.name!r}: champion {champion!r} is not one "
                                    f"of the models {list(self.models)}")
            object.__setattr__(self, "champion", champion)
            object.__setattr__(self, "model", self.models[champion])
        elif self.champion is not None:
            raise PipelineError(f"pipeline {self.name!r}: champion= needs models=")
        if not callable(self.model):
            raise PipelineError(f"pipeline {self.name!r}: model must be a factory (a callable)")
        policy = self.drift_policy
        if not (isinstance(policy, Policy) or policy in POLICIES):
            raise PipelineError(f"pipeline {self.name!r}: drift_policy={policy!r}; use one of "
                                f"{', '.join(POLICIES)} or a policy instance")

    def _check_learning(self) -> None:
        if self.learning not in LEARNING_MODES:
            raise PipelineError(f"pipeline {self.name!r}: learning={self.learning!r}; use one "
                                f"of {', '.join(LEARNING_MODES)}")
        if self.learning == "per_partition" and self.has_candidates:
            raise PipelineError(f"pipeline {self.name!r}: candidate models and drift policies "
                                "need one learner: learning='global' (or 'auto')")
        try:
            parse_duration(self.label_ttl)
        except ValueError as exc:
            raise PipelineError(f"pipeline {self.name!r}: label_ttl: {exc}") from None

    @property
    def global_learner(self) -> bool:
        """True when one learner learns for every partition (``learning``)."""
        if self.learning == "auto":
            return self.has_candidates or not (self.partitions == 1 and self.label_field)
        return self.learning == "global"

    @property
    def has_candidates(self) -> bool:
        """True when the learner keeps a candidate set: several models, or a policy that
        acts (a single ``model`` with the ``alert`` policy is one plain model)."""
        return self.models is not None or self.drift_policy != "alert"

    def candidates(self) -> dict[str, Callable[[], Any]]:
        """Each candidate's factory by name, the champion first (one model: its River name)."""
        if self.models is None:
            return {str(self.model()): self.model}
        assert self.champion is not None
        return {self.champion: self.models[self.champion],
                **{n: f for n, f in self.models.items() if n != self.champion}}

    @property
    def scoring(self) -> Scoring:
        """The metrics every model of this pipeline keeps (``metrics``, or the defaults of
        its label type); checked against the model's task once."""
        cached = self.__dict__.get("_scoring")
        if cached is not None:
            return cached
        estimator = self.model()
        classifier = is_classifier(estimator)
        if self.metrics is None:
            scoring = Scoring.default(self.label_type, classifier, self.positive)
        else:
            scoring = Scoring.of(self.metrics, self.positive)
            try:
                scoring.check(estimator)
            except MetricError as exc:
                raise PipelineError(f"pipeline {self.name!r}: metrics: {exc}") from None
        object.__setattr__(self, "_scoring", scoring)
        return scoring

    @property
    def metric_threshold(self) -> float | None:
        """The alert threshold of the primary metric's rolling value (None: no alert)."""
        if self.alert_threshold is not None:
            return self.alert_threshold
        return ALERT_THRESHOLDS.get(self.scoring.names[0])

    def policy(self) -> Any:
        """A fresh drift policy object for this pipeline's learner."""
        policy = self.drift_policy
        if isinstance(policy, str):
            return POLICIES[policy]()
        return copy.deepcopy(policy)

    @property
    def commands_topic(self) -> str:
        """Signed registry commands (promote, rollback) for the learner (one partition)."""
        return f"{self.name}.commands"

    @property
    def label_ttl_ms(self) -> float:
        return parse_duration(self.label_ttl)

    @property
    def labels_topic(self) -> str:
        """Labels that arrive on their own: ``{"event_id", "label", "time"?}`` by event id."""
        return f"{self.name}.labels"

    @property
    def training_topic(self) -> str:
        """Joined examples, one partition: the learner's total order (global learning)."""
        return f"{self.name}.training"

    @property
    def predictions_topic(self) -> str:
        return f"{self.name}.predictions"

    @property
    def dlq_topic(self) -> str:
        return f"{self.name}.dlq"

    @property
    def models_topic(self) -> str:
        """Compacted topic of signed model snapshots."""
        return f"{self.name}.models"

    @property
    def drift_topic(self) -> str:
        """Drift events: what a detector saw, where, and what was done about it."""
        return f"{self.name}.drift"

    @property
    def served_topic(self) -> str:
        """What each prediction was made from, keyed by event id (ARCHITECTURE.md)."""
        return f"{self.name}.served"

    @property
    def state_topic(self) -> str:
        """Compacted topic of per-entity feature state checkpoints."""
        return f"{self.name}.state"

    @property
    def group_id(self) -> str:
        """Consumer group of the pipeline's workers."""
        return f"streamlearn-{self.name}"

    @property
    def topics(self) -> dict[str, int]:
        """Every topic the pipeline reads or writes, with its partition count."""
        return {
            self.events_topic: self.partitions,
            self.predictions_topic: self.partitions,
            self.served_topic: self.partitions,
            **{s.topic: self.partitions for s in self.stages[1:]},
            self.dlq_topic: 1,
            self.drift_topic: 1,
            self.models_topic: 1,
            **({self.state_topic: self.partitions}
               if self.derived or self.global_learner else {}),
            **({self.labels_topic: self.partitions, self.training_topic: 1,
                self.commands_topic: 1}
               if self.global_learner else {}),
        }

    @property
    def reserved_fields(self) -> frozenset[str]:
        """Fields that are never features."""
        named = (self.key_field, self.label_field, self.event_id_field, self.time_field)
        return frozenset(f for f in named if f)

    def fingerprint(self) -> str:
        """Hash of what a model snapshot depends on: fields, types, model and partitions.

        The model enters through River's ``repr`` (class and every hyperparameter), with
        memory addresses removed so that two processes agree.
        """
        model = _ADDRESS.sub("", repr(self.model()))
        body = orjson.dumps([
            self.key_field, self.event_id_field, self.time_field, self.label_field,
            self.label_type, list((self.features or {}).items()), self.partitions, model,
            *([[s.features.describe() for s in self.stages]] if self.derived else []),
            # Global learning changes what a snapshot holds (one model, and the predictors'
            # own state); older fingerprints stay as they were.
            *(["global"] if self.global_learner else []),
            # Candidates change what the learner's snapshot holds (a candidate set).
            *([sorted((n, _ADDRESS.sub("", repr(f()))) for n, f in self.models.items())]
              if self.models is not None else []),
            *(["candidates"] if self.has_candidates else []),
        ])
        return hashlib.sha256(body).hexdigest()[:16]

    def schema(self) -> Schema:
        """The compiled check of one event against the declared types."""
        label = (self.label_field, str(self.label_type)) if self.label_field else None
        other = tuple(f for f in (self.key_field, self.event_id_field, self.time_field) if f)
        return Schema(self.features or {}, label, other)

    def compute_features(self, frame: Any) -> Any:
        """The model's input for each row of a pandas DataFrame of events, exactly as the
        worker serves it (see :func:`streamlearn.features.offline.compute`)."""
        return offline.compute(self, frame)

    @property
    def final_stage(self) -> Stage:
        """The stage that predicts and learns (the only one without ``by`` features)."""
        return self.stages[-1]

    def renamed(self, name: str) -> Pipeline:
        """The same pipeline under another name (its default topics follow the name)."""
        events = self.events_topic if self.events_topic != self.name else ""
        return replace(self, name=name, events_topic=events)


def load_pipeline(path: str | Path) -> Pipeline:
    """Run a pipeline file and return the ``Pipeline`` it defines as ``pipeline``."""
    path = Path(path)
    if not path.is_file():
        raise PipelineError(f"pipeline file {str(path)!r} not found")
    try:
        namespace = runpy.run_path(str(path), run_name="streamlearn_pipeline")
    except PipelineError:
        raise
    except SyntaxError as exc:
        raise PipelineError(f"pipeline file {str(path)!r} line {exc.lineno}: {exc.msg}"
                            ) from None
    except Exception as exc:
        # The user's line, not runpy's: the innermost frame in the pipeline file.
        lines = [frame.lineno for frame in traceback.extract_tb(exc.__traceback__)
                 if frame.filename == str(path)]
        where = f" line {lines[-1]}" if lines else ""
        raise PipelineError(f"pipeline file {str(path)!r}{where} failed: "
                            f"{type(exc).__name__}: {exc}") from exc
    pipeline = namespace.get("pipeline")
    if not isinstance(pipeline, Pipeline):
        raise PipelineError(
            f"pipeline file {str(path)!r} must define `pipeline = Pipeline(...)` at module level"
        )
    return pipeline
