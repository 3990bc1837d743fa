"""River's Agrawal generator's nine numeric fields, for ConceptDriftStream (tests)."""

from river import linear_model, preprocessing

from streamlearn import Pipeline

FIELDS = ("salary", "commission", "age", "elevel", "car", "zipcode", "hvalue", "hyears", "loan")

pipeline = Pipeline(
    name="agrawal",
    key_field="event_id",
    event_id_field="event_id",
    features={f: "numeric" for f in FIELDS},
    label_field="y",
    label_type="boolean",
    model=lambda: preprocessing.StandardScaler() | linear_model.LogisticRegression(),
)
