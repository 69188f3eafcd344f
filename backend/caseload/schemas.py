"""Response bodies of the caseload, the clinic's review and the episode timeline."""

from __future__ import annotations

from marshmallow import fields, validate

from backend.schemas import InputSchema, OutputSchema, Timestamp, page_of


class TimelineItemSchema(OutputSchema):
    kind = fields.String(required=True, metadata={"description": "What happened (see the endpoint's description)."})
    at = Timestamp(required=True)
    record_id = fields.UUID(allow_none=True, required=True,
                            metadata={"description": "The encounter, task, appointment or event."})
    detail = fields.Dict(required=True, metadata={"description": "Codes and times of the record (no notes)."})


TimelinePageSchema = page_of(TimelineItemSchema, "TimelinePageSchema")


class CaseloadQuerySchema(InputSchema):
    """The caseload comes whole, in one page: it is ordered by urgency, which changes by the
    minute, so no page boundary would hold between two requests (and a coach's open episodes are
    tens, not thousands). Its `next_cursor` is therefore always null; `cursor` is accepted so
    that a generic list client may send what it was given, and empty means the first page."""

    coach_id = fields.UUID(metadata={"description": "Whose caseload (clinic staff must name a coach)."})
    cursor = fields.String(validate=validate.Equal("", error="The caseload is one page: next_cursor is always "
                                                            "null, and there is no other page."),
                           metadata={"description": "Always empty or absent: the caseload is one page "
                                                    "(`next_cursor` is always null)."})


class OpenHandoffSchema(OutputSchema):
    id = fields.UUID(required=True)
    to_level = fields.String(required=True, metadata={"description": "`transition_clinic` or `community_program`."})
    status = fields.String(required=True, metadata={"description": "`sent` or `accepted`."})
    accept_by = fields.String(required=True, metadata={"format": "date-time"})
    arrive_by = fields.String(required=True, metadata={"format": "date-time"})
    overdue = fields.Boolean(required=True)


class CaseloadEntrySchema(OutputSchema):
    episode_id = fields.UUID(required=True)
    patient_id = fields.UUID(required=True)
    patient_display_name = fields.String(required=True)
    level = fields.String(required=True)
    priority_reasons = fields.List(fields.String(), required=True, metadata={
        "description": "Most urgent first: back_in_ed, handoff_overdue, moud_supply_ending, overdue_task, "
                       "not_contacted_since_discharge, missed_appointment_not_followed_up, phone_invalid, "
                       "unread_reply, no_contact_7_days."})
    last_contact_at = Timestamp(allow_none=True, required=True, metadata={"description": "Last time reached."})
    next_task_due_at = Timestamp(allow_none=True, required=True)
    overdue_tasks = fields.Integer(required=True)
    next_appointment_at = Timestamp(allow_none=True, required=True)
    moud_covered_until = fields.Date(allow_none=True, required=True, metadata={
        "description": "The last date the latest medication supply covers (the patient's time zone); null "
                       "without a supply."})
    unread_messages = fields.Integer(required=True, metadata={"description": "Unread text replies."})
    phone_invalid = fields.Boolean(required=True, metadata={
        "description": "Texting failed as an invalid or non-mobile number; find a working number."})
    open_handoff = fields.Nested(OpenHandoffSchema, allow_none=True, required=True, metadata={
        "description": "The open handoff, if any (the newest if several)."})
    discharged_at = Timestamp(allow_none=True, required=True)
    opened_at = Timestamp(required=True)


CaseloadSchema = page_of(CaseloadEntrySchema, "CaseloadSchema")


class CoachLoadSchema(OutputSchema):
    coach_id = fields.UUID(required=True)
    coach_display_name = fields.String(required=True)
    active = fields.Integer(required=True, metadata={"description": "Open episodes."})
    overdue_tasks = fields.Integer(required=True)
    not_contacted_7d = fields.Integer(required=True, metadata={"description": "Open episodes not reached in 7 days."})
    handoffs_overdue = fields.Integer(required=True)
    unread = fields.Integer(required=True)


class EpisodeBriefSchema(OutputSchema):
    episode_id = fields.UUID(required=True)
    patient_id = fields.UUID(required=True)
    patient_display_name = fields.String(required=True)
    coach_id = fields.UUID(allow_none=True, required=True)
    level = fields.String(required=True)
    opened_at = Timestamp(required=True)
    discharged_at = Timestamp(allow_none=True, required=True)


class EpisodeListSchema(OutputSchema):
    count = fields.Integer(required=True, metadata={"description": "How many in all (items holds up to 200)."})
    items = fields.List(fields.Nested(EpisodeBriefSchema), required=True)


class AtRiskSchema(OutputSchema):
    not_contacted_24h_after_discharge = fields.Nested(EpisodeListSchema, required=True)
    no_clinic_visit_72h = fields.Nested(EpisodeListSchema, required=True)
    moud_supply_ending = fields.Nested(EpisodeListSchema, required=True, metadata={
        "description": "The latest medication supply ends within 48 h (or has ended) with no visit booked to "
                       "continue it; the supply ending soonest first."})
    back_in_ed = fields.Nested(EpisodeListSchema, required=True, metadata={
        "description": "The hospital's ADT feed registered the patient in the ED (or admitted them) again after a "
                       "discharge, and nobody has reached them since; the earliest return first."})


class ReviewTextsSchema(OutputSchema):
    fell_back_to_english_30d = fields.Integer(required=True, metadata={
        "description": "Automatic texts sent in the last 30 days in English because none existed in the "
                       "patient's language: a template to write."})


class PendingAccessSchema(OutputSchema):
    user_id = fields.UUID(required=True)
    username = fields.String(required=True)
    display_name = fields.String(required=True)
    role = fields.String(required=True)
    granted_by_id = fields.UUID(allow_none=True, required=True)
    granted_at = Timestamp(allow_none=True, required=True)


class CaseloadReviewSchema(OutputSchema):
    coaches = fields.List(fields.Nested(CoachLoadSchema), required=True)
    unassigned = fields.Nested(EpisodeListSchema, required=True)
    at_risk = fields.Nested(AtRiskSchema, required=True)
    texts = fields.Nested(ReviewTextsSchema, required=True)
    pending_access = fields.List(fields.Nested(PendingAccessSchema), required=True, metadata={
        "description": "Clinical roles an admin gave, waiting for a clinic-staff member's approval."})
