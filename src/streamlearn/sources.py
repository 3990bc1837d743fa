"""Event sources for replay: CSV or Parquet files (pandas) and River's bundled data sets.

>>> events = iter_events("river:Phishing", label_field="is_phishing")
>>> first = next(events)
>>> sorted(first)[:3], first["is_phishing"]
(['age_of_domain', 'anchor_from_other_domain', 'empty_server_form_handler'], True)
>>> source_length("river:Phishing")
1250
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from streamlearn.errors import StreamlearnError

__all__ = ["RIVER_PREFIX", "iter_events", "source_length"]

RIVER_PREFIX = "river:"


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


def _read_frame(path: Path) -> Any:
    import pandas as pd

    if not path.is_file():
        raise SourceError(f"source file {str(path)!r} not found")
    if path.suffix.lower() in (".parquet", ".pq"):
        try:
            return pd.read_parquet(path)
        except ImportError as exc:
            raise SourceError(
                f"reading Parquet needs pyarrow: pip install 'streamlearn[parquet]' ({exc})"
            ) from None
    if path.suffix.lower() in (".csv", ".txt", ".gz"):
        return pd.read_csv(path)
    raise SourceError(f"source {str(path)!r}: expected a .csv or .parquet file")


def iter_events(source: str, label_field: str = "label") -> Iterator[dict[str, Any]]:
    """Events as dicts in source order; River data sets put ``y`` under ``label_field``.

    A missing or unreadable source raises here, before anything is sent.
    """
    if source.startswith(RIVER_PREFIX):
        dataset = _river_dataset(source[len(RIVER_PREFIX) :])
        return ({**x, label_field: y} for x, y in dataset)
    frame = _read_frame(Path(source))
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
