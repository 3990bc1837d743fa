from __future__ import annotations

from pathlib import Path

import pytest

from streamlearn.config import DEFAULT_KAFKA_VERSION, Settings
from streamlearn.errors import ConfigError


def test_defaults_bind_loopback_and_use_a_kafka_4_release():
    s = Settings.from_env({})
    assert s.bootstrap_servers == "127.0.0.1:9092"
    assert s.metrics_host == "127.0.0.1"
    assert not s.uses_external_broker
    assert DEFAULT_KAFKA_VERSION.startswith("4.")
    assert s.kafka_dir == s.cache_dir / "kafka" / DEFAULT_KAFKA_VERSION


def test_external_broker_wins():
    s = Settings.from_env({"STREAMLEARN_BOOTSTRAP": "kafka:9092", "STREAMLEARN_KAFKA_PORT": "1"})
    assert s.uses_external_broker
    assert s.bootstrap_servers == "kafka:9092"


def test_paths_expand_user():
    s = Settings.from_env({"STREAMLEARN_STATE_DIR": "~/x"})
    assert s.state_dir == Path.home() / "x"


@pytest.mark.parametrize(
    ("env", "setting"),
    [
        ({"STREAMLEARN_KAFKA_PORT": "abc"}, "kafka_port"),
        ({"STREAMLEARN_KAFKA_PORT": "70000"}, "kafka_port"),
        ({"STREAMLEARN_BATCH_SIZE": "0"}, "batch_size"),
        ({"STREAMLEARN_BROKER_TIMEOUT": "soon"}, "broker_timeout"),
        ({"STREAMLEARN_CONTROLLER_PORT": "9092"}, "controller_port"),
        ({"STREAMLEARN_MAX_EVENT_BYTES": "0"}, "max_event_bytes"),
        ({"STREAMLEARN_SNAPSHOT_EVERY": "0"}, "snapshot_every"),
        ({"STREAMLEARN_SNAPSHOT_INTERVAL": "-1"}, "snapshot_interval"),
        ({"STREAMLEARN_SNAPSHOTS_KEPT": "0"}, "snapshots_kept"),
        ({"STREAMLEARN_SESSION_TIMEOUT": "1"}, "session_timeout"),
        ({"STREAMLEARN_PROCESSING_GUARANTEE": "exactly-once"}, "processing_guarantee"),
        ({"STREAMLEARN_COMMIT_INTERVAL": "0"}, "commit_interval"),
        ({"STREAMLEARN_COMMIT_INTERVAL": "30"}, "commit_interval"),
        ({"STREAMLEARN_BROKER_SSL_PORT": "tls"}, "broker_ssl_port"),
        ({"STREAMLEARN_BROKER_SSL_PORT": "70000"}, "broker_ssl_port"),
        ({"STREAMLEARN_BROKER_SSL_PORT": "-1"}, "broker_ssl_port"),
        ({"STREAMLEARN_BROKER_SSL_PORT": "9092"}, "broker_ssl_port"),
        ({"STREAMLEARN_BROKER_SSL_PORT": "9093"}, "broker_ssl_port"),
        ({"STREAMLEARN_BROKER_SSL_PORT": "9094", "STREAMLEARN_BROKER_SASL_PORT": "9094",
          "STREAMLEARN_SASL_USERNAME": "ml", "STREAMLEARN_SASL_PASSWORD": "pw"},
         "broker_ssl_port"),
    ],
)
def test_bad_values_name_the_setting_and_its_variable(env, setting):
    with pytest.raises(ConfigError) as info:
        Settings.from_env(env)
    message = str(info.value)
    assert "\n" not in message
    assert setting in message
    assert "STREAMLEARN_" + setting.upper() in message


def test_the_model_key_never_prints():
    s = Settings.from_env({"STREAMLEARN_MODEL_KEY": "s3cret"})
    assert "s3cret" not in repr(s) and "s3cret" not in str(s) and "s3cret" not in f"{s}"
    assert s.model_key.reveal() == "s3cret"


def test_the_local_ssl_listener_is_off_by_default_and_serves_ssl_clients():
    assert Settings.from_env({}).broker_ssl_port == 0
    ssl = Settings.from_env({"STREAMLEARN_BROKER_SSL_PORT": "9095",
                             "STREAMLEARN_SECURITY_PROTOCOL": "SSL"})
    assert ssl.bootstrap_servers == "127.0.0.1:9095"
    # Other clients of the same broker keep their own listeners.
    plain = Settings.from_env({"STREAMLEARN_BROKER_SSL_PORT": "9095"})
    assert plain.bootstrap_servers == "127.0.0.1:9092"
    both = {"STREAMLEARN_BROKER_SSL_PORT": "9095", "STREAMLEARN_BROKER_SASL_PORT": "9094",
            "STREAMLEARN_SASL_USERNAME": "ml", "STREAMLEARN_SASL_PASSWORD": "pw"}
    assert Settings.from_env(
        {**both, "STREAMLEARN_SECURITY_PROTOCOL": "SASL_SSL"}).bootstrap_servers == (
        "127.0.0.1:9094")
    assert Settings.from_env(
        {**both, "STREAMLEARN_SECURITY_PROTOCOL": "SSL"}).bootstrap_servers == "127.0.0.1:9095"
    external = Settings.from_env({"STREAMLEARN_BROKER_SSL_PORT": "9095",
                                  "STREAMLEARN_SECURITY_PROTOCOL": "SSL",
                                  "STREAMLEARN_BOOTSTRAP": "kafka:9093"})
    assert external.bootstrap_servers == "kafka:9093"


@pytest.mark.parametrize(
    ("protocol", "port_variable"),
    [("SSL", "STREAMLEARN_BROKER_SASL_PORT"), ("SASL_SSL", "STREAMLEARN_BROKER_SSL_PORT")],
)
def test_a_tls_protocol_needs_its_own_local_listener(protocol, port_variable):
    env = {"STREAMLEARN_SECURITY_PROTOCOL": protocol, port_variable: "9095",
           "STREAMLEARN_SASL_USERNAME": "ml", "STREAMLEARN_SASL_PASSWORD": "pw"}
    with pytest.raises(ConfigError) as info:
        Settings.from_env(env)
    message = str(info.value)
    assert "STREAMLEARN_SECURITY_PROTOCOL" in message and "\n" not in message
    assert "STREAMLEARN_BROKER_SSL_PORT" in message and "STREAMLEARN_BROKER_SASL_PORT" in message


def test_the_psi_interval_in_seconds_is_gone_and_says_what_replaced_it():
    with pytest.raises(ConfigError) as raised:
        Settings.from_env({"STREAMLEARN_DRIFT_PSI_INTERVAL": "60"})
    assert "STREAMLEARN_DRIFT_PSI_EVERY" in str(raised.value)
    assert Settings.from_env({"STREAMLEARN_DRIFT_PSI_EVERY": "500"}).drift_psi_every == 500
