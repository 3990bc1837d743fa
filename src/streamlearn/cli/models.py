"""``streamlearn models ...`` and ``streamlearn report``: the registry and the candidates'
record, from the command line (thin wrappers over :mod:`streamlearn.tools.registry`)."""

from __future__ import annotations

import datetime as dt
import functools
import sys
from pathlib import Path
from typing import Any

import click
import orjson
from confluent_kafka import KafkaException

from streamlearn.broker import ensure_broker
from streamlearn.cli.common import NAME_HELP, load_spec, one_line_errors
from streamlearn.config import load_settings
from streamlearn.errors import StreamlearnError
from streamlearn.models.registry import Version, protected

__all__ = ["models", "report"]


def _setup(pipeline_file: str, name: str | None) -> tuple[Any, Any]:
    spec = load_spec(pipeline_file, name)
    settings = load_settings()
    ensure_broker(settings)
    return spec, settings


def _when(ms: int | None) -> str:
    if not ms:
        return "-"
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC).strftime("%Y-%m-%d %H:%M:%S")


def _action(version: Version) -> str:
    action = version.action
    if not action:
        return "-"
    what = action["kind"]
    if action.get("version") is not None:
        what += f" {action['version']}"
    if action.get("from") or action.get("to"):
        what += f" ({action.get('from') or '-'} -> {action.get('to') or '-'})"
    return what


def _scores(version: Version, name: str) -> str:
    """Candidate ``name``'s primary metric in ``version``: prequential / rolling."""
    entry = (version.manifest.get("candidates") or {}).get(name)
    if not entry:
        return "-"
    return f"{entry['score']:.4f} / {entry['rolling']:.4f}"


def _metric(version: Version, metric: str) -> str:
    """A partition's model's ``metric`` in ``version``: prequential / rolling."""
    pair = (version.manifest.get("metrics") or {}).get(metric)
    return "-" if not pair else f"{pair[0]:.4f} / {pair[1]:.4f}"


@click.group()
def models() -> None:
    """The model registry of a pipeline: every snapshot is a version (under global
    learning, of the learner's candidates; per partition, of each partition's model); list,
    show and export them; promote one or roll back (global learning)."""


def _kafka_errors(fn: Any) -> Any:
    """A broker that stops answering mid-read is one line too, not a traceback."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except (TimeoutError, KafkaException) as exc:
            raise StreamlearnError(f"{exc} (is the broker at STREAMLEARN_BOOTSTRAP up?)"
                                   ) from None

    return wrapper


def _common(fn: Any) -> Any:
    fn = click.option("--name", help=NAME_HELP)(fn)
    fn = click.argument("pipeline_file", type=click.Path(dir_okay=False))(fn)
    return one_line_errors(_kafka_errors(fn))


def _partition(fn: Any) -> Any:
    return click.option("--partition", type=click.IntRange(min=0),
                        help="Per-partition learning: whose model (default: the only one).")(fn)


@models.command("list")
@_common
@click.option("--limit", type=click.IntRange(min=1), default=20, show_default=True,
              help="Show the newest this many versions.")
def list_versions(pipeline_file: str, name: str | None, limit: int) -> None:
    """Versions, newest first, with their metrics (prequential / rolling) and the action
    that made them. Global learning: the champion and each candidate's primary metric; *
    marks the version predictors serve (the newest). Per-partition learning: each
    partition's snapshots with every metric."""
    # Late imports, for startup time (`streamlearn --help`).
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    from streamlearn.tools.registry import read_registries

    spec, settings = _setup(pipeline_file, name)
    registries = read_registries(spec, settings)
    # Not a terminal (a script, a pipe): wide enough that no cell is cut.
    console = Console(width=None if sys.stdout.isatty() else 240)
    metrics = spec.scoring.names
    if not spec.global_learner:
        table = Table("partition", "version", "created", "examples",
                      *(f"{m} / rolling" for m in metrics), "action",
                      title=f"{spec.name}: each partition's model on {spec.models_topic} "
                            f"(learns per partition; the newest "
                            f"{settings.snapshots_kept} snapshots are kept)")
        for model, registry in registries.items():
            for sid in sorted(registry.versions, reverse=True)[:limit]:
                version = registry.versions[sid]
                manifest = version.manifest
                table.add_row(model.rsplit("-", 1)[-1], str(sid),
                              _when(manifest.get("created_at")),
                              str(manifest.get("examples", 0)),
                              *(_metric(version, m) for m in metrics), Text(_action(version)))
            for sid, why in sorted(registry.refused.items()):
                click.echo(f"{model} version {sid}: refused ({why})", err=True)
        console.print(table)
        return
    [registry] = registries.values()
    names = list(spec.candidates())
    table = Table("version", "created", "examples", "champion",
                  *(f"{n} {metrics[0]} / rolling" for n in names), "action", "kept",
                  title=f"{spec.name}: {len(registry.versions)} versions on {spec.models_topic}")
    newest = max(registry.versions, default=None)
    kept = protected(v.manifest for v in registry.versions.values())
    for sid in sorted(registry.versions, reverse=True)[:limit]:
        version = registry.versions[sid]
        manifest = version.manifest
        champion = manifest.get("champion")
        instance = ((manifest.get("candidates") or {}).get(champion) or {}).get("instance")
        table.add_row(
            f"{sid}{' *' if sid == newest else ''}", _when(manifest.get("created_at")),
            str(manifest.get("examples", 0)), Text(instance or champion or "-"),
            *(_scores(version, n) for n in names), Text(_action(version)),
            kept.get(sid, ""),
        )
    console.print(table)
    for sid, why in sorted(registry.refused.items()):
        click.echo(f"version {sid}: refused ({why})", err=True)


@models.command()
@_common
@_partition
@click.argument("version", type=int)
def show(pipeline_file: str, name: str | None, partition: int | None, version: int) -> None:
    """The manifest of VERSION (signed with the snapshot), as JSON."""
    # Late import, for startup time (`streamlearn --help`).
    from streamlearn.tools.registry import RegistryError, model_name, read_registries

    spec, settings = _setup(pipeline_file, name)
    registry = read_registries(spec, settings)[model_name(spec, partition)]
    if version not in registry.versions:
        raise RegistryError(f"version {version} of {spec.name!r} is not stored"
                            + (f" as a valid snapshot ({registry.refused[version]})"
                               if version in registry.refused else ""))
    manifest = {k: v for k, v in registry.versions[version].manifest.items()
                if k != "signature"}
    click.echo(orjson.dumps(manifest, option=orjson.OPT_INDENT_2).decode())


def _command(pipeline_file: str, name: str | None, command: str, version: int | None,
             wait: float) -> None:
    from streamlearn.tools.registry import send_command  # late import, for startup time

    spec, settings = _setup(pipeline_file, name)
    seq, applied = send_command(spec, settings, command, version, wait)
    if applied is None:
        click.echo(f"{command} sent as command {seq} on {spec.commands_topic}; no learner "
                   f"applied it within {wait:g} s (is a worker of {spec.name!r} running?). The "
                   "active learner applies it when it reads it.")
        return
    click.echo(f"{command} applied (command {seq}): version {applied.id} "
               f"({_action(applied)}) serves now and keeps learning.")


@models.command()
@_common
@click.argument("version", type=int)
@click.option("--wait", type=float, default=30.0, show_default=True,
              help="Seconds to wait for the learner to apply it.")
def promote(pipeline_file: str, name: str | None, version: int, wait: float) -> None:
    """Make VERSION the learner's model: it serves, and keeps learning from the current
    training offset."""
    _command(pipeline_file, name, "promote", version, wait)


@models.command()
@_common
@click.option("--wait", type=float, default=30.0, show_default=True,
              help="Seconds to wait for the learner to apply it.")
def rollback(pipeline_file: str, name: str | None, wait: float) -> None:
    """Serve again the version the newest champion change replaced (a second rollback
    undoes the first)."""
    _command(pipeline_file, name, "rollback", None, wait)


@models.command("export")
@_common
@click.argument("version", type=int)
@click.option("--to", "path", type=click.Path(dir_okay=False),
              help="File to write the pickled River estimator to.")
@click.option("--to-mlflow", "to_mlflow", is_flag=True,
              help="Log it as a run on the MLflow tracking server of MLFLOW_TRACKING_URI "
                   "(needs pip install 'streamlearn[mlflow]').")
@click.option("--experiment", help="MLflow experiment (default: the pipeline's name).")
@click.option("--candidate", help="Which candidate (default: the version's champion).")
@_partition
def export_version(pipeline_file: str, name: str | None, version: int, path: str | None,
                   to_mlflow: bool, experiment: str | None, candidate: str | None,
                   partition: int | None) -> None:
    """Write a candidate's River estimator of VERSION (verified first) to a pickle file,
    for use outside streamlearn (load only pickles you trust), or log it to MLflow."""
    # Late import, for startup time (`streamlearn --help`).
    from streamlearn.tools.registry import export, export_mlflow

    if (path is None) == (not to_mlflow):
        raise click.UsageError("give one of --to FILE and --to-mlflow")
    spec, settings = _setup(pipeline_file, name)
    if to_mlflow:
        run_id, instance = export_mlflow(spec, settings, version, candidate, experiment,
                                         partition)
        click.echo(f"logged {instance} of version {version} to MLflow run {run_id} "
                   f"(experiment {experiment or spec.name!r})")
        return
    assert path is not None
    instance = export(spec, settings, version, Path(path), candidate, partition)
    click.echo(f"wrote {instance} of version {version} to {path}")


@click.command()
@_common
@click.option("--to", "prefix", type=click.Path(dir_okay=False),
              help="Where to write (default: <name>-report): .png and .html are added.")
@click.option("--window", type=click.IntRange(min=1), default=1000, show_default=True,
              help="Rolling window of the metric (examples).")
def report(pipeline_file: str, name: str | None, prefix: str | None, window: int) -> None:
    """Write a PNG and an HTML page of each candidate's metric over the training examples,
    with drift events and promotions marked (read from <name>.training and <name>.drift)."""
    # Late imports, for startup time (`streamlearn --help`).
    from streamlearn.kafka.clients import kafka_config
    from streamlearn.tools.report import read_report, write_html, write_png

    spec, settings = _setup(pipeline_file, name)
    config = kafka_config(settings, f"streamlearn-report-{spec.name}")
    built = read_report(spec, config, window=window)
    base = Path(prefix or f"{spec.name}-report")
    png, page = base.with_suffix(".png"), base.with_suffix(".html")
    write_png(built, png)
    write_html(built, page, png)
    click.echo(f"wrote {png} and {page}")
