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
