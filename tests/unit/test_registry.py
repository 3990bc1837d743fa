"""The registry's pure parts: signed commands, which versions are kept, where a rollback
goes, and the pipeline settings that declare candidates and a policy."""

from __future__ import annotations

import sys

import orjson
import pytest
from river import linear_model, tree

from streamlearn.errors import PipelineError
from streamlearn.kafka.records import encode_served
from streamlearn.kafka.snapshots import SnapshotStore
from streamlearn.models.candidates import Candidates
from streamlearn.models.learner import Learner
from streamlearn.models.policies import Challenger
from streamlearn.models.registry import (
    CommandRefused,
    decode_command,
    encode_command,
    protected,
    rollback_target,
)
from streamlearn.spec.pipeline import Pipeline
from streamlearn.streams.serving import served_set

from .test_snapshot import FakeProducer


def test_a_command_signed_with_an_old_key_is_accepted_and_a_forged_one_refused():
    command = encode_command(1, "rollback", None, key=b"old")
    assert decode_command(command, keys=[b"new", b"old"])["command"] == "rollback"
    for raw, reason in [(command, "bad_signature"), (b"not json", "invalid_json"),
                        (b'{"seq": 1, "command": "rollback"}', "unsigned")]:
        with pytest.raises(CommandRefused) as refused:
            decode_command(raw, keys=[b"new"])
        assert refused.value.reason == reason
    with pytest.raises(CommandRefused, match="unknown_command"):
        encode_command(2, "delete", None, key=b"k")


def manifest(sid: int, **fields) -> dict:
    return {"snapshot_id": sid, **fields}


def test_promoted_and_replaced_versions_are_kept_and_rollback_goes_to_the_replaced():
    manifests = [manifest(1), manifest(2), manifest(3, replaced=2, promoted=True),
                 manifest(4), manifest(5, replaced=4, promoted=True), manifest(6),
                 manifest(7, parent=1, replaced=6, promoted=True)]  # `models promote 1`
    assert set(protected(manifests)) == {1, 2, 3, 4, 5, 6, 7}
    assert protected(manifests)[1] == "promoted from"
    assert rollback_target(manifests[:6]) == 4
    assert rollback_target(manifests[:2]) is None


def test_the_store_never_tombstones_a_promoted_version_or_the_one_it_replaced():
    from streamlearn.models.snapshot import build_snapshot

    producer = FakeProducer()
    store = SnapshotStore({}, producer, "p.models", b"k", "f", kept=2)  # type: ignore[arg-type]
    model = Candidates({"lr": linear_model.LogisticRegression})
    for sid in range(1, 8):
        meta = {"replaced": 2, "promoted": True} if sid == 3 else {}
        store.write(build_snapshot(model, model_name="global", snapshot_id=sid, parent=None,
                                   offsets={}, fingerprint="f", key=b"k", chunk_bytes=1 << 20,
                                   meta=meta))
    deleted = {key.split("/")[1] for key, value in producer.records if value is None}
    assert deleted == {"1", "4", "5"}
    assert sorted(store.manifests["global"]) == [2, 3, 6, 7]


def test_candidates_declared_in_a_pipeline_learn_globally_with_the_champion_first():
    spec = Pipeline(name="p", key_field="k", features={"a": "numeric"}, label_field="y",
                    label_type="boolean", models={"lr": linear_model.LogisticRegression,
                                                  "tree": tree.HoeffdingTreeClassifier},
                    champion="tree", drift_policy=Challenger(margin=0.02))
    assert spec.global_learner and spec.has_candidates  # one partition, yet one learner
    assert list(spec.candidates()) == ["tree", "lr"]
    assert spec.model is tree.HoeffdingTreeClassifier
    assert spec.policy().margin == 0.02 and spec.policy() is not spec.policy()
    assert "p.commands" in spec.topics
    single = Pipeline(name="p", key_field="k", features={"a": "numeric"}, label_field="y",
                      label_type="boolean", model=linear_model.LogisticRegression)
    assert not single.global_learner and single.fingerprint() != spec.fingerprint()


@pytest.mark.parametrize("kwargs, message", [
    ({"models": {"lr": linear_model.LogisticRegression}, "champion": "tree"},
     "champion 'tree' is not one of the models"),
    ({"models": {"l r": linear_model.LogisticRegression}}, "candidate names"),
    ({"model": linear_model.LogisticRegression, "champion": "lr"}, "champion= needs models="),
    ({"model": linear_model.LogisticRegression, "drift_policy": "retrain"},
     "drift_policy='retrain'; use one of alert, reset, challenger, best"),
    ({"models": {"lr": linear_model.LogisticRegression}, "learning": "per_partition"},
     "need one learner"),
])
def test_bad_candidate_settings_say_which_setting(kwargs, message):
    with pytest.raises(PipelineError, match=message):
        Pipeline(name="p", key_field="k", features={"a": "numeric"}, **kwargs)


def test_served_record_carries_shadows_and_the_learner_scores_only_the_same_instance():
    candidates = Candidates({"lr": linear_model.LogisticRegression,
                             "tree": tree.HoeffdingTreeClassifier})
    current = served_set(candidates)
    assert (current.instance, [s[:2] for s in current.shadows]) == ("lr#0", [("tree", "tree#0")])
    record = encode_served("e1", "k", {"a": 1.0}, "lr", 0, False, None, 1, instance="lr#0",
                           shadows={"tree": {"prediction": True, "instance": "tree#0"}})
    example = {**orjson.loads(record), "label": True, "label_time": 1}
    learner = Learner(candidates, ttl_ms=1000)
    candidates.replace("tree", *candidates.fresh("tree"))  # tree#0 was reset meanwhile
    learner.learn(example)
    # lr's served False is scored; tree#0's True is not tree#1's: tree#1 predicts itself
    # (an untrained tree has no prediction, so nothing is scored), then learns.
    assert candidates.scored == {"lr": 0.0, "tree": None}
    assert candidates.models["tree"].version == 1


def test_export_to_mlflow_without_its_client_names_the_extra_to_install(monkeypatch):
    from streamlearn.config import Settings
    from streamlearn.tools.registry import RegistryError, export_mlflow

    monkeypatch.setitem(sys.modules, "mlflow", None)  # as if not installed
    spec = Pipeline(name="p", key_field="k", features={"a": "numeric"}, label_field="y",
                    label_type="boolean", models={"lr": linear_model.LogisticRegression})
    with pytest.raises(RegistryError, match=r"pip install 'streamlearn\[mlflow\]'"):
        export_mlflow(spec, Settings(), 1)


def test_export_to_mlflow_errors_are_one_line_naming_the_setting(monkeypatch, tmp_path):
    pytest.importorskip("mlflow")
    from streamlearn.config import Settings
    from streamlearn.tools import registry as registry_client

    spec = Pipeline(name="p", key_field="k", features={"a": "numeric"}, label_field="y",
                    label_type="boolean", models={"lr": linear_model.LogisticRegression})
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    with pytest.raises(registry_client.RegistryError, match="set MLFLOW_TRACKING_URI"):
        registry_client.export_mlflow(spec, Settings(), 1)
    # A directory without MLflow's opt-in: its exception becomes one line with the fix.
    monkeypatch.setenv("MLFLOW_TRACKING_URI", (tmp_path / "runs").as_uri())
    monkeypatch.delenv("MLFLOW_ALLOW_FILE_STORE", raising=False)
    found = registry_client.Exported(None, "lr", "lr#0", 1, {})
    monkeypatch.setattr(registry_client, "load_candidate", lambda *args: found)
    with pytest.raises(registry_client.RegistryError) as error:
        registry_client.export_mlflow(spec, Settings(), 1)
    assert "MLFLOW_ALLOW_FILE_STORE=true" in str(error.value)
    assert "\n" not in str(error.value)


def test_exporting_a_version_that_is_not_stored_says_so_as_show_does(monkeypatch):
    from streamlearn.config import Settings
    from streamlearn.kafka import snapshots
    from streamlearn.models.snapshot import SnapshotRefused
    from streamlearn.tools import registry as registry_client

    class Store:  # a models topic without version 3
        def __init__(self, *args, **kwargs):
            pass

        def load(self, *args, **kwargs):
            return {}

        def load_version(self, model, sid):
            raise SnapshotRefused({"model": model, "snapshot_id": sid}, "not_found", "gone")

    monkeypatch.setattr(snapshots, "SnapshotStore", Store)
    monkeypatch.setattr(registry_client, "_keys", lambda settings: (b"k", ()))
    spec = Pipeline(name="p", key_field="k", features={"a": "numeric"}, label_field="y",
                    label_type="boolean", models={"lr": linear_model.LogisticRegression})
    with pytest.raises(registry_client.RegistryError, match="version 3 of 'p' is not stored"):
        registry_client.load_candidate(spec, Settings(), 3)


class _Message:
    def __init__(self, offset: int, value: bytes) -> None:
        self._offset, self._value = offset, value

    def error(self) -> None:
        return None

    def offset(self) -> int:
        return self._offset

    def value(self) -> bytes:
        return self._value


class _CommandsTopic:
    """A consumer of <name>.commands that hands out at most ``num`` records a call."""

    def __init__(self, values: list[bytes]) -> None:
        self.messages = [_Message(i, v) for i, v in enumerate(values)]

    def consume(self, num: int, timeout: float) -> list[_Message]:
        taken, self.messages = self.messages[:num], self.messages[num:]
        return taken


def test_a_command_looked_up_for_a_redo_leaves_the_later_ones_to_apply():
    """Exactly-once takeover: command 1 is applied again where it took effect; command 2,
    queued behind it, is still applied afterwards (not skipped by the lookup)."""
    from streamlearn.streams.commands import CommandLog

    refused: list[str] = []

    class Metrics:
        def refuse_command(self, reason: str) -> None:
            refused.append(reason)

    log = CommandLog.__new__(CommandLog)  # its Kafka consumer replaced by a list
    log.consumer = _CommandsTopic([encode_command(s, "rollback", None, key=b"k")
                                   for s in (1, 2, 3)])
    log.topic, log.keys, log.metrics = "p.commands", (b"k",), Metrics()
    log.seq, log.at, log.before = 0, 0, 3
    assert log.find(1)["seq"] == 1
    log.applied({"seq": 1}, 10)
    assert [command["seq"] for command, _ in log.new()] == [2, 3]
    assert refused == []


def test_a_claim_fences_older_generations_written_after_it_not_before():
    """A learner that claimed generation 2 and died before its first snapshot leaves the
    next one generation 1's newest snapshot (not nothing); a generation-1 snapshot written
    after the claim (a replaced learner that did not know it) stays fenced."""
    from streamlearn.kafka.snapshots import collect_versions

    def manifest(sid: int, generation: int) -> tuple[bytes, bytes]:
        return (f"global/{sid}/manifest".encode(),
                orjson.dumps({"model": "global", "snapshot_id": sid, "generation": generation}))

    log = [manifest(1, 1), (b"global/claim", b'{"generation": 2}'), manifest(2, 1)]
    claims: dict[str, int] = {}
    found = collect_versions(log, ["global"], claims)["global"]
    assert claims == {"global": 2}
    assert (found[1].claimed_before, found[2].claimed_before) == (0, 2)
