from __future__ import annotations

from pathlib import Path

import pytest

from streamlearn.errors import PipelineError
from streamlearn.spec.pipeline import Pipeline, load_pipeline

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
    spec = Pipeline(name="a", key_field="k", features={}, model=dict)
    assert spec.renamed("b").events_topic == "b"
    explicit = Pipeline(name="a", key_field="k", features={}, model=dict, events_topic="raw")
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
        Pipeline(name="a", key_field="k", features={}, model=42)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({}, "declare its features with their types"),
        ({"features": {"a": "float"}}, "feature 'a' has type 'float'; use one of numeric"),
        ({"features": {}, "label_field": "y"}, "label 'y' has type 'None'"),
        ({"features": {}, "label_type": "bool"}, "label 'label' has type 'bool'"),
        ({"features": {}, "learning": "local"}, "learning='local'; use one of auto"),
        ({"features": {}, "label_ttl": "soon"}, "label_ttl: duration 'soon'"),
        ({"features": {"k": "numeric"}}, "cannot be both a feature and the key"),
    ],
)
def test_typed_spec_errors_say_what_to_write(kwargs, message):
    with pytest.raises(PipelineError, match=message):
        Pipeline(name="a", key_field="k", model=dict, **kwargs)


def test_fingerprint_follows_what_a_model_depends_on():
    from river import linear_model

    def spec(**kw):
        args = {"name": "a", "key_field": "k", "features": {"x": "numeric"},
                "model": linear_model.LogisticRegression, **kw}
        return Pipeline(**args)

    assert spec().fingerprint() == spec(name="b").fingerprint(), "the name does not matter"
    assert spec().fingerprint() != spec(features={"x": "categorical"}).fingerprint()
    assert spec().fingerprint() != spec(partitions=2).fingerprint()
    assert spec().fingerprint() != spec(
        model=lambda: linear_model.LogisticRegression(l2=0.1)
    ).fingerprint(), "hyperparameters are part of the model"


def test_learning_defaults_to_global_unless_one_partition_carries_its_labels():
    def spec(**kwargs):
        return Pipeline(name="a", key_field="k", features={}, model=dict, **kwargs)

    inline = spec(label_field="y", label_type="boolean")
    assert not inline.global_learner and "a.training" not in inline.topics
    assert spec(label_type="boolean").global_learner
    many = spec(label_field="y", label_type="boolean", partitions=4)
    assert many.global_learner
    assert many.topics["a.training"] == 1 and many.topics["a.labels"] == 4
    assert not spec(label_field="y", label_type="boolean", partitions=4,
                    learning="per_partition").global_learner
    assert spec(label_ttl="2h").label_ttl_ms == 7_200_000


def test_a_broken_pipeline_file_is_one_line_with_its_line_number(tmp_path):
    unclosed = tmp_path / "unclosed.py"
    unclosed.write_text('from streamlearn import Pipeline\npipeline = Pipeline(name="x",\n')
    with pytest.raises(PipelineError, match=r"unclosed.py' line 2: '\(' was never closed$"):
        load_pipeline(unclosed)
    undefined = tmp_path / "undefined.py"
    undefined.write_text("from streamlearn import Pipeline\n\npipeline = Pipeline(name=foo)\n")
    with pytest.raises(PipelineError, match="line 3 failed: NameError: name 'foo' is not"):
        load_pipeline(undefined)
