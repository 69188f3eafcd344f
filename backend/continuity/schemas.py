"""Request and response bodies of the naloxone log and medication supplies."""

from __future__ import annotations

import datetime as dt

from marshmallow import ValidationError, fields, validate, validates_schema

from backend.continuity.models import (
    MEDICATIONS,
    PRODUCTS,
    RECIPIENTS,
    REPORTERS,
    SETTINGS,
    SUPPLY_KINDS,
    SUPPLY_SOURCES,
    FillStatus,
    NaloxoneKind,
)
from backend.schemas import (
    EARLIEST,
    InputSchema,
    OutputSchema,
    Timestamp,
    not_in_future,
    one_of,
    page_of,
)

_CLIENT_ID = {"description": "Client-generated: a retried create is a no-op."}
#: The fields of each kind of naloxone entry: required, then optional.
_KIT_FIELDS = ("distributed_at", "recipient", "product", "doses", "training_given", "setting")
_USE_FIELDS = ("used_at", "reported_by")
_USE_OPTIONAL = ("note",)


class NaloxoneCreateSchema(InputSchema):
    """A kit given `{distributed_at, recipient, product, doses, training_given, setting}`, or a
    use reported `{used_at, reported_by, note?}`; `kind` may be left out (the timestamp says it)."""

    id = fields.UUID(metadata=_CLIENT_ID)
    kind = fields.String(validate=one_of(NaloxoneKind), metadata={
        "description": "`given` (a kit) or `used` (a reported use); default: `given` with `distributed_at`, "
                       "`used` with `used_at`."})
    distributed_at = Timestamp(validate=not_in_future, metadata={"description": "A kit's: when it was given."})
    recipient = fields.String(validate=validate.OneOf(RECIPIENTS))
    product = fields.String(validate=validate.OneOf(PRODUCTS))
    doses = fields.Integer(strict=True, validate=validate.Range(min=1, max=20),
                           metadata={"description": "Doses in the kit (1–20)."})
    training_given = fields.Boolean(metadata={"description": "The recipient was shown how to use it."})
    setting = fields.String(validate=validate.OneOf(SETTINGS))
    used_at = Timestamp(validate=not_in_future, metadata={"description": "A use's: when the kit was used."})
    reported_by = fields.String(validate=validate.OneOf(REPORTERS))
    note = fields.String(allow_none=True, validate=validate.Length(max=2000),
                         metadata={"description": "A use's free text (never in the timeline)."})

    @validates_schema
    def _fields_of_one_kind(self, data, **kwargs):
        kind = data.get("kind") or (NaloxoneKind.USED if "used_at" in data and "distributed_at" not in data
                                    else NaloxoneKind.GIVEN)
        required, allowed = ((_KIT_FIELDS, _KIT_FIELDS) if kind == NaloxoneKind.GIVEN
                             else (_USE_FIELDS, _USE_FIELDS + _USE_OPTIONAL))
        errors = {name: ["Required for a kit given." if kind == NaloxoneKind.GIVEN else "Required for a use."]
                  for name in required if name not in data}
        errors |= {name: [f"Not part of a{' kit given' if kind == NaloxoneKind.GIVEN else ' use'}."]
                   for name in data if name not in (*allowed, "id", "kind")}
        if errors:
            raise ValidationError(errors)
        data["kind"] = str(kind)


class NaloxoneEventSchema(OutputSchema):
    id = fields.UUID(required=True)
    episode_id = fields.UUID(required=True)
    kind = fields.String(required=True, validate=one_of(NaloxoneKind))
    distributed_at = Timestamp(required=True, allow_none=True)
    recipient = fields.String(required=True, allow_none=True)
    product = fields.String(required=True, allow_none=True)
    doses = fields.Integer(required=True, allow_none=True)
    training_given = fields.Boolean(required=True, allow_none=True)
    setting = fields.String(required=True, allow_none=True)
    used_at = Timestamp(required=True, allow_none=True)
    reported_by = fields.String(required=True, allow_none=True)
    note = fields.String(required=True, allow_none=True)
    replacement_task_id = fields.UUID(attribute="task_id", required=True, allow_none=True, metadata={
        "description": "A use's follow-up task to replace the kit (the coach's, or clinic staff's when unassigned)."})
    recorded_by_id = fields.UUID(required=True)
    created_at = Timestamp(required=True)


NaloxoneEventPageSchema = page_of(NaloxoneEventSchema, "NaloxoneEventPageSchema")


#: How far ahead a supply may start: a prescription is logged when it is written, not months before.
LATEST_START_AHEAD = dt.timedelta(days=30)


def _plausible_start(day: dt.date) -> None:
    if day < EARLIEST.date():
        raise ValidationError("Must be after 2000-01-01.")
    if day > dt.date.today() + LATEST_START_AHEAD:
        raise ValidationError("Must not be more than 30 days ahead.")


class MedicationSupplyCreateSchema(InputSchema):
    id = fields.UUID(metadata=_CLIENT_ID)
    medication = fields.String(required=True, validate=validate.OneOf(MEDICATIONS))
    form = fields.String(allow_none=True, validate=validate.Length(min=1, max=60), metadata={
        "description": "Short free text: `sublingual film 8 mg`, `XR injection`."})
    kind = fields.String(required=True, validate=validate.OneOf(SUPPLY_KINDS))
    source = fields.String(required=True, validate=validate.OneOf(SUPPLY_SOURCES))
    started_on = fields.Date(required=True, validate=_plausible_start, metadata={
        "description": "The patient's local date the supply starts covering (not before the episode began, at "
                       "most 30 days ahead)."})
    days_supplied = fields.Integer(required=True, strict=True, validate=validate.Range(min=1, max=90),
                                   metadata={"description": "1–90 days."})


class FillSchema(InputSchema):
    status = fields.String(required=True, validate=one_of((FillStatus.FILLED, FillStatus.NOT_FILLED)),
                           metadata={"description": "`filled`: the pharmacy filled it; `not_filled`: it did not."})


class MedicationSupplySchema(OutputSchema):
    id = fields.UUID(required=True)
    episode_id = fields.UUID(required=True)
    medication = fields.String(required=True)
    form = fields.String(required=True, allow_none=True)
    kind = fields.String(required=True)
    source = fields.String(required=True)
    started_on = fields.Date(required=True)
    days_supplied = fields.Integer(required=True)
    covered_until = fields.Date(required=True, metadata={
        "description": "The last date covered, in the patient's time zone (`timezone`)."})
    timezone = fields.String(required=True)
    ends_at = Timestamp(required=True, metadata={"description": "When the coverage ends: midnight after "
                                                                "`covered_until` in `timezone`."})
    fill_status = fields.String(required=True, validate=one_of(FillStatus))
    fill_status_at = Timestamp(required=True, allow_none=True)
    recorded_by_id = fields.UUID(required=True)
    created_at = Timestamp(required=True)
    updated_at = Timestamp(required=True)


MedicationSupplyPageSchema = page_of(MedicationSupplySchema, "MedicationSupplyPageSchema")
