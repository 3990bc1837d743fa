"""Typed events: what counts as absent, what is a wrong type, what is ignored."""

from __future__ import annotations

import pytest

from streamlearn.spec.schema import BadEvent, Schema

SCHEMA = Schema(
    {"amount": "numeric", "country": "categorical", "is_new": "boolean"},
    label=("y", "categorical"), other=("id",),
)


@pytest.mark.parametrize(
    ("event", "x"),
    [
        ({"amount": 1, "country": "FR", "is_new": False, "y": "a"},
         {"amount": 1, "country": "FR", "is_new": False}),
        ({"amount": None, "y": "a"}, {}),
        ({"country": 75, "y": "a"}, {"country": "75"}),
        ({"amount": 2.5, "y": 3}, {"amount": 2.5}),
    ],
)
def test_valid_events(event, x):
    assert SCHEMA.check(event)[0] == x


@pytest.mark.parametrize(
    ("event", "field"),
    [
        ({"amount": "3", "y": "a"}, "amount"),
        ({"amount": True, "y": "a"}, "amount"),
        ({"amount": {"v": 1}, "y": "a"}, "amount"),
        ({"country": ["FR"], "y": "a"}, "country"),
        ({"is_new": 1, "y": "a"}, "is_new"),
        ({"y": 1.5}, "y"),
    ],
)
def test_wrong_types_name_the_field(event, field):
    with pytest.raises(BadEvent) as info:
        SCHEMA.check(event)
    assert info.value.reason == "bad_type"
    assert repr(field) in info.value.detail


def test_missing_label_and_undeclared_fields():
    with pytest.raises(BadEvent, match="missing_field"):
        SCHEMA.check({"amount": 1})
    assert SCHEMA.check({"id": "e1", "y": "a", "extra": 1, "more": 2})[2] == 2
