"""``streamlearn broker start|stop|status``: one line of output each."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any, TypeVar

import click
from rich.console import Console

from streamlearn.broker import jars
from streamlearn.broker.local import BrokerStatus, LocalBroker
from streamlearn.config import Settings, load_settings
from streamlearn.errors import StreamlearnError
from streamlearn.kafka.admin import wait_ready

__all__ = ["broker"]

F = TypeVar("F", bound=Callable[..., Any])

# Exit code of `status` when no broker runs, as `pg_ctl status` does: scripts can tell
# "down" from "error" (1).
EXIT_DOWN = 3
# `status` only probes; it must answer in seconds even when the broker hangs.
STATUS_PROBE_S = 5.0


class BrokerCommandError(click.ClickException):
    """Printed as ``Error: <message>`` on stderr (as every other command), exit code 1."""

    def show(self, file: IO[Any] | None = None) -> None:
        click.echo(f"Error: {self.format_message()}", err=True, file=file)


def _reports_errors(command: F) -> F:
    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except StreamlearnError as e:
            raise BrokerCommandError(str(e)) from None

    return wrapper  # type: ignore[return-value]


@click.group(name="broker")
def broker() -> None:
    """Run the local Kafka broker (KRaft, single node) streamlearn uses.

    With STREAMLEARN_BOOTSTRAP set, an external Kafka is used and nothing is started.
    """
    # The client logs every refused connection while the broker boots; the command's
    # own line says what happened.
    logging.getLogger("kafka").setLevel(logging.CRITICAL)


@broker.command()
@_reports_errors
def start() -> None:
    """Start the broker (fetching its jars on first use) and wait until it answers."""
    settings = load_settings()
    if settings.uses_external_broker:
        click.echo(
            f"using external kafka at {settings.bootstrap} (STREAMLEARN_BOOTSTRAP); "
            "nothing to start"
        )
        return
    local = LocalBroker(settings)
    was_running = local.status(probe_timeout=STATUS_PROBE_S).ready
    console = Console(stderr=True)
    if not jars.is_cached(settings):
        with console.status(
            f"fetching Kafka {settings.kafka_version} jars with Maven (first run only, ~30 s)"
        ):
            jars.resolve_jars(settings)
    with console.status(f"starting kafka {settings.kafka_version}"):
        local.start()
    click.echo(_describe(local.status(probe_timeout=STATUS_PROBE_S), already=was_running))


@broker.command()
@click.option(
    "--timeout",
    default=30.0,
    show_default=True,
    help="Seconds to wait for a clean shutdown before killing the broker.",
)
@_reports_errors
def stop(timeout: float) -> None:
    """Stop the broker started from this state directory."""
    settings = load_settings()
    if settings.uses_external_broker:
        click.echo(
            f"using external kafka at {settings.bootstrap} (STREAMLEARN_BOOTSTRAP); nothing to stop"
        )
        return
    local = LocalBroker(settings)
    pid = local.pid
    if local.stop(timeout=timeout):
        click.echo(f"kafka stopped (pid {pid})")
    else:
        click.echo("kafka was not running")


@broker.command()
@_reports_errors
def status() -> None:
    """Say whether the broker is up; exit 0 if it answers, 3 if none runs, 1 on error."""
    settings = load_settings()
    if settings.uses_external_broker:
        _check_external(settings)
        return
    current = LocalBroker(settings).status(probe_timeout=STATUS_PROBE_S)
    if not current.running:
        click.echo(f"kafka down (no broker running from {_short(settings.broker_dir)})")
        click.get_current_context().exit(EXIT_DOWN)
    if not current.ready:
        raise BrokerCommandError(
            f"kafka {current.version} runs (pid {current.pid}) but does not answer at "
            f"{current.bootstrap}: see {_short(current.log_path)}"
        )
    click.echo(_describe(current))


def _check_external(settings: Settings) -> None:
    try:
        wait_ready(settings.bootstrap, min(settings.broker_timeout, STATUS_PROBE_S), settings)
    except StreamlearnError as e:
        raise BrokerCommandError(f"{e} (check STREAMLEARN_BOOTSTRAP)") from None
    click.echo(f"external kafka up at {settings.bootstrap} (STREAMLEARN_BOOTSTRAP)")


def _describe(current: BrokerStatus, already: bool = False) -> str:
    state = "already up" if already else "up"
    return (
        f"kafka {current.version} {state} at {current.bootstrap} "
        f"(pid {current.pid}, log {_short(current.log_path)})"
    )


def _short(path: Path) -> str:
    """``path`` with the home directory written as ``~``, as users type it."""
    try:
        return "~/" + str(path.relative_to(Path.home()))
    except ValueError:
        return str(path)
