"""``streamlearn infer``: write a pipeline file from a sample, with each field's type.

Each field of the sample gets the type its values have, as the worker will see them in JSON:
booleans are ``boolean``, numbers ``numeric``, strings ``categorical``. A field whose
values mix types, nest objects or arrays, or are all null is left out, with a comment in
the written file saying why, so a user can fix the data or add it by hand.

>>> column_type("amount", [3, 2.5, None])
Column(name='amount', type='numeric', note=None)
>>> column_type("country", ["FR", 7]).note
'left out: mixed types in the sample (string in 1 row, number in 1 row)'
>>> column_type("tags", [["a"], None]).note
'left out: nested values (an array) in the sample; flatten them'
"""

from __future__ import annotations

import json
import math
import re
import shlex
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from streamlearn.errors import StreamlearnError
from streamlearn.spec.pipeline import Pipeline
from streamlearn.spec.schema import BOOLEAN, CATEGORICAL, NUMERIC
from streamlearn.tools.sources import RIVER_PREFIX, iter_events

__all__ = [
    "Column",
    "InferError",
    "Inferred",
    "column_type",
    "infer_pipeline",
    "render_pipeline_file",
    "write_pipeline_file",
]

DEFAULT_ID_FIELD = "event_id"
"""The id field ``streamlearn produce`` adds to events that lack one."""
_ARRAY, _OBJECT = "an array", "an object"
_SHOWN_AS = {NUMERIC: "number", CATEGORICAL: "string", BOOLEAN: "boolean"}
_ID_LIKE_MIN_ROWS = 20
_FEW_CLASSES = 10
_NAME_CHARS = re.compile(r"[^A-Za-z0-9._-]+")


class InferError(StreamlearnError):
    """A sample from which no pipeline can be written."""


@dataclass(frozen=True)
class Column:
    """One field of the sample: its type, or None when it is left out (``note`` says why)."""

    name: str
    type: str | None
    note: str | None = None


@dataclass(frozen=True)
class Inferred:
    """Everything the written pipeline file declares."""

    source: str
    rows: int
    name: str
    key_field: str
    event_id_field: str
    label: Column | None
    columns: tuple[Column, ...]
    """Every other field of the sample, typed or left out, in sample order."""

    @property
    def features(self) -> dict[str, str]:
        return {c.name: c.type for c in self.columns if c.type is not None}


def _kind(value: Any) -> str | None:
    """The JSON type ``value`` is sent as; None for null (and NaN, NaT: pandas' nulls)."""
    if type(value).__module__ == "numpy" and getattr(value, "ndim", 1) == 0:
        value = value.item()  # a numpy scalar, as object columns of pandas may hold
    if value is None or type(value).__name__ == "NaTType":
        return None
    if isinstance(value, bool):
        return BOOLEAN
    if type(value) in (int, float):
        return None if math.isnan(value) else NUMERIC
    if isinstance(value, str):
        return CATEGORICAL
    if isinstance(value, Mapping):
        return _OBJECT
    if isinstance(value, list | tuple) or hasattr(value, "shape"):
        return _ARRAY
    return type(value).__name__


def _rows(n: int) -> str:
    return f"{n} row" if n == 1 else f"{n} rows"


def column_type(name: str, values: Iterable[Any]) -> Column:
    """The type of field ``name`` from its sampled values (None for a missing value)."""
    values = list(values)
    kinds = Counter(k for k in map(_kind, values) if k is not None)
    if not kinds:
        return Column(name, None, "left out: null in every sampled row")
    nested = [k for k in (_ARRAY, _OBJECT) if k in kinds]
    if nested:
        shown = " and ".join(nested)
        return Column(
            name, None, f"left out: nested values ({shown}) in the sample; flatten them"
        )
    if len(kinds) > 1:
        mix = ", ".join(f"{_SHOWN_AS.get(k, k)} in {_rows(n)}" for k, n in kinds.most_common())
        return Column(name, None, f"left out: mixed types in the sample ({mix})")
    (kind,) = kinds
    if kind not in _SHOWN_AS:
        return Column(
            name, None, f"left out: its values are {kind}, not a JSON number, string or boolean"
        )
    if kind == CATEGORICAL and kinds[kind] >= _ID_LIKE_MIN_ROWS:
        present = [v for v in values if _kind(v) is not None]
        if len(set(present)) == len(present):
            return Column(name, kind, "every sampled value differs: an id? if so, remove it")
    return Column(name, kind)


def _label_note(column: Column, values: list[Any]) -> str | None:
    """A hint when a numeric label looks like class numbers (a regressor would learn it)."""
    if column.type != NUMERIC:
        return None
    present = {v for v in values if _kind(v) is not None}
    if len(present) > _FEW_CLASSES or not all(float(v).is_integer() for v in present):
        return None
    shown = ", ".join(str(int(v)) for v in sorted(present))
    return (
        f"only the integers {shown} in the sample: if they are classes, use "
        'label_type="categorical" and a classifier'
    )


def default_name(source: str) -> str:
    """A pipeline (and events topic) name from a source.

    >>> default_name("river:Phishing"), default_name("data/card payments.csv.gz")
    ('phishing', 'card-payments')
    """
    if source.startswith(RIVER_PREFIX):
        stem = source[len(RIVER_PREFIX):].lower()
    else:
        stem = Path(source).name.split(".")[0]
    return _NAME_CHARS.sub("-", stem).strip("-._") or "pipeline"


def _fields(events: list[dict[str, Any]]) -> dict[str, list[Any]]:
    names: dict[str, None] = {}
    for event in events:
        names.update(dict.fromkeys(event))
    return {name: [event.get(name) for event in events] for name in names}


def _require(field: str, what: str, values: Mapping[str, Any], source: str, rows: int) -> None:
    if field not in values:
        shown = ", ".join(list(values)[:12]) + (", ..." if len(values) > 12 else "")
        raise InferError(
            f"{what} {field!r} is not a field of the first {_rows(rows)} of {source} "
            f"(fields: {shown})"
        )


def infer_pipeline(
    source: str,
    *,
    label_field: str | None = None,
    key_field: str | None = None,
    event_id_field: str | None = None,
    name: str | None = None,
    rows: int = 1000,
) -> Inferred:
    """Read up to ``rows`` events of ``source`` and type every field.

    A ``river:`` source puts its target under ``label_field`` (default ``label``), as
    ``streamlearn produce`` does. The key defaults to the event id, which defaults to
    ``event_id`` (``produce`` adds it to events that lack it).
    """
    if rows < 1:
        raise InferError(f"--rows must be at least 1, got {rows}")
    if source.startswith(RIVER_PREFIX) and not label_field:
        label_field = "label"
    events = list(iter_events(source, label_field or "label", rows))
    if not events:
        raise InferError(f"{source} has no rows to infer types from")
    values = _fields(events)
    event_id_field = event_id_field or DEFAULT_ID_FIELD
    key_field = key_field or event_id_field
    for field, what in ((label_field, "label field"), (key_field, "key field"),
                        (event_id_field, "event id field")):
        if field and field != DEFAULT_ID_FIELD:
            _require(field, what, values, source, len(events))
    label = None
    if label_field:
        label = column_type(label_field, values[label_field])
        if label.type is None:
            raise InferError(f"label field {label_field!r} cannot be typed: {label.note}")
        label = Column(label.name, label.type, _label_note(label, values[label_field]))
    reserved = {label_field, key_field, event_id_field}
    columns = tuple(column_type(n, v) for n, v in values.items() if n not in reserved)
    inferred = Inferred(source, len(events), name or default_name(source), key_field,
                        event_id_field, label, columns)
    # The spec's own checks (name, types) run now, so the written file is sure to load.
    Pipeline(name=inferred.name, key_field=key_field, event_id_field=event_id_field,
             features=inferred.features, label_field=label_field,
             label_type=label.type if label else None, model=dict)
    return inferred


def _literal(text: str) -> str:
    """A Python string literal of ``text``, double-quoted like the project's code.

    >>> print(_literal('say "hi"\\n'))
    "say \\"hi\\"\\n"
    """
    return json.dumps(text, ensure_ascii=False)


def _escaped(text: str) -> str:
    """``text`` safe inside a triple-quoted docstring."""
    return repr(text)[1:-1].replace('"', '\\"')


def _model_source(inferred: Inferred) -> tuple[list[str], list[str]]:
    """Import lines and the body of ``def model():`` for the label and feature types."""
    kinds = set(inferred.features.values())
    imports = {"linear_model", "preprocessing"}
    label = inferred.label.type if inferred.label else None
    if label == NUMERIC:
        estimator = "linear_model.LinearRegression()"
    elif label == CATEGORICAL:
        imports.add("multiclass")
        estimator = "multiclass.OneVsRestClassifier(linear_model.LogisticRegression())"
    else:
        estimator = "linear_model.LogisticRegression()"
    body: list[str] = []
    if label == CATEGORICAL:
        body.append("# LogisticRegression is binary: one-vs-rest learns one per class.")
    if label is None:
        body.append("# A classifier; use linear_model.LinearRegression() for a numeric label.")
    if CATEGORICAL in kinds and kinds - {CATEGORICAL}:
        imports.add("compose")
        body += [
            "# StandardScaler takes numbers (and booleans); strings are one-hot encoded.",
            "scaled = compose.SelectType(numbers.Number) | preprocessing.StandardScaler()",
            "encoded = compose.SelectType(str) | preprocessing.OneHotEncoder()",
            f"return (scaled + encoded) | {estimator}",
        ]
    elif CATEGORICAL in kinds:
        body.append(f"return preprocessing.OneHotEncoder() | {estimator}")
    else:
        body.append(f"return preprocessing.StandardScaler() | {estimator}")
    lines = [f"from river import {', '.join(sorted(imports))}"]
    if "compose" in imports:
        lines.insert(0, "import numbers\n")
    return lines, body


def _feature_lines(inferred: Inferred) -> list[str]:
    lines = []
    for column in inferred.columns:
        if column.type is None:
            lines.append(f"    # {_literal(column.name)} {column.note}")
        else:
            note = f"  # {column.note}" if column.note else ""
            lines.append(f"    {_literal(column.name)}: {_literal(column.type)},{note}")
    return lines


def _produce_command(inferred: Inferred) -> str:
    parts = ["streamlearn", "produce", inferred.source, "--topic", inferred.name]
    if inferred.label and inferred.source.startswith(RIVER_PREFIX):
        parts += ["--label-field", inferred.label.name]
    if inferred.key_field != inferred.event_id_field:
        parts += ["--key-field", inferred.key_field]
    return _escaped(shlex.join(parts))


def render_pipeline_file(inferred: Inferred, path: str | None = None) -> str:
    """The text of the pipeline file (``path`` only appears in its run command)."""
    imports, body = _model_source(inferred)
    label = inferred.label
    label_lines = (
        [f"    label_field={_literal(label.name)},",
         f"    label_type={_literal(str(label.type))},"
         + (f"  # {label.note}" if label.note else "")]
        if label else
        ["    # No label field: add label_field= and label_type= if events carry the label."]
    )
    run_path = _escaped(shlex.quote(path)) if path else "THIS_FILE"
    return "\n".join([
        f'"""{_escaped(inferred.name)}: a pipeline written by `streamlearn infer` from the first '
        f"{_rows(inferred.rows)} of",
        f"{_escaped(inferred.source)}.",
        "",
        "Check each type: numeric fields take JSON numbers, categorical fields strings (an",
        "integer is read as its string), boolean fields true/false. A null or missing feature",
        "is left out of the event's input. Send events and run it with::",
        "",
        f"    {_produce_command(inferred)}",
        f"    streamlearn run {run_path}",
        '"""',
        "",
        *imports,
        "",
        "from streamlearn import Pipeline",
        "",
        "FEATURES = {",
        *_feature_lines(inferred),
        "}",
        "",
        "",
        "def model():",
        *(f"    {line}" for line in body),
        "",
        "",
        "pipeline = Pipeline(",
        f"    name={_literal(inferred.name)},",
        f"    key_field={_literal(inferred.key_field)},",
        f"    event_id_field={_literal(inferred.event_id_field)},",
        "    features=FEATURES,",
        *label_lines,
        "    model=model,",
        ")",
        "",
    ])


def write_pipeline_file(text: str, path: str | Path, force: bool = False) -> None:
    """Write ``text`` to ``path``; an existing file is kept unless ``force``."""
    path = Path(path)
    if path.exists() and not force:
        raise InferError(f"{str(path)!r} exists; add --force to overwrite it")
    if path.is_dir():
        raise InferError(f"{str(path)!r} is a directory; give a file name")
    path.write_text(text)
