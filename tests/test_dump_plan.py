"""Answers are dumped by a plan made once per schema (`backend.schemas.OutputSchema`), and give
exactly what marshmallow's own dump gives, whatever the fields and however the values are held.

(The suite also compares the two for every answer it receives: `schemas.check_dumps`.)"""

from __future__ import annotations

import datetime as dt
import decimal
import types
import uuid

import marshmallow as ma
import pytest
from marshmallow import fields

from backend import schemas
from backend.schemas import OutputSchema, Timestamp

WHEN = dt.datetime(2026, 12, 3, 18, 30, 5, 120000, tzinfo=dt.timezone.utc)
ID = uuid.UUID("00000000-0000-4000-8000-000000000042")


class Handoff(OutputSchema):
    id = fields.UUID(required=True)
    overdue = fields.Boolean(required=True)


class Entry(OutputSchema):
    id = fields.UUID(required=True)
    name = fields.String(required=True)
    label = fields.String(attribute="internal_label")
    shown_as = fields.String(data_key="shownAs")
    count = fields.Integer()
    count_text = fields.Integer(as_string=True)
    ratio = fields.Float()
    amount = fields.Decimal(places=2)
    flag = fields.Boolean()
    at = Timestamp()
    on = fields.Date()
    reasons = fields.List(fields.String())
    ids = fields.List(fields.UUID())
    handoff = fields.Nested(Handoff, allow_none=True)
    handoffs = fields.List(fields.Nested(Handoff))
    detail = fields.Dict()
    defaulted = fields.String(dump_default="none given")
    computed = fields.Function(lambda obj: "computed")
    method = fields.Method("describe")
    nested_name = fields.String(attribute="owner.name")
    constant = fields.Constant("always")

    def describe(self, obj):
        return f"described {type(obj).__name__}"


FULL = {
    "id": ID, "name": "Alex", "internal_label": "L", "shown_as": "S", "count": 3, "count_text": 4, "ratio": 0.5,
    "amount": decimal.Decimal("1.005"), "flag": 1, "at": WHEN, "on": WHEN.date(), "reasons": ["a", "b"],
    "ids": [ID], "handoff": {"id": ID, "overdue": 0}, "handoffs": [{"id": ID, "overdue": True}],
    "detail": {"k": [1, 2]}, "owner": {"name": "nested"},
}


def marshmallow_dump(schema: ma.Schema, obj):
    """What marshmallow's own `Schema.dump` gives (nested schemas too), without the plan."""
    saved = OutputSchema._serialize
    OutputSchema._serialize = ma.Schema._serialize
    try:
        return schema.dump(obj)
    finally:
        OutputSchema._serialize = saved


@pytest.fixture(autouse=True)
def plan_alone(monkeypatch):
    """These tests compare the two themselves."""
    monkeypatch.setattr(schemas, "check_dumps", False)


@pytest.mark.parametrize("obj", [
    FULL,
    {key: None for key in FULL},  # every value null
    {"id": ID},  # every other field absent: left out, or its dump_default
    types.SimpleNamespace(**FULL),  # an object's attributes rather than a dict's keys
    types.SimpleNamespace(id=ID, name="only two"),
], ids=["every field", "nulls", "absent", "attributes", "attributes absent"])
def test_the_dump_plan_gives_what_marshmallow_gives(obj):
    schema = Entry()
    assert schema.dump(obj) == marshmallow_dump(schema, obj)


def test_the_dump_plan_dumps_lists_and_nested_answers_as_marshmallow_does():
    schema = Entry(many=True)
    objs = [FULL, types.SimpleNamespace(**FULL), {"id": ID}]
    assert schema.dump(objs) == marshmallow_dump(schema, objs)
    envelope = schemas.page_of(Entry, "EntryPage")()
    page = {"items": objs, "next_cursor": None}
    assert envelope.dump(page) == marshmallow_dump(envelope, page)


def test_a_field_named_like_a_dict_method_is_read_as_marshmallow_reads_it():
    """A dict without the key is read by attribute, as marshmallow does: `items` of a dict
    without "items" is the dict's own method, never silently an empty list."""
    class Named(OutputSchema):
        keys = fields.String()
        name = fields.String()

    schema = Named()
    for obj in ({"keys": "k", "name": "n"}, {"name": "n"}):
        assert schema.dump(obj) == marshmallow_dump(schema, obj)


def test_the_dump_plan_converts_what_it_reads():
    dumped = Entry().dump(FULL)
    assert dumped["id"] == str(ID) and dumped["at"] == "2026-12-03T18:30:05.120000+00:00"
    assert dumped["count_text"] == "4" and dumped["amount"] == decimal.Decimal("1.00")
    assert dumped["shownAs"] == "S" and "shown_as" not in dumped and dumped["label"] == "L"
    assert dumped["handoff"] == {"id": str(ID), "overdue": False}
    assert dumped["method"] == "described dict" and dumped["nested_name"] == "nested" and dumped["constant"] == "always"
    assert Entry().dump({"id": ID})["defaulted"] == "none given"


def test_the_suite_catches_a_plan_that_differs_from_marshmallow(monkeypatch):
    """The check the suite runs on every answer fails loudly when the two disagree."""
    monkeypatch.setattr(schemas, "check_dumps", True)
    monkeypatch.setattr(schemas._DumpPlan, "dump", lambda self, obj: {"id": "wrong"})
    with pytest.raises(AssertionError, match="the dump plan gave"):
        Handoff().dump({"id": ID, "overdue": True})


@pytest.mark.parametrize("obj", [{"id": ID, "overdue": True}, {"id": ID, "overdue": None}, {"id": ID}, {}],
                         ids=["whole", "a null", "a field absent", "empty"])
def test_a_schema_of_plain_fields_dumps_a_dict_in_one_pass_as_marshmallow_does(obj):
    schema = Handoff()
    assert schema._serialize(obj) == marshmallow_dump(schema, obj)
    assert schema._dump_plan.direct is not None  # every field plain: the one-pass form
