"""Security settings become each client library's config; the password never prints."""

from __future__ import annotations

import ssl
from pathlib import Path

import faust
import pytest

from streamlearn.config import Settings
from streamlearn.errors import ConfigError
from streamlearn.kafka.security import (
    failure_hint,
    kafka_python_config,
    librdkafka_config,
)
from streamlearn.streams.app import faust_credentials

PASSWORD = "pa55-w0rd-never-shown"


def secured(tmp_path: Path, **env: str) -> Settings:
    ca = tmp_path / "ca.pem"
    ca.touch()  # its content matters to a TLS handshake only
    return Settings.from_env({
        "STREAMLEARN_BOOTSTRAP": "kafka:9094",
        "STREAMLEARN_SECURITY_PROTOCOL": "SASL_SSL",
        "STREAMLEARN_SASL_USERNAME": "ml",
        "STREAMLEARN_SASL_PASSWORD": PASSWORD,
        "STREAMLEARN_SSL_CA_FILE": str(ca),
        **env,
    })


def test_plaintext_adds_nothing_to_any_client():
    s = Settings.from_env({})
    assert librdkafka_config(s) == {} and kafka_python_config(s) == {}
    assert faust_credentials(s) is None


def test_sasl_ssl_config_of_each_client_library(tmp_path):
    s = secured(tmp_path)
    ca = str(tmp_path / "ca.pem")
    assert librdkafka_config(s) == {
        "security.protocol": "SASL_SSL", "ssl.ca.location": ca,
        "sasl.mechanism": "SCRAM-SHA-512", "sasl.username": "ml", "sasl.password": PASSWORD,
    }
    python = kafka_python_config(s)
    assert python["security_protocol"] == "SASL_SSL" and python["ssl_cafile"] == ca
    assert (python["sasl_mechanism"], python["sasl_plain_username"],
            python["sasl_plain_password"]) == ("SCRAM-SHA-512", "ml", PASSWORD)
    assert "ssl_certfile" in python  # keyword arguments kafka-python knows


def test_password_file_is_read_when_a_client_is_made(tmp_path):
    secret = tmp_path / "password"
    s = secured(tmp_path, STREAMLEARN_SASL_PASSWORD="", STREAMLEARN_SASL_PASSWORD_FILE=str(secret))
    secret.write_text("first\n", encoding="utf-8")
    assert librdkafka_config(s)["sasl.password"] == "first"
    secret.write_text("rotated\n", encoding="utf-8")
    assert kafka_python_config(s)["sasl_plain_password"] == "rotated"
    secret.unlink()
    with pytest.raises(ConfigError, match="STREAMLEARN_SASL_PASSWORD_FILE"):
        librdkafka_config(s)


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        ({"STREAMLEARN_SECURITY_PROTOCOL": "TLS"}, "STREAMLEARN_SECURITY_PROTOCOL"),
        ({"STREAMLEARN_SASL_MECHANISM": "MD5"}, "STREAMLEARN_SASL_MECHANISM"),
        ({"STREAMLEARN_SASL_USERNAME": ""}, "STREAMLEARN_SASL_USERNAME"),
        ({"STREAMLEARN_SASL_PASSWORD": ""}, "STREAMLEARN_SASL_PASSWORD"),
        ({"STREAMLEARN_SSL_CERT_FILE": "/c.pem"}, "STREAMLEARN_SSL_KEY_FILE"),
        ({"STREAMLEARN_BOOTSTRAP": ""}, "STREAMLEARN_SECURITY_PROTOCOL"),
        ({"STREAMLEARN_BOOTSTRAP": "", "STREAMLEARN_BROKER_SASL_PORT": "9092"},
         "STREAMLEARN_BROKER_SASL_PORT"),
    ],
)
def test_bad_security_settings_name_their_variable(tmp_path, env, variable):
    with pytest.raises(ConfigError) as info:
        secured(tmp_path, **env)
    assert variable in str(info.value) and "\n" not in str(info.value)
    assert PASSWORD not in str(info.value)


def test_a_missing_ca_file_names_its_variable(tmp_path):
    s = secured(tmp_path, STREAMLEARN_SSL_CA_FILE=str(tmp_path / "nope.pem"))
    with pytest.raises(ConfigError, match="STREAMLEARN_SSL_CA_FILE"):
        kafka_python_config(s)


def test_local_broker_clients_use_its_sasl_listener_and_its_ca(tmp_path):
    s = Settings.from_env({
        "STREAMLEARN_STATE_DIR": str(tmp_path), "STREAMLEARN_BROKER_SASL_PORT": "9094",
        "STREAMLEARN_SECURITY_PROTOCOL": "SASL_SSL", "STREAMLEARN_SASL_USERNAME": "ml",
        "STREAMLEARN_SASL_PASSWORD": PASSWORD,
    })
    assert s.bootstrap_servers == "127.0.0.1:9094"
    with pytest.raises(ConfigError, match="STREAMLEARN_SSL_CA_FILE"):
        librdkafka_config(s)  # not made yet: the launcher makes it on start
    s.local_tls_dir.mkdir(parents=True)
    (s.local_tls_dir / "ca.pem").touch()
    assert librdkafka_config(s)["ssl.ca.location"] == str(s.local_tls_dir / "ca.pem")


def test_faust_gets_sasl_credentials_with_a_verifying_tls_context(tmp_path):
    s = secured(tmp_path, STREAMLEARN_SSL_CA_FILE="")
    credentials = faust_credentials(s)
    assert isinstance(credentials, faust.SASLCredentials)
    assert credentials.mechanism.value == "SCRAM-SHA-512"
    assert credentials.protocol.value == "SASL_SSL"
    assert credentials.ssl_context.verify_mode == ssl.CERT_REQUIRED
    assert credentials.ssl_context.check_hostname
    assert PASSWORD not in repr(credentials)


def test_the_password_never_prints_and_failures_name_the_settings(tmp_path):
    s = secured(tmp_path, STREAMLEARN_SSL_KEY_PASSWORD="key-pass")
    assert PASSWORD not in repr(s) and "key-pass" not in repr(s)
    auth = failure_hint(s, "SaslAuthenticationFailedError: invalid credentials")
    assert auth is not None and "STREAMLEARN_SASL_PASSWORD" in auth and PASSWORD not in auth
    tls = failure_hint(s, "[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed")
    assert tls is not None and "STREAMLEARN_SSL_CA_FILE" in tls
    host = failure_hint(s, "certificate verify failed: IP address mismatch, certificate is "
                           "not valid for '10.0.0.1'")
    assert host is not None and "STREAMLEARN_BOOTSTRAP" in host
    assert failure_hint(s, "Connection refused") is None


def test_local_ssl_clients_use_its_ssl_listener_its_ca_and_their_certificate(tmp_path):
    cert, key = tmp_path / "client.pem", tmp_path / "client.key"
    cert.touch()
    key.touch()
    s = Settings.from_env({
        "STREAMLEARN_STATE_DIR": str(tmp_path), "STREAMLEARN_BROKER_SSL_PORT": "9095",
        "STREAMLEARN_SECURITY_PROTOCOL": "SSL", "STREAMLEARN_SSL_CERT_FILE": str(cert),
        "STREAMLEARN_SSL_KEY_FILE": str(key), "STREAMLEARN_SSL_KEY_PASSWORD": "kp",
    })
    assert s.bootstrap_servers == "127.0.0.1:9095"
    s.local_tls_dir.mkdir(parents=True)
    ca = s.local_tls_dir / "ca.pem"
    ca.touch()
    assert librdkafka_config(s) == {
        "security.protocol": "SSL", "ssl.ca.location": str(ca),
        "ssl.certificate.location": str(cert), "ssl.key.location": str(key),
        "ssl.key.password": "kp",
    }
    python = kafka_python_config(s)
    assert (python["security_protocol"], python["ssl_cafile"], python["ssl_certfile"],
            python["ssl_keyfile"], python["ssl_password"]) == (
        "SSL", str(ca), str(cert), str(key), "kp")
    assert not [k for k in python if k.startswith("sasl")]
    # An external broker's CA is the setting's or the system's, never the local one.
    external = Settings.from_env({"STREAMLEARN_STATE_DIR": str(tmp_path),
                                  "STREAMLEARN_BOOTSTRAP": "kafka:9093",
                                  "STREAMLEARN_SECURITY_PROTOCOL": "SSL"})
    assert "ssl.ca.location" not in librdkafka_config(external)


def test_a_missing_client_certificate_file_names_its_variable(tmp_path):
    s = secured(tmp_path, STREAMLEARN_SECURITY_PROTOCOL="SSL",
                STREAMLEARN_SSL_CERT_FILE=str(tmp_path / "nope.pem"),
                STREAMLEARN_SSL_KEY_FILE=str(tmp_path / "ca.pem"))
    with pytest.raises(ConfigError, match="STREAMLEARN_SSL_CERT_FILE"):
        librdkafka_config(s)


# What kafka-python (Python's ssl) and librdkafka (OpenSSL) report when the broker wants a
# client certificate: Kafka's JVM alerts bad_certificate; TLS 1.3 peers certificate_required.
REFUSED = [
    "KafkaConnectionError: [SSL: SSLV3_ALERT_BAD_CERTIFICATE] sslv3 alert bad certificate "
    "(_ssl.c:2580)",
    "ssl://127.0.0.1:9095/bootstrap: Receive failed: error:0A000412:SSL routines::sslv3 alert "
    "bad certificate: SSL alert number 42 (after 1ms in state APIVERSION_QUERY)",
    "[SSL: TLSV13_ALERT_CERTIFICATE_REQUIRED] tlsv13 alert certificate required (_ssl.c:2580)",
    "SSL handshake failed: error:0A000416:SSL routines::sslv3 alert certificate unknown",
]


@pytest.mark.parametrize("error", REFUSED)
def test_a_refused_client_certificate_names_the_certificate_settings(tmp_path, error):
    without = secured(tmp_path, STREAMLEARN_SECURITY_PROTOCOL="SSL")
    hint = failure_hint(without, error)
    assert hint is not None and "STREAMLEARN_SSL_CERT_FILE" in hint
    assert "client certificate" in hint and "STREAMLEARN_SSL_CA_FILE" not in hint
    cert = tmp_path / "mine.pem"
    refused = failure_hint(secured(tmp_path, STREAMLEARN_SECURITY_PROTOCOL="SSL",
                                   STREAMLEARN_SSL_CERT_FILE=str(cert),
                                   STREAMLEARN_SSL_KEY_FILE=str(cert)), error)
    assert refused is not None and str(cert) in refused
    assert "STREAMLEARN_SSL_CERT_FILE" in refused
    # Over SASL_SSL the same alert means the same thing; over PLAINTEXT there is no TLS.
    sasl = failure_hint(secured(tmp_path), error)
    assert sasl is not None and "STREAMLEARN_SSL_CERT_FILE" in sasl
    assert failure_hint(Settings(), error) is None


def test_an_untrusted_broker_is_not_taken_for_a_refused_client(tmp_path):
    s = secured(tmp_path, STREAMLEARN_SECURITY_PROTOCOL="SSL")
    hint = failure_hint(s, "SSL handshake failed: error:0A000086:SSL routines::certificate "
                           "verify failed: broker certificate could not be verified")
    assert hint is not None and "STREAMLEARN_SSL_CA_FILE" in hint
    assert "STREAMLEARN_SSL_CERT_FILE" not in hint
