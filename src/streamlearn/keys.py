"""The key that signs model snapshots (HMAC-SHA256).

With an external broker (``STREAMLEARN_BOOTSTRAP``) it must be given as
``STREAMLEARN_MODEL_KEY``: every worker, on every host, must share it. With the local broker a
random key is generated once into ``<state_dir>/model.key`` (mode 0600) and used by every
local process, unless ``STREAMLEARN_MODEL_KEY`` is set.
"""

from __future__ import annotations

import os
import secrets

from streamlearn.config import Settings
from streamlearn.errors import ConfigError

__all__ = ["KEY_FILE", "model_key"]

KEY_FILE = "model.key"


def model_key(settings: Settings) -> bytes:
    if settings.model_key:
        return settings.model_key.reveal().encode()
    if settings.uses_external_broker:
        raise ConfigError(
            "model_key", "STREAMLEARN_MODEL_KEY",
            "required with an external broker (STREAMLEARN_BOOTSTRAP): every worker signs and "
            "verifies model snapshots with it",
        )
    path = settings.state_dir / KEY_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_bytes().strip()
    with os.fdopen(fd, "w") as f:
        f.write(secrets.token_hex(32))
    return path.read_bytes().strip()
