"""The commands that watch what flows: ``tail`` (a topic's records as they arrive) and
``top`` (a worker's metrics, live)."""

from __future__ import annotations

import click

from streamlearn.broker import ensure_broker
from streamlearn.cli.common import NAME_HELP, load_spec, one_line_errors
from streamlearn.config import load_settings

__all__ = ["tail", "top"]


@click.command()
@click.argument("topic")
@click.option("--from-beginning", is_flag=True, help="Start at the oldest record.")
@click.option("--limit", type=int, help="Stop after this many records.")
@click.option("--idle", type=float, help="Stop after this many seconds without a record.")
@one_line_errors
def tail(topic: str, from_beginning: bool, limit: int | None, idle: float | None) -> None:
    """Print records arriving on TOPIC; headers (a dead letter's reason) on indented lines.

    Without --from-beginning only new records are shown; how many are already there goes
    to stderr once.
    """
    from streamlearn.tools.tail import tail as tail_topic  # late import, for startup time

    def started(already: int) -> None:
        if already and not from_beginning:
            click.echo(f"waiting for new records on {topic} ({already} already there: "
                       "add --from-beginning to see them)", err=True)
        elif not already:
            click.echo(f"waiting for new records on {topic} (none there yet)", err=True)

    bootstrap = ensure_broker(load_settings())
    for record in tail_topic(bootstrap, topic, from_beginning, limit, idle, on_start=started):
        click.echo(record.render())


@click.command()
@click.argument("pipeline_file", type=click.Path(dir_okay=False))
@click.option("--name", help=NAME_HELP)
@click.option("--url", help="The worker's metrics endpoint (default: http://"
              "STREAMLEARN_METRICS_HOST:STREAMLEARN_METRICS_PORT/metrics).")
@click.option("--interval", type=float, default=2.0, show_default=True,
              help="Seconds between two scrapes (rates are over this).")
@click.option("--once", is_flag=True, help="Print one frame (two scrapes --interval apart) "
              "and exit.")
@one_line_errors
def top(pipeline_file: str, name: str | None, url: str | None, interval: float,
        once: bool) -> None:
    """Watch one worker's /metrics live: events/s, predictions/s, p99 latency, accuracy per
    partition, dead letters by reason and each field's drift state (Ctrl-C ends it)."""
    from streamlearn.tools.top import metrics_url, run_top  # late import, for startup time

    settings = load_settings()
    spec = load_spec(pipeline_file, name)
    run_top(spec.name, url or metrics_url(settings), list(spec.features or {}), interval, once,
            settings.drift_psi_threshold)
