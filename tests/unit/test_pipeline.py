from __future__ import annotations

from pathlib import Path

import pytest

from streamlearn.errors import PipelineError
from streamlearn.pipeline import Pipeline, load_pipeline

EXAMPLES = sorted((Path(__file__).parents[2] / "examples").glob("*.py"))


def test_examples_exist():
    assert EXAMPLES, "examples/ holds the shipped pipelines"


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_every_example_loads_and_builds_a_fresh_model(path):
    spec = load_pipeline(path)
    first, second = spec.model(), spec.model()
    assert first is not second, "model must be a factory returning a fresh estimator"
    assert hasattr(first, "learn_one")
    assert spec.predictions_topic == f"{spec.name}.predictions"
    assert spec.dlq_topic == f"{spec.name}.dlq"


def test_renamed_moves_default_topics_only():
    spec = Pipeline(name="a", key_field="k", model=dict)
    assert spec.renamed("b").events_topic == "b"
    explicit = Pipeline(name="a", key_field="k", model=dict, events_topic="raw")
    assert explicit.renamed("b").events_topic == "raw"
    assert explicit.renamed("b").predictions_topic == "b.predictions"


def test_missing_file_and_missing_pipeline_are_clear(tmp_path):
    with pytest.raises(PipelineError, match="not found"):
        load_pipeline(tmp_path / "nope.py")
    empty = tmp_path / "empty.py"
    empty.write_text("x = 1\n")
    with pytest.raises(PipelineError, match="must define `pipeline = Pipeline"):
        load_pipeline(empty)
    broken = tmp_path / "broken.py"
    broken.write_text("raise RuntimeError('boom')\n")
    with pytest.raises(PipelineError, match="boom"):
        load_pipeline(broken)


def test_model_must_be_a_factory():
    with pytest.raises(PipelineError, match="factory"):
        Pipeline(name="a", key_field="k", model=42)  # type: ignore[arg-type]
