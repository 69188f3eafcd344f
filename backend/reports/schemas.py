"""The outcomes report's query and answer (api.md `GET /api/v1/reports/outcomes`)."""

from __future__ import annotations

import datetime as dt

from marshmallow import ValidationError, fields, validate, validates_schema

from backend.cases.schemas import PRESENTING_REASONS
from backend.reports.measures import MEASURES
from backend.schemas import InputSchema, OutputSchema, Timestamp

#: The longest period one report covers.
MAX_PERIOD_DAYS = 3 * 366


#: The period ends at midnight after `to`: the day after must exist.
_LAST_DAY = validate.Range(max=dt.date(9998, 12, 31))


class OutcomesQuerySchema(InputSchema):
    from_ = fields.Date(required=True, data_key="from", validate=_LAST_DAY, metadata={
        "description": "First day of the period (discharge dates, in the program's time zone)."})
    to = fields.Date(required=True, validate=_LAST_DAY, metadata={"description": "Last day of the period, included."})
    coach_id = fields.UUID(metadata={"description": "Only episodes whose coach this is."})
    presenting_reason = fields.String(validate=validate.OneOf(PRESENTING_REASONS))

    @validates_schema
    def _period(self, data, **kwargs):
        start, end = data.get("from_"), data.get("to")
        if start and end and start > end:
            raise ValidationError("Must not be before `from`.", "to")
        if start and end and (end - start).days >= MAX_PERIOD_DAYS:
            raise ValidationError(f"A report covers at most {MAX_PERIOD_DAYS} days.", "to")


class LanguageFiguresSchema(OutputSchema):
    numerator = fields.Integer(required=True)
    denominator = fields.Integer(required=True)
    pending = fields.Integer(required=True)
    rate = fields.Float(required=True, allow_none=True)


class MeasureSchema(OutputSchema):
    numerator = fields.Integer(required=True)
    denominator = fields.Integer(required=True, metadata={"description": "Decided members: met or missed."})
    pending = fields.Integer(required=True, metadata={
        "description": "Members whose window has not closed yet: not in the denominator."})
    rate = fields.Float(required=True, allow_none=True, metadata={
        "description": "numerator / denominator (0–1, 4 decimals); null when the denominator is 0."})
    value = fields.Float(required=True, allow_none=True, metadata={
        "description": "The measure's figure besides the rate (the median, in `unit`), else null."})
    unit = fields.String(required=True, allow_none=True)
    population = fields.String(required=True, validate=validate.OneOf(["episodes", "handoffs", "texts"]))
    window = fields.String(required=True)
    definition = fields.String(required=True)
    source = fields.String(required=True)
    by_language = fields.Dict(keys=fields.String(), values=fields.Nested(LanguageFiguresSchema), required=True,
                              allow_none=True, metadata={
                                  "description": "The SMS measures by language (`en`, `es`…: the text's, or the "
                                                 "patient's); null for the others."})


MeasuresSchema = type("MeasuresSchema", (OutputSchema,), {
    key: fields.Nested(MeasureSchema, required=True, metadata={"description": measure.definition})
    for key, measure in MEASURES.items()})


class FiltersSchema(OutputSchema):
    coach_id = fields.UUID(required=True, allow_none=True)
    presenting_reason = fields.String(required=True, allow_none=True)


class CohortSchema(OutputSchema):
    episodes = fields.Integer(required=True)
    definition = fields.String(required=True)


class KitsRowSchema(OutputSchema):
    setting = fields.String(required=True)
    recipient = fields.String(required=True)
    kits = fields.Integer(required=True)
    doses = fields.Integer(required=True)


class KitsDistributedSchema(OutputSchema):
    kits = fields.Integer(required=True, metadata={"description": "Kits given in the period."})
    doses = fields.Integer(required=True)
    window = fields.String(required=True)
    definition = fields.String(required=True)
    source = fields.String(required=True)
    by_setting = fields.Dict(keys=fields.String(), values=fields.Integer(), required=True, metadata={
        "description": "Kits by setting (emergency_department, inpatient, transition_clinic, community, other)."})
    by_recipient = fields.Dict(keys=fields.String(), values=fields.Integer(), required=True, metadata={
        "description": "Kits by recipient (patient, support_person)."})
    by_setting_and_recipient = fields.List(fields.Nested(KitsRowSchema), required=True)


class TextsSchema(OutputSchema):
    fell_back_to_english = fields.Integer(required=True, metadata={
        "description": "Automatic texts Bridgeline tried to send in English because none existed in the "
                       "patient's language."})


class OutcomesSchema(OutputSchema):
    from_ = fields.Date(required=True, data_key="from", attribute="from")
    to = fields.Date(required=True)
    timezone = fields.String(required=True, metadata={"description": "The time zone of the period's dates."})
    as_of = Timestamp(required=True, metadata={"description": "Pending and missed are judged at this moment."})
    filters = fields.Nested(FiltersSchema, required=True)
    cohort = fields.Nested(CohortSchema, required=True)
    measures = fields.Nested(MeasuresSchema, required=True)
    kits_distributed = fields.Nested(KitsDistributedSchema, required=True, metadata={
        "description": "Naloxone kits given in the period (a count, not a rate)."})
    texts = fields.Nested(TextsSchema, required=True)
