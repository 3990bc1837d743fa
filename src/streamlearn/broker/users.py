"""The SCRAM user of the local broker's SASL_SSL listener, from the ``sasl_*`` settings.

It is added when storage is formatted (``StorageTool format --add-scram``); storage formatted
before the listener was turned on gets it through the admin API once the broker is up.
"""

from __future__ import annotations

import logging

from streamlearn.config import Settings
from streamlearn.errors import BrokerError
from streamlearn.kafka import admin
from streamlearn.kafka.security import plaintext, sasl_password

__all__ = ["add_scram_argument", "upsert_scram_user"]

log = logging.getLogger(__name__)

def add_scram_argument(settings: Settings) -> str:
    """The value of ``StorageTool format --add-scram``.

    >>> from streamlearn.config import Secret
    >>> add_scram_argument(Settings(sasl_username="ml", sasl_password=Secret("pw")))
    'SCRAM-SHA-512=[name=ml,password=pw]'
    """
    if settings.sasl_mechanism == "PLAIN":
        raise BrokerError("the local broker's SASL listener uses SCRAM: set "
                          "STREAMLEARN_SASL_MECHANISM to SCRAM-SHA-512 or SCRAM-SHA-256")
    password = sasl_password(settings)
    return f"{settings.sasl_mechanism}=[name={settings.sasl_username},password={password}]"


def upsert_scram_user(bootstrap: str, settings: Settings, timeout: float) -> None:
    """Create (or reset the password of) the SCRAM user through the PLAINTEXT listener."""
    try:
        admin.upsert_scram_user(bootstrap, settings.sasl_username, settings.sasl_mechanism,
                                sasl_password(settings), timeout, plaintext(settings))
    except BrokerError as e:
        raise BrokerError(f"cannot add SCRAM user {settings.sasl_username!r} to the local "
                          f"broker: {e}") from None
    log.info("SCRAM user %s set on the local broker", settings.sasl_username)
