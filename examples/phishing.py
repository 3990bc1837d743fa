"""Phishing detection: StandardScaler | LogisticRegression on River's Phishing data.

Events on topic ``phishing``: the data set's feature fields, ``event_id`` and the label
``is_phishing``. Predictions go to ``phishing.predictions``. Run it with::

    streamlearn run examples/phishing.py
    streamlearn produce river:Phishing --topic phishing --label-field is_phishing
"""

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
    name="phishing",
    key_field="event_id",
    event_id_field="event_id",
    features=FEATURES,
    label_field="is_phishing",
    label_type="boolean",
    model=model,
)
