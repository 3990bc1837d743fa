"""Per-card and per-merchant features on two partitions: merchants' go through
<name>.by-merchant, which both card partitions write to."""

from river import tree

from streamlearn import Pipeline
from streamlearn import features as f

pipeline = Pipeline(
    name="cards-by-merchant",
    key_field="card",
    event_id_field="tx_id",
    time_field="time",
    features={"amount": "numeric", "merchant": "categorical"},
    label_field="is_fraud",
    label_type="boolean",
    derived={
        "n_5m": f.count("5m"),
        "mean_5m": f.mean("amount", "5m"),
        "merchant_n_2m": f.count("2m", by="merchant"),
        "merchant_max_5m": f.max("amount", "5m", by="merchant"),
        "merchant_gap": f.since_previous(by="merchant"),
    },
    lateness="20s",
    entity_ttl="6m",
    model=tree.HoeffdingTreeClassifier,
    partitions=2,
)
