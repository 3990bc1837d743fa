"""Command lines to print in hints ("now run ..."), as they work from where the user is."""

from __future__ import annotations

import os
import shlex
import shutil
import sys
from collections.abc import Callable
from pathlib import Path

__all__ = ["shown_command"]


def _shown_path(path: Path, cwd: Path) -> str:
    try:
        return str(path.relative_to(cwd))
    except ValueError:
        return str(path)


def shown_command(
    *args: str,
    executable: str = sys.executable,
    cwd: Path | None = None,
    which: Callable[[str], str | None] = shutil.which,
) -> str:
    """A ``streamlearn`` command line that works as shown from ``cwd``, for hints to print.

    The script installed next to the running interpreter (``.venv/bin/streamlearn`` after
    ``make setup``), bare when it is the one on PATH, relative when under ``cwd``; else
    ``python -m streamlearn`` with this interpreter.

    >>> shown_command("broker", "stop", executable="/w/.venv/bin/python", cwd=Path("/w"),
    ...               which=lambda name: None)
    '.venv/bin/python -m streamlearn broker stop'
    """
    cwd = cwd or Path.cwd()
    # abspath, not resolve: a venv's python is a symlink to the base interpreter.
    interpreter = Path(os.path.abspath(executable))
    script = interpreter.parent / "streamlearn"
    if script.is_file():
        on_path = which("streamlearn")
        same = on_path is not None and Path(on_path).resolve() == script.resolve()
        head = ["streamlearn" if same else _shown_path(script, cwd)]
    else:
        head = [_shown_path(interpreter, cwd), "-m", "streamlearn"]
    return shlex.join([*head, *args])
