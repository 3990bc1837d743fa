"""Card fraud with per-card windowed features, on the seeded generator shipped with streamlearn.

Events on topic ``fraud``: ``{"tx_id", "card", "merchant", "amount", "time", "is_fraud"}``
(see ``streamlearn.datasets.fraud``). The fraud is in each card's history, not in one
payment: bursts of large payments, later (the drift) many small ones at new merchants. Run::

    streamlearn run examples/fraud.py
    streamlearn produce fraud:50000 --topic fraud --key-field card

Warm start from history first (optional). 20,000 payments of history span 2.7 hours of
event time from 2026-01-01T00:00Z; the live stream must start after them (``start_ms``,
here 03:00Z), or its events are older than the features' state: served, but as late
events not added to their card's windows (``streamlearn_late_events_total``)::

    python -c "from streamlearn.datasets import fraud
    fraud.frame(20000, seed=1).to_parquet('history.parquet')"
    streamlearn bootstrap examples/fraud.py --history history.parquet
    streamlearn run examples/fraud.py
    streamlearn produce fraud:50000:seed=2:start_ms=1767236400000 --topic fraud --key-field card

About 2-3% of the payments are fraud: answering "legit" every time scores an accuracy of
0.97. So the pipeline is judged by ROC AUC (how well the model ranks fraud above legit; 0.5
is chance), and by precision and recall at the served prediction (the probability above
0.5): of the payments it flags, how many are fraud; of the fraud, how much it flags.
"""

from river import compose, linear_model, metrics, preprocessing

from streamlearn import Pipeline
from streamlearn import features as f


def model():
    # The merchant id is there for distinct-count; as a raw input it would only add noise.
    return (compose.Discard("merchant") | preprocessing.StandardScaler()
            | linear_model.LogisticRegression())


pipeline = Pipeline(
    name="fraud",
    key_field="card",
    event_id_field="tx_id",
    time_field="time",
    features={"amount": "numeric", "merchant": "categorical"},
    label_field="is_fraud",
    label_type="boolean",
    derived={
        "n_10m": f.count("10m"),
        "n_1h": f.count("1h"),
        "amount_mean_1d": f.mean("amount", "1d"),
        "amount_max_1h": f.max("amount", "1h"),
        "merchants_1h": f.distinct("merchant", "1h"),
        "since_last": f.since_previous(),
        "last_amount": f.last("amount"),
    },
    lateness="1m",
    entity_ttl="2d",
    model=model,
    # The first is the primary metric: `top`, `models list`, the report and the alert rule.
    metrics=[metrics.ROCAUC(), metrics.Precision(), metrics.Recall(), metrics.Accuracy()],
    alert_threshold=0.8,  # the rolling ROC AUC under which the shipped alert fires
)
