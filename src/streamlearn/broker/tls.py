"""Certificates of the local broker's SASL_SSL listener, made once with the JDK's keytool.

In ``settings.local_tls_dir``: a CA (``ca.p12``, its certificate as ``ca.pem`` for clients),
the broker's keystore (``broker.p12``: a key and a certificate the CA signed for
``IP:127.0.0.1`` and ``DNS:localhost``), a truststore holding the CA (``truststore.p12``, for
brokers that also check client certificates) and ``store.password``, the stores' password.
All files are private to the user. Removing the directory makes new ones on the next start.
"""

from __future__ import annotations

import logging
import os
import secrets
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from streamlearn.errors import BrokerError

__all__ = ["BrokerTls", "ensure_certificates"]

log = logging.getLogger(__name__)

_DAYS = "3650"
_TIMEOUT_S = 60.0


@dataclass(frozen=True)
class BrokerTls:
    keystore: Path
    truststore: Path
    ca_pem: Path
    password: str


def ensure_certificates(tls_dir: Path, java: str) -> BrokerTls:
    """The listener's stores, made on first use (~4 s of keytool) and reused after."""
    tls = BrokerTls(tls_dir / "broker.p12", tls_dir / "truststore.p12", tls_dir / "ca.pem",
                    "")
    done = tls_dir / ".complete"
    if not done.is_file():
        _make(tls_dir, _keytool(java))
        done.touch()
        log.info("made the local broker's TLS certificates in %s (clients trust %s)",
                 tls_dir, tls.ca_pem)
    password = (tls_dir / "store.password").read_text(encoding="utf-8").strip()
    return BrokerTls(tls.keystore, tls.truststore, tls.ca_pem, password)


def _keytool(java: str) -> str:
    beside_java = Path(java).resolve().parent / "keytool"
    found = str(beside_java) if beside_java.is_file() else shutil.which("keytool")
    if found is None:
        raise BrokerError("keytool (from the JDK) is needed to make the broker's TLS "
                          "certificates: install a full JDK, or set STREAMLEARN_JAVA to one")
    return found


def _make(tls_dir: Path, keytool: str) -> None:
    shutil.rmtree(tls_dir, ignore_errors=True)  # a half-made set from an interrupted start
    tls_dir.mkdir(parents=True, mode=0o700)
    password = secrets.token_hex(16)
    (tls_dir / "store.password").write_text(password + "\n", encoding="utf-8")
    ca, broker = str(tls_dir / "ca.p12"), str(tls_dir / "broker.p12")
    csr, signed = str(tls_dir / "broker.csr"), str(tls_dir / "broker.pem")
    ca_pem = str(tls_dir / "ca.pem")
    store = ["-storetype", "PKCS12", "-storepass", password, "-keypass", password]
    steps = [
        ["-genkeypair", "-alias", "ca", "-keyalg", "RSA", "-keysize", "2048", "-validity",
         _DAYS, "-dname", "CN=streamlearn local CA", "-ext", "bc:c", "-keystore", ca, *store],
        ["-exportcert", "-rfc", "-alias", "ca", "-keystore", ca, "-file", ca_pem, *store],
        ["-genkeypair", "-alias", "broker", "-keyalg", "RSA", "-keysize", "2048", "-validity",
         _DAYS, "-dname", "CN=localhost", "-keystore", broker, *store],
        ["-certreq", "-alias", "broker", "-keystore", broker, "-file", csr, *store],
        ["-gencert", "-rfc", "-alias", "ca", "-keystore", ca, "-infile", csr, "-outfile",
         signed, "-validity", _DAYS, "-ext", "SAN=IP:127.0.0.1,DNS:localhost", *store],
        ["-importcert", "-noprompt", "-alias", "ca", "-file", ca_pem, "-keystore", broker,
         *store],
        ["-importcert", "-alias", "broker", "-file", signed, "-keystore", broker, *store],
        ["-importcert", "-noprompt", "-alias", "ca", "-file", ca_pem, "-keystore",
         str(tls_dir / "truststore.p12"), *store],
    ]
    for step in steps:
        _run(keytool, step)
    for path in tls_dir.iterdir():
        os.chmod(path, 0o600)


def _run(keytool: str, args: list[str]) -> None:
    try:
        result = subprocess.run([keytool, *args], capture_output=True, text=True,
                                timeout=_TIMEOUT_S, check=False)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise BrokerError(f"keytool {args[0]} failed: {e}") from None
    if result.returncode != 0:
        tail = (result.stderr + result.stdout).strip().splitlines()[-1:] or ["no output"]
        raise BrokerError(f"keytool {args[0]} failed (exit {result.returncode}): {tail[0]}")
