"""Request and response bodies of programs and handoffs."""

from __future__ import annotations

from marshmallow import fields, validate

from backend.cases.schemas import MOUD, PhoneNumber, Text, not_in_future
from backend.handoffs.consents import INFORMATION_KINDS
from backend.handoffs.models import METHODS, SERVICES
from backend.schemas import InputSchema, OutputSchema, PageQuerySchema, Timestamp, page_of


class ProgramFieldsSchema(InputSchema):
    name = Text(validate=validate.Length(min=1, max=200))
    service = fields.String(validate=validate.OneOf(SERVICES))
    asam_level = fields.String(allow_none=True, validate=validate.Length(min=1, max=10),
                               metadata={"description": "e.g. `1`, `2.1`, `3.7`."})
    asam_edition = fields.String(allow_none=True, validate=validate.OneOf(["3rd", "4th"]))
    phone = PhoneNumber(allow_none=True)
    address = fields.String(allow_none=True, validate=validate.Length(max=300))
    accepting_patients = fields.Boolean()
    external = fields.Boolean(metadata={"description": "Outside the hospital's SUD program: handoffs need a "
                                                       "42 CFR Part 2 consent."})


class ProgramCreateSchema(ProgramFieldsSchema):
    name = Text(required=True, validate=validate.Length(min=1, max=200))
    service = fields.String(required=True, validate=validate.OneOf(SERVICES))
    accepting_patients = fields.Boolean(required=True)
    external = fields.Boolean(required=True)


class ProgramSchema(OutputSchema):
    id = fields.UUID(required=True)
    name = fields.String(required=True)
    service = fields.String(required=True)
    asam_level = fields.String(allow_none=True, required=True)
    asam_edition = fields.String(allow_none=True, required=True)
    phone = fields.String(allow_none=True, required=True)
    address = fields.String(allow_none=True, required=True)
    accepting_patients = fields.Boolean(required=True)
    external = fields.Boolean(required=True)
    version = fields.Integer(required=True)


class ProgramQuerySchema(PageQuerySchema):
    service = fields.String(validate=validate.OneOf(SERVICES))
    accepting_patients = fields.Boolean()


class SummarySchema(InputSchema):
    moud = fields.String(required=True, validate=validate.OneOf(MOUD))
    last_dose_at = Timestamp(allow_none=True, validate=not_in_future)
    naloxone_given = fields.Boolean(required=True)
    risks = fields.String(allow_none=True, validate=validate.Length(max=2000))
    plan = fields.String(allow_none=True, validate=validate.Length(max=2000))
    goals = fields.String(allow_none=True, validate=validate.Length(max=2000))
    note = fields.String(allow_none=True, validate=validate.Length(max=2000))


class HandoffCreateSchema(InputSchema):
    episode_id = fields.UUID(required=True)
    to_level = fields.String(required=True, validate=validate.OneOf(["transition_clinic", "community_program"]))
    to_program_id = fields.UUID(allow_none=True)
    to_user_id = fields.UUID(allow_none=True)
    method = fields.String(required=True, validate=validate.OneOf(METHODS))
    summary = fields.Nested(SummarySchema, required=True)
    accept_by = Timestamp(metadata={"description": "Default: 24 h (clinic) or 72 h (program) from now."})
    arrive_by = Timestamp(metadata={"description": "Default: 72 h (clinic) or 14 days (program) from now."})


class StepSchema(InputSchema):
    note = fields.String(allow_none=True, validate=validate.Length(max=2000))


class ReasonedStepSchema(InputSchema):
    reason = Text(required=True, validate=validate.Length(min=1, max=2000))


class CompleteSchema(StepSchema):
    arrived_at = Timestamp(validate=not_in_future, metadata={"description": "Default: now."})


class HandoffEventSchema(OutputSchema):
    status = fields.String(required=True)
    at = Timestamp(required=True)
    by = fields.UUID(attribute="by_id", allow_none=True, required=True)
    note = fields.String(allow_none=True, required=True)


class EscalationSchema(OutputSchema):
    kind = fields.String(required=True, validate=validate.OneOf(["overdue_accept", "overdue_arrival"]))
    at = Timestamp(required=True)
    note = fields.String(allow_none=True, required=True)


class HandoffSchema(OutputSchema):
    id = fields.UUID(required=True)
    episode_id = fields.UUID(required=True)
    from_level = fields.String(required=True)
    to_level = fields.String(required=True)
    to_program_id = fields.UUID(allow_none=True, required=True)
    to_user_id = fields.UUID(allow_none=True, required=True)
    method = fields.String(required=True)
    summary = fields.Dict(required=True)
    status = fields.String(required=True)
    accept_by = Timestamp(required=True)
    arrive_by = Timestamp(required=True)
    arrived_at = Timestamp(allow_none=True, required=True)
    overdue = fields.Method("_overdue", required=True)
    events = fields.List(fields.Nested(HandoffEventSchema), attribute="transition_events", required=True,
                         metadata={"description": "The status changes (`by` is null when the system acted)."})
    escalations = fields.List(fields.Nested(EscalationSchema), attribute="escalation_events", required=True,
                              metadata={"description": "Missed deadlines, each escalated once."})
    created_at = Timestamp(required=True)

    def _overdue(self, handoff) -> bool:
        from backend.handoffs.service import is_overdue

        return is_overdue(handoff)


class HandoffQuerySchema(PageQuerySchema):
    status = fields.String(validate=validate.OneOf(["sent", "accepted", "declined", "completed", "no_show",
                                                    "cancelled"]))
    overdue = fields.Boolean()
    episode_id = fields.UUID()
    to_level = fields.String(validate=validate.OneOf(["transition_clinic", "community_program"]))


ProgramPageSchema = page_of(ProgramSchema, "ProgramPageSchema")
HandoffPageSchema = page_of(HandoffSchema, "HandoffPageSchema")


class ConsentCreateSchema(InputSchema):
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
    active = fields.Method("_active", required=True)
    revocation = fields.Nested(RevocationSchema, allow_none=True, required=True)
    created_at = Timestamp(required=True)

    def _active(self, consent) -> bool:
        from backend.handoffs.consents import is_active

        return is_active(consent)


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
