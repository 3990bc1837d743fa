"""Phishing with labels that arrive on their own (``<name>.labels``), on two partitions:
one global learner, every partition serves its snapshots."""

from river import linear_model, preprocessing

from streamlearn import Pipeline

FEATURES = {
    "empty_server_form_handler": "numeric",
    "popup_window": "numeric",
    "https": "numeric",
    "request_from_other_domain": "numeric",
    "anchor_from_other_domain": "numeric",
    "is_popular": "numeric",
    "long_url": "numeric",
    "age_of_domain": "numeric",
    "ip_in_url": "numeric",
}


def model():
    return preprocessing.StandardScaler() | linear_model.LogisticRegression()


pipeline = Pipeline(
    name="delayed",
    key_field="event_id",
    event_id_field="event_id",
    time_field="time",
    features=FEATURES,
    label_type="boolean",
    label_ttl="1h",
    partitions=2,
    model=model,
)
