"""Card payments with windowed per-card features on two partitions (integration tests)."""

from river import tree

from streamlearn import Pipeline
from streamlearn import features as f

pipeline = Pipeline(
    name="cards",
    key_field="card",
    event_id_field="tx_id",
    time_field="time",
    features={"amount": "numeric", "merchant": "categorical"},
    label_field="is_fraud",
    label_type="boolean",
    derived={
        "n_30s": f.count("30s"),
        "n_5m": f.count("5m"),
        "sum_2m": f.sum("amount", "2m"),
        "mean_5m": f.mean("amount", "5m"),
        "max_2m": f.max("amount", "2m"),
        "min_2m": f.min("amount", "2m"),
        "std_5m": f.std("amount", "5m"),
        "merchants_5m": f.distinct("merchant", "5m"),
        "last_amount": f.last("amount"),
        "since_last": f.since_previous(),
        "cents": f.transform(lambda e: round(e["amount"] % 1, 2)),
    },
    lateness="20s",
    entity_ttl="6m",
    partitions=2,
    learning="per_partition",
    model=tree.HoeffdingTreeClassifier,
)
