"""Request and response bodies of outreach."""

from __future__ import annotations

from marshmallow import ValidationError, fields, validate, validates_schema

from backend.outreach import segments as sms_segments
from backend.outreach import templates
from backend.outreach.models import REVIEW_STATUSES, MessageDirection, MessageStatus
from backend.schemas import (
    InputSchema,
    LanguageTag,
    OutputSchema,
    PageQuerySchema,
    Text,
    Timestamp,
    one_of,
    page_of,
)


class TemplateCreateSchema(InputSchema):
    name = Text(required=True, validate=validate.Length(min=1, max=100), metadata={
        "description": "Unique per language. A built-in text's name (`check_in`, `appointment_reminder`, "
                       "`opt_out_confirmation`, `opt_in_confirmation`, `help`) replaces it in that language."})
    language = LanguageTag(metadata={"description": "BCP 47 tag of a language Bridgeline texts in (`en`, `es`…); "
                                                    "default `en`."})
    body = Text(required=True, validate=validate.Length(min=1, max=600),
                metadata={"description": "Placeholders: {first_name}, {coach_name}, {appointment_time}, "
                                         "{appointment_date}, {callback_phone}."})


class TemplateUpdateSchema(InputSchema):
    name = Text(validate=validate.Length(min=1, max=100))
    language = LanguageTag()
    body = Text(validate=validate.Length(min=1, max=600))


class TemplateSchema(OutputSchema):
    id = fields.UUID(required=True)
    name = fields.String(required=True)
    language = fields.String(required=True)
    body = fields.String(required=True)
    sample = fields.Method("_sample", required=True, metadata={"type": "string",
        "description": "The text as sent: realistic values and the opt-out hint of its language."})
    encoding = fields.Method("_encoding", required=True, metadata={"type": "string", "description": "GSM-7 or UCS-2."})
    segments = fields.Method("_segments", required=True, metadata={"type": "integer",
                                                                    "description": "SMS segments (at most 2)."})
    created_at = Timestamp(required=True)
    updated_at = Timestamp(required=True)

    def _sample(self, template) -> str:
        return templates.sample(name=template.name, body=template.body, language=template.language)

    def _encoding(self, template) -> str:
        return sms_segments.encoding(self._sample(template))

    def _segments(self, template) -> int:
        return sms_segments.count(self._sample(template))


TemplatePageSchema = page_of(TemplateSchema, "TemplatePageSchema")


class MessageCreateSchema(InputSchema):
    id = fields.UUID(metadata={"description": "A client-generated id (a UUID made when the user saves): the same "
                                              "create again is a no-op answering the record (200); the same id "
                                              "with another request, 409."})
    body = Text(validate=validate.Length(min=1, max=1600), metadata={
        "description": "Free text; checked by the privacy rules (422 `message-privacy` unless `confirm_privacy`)."})
    template_id = fields.UUID(metadata={"description": "Instead of `body`: a message template."})
    variables = fields.Dict(keys=fields.String(validate=validate.Length(max=40)),
                            values=Text(validate=validate.Length(min=1, max=100)), metadata={
        "description": "Values of the template's placeholders; first_name, coach_name, callback_phone and the "
                       "next appointment's date and time are filled in when not given."})
    send_at = Timestamp(metadata={"description": "When to send (default now; at most 90 days ahead)."})
    confirm_privacy = fields.Boolean(load_default=False, metadata={
        "description": "Send even though the privacy check found revealing words."})

    @validates_schema
    def _body_or_template(self, data, **kwargs):
        if ("body" in data) == ("template_id" in data):
            raise ValidationError({"_schema": ["Give either `body` or `template_id`."]})
        if "variables" in data and "template_id" not in data:
            raise ValidationError({"variables": ["Only with `template_id`."]})


class MessageSchema(OutputSchema):
    id = fields.UUID(required=True)
    patient_id = fields.UUID(allow_none=True, required=True, metadata={
        "description": "None for a reply from a number that matches no single patient."})
    episode_id = fields.UUID(allow_none=True, required=True)
    direction = fields.String(required=True, validate=one_of(MessageDirection))
    kind = fields.String(required=True, validate=validate.OneOf(
        ["check_in", "appointment_reminder", "staff", "auto_reply", "reply"]))
    body = fields.String(required=True, metadata={"description": "Exactly what was (or will be) sent; an "
                                                                 "automatic text is written when it goes."})
    language = fields.String(allow_none=True, required=True, metadata={
        "description": "The language an automatic text or a keyword's answer is written in; null for others."})
    fell_back = fields.Boolean(required=True, metadata={
        "description": "An automatic text sent in English because none exists in the patient's language."})
    status = fields.String(required=True, validate=one_of(MessageStatus))
    status_reason = fields.String(allow_none=True, required=True, metadata={
        "description": "Why: deferred by quiet hours or the rate limit, blocked, failed with Twilio's error…"})
    segments = fields.Method("_segments", required=True, metadata={"type": "integer"})
    send_at = Timestamp(required=True, metadata={"description": "When it was planned or asked to go."})
    due_at = Timestamp(allow_none=True, required=True, metadata={"description": "When a queued text goes next."})
    sent_at = Timestamp(allow_none=True, required=True)
    status_at = Timestamp(required=True)
    error_code = fields.Integer(allow_none=True, required=True)
    appointment_id = fields.UUID(allow_none=True, required=True)
    template_id = fields.UUID(allow_none=True, required=True)
    from_phone = fields.Method("_from_phone", required=True, allow_none=True, metadata={"type": "string",
        "description": "The sender's number (replies only), to place replies from unknown numbers."})
    created_at = Timestamp(required=True)
    created_by_id = fields.UUID(allow_none=True, required=True)
    read_at = Timestamp(allow_none=True, required=True)
    read_by_id = fields.UUID(allow_none=True, required=True)

    def _segments(self, message) -> int:
        return sms_segments.count(message.body)

    def _from_phone(self, message) -> str | None:
        return message.phone if message.direction == MessageDirection.INBOUND else None


MessagePageSchema = page_of(MessageSchema, "MessagePageSchema")


class InboxQuerySchema(PageQuerySchema):
    unread = fields.Boolean(metadata={"description": "true: unread replies only; false: read ones only."})


class ReviewQuerySchema(PageQuerySchema):
    status = fields.String(validate=one_of(REVIEW_STATUSES), metadata={
        "description": "One of the statuses that need a person (default: all three)."})
