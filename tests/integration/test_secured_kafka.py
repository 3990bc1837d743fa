"""A secured Kafka: the phishing parity check with every client on SASL_SSL (SCRAM-SHA-512
over TLS), then what a user sees when the password or the CA is wrong, and that the password
shows up nowhere a user (or a log collector) could read it. Then plain TLS with client
certificates (the session broker's SSL listener): a worker serves events produced and read
back over it, and a client without a certificate the broker's CA signed is told, in one
line, which setting to fix. Last, global learning (label join, learner, snapshot follower)
with every client on SASL_SSL."""

from __future__ import annotations

import itertools
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from pathlib import Path

import certifi
import orjson
from kafka import KafkaProducer
from river import datasets, evaluate, metrics

from streamlearn.kafka.admin import create_topics
from streamlearn.kafka.security import kafka_python_config
from streamlearn.spec.pipeline import load_pipeline
from streamlearn.spec.topics import topic_configs
from streamlearn.tools.predictions import prequential_accuracy
from streamlearn.tools.produce import ReplayOptions, replay
from streamlearn.tools.sources import iter_events
from streamlearn.tools.tail import read_to_end

from .conftest import EXAMPLE, ROOT, SASL_PASSWORD, SslKafka, free_port, worker_log
from .test_global_learner import DELAYED, phishing_stream, sample, scrape
from .topics import predictions, wait_for_predictions, wait_until

# A refused login or certificate must end the command, not wait out broker_timeout (90 s):
# the subprocess times out (and the test fails) past this. Not a speed check.
NO_HANG_S = 60.0


def cli(env: dict[str, str], *args: str) -> tuple[subprocess.CompletedProcess[str], float]:
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "streamlearn", *args], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=NO_HANG_S)
    return done, time.monotonic() - started


def assert_one_line_error(done: subprocess.CompletedProcess[str], seconds: float,
                          variable: str) -> None:
    assert done.returncode == 1, (done.stdout, done.stderr)
    print(f"{variable}: refused in {seconds:.1f} s")
    assert done.stderr.strip().count("\n") == 0, done.stderr
    assert variable in done.stderr, done.stderr


def test_phishing_parity_over_sasl_ssl_and_clear_failures(secured_kafka, name, worker_env,
                                                          start_worker, tmp_path: Path):
    secured = secured_kafka.settings()
    env = {**worker_env, **secured_kafka.env()}
    spec = load_pipeline(EXAMPLE).renamed(name)
    create_topics(secured_kafka.bootstrap, spec.topics, topic_configs(spec, secured),
                  settings=secured)
    events = list(iter_events("river:Phishing", label_field="is_phishing"))
    sent = replay(events, secured_kafka.bootstrap,
                  ReplayOptions(topic=spec.events_topic, id_prefix="ev"), settings=secured)
    assert sent == 1250
    metrics_port = free_port()
    worker = start_worker(EXAMPLE, name, env=secured_kafka.env(), metrics_port=metrics_port)

    # Meanwhile, what goes wrong, each told in one line naming the setting to fix.
    wrong = {**env, "STREAMLEARN_SASL_PASSWORD": "not-the-password"}
    shown = []
    for args in (("tail", spec.events_topic, "--limit", "1", "--idle", "5"),
                 ("produce", "river:Phishing", "--topic", spec.events_topic, "--limit", "1")):
        done, seconds = cli(wrong, *args)
        assert_one_line_error(done, seconds, "STREAMLEARN_SASL_PASSWORD")
        shown.append(done.stdout + done.stderr)
    untrusted = {**env, "STREAMLEARN_SSL_CA_FILE": certifi.where()}
    done, seconds = cli(untrusted, "tail", spec.events_topic, "--limit", "1", "--idle", "5")
    assert_one_line_error(done, seconds, "STREAMLEARN_SSL_CA_FILE")
    shown.append(done.stdout + done.stderr)
    shown += [cli(env, *args)[0].stdout for args in (("--help",), ("run", "--help"))]

    ids = {f"ev-{i}" for i in range(sent)}
    wait_for_predictions(secured_kafka.bootstrap, spec.predictions_topic, ids, 120,
                         alive=lambda: worker.poll() is None, settings=secured)
    assert worker.poll() is None, worker_log(tmp_path)
    served = predictions(secured_kafka.bootstrap, spec.predictions_topic, secured)
    per_event = Counter(p["event_id"] for p in served)
    assert set(per_event) == ids and max(per_event.values()) == 1
    by_id = {p["event_id"]: p for p in served}
    labels = {f"ev-{i}": e["is_phishing"] for i, e in enumerate(events)}
    reference = evaluate.progressive_val_score(
        datasets.Phishing(), spec.model(), metrics.Accuracy()
    ).get()
    assert prequential_accuracy(labels, by_id) == reference

    with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10) as r:
        shown.append(r.read().decode())
    shown.append(worker_log(tmp_path))
    assert f"pipeline {name}:" in shown[-1], "the worker logged (and its log is read)"
    for text in shown:
        assert SASL_PASSWORD not in text


SSL_EVENTS = 400
# A guard against a hung `produce` (a Python start, a connection, 400 events), not a speed check.
PRODUCE_TIMEOUT_S = 300.0


def _create_topics_over_ssl(ssl_kafka: SslKafka, name: str):
    secured = ssl_kafka.settings()
    spec = load_pipeline(EXAMPLE).renamed(name)
    create_topics(ssl_kafka.bootstrap, spec.topics, topic_configs(spec, secured),
                  settings=secured)
    return spec, secured


def test_phishing_over_ssl_with_client_certificates(ssl_kafka, name, worker_env, start_worker,
                                                    tmp_path: Path):
    spec, secured = _create_topics_over_ssl(ssl_kafka, name)
    worker = start_worker(EXAMPLE, name, env=ssl_kafka.env())
    produced = subprocess.run(
        [sys.executable, "-m", "streamlearn", "produce", "river:Phishing", "--topic",
         spec.events_topic, "--label-field", "is_phishing", "--limit", str(SSL_EVENTS)],
        env={**worker_env, **ssl_kafka.env()}, cwd=ROOT, capture_output=True, text=True,
        timeout=PRODUCE_TIMEOUT_S)
    assert produced.returncode == 0, produced.stderr
    assert f"sent {SSL_EVENTS} events to {spec.events_topic} at {ssl_kafka.bootstrap}" in (
        produced.stdout)

    # Everything is read back over the SSL listener too, with the client certificate.
    events = [orjson.loads(r.value or b"{}")
              for r in read_to_end(ssl_kafka.bootstrap, spec.events_topic, secured)]
    assert len(events) == SSL_EVENTS
    labels = {e["event_id"]: e["is_phishing"] for e in events}
    assert len(labels) == SSL_EVENTS
    wait_for_predictions(ssl_kafka.bootstrap, spec.predictions_topic, set(labels), 180,
                         alive=lambda: worker.poll() is None, settings=secured)
    assert worker.poll() is None, worker_log(tmp_path)
    served = predictions(ssl_kafka.bootstrap, spec.predictions_topic, secured)
    per_event = Counter(p["event_id"] for p in served)
    assert set(per_event) == set(labels) and max(per_event.values()) == 1
    # And they are River's own: test-then-train on the same events, in the same order.
    reference = evaluate.progressive_val_score(
        itertools.islice(datasets.Phishing(), SSL_EVENTS), spec.model(), metrics.Accuracy()
    ).get()
    assert prequential_accuracy(labels, {p["event_id"]: p for p in served}) == reference
    log = worker_log(tmp_path)
    assert f"pipeline {name}:" in log, "the worker logged (and its log is read)"


def test_ssl_without_a_client_certificate_names_the_setting(ssl_kafka, name, worker_env,
                                                            tmp_path: Path):
    spec, _ = _create_topics_over_ssl(ssl_kafka, name)  # so only the certificate is wrong
    without = {**worker_env, **ssl_kafka.env(cert=False)}
    for args in (("tail", spec.events_topic, "--limit", "1", "--idle", "5"),
                 ("run", str(EXAMPLE), "--name", name)):
        done, seconds = cli(without, *args)
        assert_one_line_error(done, seconds, "STREAMLEARN_SSL_CERT_FILE")
        assert "requires a TLS client certificate" in done.stderr

    # A certificate the broker's CA did not sign is refused the same way, and named.
    other_cert, other_key = tmp_path / "other.pem", tmp_path / "other.key"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=not signed by the local CA", "-keyout", str(other_key),
                    "-out", str(other_cert)], check=True, capture_output=True, timeout=60)
    stranger = {**without, "STREAMLEARN_SSL_CERT_FILE": str(other_cert),
                "STREAMLEARN_SSL_KEY_FILE": str(other_key)}
    done, seconds = cli(stranger, "tail", spec.events_topic, "--limit", "1", "--idle", "5")
    assert_one_line_error(done, seconds, "STREAMLEARN_SSL_CERT_FILE")
    assert str(other_cert) in done.stderr


def test_global_learner_over_sasl_ssl(secured_kafka, name, start_worker, tmp_path: Path):
    """Every client of global learning on SASL_SSL: the predictors, the label join, the
    learner's own consumer and the snapshot follower; labels come from their own topic."""
    secured = secured_kafka.settings()
    spec = load_pipeline(DELAYED).renamed(name)
    create_topics(secured_kafka.bootstrap, spec.topics, topic_configs(spec, secured),
                  settings=secured)
    events, labels = phishing_stream(seed=5, max_delay_ms=20_000)
    events, labels = events[:400], labels[:400]
    producer = KafkaProducer(bootstrap_servers=secured_kafka.bootstrap, acks="all",
                             **kafka_python_config(secured))
    for event, label in zip(events, labels, strict=True):
        producer.send(spec.events_topic, key=event["event_id"].encode(),
                      value=orjson.dumps(event))
        producer.send(spec.labels_topic, key=label["event_id"].encode(),
                      value=orjson.dumps(label))
    producer.flush()
    producer.close()
    port = free_port()
    worker = start_worker(DELAYED, name, env=secured_kafka.env(), metrics_port=port)
    wait_for_predictions(secured_kafka.bootstrap, spec.predictions_topic,
                         {e["event_id"] for e in events}, 120,
                         alive=lambda: worker.poll() is None, settings=secured)

    def learned_and_served() -> bool:
        text = scrape(port)
        return (sample(text, f'streamlearn_learner_examples{{pipeline="{name}"}}') == 400
                and sample(text, f'streamlearn_serving_examples{{pipeline="{name}"}}') == 400)

    wait_until(learned_and_served, 60, "the learner's snapshot served over SASL_SSL")
    assert worker.poll() is None, worker_log(tmp_path)[-3000:]
