"""Two candidate models side by side on one partition, labels on ``<name>.labels``, and the
``challenger`` drift policy: the stream of ``tests/integration/test_candidates.py`` flips its
concept half way, so the champion is challenged and replaced."""

from river import linear_model, preprocessing, tree

from streamlearn import Pipeline


def lr():
    return preprocessing.StandardScaler() | linear_model.LogisticRegression()


def hoeffding():
    return tree.HoeffdingTreeClassifier(grace_period=50)


pipeline = Pipeline(
    name="candidates",
    key_field="event_id",
    event_id_field="event_id",
    time_field="time",
    features={"a": "numeric", "b": "numeric"},
    label_type="boolean",
    label_ttl="1h",
    models={"lr": lr, "tree": hoeffding},
    champion="lr",
    drift_policy="challenger",
)
