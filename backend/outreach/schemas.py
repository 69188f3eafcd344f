"""Request and response bodies of outreach."""

from __future__ import annotations

from marshmallow import fields, validate

from backend.cases.schemas import Text
from backend.schemas import InputSchema, OutputSchema, Timestamp, page_of


class TemplateCreateSchema(InputSchema):
    name = Text(required=True, validate=validate.Length(min=1, max=100))
    body = Text(required=True, validate=validate.Length(min=1, max=600),
                metadata={"description": "Placeholders: {first_name}, {coach_name}, {appointment_time}, "
                                         "{appointment_date}, {callback_phone}."})


class TemplateUpdateSchema(InputSchema):
    name = Text(validate=validate.Length(min=1, max=100))
    body = Text(validate=validate.Length(min=1, max=600))


class TemplateSchema(OutputSchema):
    id = fields.UUID(required=True)
    name = fields.String(required=True)
    body = fields.String(required=True)
    sample = fields.Method("_sample", required=True, metadata={
        "description": "The text as sent: realistic values and the opt-out hint."})
    encoding = fields.Method("_encoding", required=True, metadata={"description": "GSM-7 or UCS-2."})
    segments = fields.Method("_segments", required=True, metadata={"description": "SMS segments (at most 2)."})
    created_at = Timestamp(required=True)
    updated_at = Timestamp(required=True)

    def _sample(self, template) -> str:
        from backend.outreach.templates import PLACEHOLDERS, render

        return render(template.body, PLACEHOLDERS)

    def _encoding(self, template) -> str:
        from backend.outreach import segments

        return segments.encoding(self._sample(template))

    def _segments(self, template) -> int:
        from backend.outreach import segments

        return segments.count(self._sample(template))


TemplatePageSchema = page_of(TemplateSchema, "TemplatePageSchema")
