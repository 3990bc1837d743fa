"""The key that signs model snapshots (HMAC-SHA256).

With an external broker (``STREAMLEARN_BOOTSTRAP``) it must be given as
``STREAMLEARN_MODEL_KEY``: every worker, on every host, must share it. With the local broker a
random key is generated once into ``<state_dir>/model.key`` (mode 0600) and used by every
local process, unless ``STREAMLEARN_MODEL_KEY`` is set.

To rotate the key, sign with the new one and list the former ones in
``STREAMLEARN_MODEL_KEYS_OLD`` (comma-separated): snapshots they signed still verify, until
newer snapshots have replaced them and the list can be emptied.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import tempfile
from pathlib import Path

from streamlearn.config import Settings
from streamlearn.errors import ConfigError

__all__ = ["KEY_FILE", "model_key", "old_model_keys"]

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
    if not path.exists():
        _create_key_file(path)
    return path.read_bytes().strip()


def old_model_keys(settings: Settings) -> tuple[bytes, ...]:
    """Former keys whose signatures are still accepted (never used to sign).

    >>> from streamlearn.config import Secret
    >>> old_model_keys(Settings(model_keys_old=Secret("k0, k1,")))
    (b'k0', b'k1')
    """
    keys = settings.model_keys_old.reveal().split(",")
    return tuple(k.strip().encode() for k in keys if k.strip())


def _create_key_file(path: Path) -> None:
    """Write a new key where no process can read it half-written: a private temporary file,
    then a hard link to the final name, which fails if another process got there first."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".model-key-")  # mode 0600
    try:
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_hex(32))
        with contextlib.suppress(FileExistsError):
            os.link(tmp, path)
    finally:
        os.unlink(tmp)
