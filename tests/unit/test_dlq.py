"""Dead letters without a broker: export lines, checks of a fixed file, replay headers."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
from click.testing import CliRunner

from streamlearn.cli import main
from streamlearn.spec.pipeline import Pipeline
from streamlearn.tools.dlq import DeadLetter, DlqError, export_values, read_fixed_events
from streamlearn.tools.tail import TailRecord

SPEC = Pipeline(name="pay", key_field="card", features={"amount": "numeric"},
                label_field="is_fraud", label_type="boolean", model=dict)


def letter(offset: int, value: bytes | None, reason: str) -> DeadLetter:
    headers = [
        ("trace", b"t-1"),
        ("streamlearn.source.topic", b"pay"),
        ("streamlearn.source.partition", b"0"),
        ("streamlearn.source.offset", str(offset + 100).encode()),
        ("streamlearn.error.reason", reason.encode()),
        ("streamlearn.error", b"what went wrong"),
    ]
    return DeadLetter("pay.dlq", TailRecord(0, offset, b"c1", value, headers))


def test_replay_keeps_original_headers_only_and_says_where_from():
    dead = letter(5, b"{}", "missing_field")
    assert dead.replay_headers() == [
        ("trace", b"t-1"), ("streamlearn.replayed_from", b"pay.dlq:5"),
    ]
    assert (dead.reason, dead.error) == ("missing_field", "what went wrong")


def test_excerpt_is_one_line_and_short():
    dead = letter(0, b'{"amount":\n "' + b"9" * 100 + b'"}', "bad_type")
    excerpt = dead.excerpt()
    assert "\n" not in excerpt and excerpt.startswith('{"amount":\\n "999')
    assert len(excerpt) == 60 and excerpt.endswith("…")


def test_export_writes_one_line_per_value_and_counts_what_still_fails(tmp_path):
    letters = [
        letter(0, b'{"card": "c1", "amount": "12", "is_fraud": false}', "bad_type"),
        letter(1, b'{"card": "c2",\n "amount": 3, "is_fraud": true}', "model_error"),
        letter(2, b'{"card": "c3", "amount": 3\n', "invalid_json"),
    ]
    out = tmp_path / "dead.jsonl"
    assert export_values(letters, out, SPEC) == (3, 2)
    lines = out.read_bytes().splitlines()
    assert orjson.loads(lines[0])["amount"] == "12"
    assert orjson.loads(lines[1]) == {"card": "c2", "amount": 3, "is_fraud": True}
    assert lines[2] == b'{"card": "c3", "amount": 3 '
    with pytest.raises(DlqError, match="exists; add --force"):
        export_values(letters, out, SPEC)
    assert export_values(letters[:1], out, SPEC, force=True) == (1, 1)


def test_fixed_file_is_checked_whole_before_sending(tmp_path):
    fixed = tmp_path / "fixed.jsonl"
    fixed.write_text(
        '{"card": "c1", "amount": 12, "is_fraud": false}\n\n'
        '{"card": "c2", "amount": "3", "is_fraud": true}\n'
        '{"amount": 3, "is_fraud": true}\n'
        '{"card": "c4", "amount": 3\n'
    )
    with pytest.raises(DlqError) as caught:
        read_fixed_events(fixed, SPEC)
    message = str(caught.value)
    assert "line 3: bad_type: field 'amount' is declared numeric" in message
    assert "(3 of 4 lines fail the pipeline's checks; nothing was sent)" in message
    fixed.write_text('{"card": "c1", "amount": 12, "is_fraud": false}\n')
    assert read_fixed_events(fixed, SPEC) == [{"card": "c1", "amount": 12, "is_fraud": False}]


def test_replay_needs_all_or_fixed(tmp_path):
    runner = CliRunner()
    example = str(Path(__file__).resolve().parents[2] / "examples" / "phishing.py")
    for args in ([], ["--all", "--fixed", "f.jsonl"], ["--fixed", "f.jsonl", "--reason", "x"]):
        result = runner.invoke(main, ["dlq", "replay", example, *args])
        assert result.exit_code == 1
        assert result.output.strip().count("\n") == 0, result.output
        assert "give either --all [--reason R] or --fixed FILE" in result.output
