"""Event sources for replay: CSV or Parquet files (pandas), JSON lines, River's data sets.

>>> events = iter_events("river:Phishing", label_field="is_phishing")
>>> first = next(events)
>>> sorted(first)[:3], first["is_phishing"]
(['age_of_domain', 'anchor_from_other_domain', 'empty_server_form_handler'], True)
>>> source_length("river:Phishing")
1250
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from streamlearn.errors import StreamlearnError

__all__ = ["JSON_LINES_SUFFIXES", "RIVER_PREFIX", "SourceError", "iter_events", "source_length"]

RIVER_PREFIX = "river:"
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


def _read_frame(path: Path, rows: int | None = None) -> Any:
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

    ``rows`` reads only the first rows (a sample). A missing or unreadable source raises
    here, before anything is sent; a bad line of a JSON lines file raises when reached.
    """
    if source.startswith(RIVER_PREFIX):
        dataset = _river_dataset(source[len(RIVER_PREFIX) :])
        return itertools.islice(({**x, label_field: y} for x, y in dataset), rows)
    path = Path(source)
    if path.suffix.lower() in JSON_LINES_SUFFIXES:
        if not path.is_file():
            raise SourceError(f"source file {source!r} not found")
        return itertools.islice(_read_json_lines(path), rows)
    frame = _read_frame(path, rows)
    # to_dict gives Python scalars, which orjson encodes without numpy help.
    return iter(frame.to_dict("records"))


def source_length(source: str) -> int | None:
    """Number of events in a source, when known without reading it all."""
    if source.startswith(RIVER_PREFIX):
        return getattr(_river_dataset(source[len(RIVER_PREFIX) :]), "n_samples", None)
    path = Path(source)
    if path.suffix.lower() in (".parquet", ".pq"):
        import pyarrow.parquet as pq

        return int(pq.ParquetFile(path).metadata.num_rows)
    return None
