"""JSON answers are written by orjson (`backend.json_output`) and say exactly what Flask's own
provider would have said."""

from __future__ import annotations

import dataclasses
import datetime as dt
import decimal
import json
import uuid

import pytest
from flask.json.provider import DefaultJSONProvider


@dataclasses.dataclass
class Point:
    x: int


VALUES = [
    {"items": [{"id": str(uuid.uuid4()), "name": "José Núñez", "n": 3, "ok": True, "none": None}], "next": None},
    {"when": dt.datetime(2026, 12, 4, 5, 6, 7, tzinfo=dt.timezone.utc), "on": dt.date(2026, 12, 4)},
    {"id": uuid.UUID(int=42), "amount": decimal.Decimal("1.50"), "point": Point(3), 7: "seven"},
    {"huge": 2 ** 70, "ratio": 0.1},
]


@pytest.mark.parametrize("value", VALUES)
def test_an_answer_is_the_json_flasks_own_provider_writes(app, value):
    with app.test_request_context():
        flasks = DefaultJSONProvider(app)
        flasks.sort_keys = app.json.sort_keys
        ours, theirs = app.json.response(value), flasks.response(value)
    assert ours.mimetype == theirs.mimetype == "application/json"
    assert ours.get_data().endswith(b"\n")
    assert json.loads(ours.get_data()) == json.loads(theirs.get_data())


def test_answers_keep_the_order_their_fields_were_given_in(app):
    with app.test_request_context():
        body = app.json.response({"b": 1, "a": 2, "c": {"z": 1, "y": 2}}).get_data()
    assert body == b'{"b":1,"a":2,"c":{"z":1,"y":2}}\n'
