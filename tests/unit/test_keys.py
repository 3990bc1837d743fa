"""The snapshot signing key: given, generated once for the local broker, required otherwise."""

from __future__ import annotations

import stat

import pytest

from streamlearn.config import Settings
from streamlearn.errors import ConfigError
from streamlearn.models.keys import KEY_FILE, model_key


def test_local_broker_generates_one_private_key_file_shared_by_every_process(tmp_path):
    settings = Settings.from_env({"STREAMLEARN_STATE_DIR": str(tmp_path)})
    first = model_key(settings)
    assert len(first) == 64
    assert stat.S_IMODE((tmp_path / KEY_FILE).stat().st_mode) == 0o600
    assert model_key(settings) == first, "the next process reads the same key"


def test_the_setting_wins_and_is_required_with_an_external_broker(tmp_path):
    env = {"STREAMLEARN_STATE_DIR": str(tmp_path), "STREAMLEARN_BOOTSTRAP": "kafka:9092"}
    with pytest.raises(ConfigError, match="STREAMLEARN_MODEL_KEY") as info:
        model_key(Settings.from_env(env))
    assert "\n" not in str(info.value)
    keyed = Settings.from_env({**env, "STREAMLEARN_MODEL_KEY": "k1"})
    assert model_key(keyed) == b"k1"
    assert not (tmp_path / KEY_FILE).exists()
