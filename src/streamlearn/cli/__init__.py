"""``streamlearn`` commands; thin wrappers over the package's functions."""

from __future__ import annotations

import logging
import os
import signal
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import wraps
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from streamlearn.config import load_settings
from streamlearn.errors import StreamlearnError

if TYPE_CHECKING:
    from streamlearn.config import Settings
    from streamlearn.spec.pipeline import Pipeline
    from streamlearn.tools.labels import LabelOptions

from streamlearn.tools.command_line import shown_command

__all__ = ["main", "shown_command"]

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


def _confirm(question: str, yes: bool) -> None:
    """Ask on the terminal; without one, only --yes goes ahead."""
    if yes:
        return
    if not sys.stdin.isatty():
        raise StreamlearnError(f"{question} Not on a terminal: add --yes to go ahead")
    if not click.confirm(question, default=False):
        raise click.Abort()


def _spec(pipeline_file: str, name: str | None) -> Pipeline:
    from streamlearn.spec.pipeline import load_pipeline

    spec = load_pipeline(pipeline_file)
    return spec.renamed(name) if name else spec


_NAME_HELP = "The pipeline under another name, as with `streamlearn run --name`."


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
@click.option("--rebuild", is_flag=True,
              help="Ignore snapshots made by another river version or pipeline spec: relearn "
                   "from the events topic's earliest retained event.")
@click.option("--workers", type=click.IntRange(min=1), default=1, show_default=True,
              help="Worker processes to run; worker i serves metrics on "
                   "STREAMLEARN_METRICS_PORT + i.")
@one_line_errors
def run(pipeline_file: str, name: str | None, rebuild: bool, workers: int) -> None:
    """Run a worker for the pipeline defined in PIPELINE_FILE (until SIGTERM / Ctrl-C).

    Each input partition's model is restored from its newest valid snapshot in
    <name>.models and the partition is read from the offset that snapshot reflects.

    With --workers N (N > 1) this command starts the broker (unless STREAMLEARN_BOOTSTRAP
    names one) and the pipeline's topics, then runs N worker processes and supervises them:
    worker i serves metrics on STREAMLEARN_METRICS_PORT + i and its output lines are
    prefixed [worker i]; SIGTERM and SIGINT go to every worker. The workers share the input
    partitions (workers beyond the partition count stand by); when one exits, the others
    take over its partitions and keep running. The command ends when every worker has
    exited, with the first non-zero exit code. --rebuild needs a single worker.
    """
    # Until faust (or the supervisor) installs its handlers, seconds of imports away, a
    # SIGTERM stops the command cleanly instead of killing it (exit 143) while a supervisor
    # or a test waits for it: nothing is served or learned yet, nothing to checkpoint.
    signal.signal(signal.SIGTERM, _exit_before_start)
    settings = load_settings()
    spec = _spec(pipeline_file, name)
    if workers == 1:
        from streamlearn.streams.worker import run_worker

        run_worker(spec, settings, rebuild=rebuild)
        return
    if rebuild:
        raise StreamlearnError("--rebuild relearns with one worker: run it without --workers, "
                               "stop it once it serves, then start --workers N")
    sys.exit(_run_workers(spec, settings, pipeline_file, name, workers))


def _exit_before_start(signum: int, frame: Any) -> None:
    raise SystemExit(0)


def _run_workers(spec: Pipeline, settings: Settings, pipeline_file: str, name: str | None,
                 workers: int) -> int:
    from streamlearn.broker import ensure_broker
    from streamlearn.kafka.admin import create_topics
    from streamlearn.models.keys import model_key
    from streamlearn.spec.topics import topic_configs
    from streamlearn.streams.supervisor import Child, supervise, worker_children

    verbose = bool(click.get_current_context().find_root().params.get("verbose"))
    children = worker_children(pipeline_file, name, workers, settings.metrics_port,
                               sys.executable, verbose)
    # Once here, not N times at once in the children: one local broker start, one topic
    # creation, one model key file.
    bootstrap = ensure_broker(settings)
    create_topics(bootstrap, spec.topics, topic_configs(spec, settings), settings=settings)
    model_key(settings)
    idle = workers - spec.partitions
    click.echo(f"{workers} workers of pipeline {spec.name!r} at {bootstrap}"
               + (f" ({idle} stand by: {spec.events_topic} has {spec.partitions} partitions)"
                  if idle > 0 else ""))
    for child in children:
        where = (f"http://{settings.metrics_host}:{child.metrics_port}/metrics"
                 if child.metrics_port else "off (STREAMLEARN_METRICS_PORT=0)")
        click.echo(f"worker {child.index}: metrics {where}")

    def exited(child: Child, code: int, running: int) -> None:
        rest = (f"; {running} still running (they take over its partitions)" if running
                else "; none left running")
        click.echo(f"worker {child.index} exited with code {code}{rest}", err=bool(code))

    return supervise(children, os.environ, sys.stdout.buffer, exited)


@main.command()
@click.argument("pipeline_file", type=click.Path(dir_okay=False))
@click.option("--history", required=True, type=click.Path(dir_okay=False),
              help="Labelled historical events: a .csv or .parquet file.")
@click.option("--name", help=_NAME_HELP)
@click.option("--plot", "plot_path", type=click.Path(dir_okay=False),
              help="Where to write the PNG (default: <history>.prequential.png beside it).")
@one_line_errors
def bootstrap(pipeline_file: str, history: str, name: str | None, plot_path: str | None
              ) -> None:
    """Warm start PIPELINE_FILE from HISTORY: learn it, then publish model and features.

    The history is put in event-time order; features are computed as a worker would serve
    them; the model learns test-then-train and the prequential metric is printed and
    plotted. Then each partition gets the feature state of its entities and a signed
    snapshot of the model, so `streamlearn run` serves its first event warm.
    """
    from rich.console import Console
    from rich.progress import Progress
    from rich.table import Table

    from streamlearn.broker import ensure_broker
    from streamlearn.kafka.admin import create_topics
    from streamlearn.models.keys import model_key
    from streamlearn.spec.topics import topic_configs
    from streamlearn.tools import warm_start as warm
    from streamlearn.tools.sources import read_frame

    spec = _spec(pipeline_file, name)
    frame = read_frame(Path(history))
    settings = load_settings()
    with Progress(transient=False) as progress:
        task = progress.add_task("learning the history", total=len(frame))
        learned = warm.learn_history(spec, frame, lambda n: progress.advance(task, n))
    metric = learned.model.metric_name
    view = Table(title=f"{spec.name}: {learned.model.name}, test-then-train on the history")
    for column in ("examples", "event time (UTC)", f"prequential {metric}", f"rolling {metric}"):
        view.add_column(column, justify="right")
    for row in warm.table(learned, metric):
        view.add_row(*row)
    console = Console()
    console.print(view)
    if learned.candidates is not None:
        for candidate, each in learned.candidates.models.items():
            console.print(f"candidate {candidate}: prequential {metric} "
                          f"{each.score.get():.4f}, rolling {each.rolling_score.get():.4f}"
                          + (" (champion)" if candidate == learned.candidates.champion else ""))
    if learned.dead_letters:
        reasons = sorted(set(learned.dead_letters.values()))
        console.print(f"{len(learned.dead_letters)} rows skipped, as a worker would "
                      f"dead-letter them: {', '.join(reasons)}")
    png = Path(plot_path) if plot_path else Path(history).with_suffix(".prequential.png")
    warm.plot(learned, metric, f"{spec.name}: prequential {metric} on the history", png)
    console.print(f"plot: {png}")

    servers = ensure_broker(settings)
    create_topics(servers, spec.topics, topic_configs(spec, settings))
    with Progress(transient=False) as progress:
        task = progress.add_task("publishing", total=len(spec.stages))
        ids = warm.publish(spec, settings, learned, model_key(settings),
                           lambda n: progress.advance(task, n))
    entities = sum(len(s.entities) for s in learned.states.values())
    name_args = ("--name", name) if name else ()
    click.echo(f"published snapshot {sorted(set(ids.values()))} of {learned.model.version} "
               f"examples to {spec.models_topic} and the state of {entities} entities to "
               f"{spec.state_topic}; now `{shown_command('run', pipeline_file, *name_args)}` "
               "serves warm")


@main.command()
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
    from rich.progress import Progress

    from streamlearn.broker import ensure_broker
    from streamlearn.kafka.admin import create_topics
    from streamlearn.tools.produce import ReplayOptions, replay
    from streamlearn.tools.sources import iter_events, source_length

    if labels_to is None and (label_delay is not None or time_field is not None):
        raise StreamlearnError("--label-delay and --time-field go with --labels-to TOPIC")
    labels = _label_options(labels_to, label_field, label_delay, seed, time_field)
    settings = load_settings()
    events = iter_events(source, label_field)
    if labels is not None:
        from streamlearn.tools.labels import require_label

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
        from streamlearn.tools.labels import replay_with_labels

        label_task = progress.add_task(f"→ {labels.topic}", total=total)
        done = replay_with_labels(events, bootstrap, options, labels, on_event=on_sent,
                                  on_label=lambda n: progress.advance(label_task, n))
    unlabelled = f" ({done.unlabelled} events had no label)" if done.unlabelled else ""
    click.echo(f"sent {done.events} events to {topic} and {done.labels} labels to "
               f"{labels.topic}{unlabelled} at {bootstrap}")


@contextmanager
def _sent_before_error(sent: list[int], topic: str) -> Iterator[None]:
    """A bad record in the source stops ``produce``; say what is on the topic already."""
    from streamlearn.tools.sources import SourceError

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
    from streamlearn.tools.labels import LabelOptions, parse_delay

    try:
        seconds = parse_delay(delay or "0")
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--label-delay") from None
    return LabelOptions(labels_to, label_field, seconds, seed, time_field)


@main.command()
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
    from streamlearn.broker import ensure_broker
    from streamlearn.tools.tail import tail as tail_topic

    def started(already: int) -> None:
        if already and not from_beginning:
            click.echo(f"waiting for new records on {topic} ({already} already there: "
                       "add --from-beginning to see them)", err=True)
        elif not already:
            click.echo(f"waiting for new records on {topic} (none there yet)", err=True)

    bootstrap = ensure_broker(load_settings())
    for record in tail_topic(bootstrap, topic, from_beginning, limit, idle, on_start=started):
        click.echo(record.render())


@main.command()
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


@main.command()
@click.argument("pipeline_file", type=click.Path(dir_okay=False))
@click.option("--name", help=_NAME_HELP)
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@one_line_errors
def reset(pipeline_file: str, name: str | None, yes: bool) -> None:
    """Forget what the pipeline in PIPELINE_FILE learned, to start it over.

    Deletes its model snapshots (<name>.models), its state (<name>.state), the re-keyed
    copies of its events (<name>.by-<field>, if features are by another field) and its consumer
    group (streamlearn-<name>, with its committed offsets). Events, predictions and dead
    letters are kept: the next `streamlearn run` relearns from the earliest event the
    events topic still retains (its retention decides how far back that is). Stop the
    pipeline's workers first.
    """
    from streamlearn.broker import ensure_broker

    spec = _spec(pipeline_file, name)
    bootstrap = ensure_broker(load_settings())
    # Re-keyed copies of the events go too: their stages' state is forgotten with the rest.
    topics = [spec.models_topic, spec.state_topic, *(s.topic for s in spec.stages[1:])]
    if spec.global_learner:  # the learner's examples: rebuilt by the joins from the start
        # Commands go with the snapshots that record which were applied (else replayed).
        topics += [spec.training_topic, spec.commands_topic]
    _confirm(f"Reset pipeline {spec.name!r} at {bootstrap}: delete topics "
             f"{', '.join(topics)} and consumer group {spec.group_id}?", yes)
    deleted = _reset(spec, bootstrap, topics)
    kept = ", ".join(t for t in spec.topics if t not in topics)
    click.echo(f"deleted {', '.join(deleted) or 'nothing (nothing was there)'}; kept {kept}. "
               f"The next run relearns from the earliest event retained on {spec.events_topic}.")


def _reset(spec: Pipeline, bootstrap: str, topics: list[str]) -> list[str]:
    from streamlearn.kafka.admin import (
        GroupNotEmpty,
        delete_group,
        delete_topics,
        topic_partitions,
    )

    # The group first: while workers are in it, nothing is deleted.
    try:
        group_deleted = delete_group(bootstrap, spec.group_id)
        if spec.global_learner:
            delete_group(bootstrap, f"{spec.group_id}-learner")
    except GroupNotEmpty:
        raise StreamlearnError(
            f"consumer group {spec.group_id} still has members: stop the pipeline's "
            f"workers (`streamlearn run` of {spec.name!r}) first, then reset"
        ) from None
    present = [t for t in topics if topic_partitions(bootstrap, t) is not None]
    delete_topics(bootstrap, present)
    return present + ([f"consumer group {spec.group_id}"] if group_deleted else [])


@main.command()
@click.argument("pipeline_file", default="examples/phishing.py",
                type=click.Path(dir_okay=False))
@click.option("--source", default="river:Phishing", show_default=True)
@one_line_errors
def demo(pipeline_file: str, source: str) -> None:
    """Start Kafka, run PIPELINE_FILE, replay SOURCE through it, report accuracy."""
    from streamlearn.tools.demo import run_demo

    sys.exit(run_demo(pipeline_file, source, load_settings()))


@main.group()
def dlq() -> None:
    """Dead letters of a pipeline: show them, export their values to fix, replay them.

    Reads <name>.dlq with no consumer group, from its start to its current end.
    """


def _dead_letters(pipeline_file: str, name: str | None, reason: str | None) -> Any:
    from streamlearn.broker import ensure_broker
    from streamlearn.tools.dlq import read_dead_letters

    spec = _spec(pipeline_file, name)
    bootstrap = ensure_broker(load_settings())
    return spec, bootstrap, *read_dead_letters(bootstrap, spec, reason)


_REASON_HELP = "Only dead letters with this reason (invalid_json, bad_type, missing_field, ...)."


@dlq.command("show")
@click.argument("pipeline_file", type=click.Path(dir_okay=False))
@click.option("--reason", help=_REASON_HELP)
@click.option("--limit", type=int, default=20, show_default=True, help="Rows to show.")
@click.option("--name", help=_NAME_HELP)
@one_line_errors
def dlq_show(pipeline_file: str, reason: str | None, limit: int, name: str | None) -> None:
    """Show the dead letters of PIPELINE_FILE's pipeline as a table, oldest first."""
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    from streamlearn.tools.dlq import summary

    spec, _, letters, reasons = _dead_letters(pipeline_file, name, reason)
    shown = letters[: max(limit, 0)]
    if shown:
        table = Table("offset", "reason", "error", "value", title=spec.dlq_topic)
        for letter in shown:
            # Text, not str: brackets in an event must not be read as rich markup.
            table.add_row(str(letter.offset), Text(letter.reason), Text(letter.error),
                          Text(letter.excerpt()))
        Console().print(table)
    click.echo(summary(spec.dlq_topic, reasons, len(shown), reason))


@dlq.command("export")
@click.argument("pipeline_file", type=click.Path(dir_okay=False))
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False),
              help="JSON lines file to write.")
@click.option("--reason", help=_REASON_HELP)
@click.option("--force", is_flag=True, help="Overwrite --output if it exists.")
@click.option("--name", help=_NAME_HELP)
@one_line_errors
def dlq_export(pipeline_file: str, output: str, reason: str | None, force: bool,
               name: str | None) -> None:
    """Write the dead letters' original values to a file, one per line, to fix them.

    Values that are not JSON are written as their text. Fix the file, then send it back
    with `streamlearn dlq replay PIPELINE_FILE --fixed FILE`.
    """
    from streamlearn.tools.dlq import export_values

    spec, _, letters, _ = _dead_letters(pipeline_file, name, reason)
    written, failing = export_values(letters, output, spec, force)
    click.echo(f"wrote {written} values from {spec.dlq_topic} to {output}")
    if failing:
        replay = shown_command("dlq", "replay", pipeline_file, "--fixed", output,
                               *(("--name", name) if name else ()))
        click.echo(f"{failing} of them fail the pipeline's checks as they are: fix them, "
                   f"then {replay}")


@dlq.command("replay")
@click.argument("pipeline_file", type=click.Path(dir_okay=False))
@click.option("--all", "every", is_flag=True,
              help="Re-send every dead letter's original key, bytes and headers.")
@click.option("--fixed", type=click.Path(dir_okay=False),
              help="Send each line of this JSON lines file as an event instead.")
@click.option("--reason", help=_REASON_HELP + " With --all.")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.option("--name", help=_NAME_HELP)
@one_line_errors
def dlq_replay(pipeline_file: str, every: bool, fixed: str | None, reason: str | None,
               yes: bool, name: str | None) -> None:
    """Send dead letters back to the pipeline's events topic.

    --all re-sends each dead letter as it was (key, bytes and original headers, plus
    streamlearn.replayed_from=<dlq topic>:<offset>): for letters the pipeline now accepts.
    --fixed FILE sends each line of FILE (from `dlq export`, fixed) keyed by the key field;
    every line is checked against the pipeline first, and nothing is sent if one fails.
    Replaying twice sends twice: predictions carry the event id to deduplicate.
    """
    from streamlearn.broker import ensure_broker
    from streamlearn.tools.dlq import read_fixed_events, replay_dead_letters, send_events

    if every == bool(fixed) or (reason and fixed):
        raise StreamlearnError("dlq replay: give either --all [--reason R] or --fixed FILE")
    spec = _spec(pipeline_file, name)
    if fixed:
        events = read_fixed_events(fixed, spec)
        bootstrap = ensure_broker(load_settings())
        _confirm(f"Send {len(events)} events from {fixed} to {spec.events_topic} at "
                 f"{bootstrap}?", yes)
        sent, origin = send_events(events, bootstrap, spec), fixed
    else:
        _, bootstrap, letters, _ = _dead_letters(pipeline_file, name, reason)
        if not letters:
            click.echo(f"no dead letters to replay on {spec.dlq_topic}")
            return
        _confirm(f"Re-send {len(letters)} dead letters from {spec.dlq_topic} to "
                 f"{spec.events_topic} at {bootstrap}?", yes)
        sent, origin = replay_dead_letters(letters, bootstrap, spec), spec.dlq_topic
    click.echo(f"sent {sent} events from {origin} to {spec.events_topic}")


@main.command()
@click.argument("pipeline_file", type=click.Path(dir_okay=False))
@click.option("--name", help=_NAME_HELP)
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
    from streamlearn.tools.top import metrics_url, run_top

    settings = load_settings()
    spec = _spec(pipeline_file, name)
    run_top(spec.name, url or metrics_url(settings), list(spec.features or {}), interval, once,
            settings.drift_psi_threshold)


def _add_broker_group() -> None:
    from streamlearn.cli.broker import broker

    main.add_command(broker)


_add_broker_group()

def _register() -> None:
    from streamlearn.cli.models import models, report

    main.add_command(models)
    main.add_command(report)


_register()

if __name__ == "__main__":
    main()
