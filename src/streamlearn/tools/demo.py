"""``streamlearn demo``: the whole loop on one machine, end to end, in about a minute.

Starts (or reaches) Kafka, runs the pipeline's worker as a child process, replays a data set,
reads every prediction back from the predictions topic, and prints the prequential accuracy
next to River's own ``progressive_val_score`` on the same data.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from streamlearn.broker import ensure_pipeline_topics
from streamlearn.config import Settings
from streamlearn.errors import StreamlearnError
from streamlearn.models.learner import served_proba
from streamlearn.models.scoring import metric_name
from streamlearn.spec.pipeline import Pipeline, load_pipeline
from streamlearn.tools.command_line import shown_command
from streamlearn.tools.predictions import collect_predictions, prequential_accuracy
from streamlearn.tools.produce import ReplayOptions, replay
from streamlearn.tools.sources import RIVER_PREFIX, iter_events

__all__ = ["run_demo"]

WAIT_FOR_PREDICTIONS_S = 120.0


def run_demo(pipeline_file: str, source: str, settings: Settings) -> int:
    console = Console()
    # A fresh name each run: a worker restores its pipeline's model from its snapshots, and
    # the comparison with River's progressive_val_score needs a model that starts untrained.
    base = load_pipeline(pipeline_file)
    spec = base.renamed(f"{base.name}-demo-{uuid.uuid4().hex[:6]}")
    with console.status("starting Kafka (the first run downloads it with Maven)"):
        # Topics created as the worker creates them, so the replay never waits for it.
        bootstrap = ensure_pipeline_topics(spec, settings)
    console.print(f"Kafka at [bold]{bootstrap}[/]; starting the worker for [bold]{spec.name}[/]")
    worker = _start_worker(pipeline_file, spec.name, settings)
    try:
        labels = _replay(console, spec, source, bootstrap, settings)
        predictions = _collect(console, spec, bootstrap, set(labels), worker, settings)
    finally:
        _stop_worker(worker)
    _report(console, spec, source, bootstrap, labels, predictions)
    return 0


def _start_worker(pipeline_file: str, name: str, settings: Settings
                  ) -> subprocess.Popen[bytes]:
    log_path = settings.state_dir / "demo-worker.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "wb") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "streamlearn", "run", str(Path(pipeline_file)),
             "--name", name],
            stdout=log, stderr=subprocess.STDOUT, env=os.environ.copy(),
        )


def _stop_worker(worker: subprocess.Popen[bytes]) -> None:
    if worker.poll() is None:
        worker.send_signal(signal.SIGTERM)
        try:
            worker.wait(timeout=30)
        except subprocess.TimeoutExpired:
            worker.kill()


def _replay(console: Console, spec: Pipeline, source: str, bootstrap: str,
            settings: Settings) -> dict[str, Any]:
    run_id = uuid.uuid4().hex[:8]
    label_field = spec.label_field or "label"
    events = list(iter_events(source, label_field))
    options = ReplayOptions(topic=spec.events_topic, id_prefix=run_id,
                            id_field=spec.event_id_field or "event_id")
    with Progress(console=console) as progress:
        task = progress.add_task(f"replaying {source} → {spec.events_topic}", total=len(events))
        replay(events, bootstrap, options, on_sent=lambda n: progress.advance(task, n),
               settings=settings)
    return {f"{run_id}-{i}": e[label_field] for i, e in enumerate(events)}


def _collect(
    console: Console, spec: Pipeline, bootstrap: str, wanted: set[str],
    worker: subprocess.Popen[bytes], settings: Settings,
) -> dict[str, dict[str, Any]]:
    with Progress(console=console) as progress:
        task = progress.add_task(f"predictions ← {spec.predictions_topic}", total=len(wanted))
        found = collect_predictions(
            bootstrap, spec.predictions_topic, wanted, WAIT_FOR_PREDICTIONS_S,
            on_new=lambda: progress.advance(task), alive=lambda: worker.poll() is None,
            settings=settings,
        )
    if len(found) < len(wanted):
        raise StreamlearnError(
            f"only {len(found)} of {len(wanted)} predictions arrived; "
            f"see the worker log (exit code {worker.poll()})"
        )
    return found


def _report(console: Console, spec: Pipeline, source: str, bootstrap: str,
            labels: dict[str, Any], predictions: dict[str, dict[str, Any]]) -> None:
    table = Table(title=f"{spec.name}: {source}", show_header=False)
    table.add_row("events replayed", str(len(labels)))
    table.add_row("predictions read back", str(len(predictions)))
    table.add_row("prequential accuracy", f"{prequential_accuracy(labels, predictions):.4f}")
    river = source.startswith(RIVER_PREFIX)
    if river:
        table.add_row("River progressive_val_score", f"{_river_reference(spec, source):.4f}")
    # The pipeline's own metrics (a boolean label: ROC AUC first), over what was served.
    scorer = spec.scoring.new()
    for event_id, label in labels.items():
        served = predictions.get(event_id)
        if served is not None:
            scorer.update(label, served.get("prediction"),
                          served_proba(served.get("proba"), label))
    for metric, value in zip(spec.scoring.metrics, scorer.values(), strict=True):
        name = metric_name(metric)
        if name == "accuracy":
            continue  # shown above
        reference = (f" (River progressive_val_score "
                     f"{_river_reference(spec, source, metric):.4f})" if river else "")
        table.add_row(f"prequential {name}", f"{value:.4f}{reference}")
    table.add_row("predictions topic", f"{spec.predictions_topic} @ {bootstrap}")
    console.print(table)
    # Commands as they work from here (`make demo` does not put .venv/bin on PATH), outside
    # the table so that a narrow terminal does not break them across cells.
    for what, command in (
        ("see the predictions", shown_command("tail", spec.predictions_topic,
                                              "--from-beginning")),
        ("stop Kafka", shown_command("broker", "stop")),
    ):
        console.print(f"{what}: {command}", soft_wrap=True, markup=False, highlight=False)


def _river_reference(spec: Pipeline, source: str, metric: Any = None) -> float:
    from river import datasets, evaluate, metrics

    dataset = getattr(datasets, source[len(RIVER_PREFIX):])()
    score = evaluate.progressive_val_score(
        dataset, spec.model(), metrics.Accuracy() if metric is None else metric.clone())
    return float(score.get())
