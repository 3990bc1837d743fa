"""The commands that run a pipeline or change what it learned: ``run`` (one worker, or
several supervised), ``bootstrap`` (a warm start from history), ``reset`` and ``demo``."""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path
from typing import Any

import click

from streamlearn.broker import ensure_broker, ensure_pipeline_topics
from streamlearn.cli.common import NAME_HELP, confirm, load_spec, one_line_errors
from streamlearn.config import Settings, load_settings
from streamlearn.errors import StreamlearnError
from streamlearn.spec.pipeline import Pipeline
from streamlearn.tools.command_line import shown_command
from streamlearn.tools.reset import learned_topics, reset_pipeline

__all__ = ["bootstrap", "demo", "reset", "run"]


@click.command()
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
    spec = load_spec(pipeline_file, name)
    if workers == 1:
        from streamlearn.streams.worker import run_worker  # late import (faust), for startup time

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
    # Late imports, for startup time (`streamlearn --help`).
    from streamlearn.models.keys import model_key
    from streamlearn.streams.supervisor import Child, supervise, worker_children

    verbose = bool(click.get_current_context().find_root().params.get("verbose"))
    children = worker_children(pipeline_file, name, workers, settings.metrics_port,
                               sys.executable, verbose)
    # Once here, not N times at once in the children: one local broker start, one topic
    # creation, one model key file.
    bootstrap = ensure_pipeline_topics(spec, settings)
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


@click.command()
@click.argument("pipeline_file", type=click.Path(dir_okay=False))
@click.option("--history", required=True, type=click.Path(dir_okay=False),
              help="Labelled historical events: a .csv or .parquet file.")
@click.option("--name", help=NAME_HELP)
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
    # Late imports, for startup time (`streamlearn --help`).
    from rich.console import Console
    from rich.progress import Progress
    from rich.table import Table

    from streamlearn.models.keys import model_key
    from streamlearn.tools import warm_start as warm
    from streamlearn.tools.sources import read_frame

    spec = load_spec(pipeline_file, name)
    frame = read_frame(Path(history))
    settings = load_settings()
    with Progress(transient=False) as progress:
        task = progress.add_task("learning the history", total=len(frame))
        learned = warm.learn_history(spec, frame, lambda n: progress.advance(task, n))
    names = learned.model.scorer.names
    view = Table(title=f"{spec.name}: {learned.model.name}, test-then-train on the history "
                       "(prequential, and rolling over the last 1000)")
    for column in warm.columns(names):
        view.add_column(column, justify="right")
    for row in warm.table(learned):
        view.add_row(*row)
    # Not a terminal (a script, a pipe): wide enough that no header is cut.
    console = Console(width=None if sys.stdout.isatty() else 200)
    console.print(view)
    if learned.candidates is not None:
        for candidate, each in learned.candidates.models.items():
            scores = ", ".join(f"{metric} {score:.4f} (rolling {rolling:.4f})"
                               for metric, (score, rolling) in each.scorer.summary().items())
            console.print(f"candidate {candidate}: {scores}"
                          + (" (champion)" if candidate == learned.candidates.champion else ""))
    if learned.dead_letters:
        reasons = sorted(set(learned.dead_letters.values()))
        console.print(f"{len(learned.dead_letters)} rows skipped, as a worker would "
                      f"dead-letter them: {', '.join(reasons)}")
    png = Path(plot_path) if plot_path else Path(history).with_suffix(".prequential.png")
    warm.plot(learned, names, f"{spec.name}: {', '.join(names)} on the history", png)
    console.print(f"plot: {png}")

    ensure_pipeline_topics(spec, settings)
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


@click.command()
@click.argument("pipeline_file", type=click.Path(dir_okay=False))
@click.option("--name", help=NAME_HELP)
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
    spec = load_spec(pipeline_file, name)
    bootstrap = ensure_broker(load_settings())
    topics = learned_topics(spec)
    confirm(f"Reset pipeline {spec.name!r} at {bootstrap}: delete topics "
            f"{', '.join(topics)} and consumer group {spec.group_id}?", yes)
    done = reset_pipeline(spec, bootstrap, topics)
    deleted = done.topics + ([f"consumer group {spec.group_id}"] if done.group_deleted else [])
    kept = ", ".join(t for t in spec.topics if t not in topics)
    click.echo(f"deleted {', '.join(deleted) or 'nothing (nothing was there)'}; kept {kept}. "
               f"The next run relearns from the earliest event retained on {spec.events_topic}.")


@click.command()
@click.argument("pipeline_file", default="examples/phishing.py",
                type=click.Path(dir_okay=False))
@click.option("--source", default="river:Phishing", show_default=True)
@one_line_errors
def demo(pipeline_file: str, source: str) -> None:
    """Start Kafka, run PIPELINE_FILE, replay SOURCE through it, report accuracy."""
    from streamlearn.tools.demo import run_demo  # late import, for startup time

    sys.exit(run_demo(pipeline_file, source, load_settings()))
