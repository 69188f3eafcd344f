"""Request and response bodies of handoffs."""

from __future__ import annotations

from marshmallow import fields, validate

from backend.cases.schemas import MOUD
from backend.database import utcnow
from backend.handoffs.models import METHODS, TO_LEVELS, HandoffEventKind, HandoffStatus
from backend.schemas import (
    InputSchema,
    OutputSchema,
    PageQuerySchema,
    Text,
    Timestamp,
    not_in_future,
    one_of,
    page_of,
)


class SummarySchema(InputSchema):
    moud = fields.String(required=True, validate=validate.OneOf(MOUD))
    last_dose_at = Timestamp(allow_none=True, validate=not_in_future)
    naloxone_given = fields.Boolean(metadata={
        "deprecated": True,
        "description": "Deprecated (1.12): ignored. The summary carries the episode's `flags.naloxone_given` when "
                       "the handoff is sent, derived from the naloxone log (`POST /episodes/{id}/naloxone`)."})
    risks = fields.String(allow_none=True, validate=validate.Length(max=2000))
    plan = fields.String(allow_none=True, validate=validate.Length(max=2000))
    goals = fields.String(allow_none=True, validate=validate.Length(max=2000))
    note = fields.String(allow_none=True, validate=validate.Length(max=2000))


class HandoffCreateSchema(InputSchema):
    id = fields.UUID(metadata={"description": "A client-generated id (a UUID made when the user saves): the same "
                                              "create again is a no-op answering the record (200); the same id "
                                              "with another request, 409."})
    episode_id = fields.UUID(required=True)
    to_level = fields.String(required=True, validate=one_of(TO_LEVELS))
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
    kind = fields.String(required=True, validate=one_of(kind for kind in HandoffEventKind
                                                        if kind != HandoffEventKind.TRANSITION))
    at = Timestamp(required=True)
    note = fields.String(allow_none=True, required=True)


class HandoffSummarySchema(OutputSchema):
    """The clinical summary as sent (fields that were not sent are absent)."""

    moud = fields.String(required=True, metadata={"description": "`none`, `buprenorphine`, `methadone`, `naltrexone`."})
    last_dose_at = fields.String(allow_none=True, metadata={"format": "date-time"})
    naloxone_given = fields.Boolean(required=True)
    risks = fields.String(allow_none=True)
    plan = fields.String(allow_none=True)
    goals = fields.String(allow_none=True)
    note = fields.String(allow_none=True)


class HandoffSchema(OutputSchema):
    id = fields.UUID(required=True)
    episode_id = fields.UUID(required=True)
    from_level = fields.String(required=True)
    to_level = fields.String(required=True)
    to_program_id = fields.UUID(allow_none=True, required=True)
    to_user_id = fields.UUID(allow_none=True, required=True)
    method = fields.String(required=True)
    summary = fields.Nested(HandoffSummarySchema, required=True)
    status = fields.String(required=True)
    accept_by = Timestamp(required=True)
    arrive_by = Timestamp(required=True)
    arrived_at = Timestamp(allow_none=True, required=True)
    overdue = fields.Method("_overdue", required=True, metadata={"type": "boolean"})
    events = fields.List(fields.Nested(HandoffEventSchema), attribute="transition_events", required=True,
                         metadata={"description": "The status changes (`by` is null when the system acted)."})
    escalations = fields.List(fields.Nested(EscalationSchema), attribute="escalation_events", required=True,
                              metadata={"description": "Missed deadlines, each escalated once."})
    created_at = Timestamp(required=True)

    def _overdue(self, handoff) -> bool:
        return handoff.overdue(utcnow())


class HandoffQuerySchema(PageQuerySchema):
    status = fields.String(validate=one_of(HandoffStatus))
    overdue = fields.Boolean()
    episode_id = fields.UUID()
    to_level = fields.String(validate=one_of(TO_LEVELS))


HandoffPageSchema = page_of(HandoffSchema, "HandoffPageSchema")
