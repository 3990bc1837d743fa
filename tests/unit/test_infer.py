"""`streamlearn infer`: typed pipeline files from a sample, that load and learn."""

from __future__ import annotations

import runpy
from pathlib import Path

import orjson
import pandas as pd
import pytest
from click.testing import CliRunner

from streamlearn.cli import main
from streamlearn.errors import StreamlearnError
from streamlearn.spec.pipeline import Pipeline, load_pipeline
from streamlearn.tools.infer import InferError, infer_pipeline, render_pipeline_file
from streamlearn.tools.produce import encode_event
from streamlearn.tools.sources import iter_events

ROOT = Path(__file__).resolve().parents[2]


def write_jsonl(path: Path, events: list[dict]) -> Path:
    path.write_bytes(b"".join(orjson.dumps(e) + b"\n" for e in events))
    return path


def infer_file(tmp_path: Path, source: str, **options) -> tuple[Pipeline, str]:
    text = render_pipeline_file(infer_pipeline(source, **options))
    out = tmp_path / "inferred.py"
    out.write_text(text)
    return load_pipeline(out), text


def learn_sample(spec: Pipeline, source: str, label_field: str = "label") -> int:
    """Run the file's model over the sample as the worker sees it (JSON on the wire)."""
    model, schema, learned = spec.model(), spec.schema(), 0
    for event in iter_events(source, label_field):
        wire = orjson.loads(encode_event(event))
        x, y, _ = schema.check(wire)
        model.predict_one(x)
        model.learn_one(x, y)
        learned += 1
    return learned


def test_csv_columns_get_the_type_of_their_values(tmp_path):
    frame = pd.DataFrame({
        "card": ["c1", "c2", "c3", "c1"],
        "amount": [12.5, 3, None, 7],
        "count": [1, 2, 3, 4],
        "country": ["FR", "DE", None, "FR"],
        "is_new": [True, False, True, True],
        "empty": [None, None, None, None],
        "is_fraud": [False, True, False, False],
    })
    frame.to_csv(tmp_path / "payments.csv", index=False)
    source = str(tmp_path / "payments.csv")
    spec, text = infer_file(tmp_path, source, label_field="is_fraud", key_field="card")

    assert dict(spec.features or {}) == {
        "amount": "numeric", "count": "numeric", "country": "categorical", "is_new": "boolean",
    }
    assert (spec.name, spec.key_field, spec.event_id_field) == ("payments", "card", "event_id")
    assert (spec.label_field, spec.label_type) == ("is_fraud", "boolean")
    assert '# "empty" left out: null in every sampled row' in text
    assert "LogisticRegression" in str(spec.model())
    assert learn_sample(spec, source) == 4


def test_mixed_and_nested_fields_are_left_out_with_the_reason(tmp_path):
    source = str(write_jsonl(tmp_path / "animals.jsonl", [
        {"id": "a", "weight": 3, "tags": ["x"], "note": "hi", "meta": None, "kind": "cat"},
        {"id": "b", "weight": 4.5, "tags": None, "note": 5, "meta": {"a": 1}, "kind": "dog"},
        {"id": "c", "weight": None, "kind": "bird", "colour": "red"},
    ]))
    spec, text = infer_file(tmp_path, source, label_field="kind", key_field="id")

    assert dict(spec.features or {}) == {"weight": "numeric", "colour": "categorical"}
    assert '# "tags" left out: nested values (an array) in the sample' in text
    assert '# "meta" left out: nested values (an object) in the sample' in text
    assert ('# "note" left out: mixed types in the sample (string in 1 row, number in 1 row)'
            in text)
    # Several classes: one logistic regression per class; strings one-hot encoded.
    assert spec.label_type == "categorical"
    assert "OneVsRestClassifier" in str(spec.model()) and "OneHotEncoder" in str(spec.model())
    assert learn_sample(spec, source) == 3


def test_numeric_label_gets_a_regressor_and_timestamps_are_left_out(tmp_path):
    frame = pd.DataFrame({
        "at": pd.to_datetime(["2026-01-01", "2026-01-02", "2026-01-03"]),
        "rooms": [2, 3, 5],
        "price": [100.0, 150.5, 260.0],
    })
    frame.to_parquet(tmp_path / "houses.parquet")
    source = str(tmp_path / "houses.parquet")
    spec, text = infer_file(tmp_path, source, label_field="price")

    assert dict(spec.features or {}) == {"rooms": "numeric"}
    assert '# "at" left out: its values are Timestamp' in text
    assert spec.label_type == "numeric" and "LinearRegression" in str(spec.model())
    assert learn_sample(spec, source) == 3


def test_river_dataset_gives_the_shipped_example(tmp_path):
    spec, _ = infer_file(tmp_path, "river:Phishing", label_field="is_phishing")
    example = runpy.run_path(str(ROOT / "examples" / "phishing.py"))
    assert dict(spec.features or {}) == example["FEATURES"]
    assert (spec.name, spec.label_type) == ("phishing", "boolean")
    assert str(spec.model()) == str(example["pipeline"].model())


def test_rows_bounds_the_sample(tmp_path):
    events = [{"a": 1, "late": None}] * 5 + [{"a": 2, "late": "x"}]
    source = str(write_jsonl(tmp_path / "late.jsonl", events))
    assert "late" not in (infer_pipeline(source, rows=5).features)
    assert infer_pipeline(source, rows=6).features == {"a": "numeric", "late": "categorical"}


def test_hints_for_class_numbers_and_ids(tmp_path):
    events = [{"user": f"u{i}", "x": i, "y": i % 3} for i in range(30)]
    source = str(write_jsonl(tmp_path / "h.jsonl", events))
    text = render_pipeline_file(infer_pipeline(source, label_field="y"))
    assert 'label_type="numeric",  # only the integers 0, 1, 2 in the sample' in text
    assert '"user": "categorical",  # every sampled value differs: an id?' in text


def test_no_label_and_only_categorical_features(tmp_path):
    source = str(write_jsonl(tmp_path / "c.jsonl", [{"city": "Paris"}, {"city": "Oslo"}]))
    spec, text = infer_file(tmp_path, source)
    assert spec.label_field is None and "No label field" in text
    assert str(spec.model()) == "OneHotEncoder | LogisticRegression"


@pytest.mark.parametrize(("options", "message"), [
    ({"label_field": "nope"}, "label field 'nope' is not a field of the first 2 rows"),
    ({"key_field": "nope"}, "key field 'nope' is not a field"),
    ({"label_field": "mixed"}, "label field 'mixed' cannot be typed: left out: mixed types"),
    ({"name": "bad name"}, "pipeline name 'bad name' may only use"),
    ({"rows": 0}, "--rows must be at least 1"),
])
def test_unusable_options_are_errors(tmp_path, options, message):
    source = str(write_jsonl(tmp_path / "e.jsonl", [{"a": 1, "mixed": 1}, {"a": 2, "mixed": "x"}]))
    with pytest.raises(StreamlearnError) as caught:
        infer_pipeline(source, **options)
    assert message in str(caught.value)


def test_empty_source_is_an_error(tmp_path):
    (tmp_path / "empty.jsonl").write_text("\n")
    with pytest.raises(InferError, match="has no rows"):
        infer_pipeline(str(tmp_path / "empty.jsonl"))


def test_cli_prints_writes_and_refuses_to_overwrite(tmp_path):
    source = str(write_jsonl(tmp_path / "e.jsonl", [{"a": 1, "y": True}, {"a": 2, "y": False}]))
    runner = CliRunner()
    printed = runner.invoke(main, ["infer", source, "--label-field", "y"])
    assert printed.exit_code == 0, printed.output
    assert printed.output.startswith('"""e: a pipeline written by `streamlearn infer`')

    out = tmp_path / "e_pipeline.py"
    wrote = runner.invoke(main, ["infer", source, "--label-field", "y", "-o", str(out)])
    assert wrote.exit_code == 0, wrote.output
    written = out.read_text()
    assert written == printed.output.replace("THIS_FILE", str(out))
    assert load_pipeline(out).label_type == "boolean"
    assert "wrote" in wrote.output and "run it with:" in wrote.output

    out.write_text("# mine\n")
    again = runner.invoke(main, ["infer", source, "-o", str(out)])
    assert again.exit_code == 1
    assert "exists; add --force" in again.output and out.read_text() == "# mine\n"
    forced = runner.invoke(main, ["infer", source, "-o", str(out), "--force"])
    assert forced.exit_code == 0 and "FEATURES" in out.read_text()


def test_cli_errors_are_one_line(tmp_path):
    result = CliRunner().invoke(main, ["infer", str(tmp_path / "missing.csv")])
    assert result.exit_code == 1
    assert result.output.strip().count("\n") == 0 and "not found" in result.output
