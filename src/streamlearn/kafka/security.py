"""How each Kafka client library the project uses reaches a secured Kafka.

One set of settings (``STREAMLEARN_SECURITY_PROTOCOL``, ``STREAMLEARN_SASL_*``,
``STREAMLEARN_SSL_*``) becomes the config of librdkafka (confluent-kafka), kafka-python and
faust/aiokafka through one table, ``_TABLE``: a row per setting, with the key each library
gives it and the protocols it applies to. Only aiokafka needs a value transformed (the TLS
files as one ``SSLContext``: :func:`ssl_context`). The SASL password is read here, when a
client is made: from ``STREAMLEARN_SASL_PASSWORD`` or, re-read on every use,
``STREAMLEARN_SASL_PASSWORD_FILE``.

>>> from streamlearn.config import Secret, Settings
>>> librdkafka_config(Settings())
{}
>>> s = Settings(bootstrap="kafka:9094", security_protocol="SASL_SSL", sasl_username="ml",
...              sasl_password=Secret("pw"))
>>> sorted(librdkafka_config(s))
['sasl.mechanism', 'sasl.password', 'sasl.username', 'security.protocol']
>>> kafka_python_config(s)["sasl_plain_password"]
'pw'
>>> failure_hint(s, "SASL authentication error: Authentication failed")
'authentication failed for user ml (check STREAMLEARN_SASL_USERNAME and STREAMLEARN_SASL_PASSWORD)'
"""

from __future__ import annotations

import contextlib
import logging
import re
import ssl
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

from streamlearn.config import Settings, load_settings
from streamlearn.errors import ConfigError

__all__ = [
    "ca_file",
    "client_errors",
    "failure_hint",
    "faust_sasl_config",
    "kafka_python_config",
    "librdkafka_config",
    "plaintext",
    "resolve",
    "sasl_password",
    "ssl_context",
]

_AUTH_FAILED = re.compile(r"authenticat|invalid credentials|SaslAuthenticationFailed", re.I)
# The broker's TLS alert when it wants a client certificate and got none, or one its CA did
# not sign: Kafka's JVM sends bad_certificate (42); others send certificate_required (116,
# TLS 1.3) or certificate_unknown (46). Python's ssl writes SSLV3_ALERT_BAD_CERTIFICATE,
# OpenSSL (librdkafka) "sslv3 alert bad certificate".
_CLIENT_CERT_REFUSED = re.compile(r"alert[ _](bad[ _]certificate|certificate[ _]required|"
                                  r"certificate[ _]unknown)", re.I)
_UNTRUSTED = re.compile(r"certificate verify failed|unknown ca|self[- ]signed|unable to get "
                        r"local issuer|CERTIFICATE_VERIFY_FAILED|ssl handshake failed", re.I)


def resolve(settings: Settings | None) -> Settings:
    """``settings``, or this process's (for callers that pass a bootstrap string only)."""
    return settings if settings is not None else load_settings()


def plaintext(settings: Settings) -> Settings:
    """``settings`` for the local broker's own PLAINTEXT listener (its launcher's calls)."""
    return replace(settings, security_protocol="PLAINTEXT")


def sasl_password(settings: Settings) -> str:
    """The SASL password: the setting's value, or the file's first line, read now."""
    if settings.sasl_password:
        return settings.sasl_password.reveal()
    path = settings.sasl_password_file
    if path is None:
        return ""
    try:
        return path.read_text(encoding="utf-8").strip("\r\n")
    except OSError as e:
        raise ConfigError("sasl_password_file", "STREAMLEARN_SASL_PASSWORD_FILE",
                          f"cannot read {path}: {e.strerror}") from None


def ca_file(settings: Settings) -> Path | None:
    """The CA clients trust: the setting, else the local broker's own CA, else the system's."""
    if settings.ssl_ca_file is not None:
        path: Path | None = settings.ssl_ca_file
    elif not settings.uses_external_broker and settings.uses_tls:
        path = settings.local_tls_dir / "ca.pem"
    else:
        path = None
    _check_file(path, "ssl_ca_file")
    return path


def _check_file(path: Path | None, name: str) -> None:
    if path is not None and not path.is_file():
        raise ConfigError(name, "STREAMLEARN_" + name.upper(), f"{path} is not a file")


def _cert_file(settings: Settings) -> Path | None:
    _check_file(settings.ssl_cert_file, "ssl_cert_file")
    return settings.ssl_cert_file


def _key_file(settings: Settings) -> Path | None:
    _check_file(settings.ssl_key_file, "ssl_key_file")
    return settings.ssl_key_file


def _key_password(settings: Settings) -> str | None:
    return settings.ssl_key_password.reveal() or None


_TLS = ("SSL", "SASL_SSL")
_SASL = ("SASL_SSL",)
_Library = Literal["librdkafka", "kafka_python", "faust"]


@dataclass(frozen=True)
class _Setting:
    """One security setting, by the key each client library gives it."""

    protocols: tuple[str, ...]
    """The security protocols it applies to (none to PLAINTEXT)."""
    librdkafka: str
    kafka_python: str
    faust: str | None
    """A keyword of faust's ``SASLCredentials``; None: faust takes it otherwise (the protocol
    is the credentials' class, the TLS files are inside :func:`ssl_context`)."""
    value: Callable[[Settings], Any]
    """Read when a client is made: a password file is re-read, a missing file named."""


# Rows are read in order: the client certificate and key are checked before the CA, so of
# several missing files the first named is the same for every library.
_TABLE = (
    _Setting(_TLS, "security.protocol", "security_protocol", None,
             lambda s: s.security_protocol),
    _Setting(_TLS, "ssl.certificate.location", "ssl_certfile", None, _cert_file),
    _Setting(_TLS, "ssl.key.location", "ssl_keyfile", None, _key_file),
    _Setting(_TLS, "ssl.ca.location", "ssl_cafile", None, ca_file),
    _Setting(_TLS, "ssl.key.password", "ssl_password", None, _key_password),
    _Setting(_SASL, "sasl.mechanism", "sasl_mechanism", "mechanism",
             lambda s: s.sasl_mechanism),
    _Setting(_SASL, "sasl.username", "sasl_plain_username", "username",
             lambda s: s.sasl_username),
    _Setting(_SASL, "sasl.password", "sasl_plain_password", "password", sasl_password),
)


def _config(settings: Settings, library: _Library) -> dict[str, Any]:
    """The settings that apply to ``settings.security_protocol``, by ``library``'s keys;
    paths as text (None stays None)."""
    config: dict[str, Any] = {}
    for row in _TABLE:
        key = getattr(row, library)
        if key is not None and settings.security_protocol in row.protocols:
            value = row.value(settings)
            config[key] = str(value) if isinstance(value, Path) else value
    return config


def librdkafka_config(settings: Settings) -> dict[str, Any]:
    """Security properties of a confluent-kafka Producer/Consumer/AdminClient (unset ones
    left out: librdkafka takes no null property)."""
    return {k: v for k, v in _config(settings, "librdkafka").items() if v is not None}


def kafka_python_config(settings: Settings) -> dict[str, Any]:
    """Security keyword arguments of kafka-python's KafkaProducer/KafkaConsumer/Admin
    (every TLS one, None when unset)."""
    return _config(settings, "kafka_python")


def ssl_context(settings: Settings) -> ssl.SSLContext:
    """A verifying client TLS context (aiokafka/faust) from the ``ssl_*`` settings: aiokafka
    takes the TLS rows of the table as this one object."""
    cert, key, ca = _cert_file(settings), _key_file(settings), ca_file(settings)
    context = ssl.create_default_context(cafile=str(ca) if ca else None)
    if cert and key:
        context.load_cert_chain(str(cert), str(key), password=_key_password(settings))
    return context


def faust_sasl_config(settings: Settings) -> dict[str, Any]:
    """The SASL keyword arguments of faust's ``SASLCredentials`` (``streams.app`` builds
    the credentials: faust is imported there only)."""
    return _config(settings, "faust")


# A SASL_SSL broker that answered ApiVersions (the connection knows its version) and then
# closed the connection: the next step was the login, and a broker closes a refused login
# right after its error response, which kafka-python sometimes loses to the close. Seen on
# several tries in a row, that is the refusal, not a broker going away (which refuses the
# next connection instead).
_DROPPED_AFTER_HELLO = re.compile(r"broker_version=\(\d+, \d+\)[^<]*?Connection lost: "
                                  r"KafkaConnectionError: socket disconnected")
_DROPS_THAT_MEAN_REFUSED = 3


def failure_hint(settings: Settings, error: str) -> str | None:
    """A one-line cause and fix when a client's ``error`` comes from security settings.

    >>> s = Settings(security_protocol="SASL_SSL", sasl_username="ml", sasl_password="pw",
    ...              bootstrap="kafka:9093")
    >>> drop = ("<KafkaConnection node_id=bootstrap-0 broker_version=(4, 1) (disconnected)>: "
    ...         "Connection lost: KafkaConnectionError: socket disconnected")
    >>> print(failure_hint(s, " ".join([drop] * 3)))
    authentication failed for user ml (check STREAMLEARN_SASL_USERNAME and ...)
    >>> failure_hint(s, drop) is None
    True
    """
    if settings.security_protocol == "SASL_SSL" and (
            _AUTH_FAILED.search(error)
            or len(_DROPPED_AFTER_HELLO.findall(error)) >= _DROPS_THAT_MEAN_REFUSED):
        return (f"authentication failed for user {settings.sasl_username} (check "
                "STREAMLEARN_SASL_USERNAME and STREAMLEARN_SASL_PASSWORD)")
    if settings.uses_tls and _CLIENT_CERT_REFUSED.search(error):
        if settings.ssl_cert_file is None:
            return ("the broker requires a TLS client certificate (set "
                    "STREAMLEARN_SSL_CERT_FILE and STREAMLEARN_SSL_KEY_FILE)")
        return (f"the broker refused the TLS client certificate {settings.ssl_cert_file} "
                "(set STREAMLEARN_SSL_CERT_FILE to one the broker's CA signed, and its key "
                "in STREAMLEARN_SSL_KEY_FILE)")
    if settings.uses_tls and re.search(r"(hostname|IP address) mismatch", error, re.I):
        return ("the broker's TLS certificate does not name the host it was reached at "
                "(check STREAMLEARN_BOOTSTRAP: use a name the certificate lists)")
    if settings.uses_tls and _UNTRUSTED.search(error):
        ca = ca_file(settings) or "the system's CAs"
        return (f"the broker's TLS certificate is not trusted by {ca} "
                "(set STREAMLEARN_SSL_CA_FILE to the CA that signed it)")
    return None


# kafka-python reports a refused login or handshake only in its log, then times out.
_KAFKA_PYTHON_LOGGERS = ("kafka.net.connection", "kafka.net.manager")


class _Collect(logging.Handler):
    def __init__(self, seen: list[str]) -> None:
        super().__init__(logging.ERROR)
        self.seen = seen

    def emit(self, record: logging.LogRecord) -> None:
        self.seen.append(record.getMessage())


@contextlib.contextmanager
def client_errors() -> Iterator[list[str]]:
    """The errors kafka-python logs inside the block, for :func:`failure_hint`.

    Loggers turned down (the CLI silences kafka-python) are heard here and stay quiet.
    """
    seen: list[str] = []
    handler = _Collect(seen)
    saved = []
    for name in _KAFKA_PYTHON_LOGGERS:
        logger = logging.getLogger(name)
        saved.append((logger, logger.level, logger.propagate))
        logger.addHandler(handler)
        if not logger.isEnabledFor(logging.ERROR):
            logger.setLevel(logging.ERROR)
            logger.propagate = False
    try:
        yield seen
    finally:
        for logger, level, propagate in saved:
            logger.removeHandler(handler)
            logger.setLevel(level)
            logger.propagate = propagate
