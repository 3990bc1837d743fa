"""Snapshots: round trip, refusal of every kind of bad bytes, chunking, versions kept."""

from __future__ import annotations

import pickle
from typing import Any

import pytest
from river import datasets, tree

from streamlearn.kafka.snapshots import SnapshotStore, collect_versions
from streamlearn.models.online import OnlineModel
from streamlearn.models.snapshot import (
    SnapshotIncompatible,
    SnapshotRefused,
    build_snapshot,
    restore,
)

KEY = b"test key"


def trained_tree(n: int = 300) -> OnlineModel:
    model = OnlineModel(tree.HoeffdingTreeClassifier())
    for i, (x, y) in enumerate(datasets.Phishing()):
        if i == n:
            break
        model.learn(x, y, served=model.predict(x)[0])
    return model


def snapshot_of(model: OnlineModel, sid: int = 1, **kw: Any):
    args = {"model_name": "partition-0", "snapshot_id": sid, "parent": None,
            "offsets": {"events": {0: 300}}, "fingerprint": "fp", "key": KEY,
            "chunk_bytes": 1024, **kw}
    return build_snapshot(model, **args)


def test_round_trip_across_chunks_predicts_exactly_the_same():
    model = trained_tree()
    snap = snapshot_of(model)
    assert len(snap.chunks) > 1 and all(len(c) <= 1024 for c in snap.chunks)
    back = restore(snap.manifest, snap.chunks, key=KEY, fingerprint="fp")
    probe = [x for x, _ in datasets.Phishing()][:200]
    assert [back.predict(x) for x in probe] == [model.predict(x) for x in probe]
    assert back.version == 300 and back.scorer.values() == model.scorer.values()
    assert snap.manifest["examples"] == 300
    assert snap.manifest["offsets"] == {"events": {"0": 300}}


def _refusal(manifest: dict, chunks: list[bytes], **kw: Any) -> str:
    with pytest.raises(SnapshotRefused) as info:
        restore(manifest, chunks, key=kw.get("key", KEY), fingerprint=kw.get("fp", "fp"))
    assert "\n" not in str(info.value)
    return info.value.reason


def test_bad_bytes_are_refused_before_unpickling(monkeypatch):
    snap = snapshot_of(trained_tree(50))
    unpickled = []
    monkeypatch.setattr(pickle, "loads", lambda b: unpickled.append(b))
    flipped = [bytes([snap.chunks[0][0] ^ 1]) + snap.chunks[0][1:], *snap.chunks[1:]]
    assert _refusal(snap.manifest, flipped) == "bad_digest"
    assert _refusal(snap.manifest, snap.chunks, key=b"another") == "bad_signature"
    unsigned = {k: v for k, v in snap.manifest.items() if k != "signature"}
    assert _refusal(unsigned, snap.chunks) == "unsigned"
    edited = {**snap.manifest, "examples": 10**6}
    assert _refusal(edited, snap.chunks) == "bad_signature"
    assert _refusal(snap.manifest, snap.chunks[:-1]) == "incomplete"
    assert unpickled == [], "nothing unauthenticated was unpickled"


def test_other_river_or_spec_is_incompatible(monkeypatch):
    snap = snapshot_of(trained_tree(50))
    with pytest.raises(SnapshotIncompatible, match="spec_changed"):
        restore(snap.manifest, snap.chunks, key=KEY, fingerprint="other")
    monkeypatch.setattr("streamlearn.models.snapshot.river.__version__", "0.99.0")
    with pytest.raises(SnapshotIncompatible, match=r"river 0\.99\.0"):
        restore(snap.manifest, snap.chunks, key=KEY, fingerprint="fp")


class FakeProducer:
    def __init__(self) -> None:
        self.records: list[tuple[str, bytes | None]] = []

    def produce(self, topic: str, key: bytes, value: bytes | None) -> None:
        self.records.append((key.decode(), value))


def test_store_keeps_the_newest_versions_and_tombstones_older_ones():
    producer = FakeProducer()
    store = SnapshotStore({}, producer, "p.models", KEY, "fp", kept=2)  # type: ignore[arg-type]
    model = OnlineModel(tree.HoeffdingTreeClassifier())
    for sid in (1, 2, 3):
        assert store.next_id("partition-0") == sid
        store.write(snapshot_of(model, sid))
    chunks = len(snapshot_of(model).chunks)
    tombstones = [k for k, v in producer.records if v is None]
    assert tombstones == [*(f"partition-0/1/{i}" for i in range(chunks)), "partition-0/1/manifest"]

    # What a reader of the topic rebuilds from those records: versions 2 and 3, whole.
    records = [(k.encode(), v) for k, v in producer.records]
    versions = collect_versions(records, ["partition-0"])["partition-0"]
    assert sorted(versions) == [2, 3]
    assert all(v.manifest and len(v.chunks) == chunks for v in versions.values())


def test_a_snapshot_signed_with_a_rotated_out_key_restores_only_while_that_key_is_listed(
        monkeypatch):
    from streamlearn.config import Settings
    from streamlearn.kafka import snapshots
    from streamlearn.models import keys

    old = snapshot_of(trained_tree(50), key=b"old key")
    producer = FakeProducer()
    writer = SnapshotStore({}, producer, "p.models", b"old key", "fp", kept=2)  # type: ignore[arg-type]
    writer.write(old)
    records = [(k.encode(), v) for k, v in producer.records]
    monkeypatch.setattr(snapshots, "read_versions",
                        lambda config, topic, models, claims:
                        collect_versions(records, models, claims))

    def load(env: dict[str, str]) -> snapshots.Restored | None:
        settings = Settings.from_env(env)
        store = SnapshotStore({}, FakeProducer(), "p.models", keys.model_key(settings),  # type: ignore[arg-type]
                              "fp", kept=2, old_keys=keys.old_model_keys(settings))
        return store.load(["partition-0"])["partition-0"]

    rotated = {"STREAMLEARN_MODEL_KEY": "new key", "STREAMLEARN_BOOTSTRAP": "kafka:9092"}
    restored = load({**rotated, "STREAMLEARN_MODEL_KEYS_OLD": "older key,old key"})
    assert restored is not None and restored.manifest["snapshot_id"] == 1
    assert restored.model.version == 50
    assert load(rotated) is None, "refused, as before, when the old key is not listed"
    assert _refusal(old.manifest, old.chunks, key=b"new key") == "bad_signature"
    assert restore(old.manifest, old.chunks, key=b"new key", fingerprint="fp",
                   old_keys=[b"old key"]).version == 50
