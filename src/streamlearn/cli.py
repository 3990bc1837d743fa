"""``streamlearn`` commands; thin wrappers over the package's functions."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

import click

from streamlearn.config import load_settings
from streamlearn.errors import StreamlearnError

__all__ = ["main"]

F = TypeVar("F", bound=Callable[..., Any])


def one_line_errors(fn: F) -> F:
    """Our own errors end the command with one line on stderr and exit code 1."""

    @wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except StreamlearnError as exc:
            raise click.ClickException(str(exc)) from None

    return wrapper  # type: ignore[return-value]


@click.group()
@click.option("-v", "--verbose", is_flag=True, help="Log debug detail.")
def main(verbose: bool) -> None:
    """Streaming machine learning on Kafka: run pipelines, replay data, watch topics."""
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    # kafka-python logs every refused connection while a broker boots, at ERROR; failures
    # that matter reach users as our own one-line errors. -v shows its detail.
    logging.getLogger("kafka").setLevel(logging.DEBUG if verbose else logging.CRITICAL)


@main.command()
@click.argument("pipeline_file", type=click.Path(dir_okay=False))
@click.option("--name", help="Run the pipeline under another name (its topics follow).")
@one_line_errors
def run(pipeline_file: str, name: str | None) -> None:
    """Run a faust worker for the pipeline defined in PIPELINE_FILE."""
    from streamlearn.pipeline import load_pipeline
    from streamlearn.streams.worker import run_worker

    settings = load_settings()
    spec = load_pipeline(pipeline_file)
    if name:
        spec = spec.renamed(name)
    run_worker(spec, settings)


@main.command()
@click.argument("source")
@click.option("--topic", required=True, help="Topic to send the events to.")
@click.option("--rate", type=float, default=0.0, show_default=True, help="Events/s; 0 = max.")
@click.option("--limit", type=int, help="Send at most this many events.")
@click.option("--label-field", default="label", show_default=True,
              help="Field name of the label of a river: data set.")
@click.option("--key-field", help="Field used as record key (default: the event id).")
@click.option("--partitions", type=int, default=1, show_default=True,
              help="Partitions if the topic has to be created.")
@one_line_errors
def produce(source: str, topic: str, rate: float, limit: int | None, label_field: str,
            key_field: str | None, partitions: int) -> None:
    """Replay SOURCE (a .csv/.parquet file or river:DATASET) into a topic as JSON events."""
    from rich.progress import Progress

    from streamlearn.broker import ensure_broker
    from streamlearn.broker.admin import create_topics
    from streamlearn.replay import ReplayOptions, replay
    from streamlearn.sources import iter_events, source_length

    settings = load_settings()
    events = iter_events(source, label_field)
    bootstrap = ensure_broker(settings)
    create_topics(bootstrap, {topic: partitions})
    total = source_length(source)
    if total is not None and limit is not None:
        total = min(total, limit)
    options = ReplayOptions(topic=topic, rate=rate, limit=limit, key_field=key_field)
    with Progress(transient=False) as progress:
        task = progress.add_task(f"→ {topic}", total=total)
        sent = replay(events, bootstrap, options,
                      on_sent=lambda n: progress.advance(task, n))
    click.echo(f"sent {sent} events to {topic} at {bootstrap}")


@main.command()
@click.argument("topic")
@click.option("--from-beginning", is_flag=True, help="Start at the oldest record.")
@click.option("--limit", type=int, help="Stop after this many records.")
@click.option("--idle", type=float, help="Stop after this many seconds without a record.")
@one_line_errors
def tail(topic: str, from_beginning: bool, limit: int | None, idle: float | None) -> None:
    """Print records arriving on TOPIC (dead letters with their error headers)."""
    from streamlearn.broker import ensure_broker
    from streamlearn.tail import tail as tail_topic

    bootstrap = ensure_broker(load_settings())
    for record in tail_topic(bootstrap, topic, from_beginning, limit, idle):
        click.echo(record.render())


@main.command()
@click.argument("pipeline_file", default="examples/phishing.py",
                type=click.Path(dir_okay=False))
@click.option("--source", default="river:Phishing", show_default=True)
@one_line_errors
def demo(pipeline_file: str, source: str) -> None:
    """Start Kafka, run PIPELINE_FILE, replay SOURCE through it, report accuracy."""
    from streamlearn.demo import run_demo

    sys.exit(run_demo(pipeline_file, source, load_settings()))


def _add_broker_group() -> None:
    from streamlearn.broker.cli import broker

    main.add_command(broker)


_add_broker_group()

if __name__ == "__main__":
    main()
