"""Bad input at scale: thousands of generated malformed events mixed with valid ones.

A seeded generator makes ~3,000 malformed records of a dozen kinds (random bytes, nesting
past any parser's depth, events over the size limit, invalid UTF-8, lone surrogates,
numbers out of float range, NaN and Infinity literals, nested values and wrong types where
scalars belong, missing labels, JSON that is not an object, empty records), interleaved at
random with River's Phishing events, some of which carry unicode edge cases in their ids and
large undeclared fields. The worker must not crash or restart, every malformed record must
be a dead letter with a reason, and every valid event must be predicted exactly once, with
the accuracy on the valid events equal to River's ``progressive_val_score`` on them alone.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path

import orjson
from kafka import KafkaProducer
from river import datasets

from streamlearn.spec.pipeline import load_pipeline
from streamlearn.tools.tail import read_to_end

from .conftest import EXAMPLE, worker_log
from .test_poison_pills import assert_parity_on_valid
from .topics import wait_for_predictions, wait_until

MAX_BYTES = 200_000
UNICODE_IDS = ["\u200d", "e\u0301", "\u202eevil", "🐍", "\u0000", "ﬁ", "\uffff", "ß" * 50]


def _random_bytes(rng: random.Random, event: dict) -> bytes:
    while True:  # bytes that happen to decode to a JSON object are not malformed
        raw = bytes(rng.randrange(256) for _ in range(rng.randint(1, 300)))
        try:
            if isinstance(orjson.loads(raw), dict):
                continue
        except orjson.JSONDecodeError:
            pass
        return raw


def _with(field: str, raw_value: bytes) -> Callable[[random.Random, dict], bytes]:
    def spoil(rng: random.Random, event: dict) -> bytes:
        body = orjson.dumps({k: v for k, v in event.items() if k != field})
        return body[:-1] + b',"' + field.encode() + b'":' + raw_value + b"}"

    return spoil


# Each kind of malformed record; every one must end as a dead letter.
MALFORMED: list[Callable[[random.Random, dict], bytes]] = [
    _random_bytes,
    lambda rng, e: b'{"a":' * 2000 + b"1" + b"}" * 2000,  # deeper than any parser goes
    lambda rng, e: b"[" * 100_000,
    lambda rng, e: orjson.dumps({**e, "note": "x" * (MAX_BYTES + rng.randint(1, 5000))}),
    lambda rng, e: orjson.dumps(e)[:-1] + b',"s":"\xff\xfe"}',  # invalid UTF-8
    lambda rng, e: orjson.dumps(e)[:-1] + b',"s":"\\ud800"}',  # a lone surrogate
    _with("long_url", b"1e999"),  # out of float range
    _with("https", b"-1e400"),
    _with("popup_window", b"NaN"),
    _with("ip_in_url", b"Infinity"),
    lambda rng, e: orjson.dumps({**e, "long_url": {"deep": [[[1]]]}}),
    lambda rng, e: orjson.dumps({**e, "https": "1" * rng.randint(1, 50_000)}),
    lambda rng, e: orjson.dumps({**e, "is_phishing": rng.choice(["yes", 1, 0.5, [True]])}),
    lambda rng, e: orjson.dumps({k: v for k, v in e.items() if k != "is_phishing"}),
    lambda rng, e: orjson.dumps(rng.choice([[1, 2], "event", 42, None, True])),
    lambda rng, e: b"",
    lambda rng, e: b"   ",
    lambda rng, e: orjson.dumps(e)[: rng.randint(1, 40)],  # cut short
]


def build_stream(seed: int, malformed: int) -> tuple[list[dict], list[tuple[bool, bytes]]]:
    rng = random.Random(seed)
    valid: list[dict] = []
    stream: list[tuple[bool, bytes]] = []
    rows = list(datasets.Phishing())
    for i, (x, y) in enumerate(rows):
        event = {**x, "event_id": f"ok-{i}{UNICODE_IDS[i % len(UNICODE_IDS)]}",
                 "is_phishing": y}
        if i % 97 == 5:
            event["undeclared_blob"] = "ü" * rng.randint(1, 60_000)  # large but allowed
        valid.append(event)
        stream.append((True, orjson.dumps(event)))
    for k in range(malformed):
        spoil = MALFORMED[k % len(MALFORMED)]
        template = {**valid[rng.randrange(len(valid))], "event_id": f"bad-{k}"}
        stream.insert(rng.randrange(len(stream) + 1), (False, spoil(rng, template)))
    return valid, stream


def test_thousands_of_malformed_events_never_crash_the_worker(
        kafka, name, topics, start_worker, tmp_path: Path):
    topics(name)
    spec = load_pipeline(EXAMPLE).renamed(name)
    valid, stream = build_stream(seed=13, malformed=3000)
    producer = KafkaProducer(bootstrap_servers=kafka, linger_ms=5, max_request_size=4 << 20)
    futures = [(ok, producer.send(name, raw)) for ok, raw in stream]
    producer.flush()
    bad_offsets = {future.get().offset for ok, future in futures if not ok}
    producer.close()

    worker = start_worker(EXAMPLE, name, env={"STREAMLEARN_MAX_EVENT_BYTES": str(MAX_BYTES)})
    ids = {e["event_id"] for e in valid}
    wait_for_predictions(kafka, spec.predictions_topic, ids, 180,
                         alive=lambda: worker.poll() is None)
    letters = wait_until(
        lambda: (found := list(read_to_end(kafka, spec.dlq_topic))) and
        len(found) >= len(bad_offsets) and found, 60, "every dead letter")
    got = {int(dict(r.headers)["streamlearn.source.offset"]):
           dict(r.headers)["streamlearn.error.reason"].decode() for r in letters}
    assert set(got) == bad_offsets and len(letters) == len(bad_offsets)
    assert set(got.values()) >= {"invalid_json", "not_object", "too_large", "bad_type",
                                 "missing_field"}

    records = [orjson.loads(r.value) for r in read_to_end(kafka, spec.predictions_topic)]
    assert sorted(r["event_id"] for r in records) == sorted(ids), "one prediction per valid"
    log = worker_log(tmp_path)
    assert worker.poll() is None, log[-3000:]
    assert log.count("partition 0: no snapshot") == 1, "the hot path never restarted"
    assert "Traceback" not in log

    assert_parity_on_valid(spec, valid, records)
