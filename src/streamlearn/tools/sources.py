"""Event sources for replay: CSV or Parquet files (pandas), JSON lines, River's data sets,
and the synthetic card transactions of :mod:`streamlearn.datasets.fraud`.

>>> events = iter_events("river:Phishing", label_field="is_phishing")
>>> first = next(events)
>>> sorted(first)[:3], first["is_phishing"]
(['age_of_domain', 'anchor_from_other_domain', 'empty_server_form_handler'], True)
>>> source_length("river:Phishing")
1250

``fraud:N`` generates N card payments, ``fraud:N:seed=7:drift_at=5000`` passes options to
:func:`~streamlearn.datasets.fraud.generate`; the label is ``is_fraud``, the key ``card``:

>>> next(iter_events("fraud:20000:seed=7"))
{'tx_id': 'tx-0', 'card': ..., 'merchant': ..., 'amount': ..., 'time': ..., 'is_fraud': False}
>>> source_length("fraud:20000:seed=7")
20000
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from streamlearn.errors import StreamlearnError

__all__ = [
    "FRAUD_PREFIX",
    "JSON_LINES_SUFFIXES",
    "RIVER_PREFIX",
    "SourceError",
    "iter_events",
    "read_frame",
    "source_length",
]

RIVER_PREFIX = "river:"
FRAUD_PREFIX = "fraud:"
JSON_LINES_SUFFIXES = (".jsonl", ".ndjson")


class SourceError(StreamlearnError):
    """A replay source cannot be read."""


def _river_dataset(name: str) -> Any:
    from river import datasets

    cls = getattr(datasets, name, None)
    if cls is None or not isinstance(cls, type):
        raise SourceError(f"no River data set {name!r} (try river:Phishing)")
    dataset = cls()
    if getattr(dataset, "url", None) and not dataset.is_downloaded:
        raise SourceError(f"River data set {name!r} must be downloaded; use a bundled one")
    return dataset


_FRAUD_OPTIONS = {"seed": int, "cards": int, "merchants": int, "drift_at": int,
                  "late_fraction": float, "start_ms": int}


def _fraud_spec(source: str) -> tuple[int, dict[str, Any]]:
    """``fraud:N[:option=value...]`` as N and the keyword arguments of ``generate``."""
    usage = (f"source {source!r}: expected fraud:N or fraud:N:seed=S, options "
             f"{', '.join(_FRAUD_OPTIONS)}")
    count, *pairs = source[len(FRAUD_PREFIX) :].split(":")
    options: dict[str, Any] = {}
    try:
        for pair in pairs:
            name, value = pair.split("=", 1)
            options[name] = _FRAUD_OPTIONS[name](value)
        return int(count), options
    except (KeyError, ValueError):
        raise SourceError(usage) from None


def _fraud_events(source: str) -> Iterator[dict[str, Any]]:
    from streamlearn.datasets import fraud

    n, options = _fraud_spec(source)
    try:
        return fraud.generate(n, **options)
    except ValueError as exc:
        raise SourceError(f"source {source!r}: {exc}") from None


def read_frame(path: Path, rows: int | None = None) -> Any:
    """A CSV or Parquet file as a pandas DataFrame (the first ``rows`` only, if given)."""
    import pandas as pd

    if not path.is_file():
        raise SourceError(f"source file {str(path)!r} not found")
    if path.suffix.lower() in (".parquet", ".pq"):
        try:
            frame = pd.read_parquet(path)
            return frame if rows is None else frame.head(rows)
        except ImportError as exc:
            raise SourceError(
                f"reading Parquet needs pyarrow: pip install 'streamlearn[parquet]' ({exc})"
            ) from None
    if path.suffix.lower() in (".csv", ".txt", ".gz"):
        return pd.read_csv(path, nrows=rows)
    raise SourceError(f"source {str(path)!r}: expected a .csv, .parquet or .jsonl file")


def _read_json_lines(path: Path) -> Iterator[dict[str, Any]]:
    """One JSON object per line; blank lines are skipped. Raises on the first bad line."""
    import orjson

    with path.open("rb") as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                event = orjson.loads(line)
            except orjson.JSONDecodeError as exc:
                raise SourceError(f"{str(path)!r} line {number}: invalid JSON ({exc})") from None
            if not isinstance(event, dict):
                raise SourceError(f"{str(path)!r} line {number}: not a JSON object")
            yield event


def iter_events(
    source: str, label_field: str = "label", rows: int | None = None
) -> Iterator[dict[str, Any]]:
    """Events as dicts in source order; River data sets put ``y`` under ``label_field``.

    ``fraud:`` events keep their own label field, ``is_fraud``.

    ``rows`` reads only the first rows (a sample). A missing or unreadable source raises
    here, before anything is sent; a bad line of a JSON lines file raises when reached.
    """
    if source.startswith(RIVER_PREFIX):
        dataset = _river_dataset(source[len(RIVER_PREFIX) :])
        return itertools.islice(({**x, label_field: y} for x, y in dataset), rows)
    if source.startswith(FRAUD_PREFIX):
        return itertools.islice(_fraud_events(source), rows)
    path = Path(source)
    if path.suffix.lower() in JSON_LINES_SUFFIXES:
        if not path.is_file():
            raise SourceError(f"source file {source!r} not found")
        return itertools.islice(_read_json_lines(path), rows)
    frame = read_frame(path, rows)
    # to_dict gives Python scalars, which orjson encodes without numpy help.
    return iter(frame.to_dict("records"))


def source_length(source: str) -> int | None:
    """Number of events in a source, when known without reading it all."""
    if source.startswith(RIVER_PREFIX):
        return getattr(_river_dataset(source[len(RIVER_PREFIX) :]), "n_samples", None)
    if source.startswith(FRAUD_PREFIX):
        return _fraud_spec(source)[0]
    path = Path(source)
    if path.suffix.lower() in (".parquet", ".pq"):
        import pyarrow.parquet as pq

        return int(pq.ParquetFile(path).metadata.num_rows)
    return None
