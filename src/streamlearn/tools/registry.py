"""The registry commands against a running cluster: list and show versions, send signed
promote and rollback commands and wait for the learner to apply them, export a version.

Reading needs no worker (everything is on ``<name>.models``); a command is applied by the
active learner, so ``promote`` and ``rollback`` wait (``--wait`` seconds) for the version it
publishes and say so if no learner answered.

Every learning mode has versions: under global learning, the learner's candidate sets;
under per-partition learning (labels in the events), each partition's model snapshots,
numbered per partition, with their metrics. Commands need global learning: a partition's
model is its own, learned from its events, and serves only there.
"""

from __future__ import annotations

import os
import pickle
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from confluent_kafka import Consumer, TopicPartition

from streamlearn.config import Settings
from streamlearn.errors import StreamlearnError
from streamlearn.kafka import snapshots
from streamlearn.kafka.admin import topic_partitions
from streamlearn.kafka.clients import kafka_config
from streamlearn.kafka.producer import Producer
from streamlearn.kafka.snapshots import collect_versions, end_offsets
from streamlearn.models.candidates import Candidates
from streamlearn.models.keys import model_key, old_model_keys
from streamlearn.models.online import OnlineModel
from streamlearn.models.registry import (
    CommandRefused,
    Version,
    decode_command,
    encode_command,
    rollback_target,
)
from streamlearn.models.snapshot import (
    GLOBAL_MODEL,
    MANIFEST,
    SnapshotRefused,
    parse_key,
    partition_model,
    progress_key,
    verify,
)
from streamlearn.spec.pipeline import Pipeline

__all__ = ["Exported", "Registry", "RegistryError", "export", "export_mlflow",
           "load_candidate", "model_names", "read_registries", "read_registry", "send_command"]

POLL_S = 0.5


class RegistryError(StreamlearnError):
    """A registry command that cannot be done (no such version, nothing to roll back to)."""


@dataclass
class Registry:
    """What ``<name>.models`` says of the global model's versions."""

    versions: dict[int, Version] = field(default_factory=dict)
    """Stored versions with a manifest, by id."""
    refused: dict[int, str] = field(default_factory=dict)
    """Versions whose manifest is not authentic (or of another spec): why."""
    progress: dict[str, Any] | None = None

    @property
    def newest(self) -> Version | None:
        return self.versions[max(self.versions)] if self.versions else None


def _config(settings: Settings, spec: Pipeline) -> dict[str, Any]:

    return kafka_config(settings, f"streamlearn-registry-{spec.name}")


def _keys(settings: Settings) -> tuple[bytes, tuple[bytes, ...]]:

    return model_key(settings), old_model_keys(settings)


def model_names(spec: Pipeline) -> list[str]:
    """The models with versions: the global one, or one per input partition."""
    if spec.global_learner:
        return [GLOBAL_MODEL]
    return [partition_model(p) for p in range(spec.partitions)]


def model_name(spec: Pipeline, partition: int | None) -> str:
    """The model a command line means: the global one, or partition ``partition``'s (the
    only one when there is one partition)."""
    if spec.global_learner:
        if partition is not None:
            raise RegistryError(f"pipeline {spec.name!r} learns globally: its versions are the "
                                "learner's, not a partition's (drop --partition)")
        return GLOBAL_MODEL
    if partition is None:
        if spec.partitions > 1:
            raise RegistryError(f"pipeline {spec.name!r} learns per partition: say which "
                                f"with --partition (0-{spec.partitions - 1})")
        partition = 0
    if not 0 <= partition < spec.partitions:
        raise RegistryError(f"pipeline {spec.name!r} has partitions 0-{spec.partitions - 1}")
    return partition_model(partition)


def read_registries(spec: Pipeline, settings: Settings) -> dict[str, Registry]:
    """Every version of each of the pipeline's models (:func:`model_names`), checked
    against the signing keys; one read of ``<name>.models``."""
    _require_topic(spec, settings, spec.models_topic)
    key, old = _keys(settings)
    names = model_names(spec)
    registries = {name: Registry() for name in names}
    progress = progress_key(GLOBAL_MODEL).encode()

    def keep_progress(stream: Any) -> Any:
        for raw_key, value in stream:
            if raw_key == progress and value and GLOBAL_MODEL in registries:
                registries[GLOBAL_MODEL].progress = orjson.loads(value)
            yield raw_key, value

    read = snapshots.records(_config(settings, spec), spec.models_topic)
    for name, found in collect_versions(keep_progress(read), names).items():
        registry = registries[name]
        for sid, stored in found.items():
            if stored.manifest is None:
                continue
            try:
                verify(stored.manifest, key, spec.fingerprint(), old)
            except SnapshotRefused as exc:
                registry.refused[sid] = exc.reason
                continue
            registry.versions[sid] = Version(stored.manifest)
    return registries


def read_registry(spec: Pipeline, settings: Settings) -> Registry:
    """Every version of the pipeline's global model, checked against the signing keys."""
    if not spec.global_learner:
        raise RegistryError(COMMANDS_NEED_GLOBAL.format(name=spec.name))
    return read_registries(spec, settings)[GLOBAL_MODEL]


COMMANDS_NEED_GLOBAL = (
    "pipeline {name!r} learns per partition (labels in its events): promote and rollback "
    "need one learner whose model every partition serves (learning='global')")


def _require_topic(spec: Pipeline, settings: Settings, topic: str) -> None:

    if topic_partitions(settings.bootstrap_servers, topic, settings=settings) is None:
        raise RegistryError(f"{topic} does not exist at {settings.bootstrap_servers}: run the "
                            f"pipeline {spec.name!r} first (`streamlearn run PIPELINE_FILE`)")


def _next_seq(spec: Pipeline, settings: Settings, registry: Registry) -> int:
    """One above every command seen (authentic ones) and the newest one applied."""

    key, old = _keys(settings)
    newest = registry.newest
    seq = (newest.manifest.get("command_seq") or 0) if newest else 0
    for _, value in snapshots.records(_config(settings, spec), spec.commands_topic):
        try:
            seq = max(seq, decode_command(value, (key, *old))["seq"])
        except CommandRefused:
            continue
    return seq + 1


def send_command(spec: Pipeline, settings: Settings, command: str, version: int | None,
                 wait: float) -> tuple[int, Version | None]:
    """Send a signed command; returns its seq and the version the learner published for it
    (None if none did within ``wait`` seconds)."""
    if not spec.global_learner:
        raise RegistryError(COMMANDS_NEED_GLOBAL.format(name=spec.name))
    registry = read_registry(spec, settings)
    if command == "promote" and version not in registry.versions:
        why = registry.refused.get(version or -1)
        raise RegistryError(f"version {version} of {spec.name!r} is not stored"
                            + (f" as a valid snapshot ({why})" if why else "")
                            + f"; `streamlearn models list` shows the {len(registry.versions)} "
                            "that are")
    if command == "rollback" and rollback_target(
            v.manifest for v in registry.versions.values()) is None:
        raise RegistryError(f"nothing to roll back to: no version of {spec.name!r} has "
                            "replaced another yet")
    config = _config(settings, spec)
    _require_topic(spec, settings, spec.commands_topic)
    seq = _next_seq(spec, settings, registry)
    key, _ = _keys(settings)

    start = end_offsets(config, spec.models_topic, 1)[0]
    producer = Producer({**config, "acks": "all", "enable.idempotence": True})
    producer.produce(spec.commands_topic, key=b"command",
                     value=encode_command(seq, command, version, key=key))
    if producer.flush(30):
        raise RegistryError(f"the broker did not acknowledge the command on "
                            f"{spec.commands_topic} in 30 s")
    return seq, _await_version(spec, settings, seq, start, wait)


def _await_version(spec: Pipeline, settings: Settings, seq: int, start: int,
                   wait: float) -> Version | None:
    """The version the learner publishes for command ``seq``: the first authentic manifest
    that names it, following ``<name>.models`` from ``start`` (its end when the command was
    sent), so a big model's stored chunks are not read again while we wait."""

    key, old = _keys(settings)
    consumer = Consumer({**_config(settings, spec), "group.id": "streamlearn-registry",
                         "enable.auto.commit": False})
    consumer.assign([TopicPartition(spec.models_topic, 0, start)])
    deadline = time.monotonic() + wait
    try:
        while time.monotonic() < deadline:
            for message in consumer.consume(100, timeout=POLL_S):
                parsed = parse_key((message.key() or b"").decode("utf-8", "replace"))
                if (message.error() or not message.value() or parsed is None
                        or parsed[0] != GLOBAL_MODEL or parsed[2] != MANIFEST):
                    continue
                manifest = orjson.loads(message.value())
                try:
                    verify(manifest, key, spec.fingerprint(), old)
                except SnapshotRefused:
                    continue
                version = Version(manifest)
                if (version.action or {}).get("seq") == seq:
                    return version
    finally:
        consumer.close()
    return None


@dataclass
class Exported:
    """One candidate of a stored version, verified and unpickled."""

    estimator: Any
    candidate: str
    instance: str
    examples: int
    manifest: dict[str, Any]


def load_candidate(spec: Pipeline, settings: Settings, version: int,
                   candidate: str | None = None, partition: int | None = None) -> Exported:
    """``candidate`` (default: the champion) of ``version`` of the global model, or of
    ``partition``'s model, verified before unpickling."""
    key, old = _keys(settings)
    config = _config(settings, spec)
    name = model_name(spec, partition)
    store = snapshots.SnapshotStore(config, Producer(config), spec.models_topic, key,
                                    spec.fingerprint(), settings.snapshots_kept, old_keys=old)
    store.load([name], ignore_incompatible=True)
    try:
        restored = store.load_version(name, version)
    except SnapshotRefused as exc:
        if exc.reason == "not_found":  # as `models show` says it
            raise RegistryError(f"version {version} of {spec.name!r} is not stored; "
                                "`streamlearn models list` shows those that are") from None
        raise RegistryError(str(exc)) from None
    payload = restored.model
    if isinstance(payload, Candidates):
        name = candidate or payload.champion
        if name not in payload.models:
            raise RegistryError(f"version {version} has no candidate {name!r} "
                                f"(it has {list(payload.models)})")
        model, instance = payload.models[name], payload.ids[name]
    elif isinstance(payload, OnlineModel):
        model, name, instance = payload, candidate or payload.name, payload.name
    else:
        raise RegistryError(f"version {version} holds no model")
    return Exported(model.estimator, name, instance, model.version, restored.manifest)


def export(spec: Pipeline, settings: Settings, version: int, path: Path,
           candidate: str | None = None, partition: int | None = None) -> str:
    """Write the River estimator of ``candidate`` (default: the champion) of ``version``,
    pickled, to ``path``; returns the candidate's instance id."""
    found = load_candidate(spec, settings, version, candidate, partition)
    path.write_bytes(pickle.dumps(found.estimator, protocol=pickle.HIGHEST_PROTOCOL))
    return found.instance


def export_mlflow(spec: Pipeline, settings: Settings, version: int,
                  candidate: str | None = None, experiment: str | None = None,
                  partition: int | None = None) -> tuple[str, str]:
    """Log ``candidate`` of ``version`` as an MLflow run (the tracking server of
    ``MLFLOW_TRACKING_URI``, as for every MLflow client): the pickled estimator and the
    signed manifest as artifacts, the lineage as parameters, each candidate's scores at save
    time as metrics. Returns (run id, instance id)."""
    try:
        import mlflow
    except ImportError:
        raise RegistryError("exporting to MLflow needs the mlflow client: "
                            "pip install 'streamlearn[mlflow]'") from None
    uri = os.environ.get("MLFLOW_TRACKING_URI")
    if not uri:
        raise RegistryError("set MLFLOW_TRACKING_URI to your MLflow tracking server "
                            "(http://...), or to a directory (file:...) with "
                            "MLFLOW_ALLOW_FILE_STORE=true")
    found = load_candidate(spec, settings, version, candidate, partition)
    try:
        return _log_run(mlflow, spec, found, version, experiment), found.instance
    except (mlflow.exceptions.MlflowException, OSError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        hint = (" (a directory needs MLFLOW_ALLOW_FILE_STORE=true)"
                if uri.startswith("file:") and not os.environ.get("MLFLOW_ALLOW_FILE_STORE")
                else "")
        raise RegistryError(f"MLflow at {uri} (MLFLOW_TRACKING_URI): {first}{hint}") from None


def _log_run(mlflow: Any, spec: Pipeline, found: Exported, version: int,
             experiment: str | None) -> str:
    manifest = found.manifest
    action = manifest.get("action") or {}
    mlflow.set_experiment(experiment or spec.name)
    with mlflow.start_run(run_name=f"{spec.name} version {version} {found.instance}") as run, \
            tempfile.TemporaryDirectory() as tmp:
        mlflow.set_tags({"streamlearn.spec.pipeline": spec.name,
                         "streamlearn.version": str(version),
                         "streamlearn.instance": found.instance,
                         "streamlearn.fingerprint": spec.fingerprint()})
        mlflow.log_params({
            "candidate": found.candidate, "instance": found.instance,
            "champion": manifest.get("champion", found.candidate),
            "parent": manifest.get("parent"), "policy": manifest.get("policy"),
            "action": action.get("kind", "snapshot"),
            "examples": found.examples, "estimator": type(found.estimator).__name__,
        })
        scores = {}
        for name, summary in (manifest.get("candidates") or {}).items():
            for field_name in ("score", "rolling", "examples"):
                value = summary.get(field_name)
                if isinstance(value, int | float):
                    scores[f"{name}.{field_name}"] = float(value)
            for metric, (value, rolling) in (summary.get("metrics") or {}).items():
                scores[f"{name}.{metric}"], scores[f"{name}.rolling_{metric}"] = value, rolling
        for metric, (value, rolling) in (manifest.get("metrics") or {}).items():
            scores[metric], scores[f"rolling_{metric}"] = value, rolling  # a partition's
        if scores:
            mlflow.log_metrics(scores)
        model_file, manifest_file = Path(tmp) / "model.pkl", Path(tmp) / "manifest.json"
        model_file.write_bytes(pickle.dumps(found.estimator, protocol=pickle.HIGHEST_PROTOCOL))
        manifest_file.write_bytes(orjson.dumps(manifest, option=orjson.OPT_INDENT_2))
        mlflow.log_artifact(str(model_file))
        mlflow.log_artifact(str(manifest_file))
    return str(run.info.run_id)
