"""The commands that bring data in: ``produce`` (replay a source into a topic, with its
labels delayed if asked) and ``infer`` (a pipeline file from a sample of a source)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import click

from streamlearn.broker import ensure_broker
from streamlearn.cli.common import one_line_errors
from streamlearn.config import load_settings
from streamlearn.errors import StreamlearnError
from streamlearn.kafka.admin import create_topics
from streamlearn.tools.command_line import shown_command

if TYPE_CHECKING:
    from streamlearn.tools.labels import LabelOptions

__all__ = ["infer", "produce"]


@click.command()
@click.argument("source")
@click.option("--topic", required=True, help="Topic to send the events to.")
@click.option("--rate", type=float, default=0.0, show_default=True, help="Events/s; 0 = max.")
@click.option("--limit", type=int, help="Send at most this many events.")
@click.option("--label-field", default="label", show_default=True,
              help="Field of the label: where a river: data set puts it, and the field "
                   "--labels-to takes out of each event.")
@click.option("--key-field", help="Field used as record key (default: the event id).")
@click.option("--event-id-field", default="event_id", show_default=True,
              help="Field with each event's unique id, added as <run>-<n> to events that "
                   "lack it; labels name their event by it (give the pipeline's "
                   "event_id_field).")
@click.option("--partitions", type=int, default=1, show_default=True,
              help="Partitions if the topic (and the --labels-to topic) has to be created.")
@click.option("--labels-to", metavar="TOPIC",
              help="Take the label out of each event and send it later to TOPIC (a "
                   "pipeline's <name>.labels) as {event_id, label, time?}, keyed by the "
                   "event id.")
@click.option("--label-delay", metavar="D|A-B",
              help="With --labels-to: seconds of wall clock from an event to its label, D, or "
                   "A-B for a uniform random delay per event  [default: 0]")
@click.option("--seed", type=int, default=0, show_default=True,
              help="Seed of the random label delays, so that a run repeats.")
@click.option("--time-field",
              help="With --labels-to: the events' own time field (epoch ms or ISO-8601); each "
                   "label's time is then its event's plus the delay. Without it labels carry "
                   "no time: the record timestamps (wall clock) are the clock.")
@one_line_errors
def produce(source: str, topic: str, rate: float, limit: int | None, label_field: str,
            key_field: str | None, event_id_field: str, partitions: int,
            labels_to: str | None, label_delay: str | None, seed: int,
            time_field: str | None) -> None:
    """Replay SOURCE (a .csv/.parquet file or river:DATASET) into a topic as JSON events.

    With --labels-to, labels arrive on their own, as they do in production: each event is
    sent without its --label-field, and its label follows on the labels topic --label-delay
    seconds later (labels due are sent between events; after the last event the command
    waits for the rest). For a pipeline that learns from <name>.labels (it declares a
    label_type and no label_field), e.g. one named phishing-delayed:

    \b
      streamlearn produce river:Phishing --topic phishing-delayed \\
          --label-field is_phishing --labels-to phishing-delayed.labels --label-delay 1-5
    """
    # Late imports, for startup time (`streamlearn --help`).
    from rich.progress import Progress

    from streamlearn.tools.labels import replay_with_labels, require_label
    from streamlearn.tools.produce import ReplayOptions, replay
    from streamlearn.tools.sources import iter_events, source_length

    if labels_to is None and (label_delay is not None or time_field is not None):
        raise StreamlearnError("--label-delay and --time-field go with --labels-to TOPIC")
    labels = _label_options(labels_to, label_field, label_delay, seed, time_field)
    settings = load_settings()
    events = iter_events(source, label_field)
    if labels is not None:
        events = require_label(events, label_field)
    bootstrap = ensure_broker(settings)
    create_topics(bootstrap, {topic: partitions} | ({labels_to: partitions} if labels_to else {}))
    total = source_length(source)
    if total is not None and limit is not None:
        total = min(total, limit)
    options = ReplayOptions(topic=topic, rate=rate, limit=limit, key_field=key_field,
                            id_field=event_id_field)
    sent_before = [0]  # the events a bad line in the source comes after

    def on_sent(n: int) -> None:
        sent_before[0] += n
        progress.advance(task, n)

    with Progress(transient=False) as progress, _sent_before_error(sent_before, topic):
        task = progress.add_task(f"→ {topic}", total=total)
        if labels is None:
            sent = replay(events, bootstrap, options, on_sent=on_sent)
            click.echo(f"sent {sent} events to {topic} at {bootstrap}")
            return
        label_task = progress.add_task(f"→ {labels.topic}", total=total)
        done = replay_with_labels(events, bootstrap, options, labels, on_event=on_sent,
                                  on_label=lambda n: progress.advance(label_task, n))
    unlabelled = f" ({done.unlabelled} events had no label)" if done.unlabelled else ""
    click.echo(f"sent {done.events} events to {topic} and {done.labels} labels to "
               f"{labels.topic}{unlabelled} at {bootstrap}")


@contextmanager
def _sent_before_error(sent: list[int], topic: str) -> Iterator[None]:
    """A bad record in the source stops ``produce``; say what is on the topic already."""
    from streamlearn.tools.sources import SourceError  # late import, for startup time

    try:
        yield
    except SourceError as exc:
        if not sent[0]:
            raise
        raise SourceError(f"{exc}; the {sent[0]} events before it were sent to {topic}, "
                          "so fix the file and send only what follows") from None


def _label_options(labels_to: str | None, label_field: str, delay: str | None, seed: int,
                   time_field: str | None) -> LabelOptions | None:
    if labels_to is None:
        return None
    from streamlearn.tools.labels import LabelOptions, parse_delay  # late import, for startup time

    try:
        seconds = parse_delay(delay or "0")
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--label-delay") from None
    return LabelOptions(labels_to, label_field, seconds, seed, time_field)


@click.command()
@click.argument("source")
@click.option("--label-field", help="Field holding the label (a river: data set's target "
              "goes there; default label). Without it the pipeline has no label.")
@click.option("--key-field", help="Field that keys events (default: the event id).")
@click.option("--event-id-field", help="Field with a unique event id (default event_id, "
              "which `streamlearn produce` adds to events that lack one).")
@click.option("--name", help="Pipeline name, also its events topic (default: from SOURCE).")
@click.option("--rows", type=int, default=1000, show_default=True,
              help="Rows of SOURCE to read.")
@click.option("-o", "--output", type=click.Path(dir_okay=False),
              help="Write the pipeline file here (default: print it).")
@click.option("--force", is_flag=True, help="Overwrite --output if it exists.")
@one_line_errors
def infer(source: str, label_field: str | None, key_field: str | None,
          event_id_field: str | None, name: str | None, rows: int, output: str | None,
          force: bool) -> None:
    """Write a pipeline file for SOURCE, each field typed from a sample.

    SOURCE is a .csv, .parquet or .jsonl file or river:DATASET. Booleans become boolean
    features, numbers numeric, strings categorical; fields with mixed types, nested values
    or only nulls are left out, with a comment saying why.
    """
    # Late imports, for startup time (`streamlearn --help`).
    from streamlearn.tools.infer import infer_pipeline, render_pipeline_file, write_pipeline_file

    inferred = infer_pipeline(source, label_field=label_field, key_field=key_field,
                              event_id_field=event_id_field, name=name, rows=rows)
    text = render_pipeline_file(inferred, output)
    if output is None:
        click.echo(text, nl=False)
        return
    write_pipeline_file(text, output, force)
    left_out = sum(c.type is None for c in inferred.columns)
    label = (f"label {inferred.label.name!r} ({inferred.label.type})" if inferred.label
             else "no label")
    click.echo(f"wrote {output}: pipeline {inferred.name!r}, "
               f"{len(inferred.features)} features, {label}"
               + (f"; {left_out} fields left out (see the comments)" if left_out else ""))
    click.echo(f"run it with: {shown_command('run', output)}")
