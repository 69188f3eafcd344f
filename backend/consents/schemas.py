"""Request and response bodies of Part 2 consents and the accounting of disclosures."""

from __future__ import annotations

from marshmallow import fields, validate

from backend.consents import service
from backend.consents.models import INFORMATION_KINDS
from backend.schemas import (
    InputSchema,
    OutputSchema,
    PageQuerySchema,
    Text,
    Timestamp,
    not_in_future,
    page_of,
)


class ConsentCreateSchema(InputSchema):
    id = fields.UUID(metadata={"description": "A client-generated id (a UUID made when the user saves): the same "
                                              "create again is a no-op answering the record (200); the same id "
                                              "with another request, 409."})
    recipient_program_id = fields.UUID(allow_none=True, metadata={"description": "A program from the directory…"})
    recipient_name = Text(allow_none=True, validate=validate.Length(min=1, max=200),
                          metadata={"description": "…or a named person or organisation (exactly one of the two)."})
    purpose = Text(required=True, validate=validate.Length(min=1, max=500))
    information = fields.List(fields.String(validate=validate.OneOf(INFORMATION_KINDS)), required=True,
                              validate=validate.Length(min=1))
    signed_at = Timestamp(required=True, validate=not_in_future)
    signature_method = fields.String(required=True, validate=validate.OneOf(["written", "electronic"]))
    expires_at = Timestamp(allow_none=True)
    expires_on_end_of_treatment = fields.Boolean(metadata={"description": "Instead of expires_at: ends when "
                                                                          "the open episode closes."})


class RevocationSchema(OutputSchema):
    revoked_at = Timestamp(required=True)
    method = fields.String(required=True)


class ConsentSchema(OutputSchema):
    id = fields.UUID(required=True)
    patient_id = fields.UUID(required=True)
    disclosing_program = fields.String(required=True)
    recipient_program_id = fields.UUID(allow_none=True, required=True)
    recipient_name = fields.String(allow_none=True, required=True)
    purpose = fields.String(required=True)
    information = fields.List(fields.String(), required=True)
    signed_at = Timestamp(required=True)
    signature_method = fields.String(required=True)
    expires_at = Timestamp(allow_none=True, required=True)
    expires_on_end_of_treatment = fields.Boolean(required=True)
    active = fields.Method("_active", required=True, metadata={"type": "boolean"})
    revocation = fields.Nested(RevocationSchema, allow_none=True, required=True)
    created_at = Timestamp(required=True)

    def _active(self, consent) -> bool:
        return service.is_active(consent)


class RevokeSchema(InputSchema):
    method = fields.String(required=True, validate=validate.OneOf(["written", "electronic"]))
    revoked_at = Timestamp(validate=not_in_future, metadata={"description": "Default: now."})


class DisclosureSchema(OutputSchema):
    id = fields.UUID(required=True)
    patient_id = fields.UUID(required=True)
    consent_id = fields.UUID(required=True)
    recipient_program_id = fields.UUID(allow_none=True, required=True)
    recipient_name = fields.String(required=True)
    information = fields.List(fields.String(), required=True)
    content = fields.Dict(required=True, metadata={"description": "Exactly what was disclosed."})
    notice = fields.String(required=True, metadata={"description": "The 42 CFR 2.32 notice that went with it."})
    handoff_id = fields.UUID(allow_none=True, required=True)
    disclosed_at = Timestamp(required=True)
    disclosed_by = fields.UUID(attribute="disclosed_by_id", required=True)


class DisclosureQuerySchema(PageQuerySchema):
    since = Timestamp(metadata={"description": "Default: three years ago."})


ConsentPageSchema = page_of(ConsentSchema, "ConsentPageSchema")
DisclosurePageSchema = page_of(DisclosureSchema, "DisclosurePageSchema")
