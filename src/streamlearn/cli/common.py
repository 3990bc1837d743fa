"""What every command module shares: one-line errors, confirmation, loading the pipeline
file, and option help texts used by several commands."""

from __future__ import annotations

import sys
from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

import click

from streamlearn.errors import StreamlearnError
from streamlearn.spec.pipeline import Pipeline, load_pipeline

__all__ = ["NAME_HELP", "confirm", "load_spec", "one_line_errors"]

F = TypeVar("F", bound=Callable[..., Any])

NAME_HELP = "The pipeline under another name, as with `streamlearn run --name`."


def one_line_errors(fn: F) -> F:
    """Our own errors end the command with one line on stderr and exit code 1."""

    @wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except StreamlearnError as exc:
            raise click.ClickException(str(exc)) from None

    return wrapper  # type: ignore[return-value]


def confirm(question: str, yes: bool) -> None:
    """Ask on the terminal; without one, only --yes goes ahead."""
    if yes:
        return
    if not sys.stdin.isatty():
        raise StreamlearnError(f"{question} Not on a terminal: add --yes to go ahead")
    if not click.confirm(question, default=False):
        raise click.Abort()


def load_spec(pipeline_file: str, name: str | None) -> Pipeline:
    """The pipeline of PIPELINE_FILE, under ``--name`` if given."""
    spec = load_pipeline(pipeline_file)
    return spec.renamed(name) if name else spec
