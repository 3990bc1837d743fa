"""How `tail` shows a record, and the command lines streamlearn prints for users to run."""

from __future__ import annotations

import stat
from pathlib import Path

from streamlearn.cli import shown_command
from streamlearn.tools.tail import TailRecord


def test_plain_record_is_one_line():
    record = TailRecord(1, 42, b"k", b'{"a": 1}', [])
    assert record.render() == '[1@42] {"a": 1}'


def test_dead_letter_headers_are_set_apart_from_the_payload():
    record = TailRecord(0, 7, None, b"{not json", [
        ("trace", b"t-1"),
        ("streamlearn.error.reason", b"invalid_json"),
        ("streamlearn.error", b"unexpected character: line 1 column 2"),
    ])
    first, *headers = record.render().splitlines()
    assert first == "[0@7] {not json"
    assert headers == [
        "    trace: t-1",
        "    streamlearn.error.reason: invalid_json",
        "    streamlearn.error: unexpected character: line 1 column 2",
    ]


def test_tombstone_and_undecodable_bytes():
    assert TailRecord(0, 1, b"k", None, []).render() == "[0@1] null"
    assert TailRecord(0, 2, None, b"\xff", []).render() == "[0@2] \ufffd"


def venv(tmp_path: Path, with_script: bool) -> Path:
    bin_dir = tmp_path / "project" / ".venv" / "bin"
    bin_dir.mkdir(parents=True)
    python = bin_dir / "python"
    python.write_text("")
    if with_script:
        script = bin_dir / "streamlearn"
        script.write_text("#!/bin/sh\n")
        script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return python


def test_venv_script_relative_to_the_project(tmp_path):
    python = venv(tmp_path, with_script=True)
    shown = shown_command("broker", "stop", executable=str(python),
                          cwd=tmp_path / "project", which=lambda name: None)
    assert shown == ".venv/bin/streamlearn broker stop"


def test_bare_name_when_the_script_is_the_one_on_path(tmp_path):
    python = venv(tmp_path, with_script=True)
    script = str(python.parent / "streamlearn")
    shown = shown_command("tail", "p.predictions", executable=str(python), cwd=tmp_path,
                          which=lambda name: script)
    assert shown == "streamlearn tail p.predictions"


def test_absolute_path_outside_the_project_and_another_streamlearn_on_path(tmp_path):
    python = venv(tmp_path, with_script=True)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    shown = shown_command("broker", "stop", executable=str(python), cwd=elsewhere,
                          which=lambda name: "/usr/bin/streamlearn")
    assert shown == f"{python.parent / 'streamlearn'} broker stop"


def test_python_dash_m_without_a_script(tmp_path):
    python = venv(tmp_path, with_script=False)
    shown = shown_command("tail", "my topic", executable=str(python), cwd=tmp_path)
    assert shown == "project/.venv/bin/python -m streamlearn tail 'my topic'"
