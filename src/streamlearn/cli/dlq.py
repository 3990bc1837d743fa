"""``streamlearn dlq show|export|replay``: a pipeline's dead letters, to look at, fix and
send back (thin wrappers over :mod:`streamlearn.tools.dlq`)."""

from __future__ import annotations

from typing import Any

import click

from streamlearn.broker import ensure_broker
from streamlearn.cli.common import NAME_HELP, confirm, load_spec, one_line_errors
from streamlearn.config import load_settings
from streamlearn.errors import StreamlearnError
from streamlearn.tools.command_line import shown_command

__all__ = ["dlq"]

REASON_HELP = "Only dead letters with this reason (invalid_json, bad_type, missing_field, ...)."


@click.group()
def dlq() -> None:
    """Dead letters of a pipeline: show them, export their values to fix, replay them.

    Reads <name>.dlq with no consumer group, from its start to its current end.
    """


def _dead_letters(pipeline_file: str, name: str | None, reason: str | None) -> Any:
    """The pipeline, its bootstrap servers, its dead letters and the count of each reason."""
    from streamlearn.tools.dlq import read_dead_letters  # late import, for startup time

    spec = load_spec(pipeline_file, name)
    bootstrap = ensure_broker(load_settings())
    return spec, bootstrap, *read_dead_letters(bootstrap, spec, reason)


@dlq.command("show")
@click.argument("pipeline_file", type=click.Path(dir_okay=False))
@click.option("--reason", help=REASON_HELP)
@click.option("--limit", type=int, default=20, show_default=True, help="Rows to show.")
@click.option("--name", help=NAME_HELP)
@one_line_errors
def dlq_show(pipeline_file: str, reason: str | None, limit: int, name: str | None) -> None:
    """Show the dead letters of PIPELINE_FILE's pipeline as a table, oldest first."""
    # Late imports, for startup time (`streamlearn --help`).
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
@click.option("--reason", help=REASON_HELP)
@click.option("--force", is_flag=True, help="Overwrite --output if it exists.")
@click.option("--name", help=NAME_HELP)
@one_line_errors
def dlq_export(pipeline_file: str, output: str, reason: str | None, force: bool,
               name: str | None) -> None:
    """Write the dead letters' original values to a file, one per line, to fix them.

    Values that are not JSON are written as their text. Fix the file, then send it back
    with `streamlearn dlq replay PIPELINE_FILE --fixed FILE`.
    """
    from streamlearn.tools.dlq import export_values  # late import, for startup time

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
@click.option("--reason", help=REASON_HELP + " With --all.")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.option("--name", help=NAME_HELP)
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
    # Late imports, for startup time (`streamlearn --help`).
    from streamlearn.tools.dlq import read_fixed_events, replay_dead_letters, send_events

    if every == bool(fixed) or (reason and fixed):
        raise StreamlearnError("dlq replay: give either --all [--reason R] or --fixed FILE")
    spec = load_spec(pipeline_file, name)
    if fixed:
        events = read_fixed_events(fixed, spec)
        bootstrap = ensure_broker(load_settings())
        confirm(f"Send {len(events)} events from {fixed} to {spec.events_topic} at "
                f"{bootstrap}?", yes)
        sent, origin = send_events(events, bootstrap, spec), fixed
    else:
        _, bootstrap, letters, _ = _dead_letters(pipeline_file, name, reason)
        if not letters:
            click.echo(f"no dead letters to replay on {spec.dlq_topic}")
            return
        confirm(f"Re-send {len(letters)} dead letters from {spec.dlq_topic} to "
                f"{spec.events_topic} at {bootstrap}?", yes)
        sent, origin = replay_dead_letters(letters, bootstrap, spec), spec.dlq_topic
    click.echo(f"sent {sent} events from {origin} to {spec.events_topic}")
