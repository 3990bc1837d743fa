"""The local broker's configuration and preconditions, without starting a JVM."""

from __future__ import annotations

import os
import socket
import stat
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from click.testing import CliRunner

import streamlearn.broker
from streamlearn.broker import LocalBroker, resolve_jars
from streamlearn.broker.jars import MARKER, is_cached, render_pom
from streamlearn.broker.server_config import (
    parse_identity,
    render_server_properties,
    tls_listeners,
)
from streamlearn.broker.system import check_ports_free
from streamlearn.broker.tls import CLIENT_CERT, CLIENT_KEY, BrokerTls, ensure_certificates
from streamlearn.cli.broker import EXIT_DOWN, broker
from streamlearn.config import Secret, Settings
from streamlearn.errors import BrokerError


def _properties(text: str) -> dict[str, str]:
    pairs = (line.split("=", 1) for line in text.splitlines() if line and line[0] != "#")
    return {key: value for key, value in pairs}


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(
        state_dir=tmp_path / "state",
        cache_dir=tmp_path / "cache",
        kafka_port=19192,
        controller_port=19193,
    )


@pytest.fixture
def listening() -> Iterator[int]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


def _script(path: Path, body: str) -> str:
    path.write_text(f"#!{sys.executable}\n{body}", encoding="utf-8")
    path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return str(path)


def test_server_properties_bind_loopback_with_single_node_replication(settings: Settings) -> None:
    props = _properties(render_server_properties(settings))
    assert props["listeners"] == "PLAINTEXT://127.0.0.1:19192,CONTROLLER://127.0.0.1:19193"
    assert props["advertised.listeners"] == "PLAINTEXT://127.0.0.1:19192"
    assert props["controller.quorum.voters"] == "1@127.0.0.1:19193"
    assert props["process.roles"] == "broker,controller"
    assert props["log.dirs"] == str(settings.broker_dir / "data")
    for key in (
        "offsets.topic.replication.factor",
        "transaction.state.log.replication.factor",
        "transaction.state.log.min.isr",
    ):
        assert props[key] == "1", key
    assert props["auto.create.topics.enable"] == "false"
    assert "0.0.0.0" not in render_server_properties(settings)


def test_sasl_listener_is_scram_over_tls_on_loopback_beside_plaintext(
        settings: Settings, tmp_path: Path) -> None:
    from dataclasses import replace

    from streamlearn.broker.server_config import parse_identity
    from streamlearn.broker.tls import BrokerTls
    from streamlearn.broker.users import add_scram_argument
    from streamlearn.config import Secret

    secured = replace(settings, broker_sasl_port=19194, sasl_username="ml",
                      sasl_password=Secret("pw"))
    tls = BrokerTls(tmp_path / "broker.p12", tmp_path / "trust.p12", tmp_path / "ca.pem", "sp")
    text = render_server_properties(secured, tls)
    props = _properties(text)
    assert props["listeners"] == ("PLAINTEXT://127.0.0.1:19192,CONTROLLER://127.0.0.1:19193,"
                                  "SASL_SSL://127.0.0.1:19194")
    assert props["advertised.listeners"].endswith(",SASL_SSL://127.0.0.1:19194")
    assert props["inter.broker.listener.name"] == "PLAINTEXT"
    assert props["listener.security.protocol.map"].endswith(",SASL_SSL:SASL_SSL")
    assert props["listener.name.sasl_ssl.sasl.enabled.mechanisms"] == "SCRAM-SHA-512"
    assert "ScramLoginModule" in props["listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config"]
    assert props["listener.name.sasl_ssl.ssl.keystore.location"] == str(tls.keystore)
    assert "pw" not in props.values(), "the user's password is stored by the controller only"
    assert parse_identity(text) == (settings.kafka_version, "127.0.0.1:19192")
    assert add_scram_argument(secured) == "SCRAM-SHA-512=[name=ml,password=pw]"
    assert "SASL_SSL" not in render_server_properties(settings)


def _stores(tmp_path: Path) -> BrokerTls:
    return BrokerTls(tmp_path / "broker.p12", tmp_path / "trust.p12", tmp_path / "ca.pem", "sp")


def test_ssl_listener_requires_a_client_certificate_on_loopback(
        settings: Settings, tmp_path: Path) -> None:
    tls = _stores(tmp_path)
    text = render_server_properties(replace(settings, broker_ssl_port=19195), tls)
    props = _properties(text)
    assert props["listeners"] == ("PLAINTEXT://127.0.0.1:19192,CONTROLLER://127.0.0.1:19193,"
                                  "MTLS://127.0.0.1:19195")
    assert props["advertised.listeners"] == ("PLAINTEXT://127.0.0.1:19192,"
                                             "MTLS://127.0.0.1:19195")
    assert props["listener.security.protocol.map"] == (
        "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,MTLS:SSL")
    assert props["inter.broker.listener.name"] == "PLAINTEXT"
    assert props["listener.name.mtls.ssl.client.auth"] == "required"
    assert props["listener.name.mtls.ssl.truststore.location"] == str(tls.truststore)
    assert props["listener.name.mtls.ssl.truststore.password"] == "sp"
    assert props["listener.name.mtls.ssl.keystore.location"] == str(tls.keystore)
    assert not [key for key in props if "sasl" in key], "no SASL without its port"
    assert "ssl.client.auth" not in props, "the client check is the SSL listener's only"
    assert "0.0.0.0" not in text
    assert parse_identity(text) == (settings.kafka_version, "127.0.0.1:19192")


def test_ssl_and_sasl_listeners_side_by_side(settings: Settings, tmp_path: Path) -> None:
    tls = _stores(tmp_path)
    sasl = replace(settings, broker_sasl_port=19194, sasl_username="ml",
                   sasl_password=Secret("pw"))
    both = _properties(render_server_properties(replace(sasl, broker_ssl_port=19195), tls))
    assert both["listeners"].endswith(",SASL_SSL://127.0.0.1:19194,MTLS://127.0.0.1:19195")
    assert both["listener.security.protocol.map"].endswith(",SASL_SSL:SASL_SSL,MTLS:SSL")
    assert both["listener.name.mtls.ssl.client.auth"] == "required"
    assert "listener.name.sasl_ssl.ssl.client.auth" not in both
    # The SASL listener's lines are those it had alone.
    alone = _properties(render_server_properties(sasl, tls))
    assert {k: v for k, v in both.items() if "sasl" in k} == {
        k: v for k, v in alone.items() if "sasl" in k}
    assert tls_listeners(replace(sasl, broker_ssl_port=19195)) == {
        "SASL_SSL": "127.0.0.1:19194", "MTLS": "127.0.0.1:19195"}


def test_taken_ssl_port_is_named_with_its_env_var(settings: Settings, listening: int) -> None:
    with pytest.raises(BrokerError, match=rf"127\.0\.0\.1:{listening} .*"
                                          "STREAMLEARN_BROKER_SSL_PORT"):
        check_ports_free(replace(settings, broker_ssl_port=listening))


def test_a_running_broker_without_the_ssl_listener_is_named(settings: Settings) -> None:
    local = LocalBroker(replace(settings, broker_ssl_port=19195))
    settings.broker_dir.mkdir(parents=True)
    local.config_path.write_text(render_server_properties(settings), encoding="utf-8")
    with pytest.raises(BrokerError) as info:
        local._check_tls_listeners(4242)
    message = str(info.value)
    assert "without a SSL listener on 127.0.0.1:19195" in message
    assert "STREAMLEARN_BROKER_SSL_PORT" in message and "\n" not in message
    # One that has it (beside a SASL_SSL listener) is fine.
    both = replace(settings, broker_ssl_port=19195, broker_sasl_port=19194)
    local.config_path.write_text(render_server_properties(both, _stores(settings.state_dir)),
                                 encoding="utf-8")
    local._check_tls_listeners(4242)
    LocalBroker(replace(settings, broker_sasl_port=19194))._check_tls_listeners(4242)


# Stand-ins for keytool and openssl: they write what the real ones would, without a JVM.
_FAKE_KEYTOOL = """import sys
command, args = sys.argv[1], sys.argv[1:]
output = {"-genkeypair": "-keystore", "-importcert": "-keystore", "-exportcert": "-file",
          "-certreq": "-file", "-gencert": "-outfile"}[command]
with open(args[args.index(output) + 1], "a") as f:
    f.write(command + "\\n")
with open(sys.argv[0] + ".calls", "a") as f:
    f.write(command + " " + args[args.index("-alias") + 1] + "\\n")
"""
_FAKE_OPENSSL = """import sys
assert sys.argv[1] == "pkcs12" and "-nocerts" in sys.argv, sys.argv
assert not any("pass:" in a for a in sys.argv), "the password is read from its file"
print("Bag Attributes\\n    friendlyName: client\\nKey Attributes: <No Attributes>")
print("-----BEGIN PRIVATE KEY-----\\nMIIfake\\n-----END PRIVATE KEY-----")
"""


@pytest.fixture
def fake_tools(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[str, Path]:
    """A ``java`` with a fake keytool beside it, and a fake openssl on PATH."""
    bin_dir = tmp_path / "jdk" / "bin"
    bin_dir.mkdir(parents=True)
    java = _script(bin_dir / "java", "")
    _script(bin_dir / "keytool", _FAKE_KEYTOOL)
    _script(bin_dir / "openssl", _FAKE_OPENSSL)
    monkeypatch.setenv("PATH", str(bin_dir))
    return java, bin_dir / "keytool.calls"


def test_an_older_tls_dir_gets_client_files_once(tmp_path: Path, fake_tools) -> None:
    java, calls = fake_tools
    tls_dir = tmp_path / "tls"
    ensure_certificates(tls_dir, java)  # the SASL listener's set: no client files
    assert not (tls_dir / CLIENT_KEY).exists()
    made = calls.read_text().splitlines()
    assert "-genkeypair client" not in made
    ca = (tls_dir / "ca.pem").read_text()

    ensure_certificates(tls_dir, java, client=True)  # the SSL listener turned on later
    assert (tls_dir / "ca.pem").read_text() == ca, "the CA and broker stores are kept"
    new = calls.read_text().splitlines()[len(made):]
    assert new == ["-genkeypair client", "-certreq client", "-gencert ca"]
    assert (tls_dir / CLIENT_KEY).read_text() == (
        "-----BEGIN PRIVATE KEY-----\nMIIfake\n-----END PRIVATE KEY-----\n")
    assert (tls_dir / CLIENT_CERT).is_file()
    for path in tls_dir.iterdir():
        if path.name != ".complete":
            assert stat.S_IMODE(path.stat().st_mode) == 0o600, path.name

    before = calls.read_text()
    ensure_certificates(tls_dir, java, client=True)
    assert calls.read_text() == before, "made once"


def test_missing_openssl_is_named_before_anything_is_made(
        tmp_path: Path, fake_tools, monkeypatch: pytest.MonkeyPatch) -> None:
    java, calls = fake_tools
    monkeypatch.setenv("PATH", str(tmp_path / "nowhere"))
    tls_dir = tmp_path / "tls"
    with pytest.raises(BrokerError) as info:
        ensure_certificates(tls_dir, java, client=True)
    message = str(info.value)
    assert "openssl" in message and "STREAMLEARN_BROKER_SSL_PORT" in message
    assert "\n" not in message
    assert not tls_dir.exists() and not calls.exists()
    # Without the SSL listener, openssl is never needed.
    ensure_certificates(tls_dir, java)
    assert (tls_dir / "ca.pem").is_file() and not (tls_dir / CLIENT_KEY).exists()


@pytest.mark.parametrize(
    ("field", "env"),
    [("kafka_port", "STREAMLEARN_KAFKA_PORT"), ("controller_port", "STREAMLEARN_CONTROLLER_PORT")],
)
def test_taken_port_is_named_with_its_env_var(
    settings: Settings, listening: int, field: str, env: str
) -> None:
    other = {"kafka_port": 19192, "controller_port": 19193}
    other[field] = listening
    taken = Settings(**{**settings.__dict__, **other})
    with pytest.raises(BrokerError, match=rf"127\.0\.0\.1:{listening} .*{env}"):
        check_ports_free(taken)


def test_free_ports_pass(settings: Settings) -> None:
    check_ports_free(settings)


def test_missing_java_fails_before_fetching_jars(settings: Settings) -> None:
    broken = Settings(**{**settings.__dict__, "java": "/nonexistent/java"})
    with pytest.raises(BrokerError) as info:
        LocalBroker(broken).start()
    assert str(info.value) == (
        "java not found: install Java >= 17 (apt-get install openjdk-17-jre-headless) "
        "or set STREAMLEARN_JAVA"
    )
    assert not settings.kafka_dir.exists()


def test_old_java_is_refused(settings: Settings, tmp_path: Path) -> None:
    java = _script(
        tmp_path / "java",
        "import sys\nsys.stderr.write('openjdk version \"11.0.22\" 2024-01-16\\n')\n",
    )
    old = Settings(**{**settings.__dict__, "java": java})
    with pytest.raises(BrokerError, match=r"java 11 is too old .*Java >= 17"):
        LocalBroker(old).start()


def test_missing_mvn_names_the_fix(settings: Settings) -> None:
    broken = Settings(**{**settings.__dict__, "mvn": "/nonexistent/mvn"})
    with pytest.raises(BrokerError) as info:
        resolve_jars(broken)
    assert str(info.value) == (
        "mvn not found: install Maven (apt-get install maven) or set STREAMLEARN_MVN"
    )


def test_cached_jars_are_reused_without_maven(settings: Settings) -> None:
    libs = settings.kafka_dir / "libs"
    libs.mkdir(parents=True)
    (libs / "kafka_2.13-4.1.1.jar").write_bytes(b"")
    (settings.kafka_dir / MARKER).write_text("kafka 4.1.1\n")
    no_mvn = Settings(**{**settings.__dict__, "mvn": "/nonexistent/mvn"})
    assert resolve_jars(no_mvn) == libs


def test_jars_without_marker_are_fetched_again(settings: Settings) -> None:
    (settings.kafka_dir / "libs").mkdir(parents=True)  # a copy that was interrupted
    no_mvn = Settings(**{**settings.__dict__, "mvn": "/nonexistent/mvn"})
    assert not is_cached(no_mvn)
    with pytest.raises(BrokerError, match="mvn not found"):
        resolve_jars(no_mvn)


def test_fetch_moves_jars_into_place_and_marks_them(settings: Settings, tmp_path: Path) -> None:
    mvn = _script(
        tmp_path / "mvn",
        "import pathlib, sys\n"
        "out = next(a.split('=', 1)[1] for a in sys.argv if a.startswith('-DoutputDirectory='))\n"
        "pathlib.Path(out).mkdir(parents=True)\n"
        "(pathlib.Path(out) / 'kafka_2.13-4.1.1.jar').write_bytes(b'')\n",
    )
    libs = resolve_jars(Settings(**{**settings.__dict__, "mvn": mvn}))
    assert [p.name for p in libs.iterdir()] == ["kafka_2.13-4.1.1.jar"]
    assert is_cached(settings)


def test_maven_failure_reports_its_error_in_one_line(settings: Settings, tmp_path: Path) -> None:
    mvn = _script(
        tmp_path / "mvn",
        "print('\\x1b[0m[ERROR] Failed to execute goal on project kafka-jars: Could not find "
        "artifact org.apache.kafka:kafka_2.13:jar:9.9.9 in central -> [Help 1]')\n"
        "print('[ERROR] ')\nprint('[ERROR] Re-run Maven using the -X switch')\n"
        "raise SystemExit(1)\n",
    )
    with pytest.raises(BrokerError) as info:
        resolve_jars(Settings(**{**settings.__dict__, "mvn": mvn, "kafka_version": "9.9.9"}))
    message = str(info.value)
    assert "Could not find artifact org.apache.kafka:kafka_2.13:jar:9.9.9" in message
    assert "\n" not in message and "-X switch" not in message and "\x1b" not in message
    assert not is_cached(settings)


def test_pom_picks_the_logging_backend_of_the_version() -> None:
    assert "log4j-slf4j-impl" in render_pom("4.1.1") and "reload4j" not in render_pom("4.1.1")
    assert "slf4j-reload4j" in render_pom("3.9.1") and "log4j-core" not in render_pom("3.9.1")


def test_nothing_running_means_stop_false_and_status_down(settings: Settings) -> None:
    local = LocalBroker(settings)
    assert local.stop() is False
    assert local.status().running is False
    # The local broker's address, even while an external bootstrap is configured.
    external = Settings(**{**settings.__dict__, "bootstrap": "kafka.example:9092"})
    assert LocalBroker(external).status().bootstrap == "127.0.0.1:19192"


def test_stale_or_foreign_pid_file_is_not_our_broker(settings: Settings) -> None:
    local = LocalBroker(settings)
    settings.broker_dir.mkdir(parents=True)
    gone = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    local.pid_path.write_text(gone.stdout)
    assert local.stop() is False
    assert not local.pid_path.exists()
    # A live process that is not our broker (a recycled pid) must never be signalled.
    local.pid_path.write_text(f"{os.getpid()}\n")
    assert local.status(probe_timeout=0.1).running is False
    assert local.stop() is False


@pytest.fixture
def cli_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    for var in [v for v in os.environ if v.startswith("STREAMLEARN_")]:
        monkeypatch.delenv(var)
    return {"STREAMLEARN_STATE_DIR": str(tmp_path / "state")}


def test_cli_leaves_an_external_broker_alone(cli_env: dict[str, str]) -> None:
    env = {**cli_env, "STREAMLEARN_BOOTSTRAP": "kafka.example:9092"}
    for command in ("start", "stop"):
        result = CliRunner().invoke(broker, [command], env=env)
        assert result.exit_code == 0
        assert "using external kafka at kafka.example:9092" in result.stdout


def test_cli_status_of_unreachable_external_broker_is_an_error(cli_env: dict[str, str]) -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {
        **cli_env,
        "STREAMLEARN_BOOTSTRAP": f"127.0.0.1:{port}",
        "STREAMLEARN_BROKER_TIMEOUT": "1",
    }
    result = CliRunner().invoke(broker, ["status"], env=env)
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: kafka at 127.0.0.1:")
    assert "STREAMLEARN_BOOTSTRAP" in result.stderr


def test_cli_status_down_and_bad_setting(cli_env: dict[str, str]) -> None:
    down = CliRunner().invoke(broker, ["status"], env=cli_env)
    assert down.exit_code == EXIT_DOWN
    assert down.stdout.startswith("kafka down")
    bad = CliRunner().invoke(broker, ["status"], env={**cli_env, "STREAMLEARN_KAFKA_PORT": "x"})
    assert bad.exit_code == 1
    assert bad.stderr.strip().splitlines() == [
        "Error: bad setting kafka_port: 'x' is not a valid int (set STREAMLEARN_KAFKA_PORT)"
    ]


def test_public_api_is_sorted_and_complete() -> None:
    names = streamlearn.broker.__all__
    assert names == sorted(names)
    assert all(hasattr(streamlearn.broker, name) for name in names)
    public = {n for n in vars(streamlearn.broker) if not n.startswith("_")}
    submodules = {"admin", "cli", "ensure", "jars", "local", "server_config", "system", "tls",
                  "users"}
    assert public - submodules - {"annotations"} == set(names)
