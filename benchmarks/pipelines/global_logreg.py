"""The scale-out benchmark's pipeline: 10 numeric features, a logistic regression, four
partitions, labels on ``<name>.labels``, one global learner."""

from river import linear_model, preprocessing

from streamlearn import Pipeline

pipeline = Pipeline(
    name="bench-global",
    key_field="event_id",
    event_id_field="event_id",
    time_field="time",
    features={f"x{i}": "numeric" for i in range(10)},
    label_type="boolean",
    label_ttl="1h",
    partitions=4,
    model=lambda: preprocessing.StandardScaler() | linear_model.LogisticRegression(),
)
