"""The command-line tools' work, each a module of its own: ``produce`` (a source to a
topic, paced), ``labels`` (its ``--labels-to`` delayed labels), ``sources`` (CSV, Parquet,
river data sets), ``tail``, ``dlq``, ``top``, ``predictions`` (reading predictions back),
``infer`` (a pipeline file from a sample), ``warm_start`` (``streamlearn bootstrap``: a
model from history), ``registry`` (``streamlearn models``), ``reset``, ``report`` and ``demo``. They
use ``streamlearn.kafka`` for Kafka and never the worker's internals (``streamlearn.streams``
beyond its public readers)."""

__all__: list[str] = []
