"""Two numeric fields and a label rule that changes: concept and data drift (tests)."""

from river import linear_model, preprocessing

from streamlearn import Pipeline

pipeline = Pipeline(
    name="drifting",
    key_field="event_id",
    event_id_field="event_id",
    features={"a": "numeric", "b": "numeric"},
    label_field="y",
    label_type="boolean",
    model=lambda: preprocessing.StandardScaler() | linear_model.LogisticRegression(),
)
