"""Certificates of the local broker's TLS listeners, made once with the JDK's keytool.

In ``settings.local_tls_dir``: a CA (``ca.p12``, its certificate as ``ca.pem`` for clients),
the broker's keystore (``broker.p12``: a key and a certificate the CA signed for
``IP:127.0.0.1`` and ``DNS:localhost``), a truststore holding the CA (``truststore.p12``, with
which the SSL listener checks client certificates) and ``store.password``, the stores'
password. With the SSL listener also a client's certificate the CA signed, as PEM files
librdkafka, kafka-python and aiokafka read: ``client.pem`` and its unencrypted key
``client.key`` (keytool makes and signs it; keytool cannot write a key as PEM, the
``openssl`` CLI does). A directory made before the SSL listener existed gets them on the
first start that needs them. All files are private to the user. Removing the directory makes
new ones on the next start.
"""

from __future__ import annotations

import logging
import os
import re
import secrets
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from streamlearn.errors import BrokerError

__all__ = ["CLIENT_CERT", "CLIENT_KEY", "BrokerTls", "ensure_certificates"]

log = logging.getLogger(__name__)

_DAYS = "3650"
_TIMEOUT_S = 60.0
CLIENT_CERT = "client.pem"
CLIENT_KEY = "client.key"
_PEM_KEY = re.compile(r"-----BEGIN PRIVATE KEY-----.*?-----END PRIVATE KEY-----\n?", re.S)


@dataclass(frozen=True)
class BrokerTls:
    keystore: Path
    truststore: Path
    ca_pem: Path
    password: str


def ensure_certificates(tls_dir: Path, java: str, client: bool = False) -> BrokerTls:
    """The listeners' stores, made on first use (~4 s of keytool) and reused after; with
    ``client``, also a client certificate and key (~2 s more, once)."""
    tls = BrokerTls(tls_dir / "broker.p12", tls_dir / "truststore.p12", tls_dir / "ca.pem",
                    "")
    done = tls_dir / ".complete"
    make_stores = not done.is_file()
    make_client = client and (make_stores or not (tls_dir / CLIENT_KEY).is_file())
    # The tools are looked for before anything is made, so a missing one changes nothing.
    keytool = _keytool(java) if make_stores or make_client else ""
    openssl = _openssl() if make_client else ""
    if make_stores:
        _make(tls_dir, keytool)
        done.touch()
        log.info("made the local broker's TLS certificates in %s (clients trust %s)",
                 tls_dir, tls.ca_pem)
    if make_client:
        _make_client(tls_dir, keytool, openssl)
        log.info("made a client certificate for the local broker's SSL listener: %s, %s",
                 tls_dir / CLIENT_CERT, tls_dir / CLIENT_KEY)
    password = (tls_dir / "store.password").read_text(encoding="utf-8").strip()
    return BrokerTls(tls.keystore, tls.truststore, tls.ca_pem, password)


def _keytool(java: str) -> str:
    beside_java = Path(java).resolve().parent / "keytool"
    found = str(beside_java) if beside_java.is_file() else shutil.which("keytool")
    if found is None:
        raise BrokerError("keytool (from the JDK) is needed to make the broker's TLS "
                          "certificates: install a full JDK, or set STREAMLEARN_JAVA to one")
    return found


def _openssl() -> str:
    found = shutil.which("openssl")
    if found is None:
        raise BrokerError("openssl is needed to write the client key of the local broker's "
                          "SSL listener (STREAMLEARN_BROKER_SSL_PORT) as PEM: install it "
                          "(apt-get install openssl)")
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


def _make_client(tls_dir: Path, keytool: str, openssl: str) -> None:
    """``client.pem`` signed by the CA (for TLS client authentication) and ``client.key``.

    The key is written last, atomically: while it is missing, the set is made again.
    """
    password_file = tls_dir / "store.password"
    password = password_file.read_text(encoding="utf-8").strip()
    keystore, csr = tls_dir / "client.p12", tls_dir / "client.csr"
    cert, key = tls_dir / CLIENT_CERT, tls_dir / CLIENT_KEY
    for leftover in (keystore, csr, cert):  # of an interrupted start
        leftover.unlink(missing_ok=True)
    store = ["-storetype", "PKCS12", "-storepass", password, "-keypass", password]
    steps = [
        ["-genkeypair", "-alias", "client", "-keyalg", "RSA", "-keysize", "2048", "-validity",
         _DAYS, "-dname", "CN=streamlearn local client", "-keystore", str(keystore), *store],
        ["-certreq", "-alias", "client", "-keystore", str(keystore), "-file", str(csr),
         *store],
        ["-gencert", "-rfc", "-alias", "ca", "-keystore", str(tls_dir / "ca.p12"), "-infile",
         str(csr), "-outfile", str(cert), "-validity", _DAYS, "-ext", "EKU=clientAuth",
         *store],
    ]
    for step in steps:
        _run(keytool, step)
    # The password from its file, not the command line; the key only through a pipe.
    out = _run(openssl, ["pkcs12", "-in", str(keystore), "-nocerts", "-nodes", "-passin",
                         f"file:{password_file}"], tool="openssl")
    pem = _PEM_KEY.search(out)
    if pem is None:
        raise BrokerError(f"openssl pkcs12 wrote no private key from {keystore}")
    for path in (keystore, csr, cert):
        os.chmod(path, 0o600)
    partial = key.with_suffix(".tmp")
    partial.unlink(missing_ok=True)
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as f:
        f.write(pem.group(0).rstrip("\n") + "\n")
    os.replace(partial, key)


def _run(executable: str, args: list[str], tool: str = "keytool") -> str:
    try:
        result = subprocess.run([executable, *args], capture_output=True, text=True,
                                timeout=_TIMEOUT_S, check=False)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise BrokerError(f"{tool} {args[0]} failed: {e}") from None
    if result.returncode != 0:
        tail = (result.stderr + result.stdout).strip().splitlines()[-1:] or ["no output"]
        raise BrokerError(f"{tool} {args[0]} failed (exit {result.returncode}): {tail[0]}")
    return result.stdout
