"""Request and response bodies of patients, episodes, encounters, tasks and appointments."""

from __future__ import annotations

import datetime as dt
import re
import zoneinfo

import phonenumbers
from marshmallow import ValidationError, fields, validate, validates_schema

from backend.database import utcnow
from backend.schemas import InputSchema, OutputSchema, PageQuerySchema, Timestamp, page_of

#: Phones' clocks drift: "in the future" means more than this ahead of the server.
CLOCK_SKEW = dt.timedelta(minutes=5)
PHONE_REGION = "US"

LEVELS = ["emergency_department", "inpatient", "transition_clinic", "community_program"]
PRESENTING_REASONS = ["overdose", "withdrawal", "other"]
MOUD = ["none", "buprenorphine", "methadone", "naltrexone"]
CLOSE_REASONS = ["engaged_in_care", "lost_to_follow_up", "declined_services", "transferred", "moved_away",
                 "incarcerated", "deceased", "other"]
ENCOUNTER_KINDS = ["in_person", "phone", "video", "sms", "attempt"]
OUTCOMES = ["reached", "no_answer", "left_message", "wrong_number", "unreachable"]
APPOINTMENT_KINDS = ["transition_clinic", "program_intake", "other"]
_LANGUAGE = re.compile(r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*$")


class Text(fields.String):
    """Text with surrounding whitespace trimmed; blank is not a value."""

    def _deserialize(self, value, attr, data, **kwargs):
        text = super()._deserialize(value, attr, data, **kwargs).strip()
        if not text:
            raise ValidationError("Must not be blank.")
        return text


def _text(max_length: int, **kwargs) -> fields.String:
    return Text(validate=validate.Length(min=1, max=max_length), **kwargs)


class PhoneNumber(fields.String):
    """A phone number, normalised to E.164 (US numbers may omit +1)."""

    def _deserialize(self, value, attr, data, **kwargs):
        raw = super()._deserialize(value, attr, data, **kwargs)
        try:
            number = phonenumbers.parse(raw, PHONE_REGION)
        except phonenumbers.NumberParseException as exc:
            raise ValidationError("Not a phone number.") from exc
        if not phonenumbers.is_valid_number(number):
            raise ValidationError("Not a valid phone number.")
        return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


class TimeZone(fields.String):
    """An IANA time zone name such as America/New_York."""

    _known: frozenset[str] | None = None

    def _deserialize(self, value, attr, data, **kwargs):
        name = super()._deserialize(value, attr, data, **kwargs)
        if TimeZone._known is None:
            TimeZone._known = frozenset(zoneinfo.available_timezones())
        if name not in TimeZone._known:
            raise ValidationError("Not an IANA time zone (e.g. America/New_York).")
        return name


#: Nothing in this program happened before it existed: earlier times are typing mistakes.
EARLIEST = dt.datetime(2000, 1, 1, tzinfo=dt.timezone.utc)


def not_in_future(moment: dt.datetime) -> None:
    if moment > utcnow() + CLOCK_SKEW:
        raise ValidationError("Must not be in the future.")
    if moment < EARLIEST:
        raise ValidationError("Must be after 2000-01-01.")


def _past_date(day: dt.date) -> None:
    if day > dt.date.today():
        raise ValidationError("Must not be in the future.")
    if day < dt.date(1900, 1, 1):
        raise ValidationError("Must be after 1900-01-01.")


# --- patients ------------------------------------------------------------------------------

class PatientFieldsSchema(InputSchema):
    mrn = Text(allow_none=True, validate=validate.Length(min=1, max=64),
               metadata={"description": "Medical record number; unique when present."})
    given_name = _text(100)
    family_name = _text(100)
    preferred_name = Text(allow_none=True, validate=validate.Length(min=1, max=100))
    birth_date = fields.Date(validate=_past_date)
    phone = PhoneNumber(allow_none=True, metadata={"description": "Any common format; stored as E.164."})
    timezone = TimeZone(metadata={"description": "IANA name; defaults to the program's (DEFAULT_TIMEZONE)."})
    language = fields.String(validate=validate.Regexp(_LANGUAGE, error="A BCP 47 tag such as en or es-MX."),
                             metadata={"description": "BCP 47 tag; default `en`."})


class PatientCreateSchema(PatientFieldsSchema):
    given_name = _text(100, required=True)
    family_name = _text(100, required=True)
    birth_date = fields.Date(required=True, validate=_past_date)


class PatientUpdateSchema(PatientFieldsSchema):
    pass


class PatientSchema(OutputSchema):
    id = fields.UUID(required=True)
    mrn = fields.String(allow_none=True, required=True)
    given_name = fields.String(required=True)
    family_name = fields.String(required=True)
    preferred_name = fields.String(allow_none=True, required=True)
    display_name = fields.String(required=True, metadata={"description": "Preferred (or given) and family name."})
    birth_date = fields.Date(required=True)
    phone = fields.String(allow_none=True, required=True)
    phone_invalid_at = Timestamp(allow_none=True, required=True, metadata={
        "description": "When texting the phone failed as an invalid or non-mobile number; cleared by a new phone."})
    timezone = fields.String(required=True)
    language = fields.String(required=True)
    sms_status = fields.String(required=True, validate=validate.OneOf(["unknown", "opted_in", "opted_out"]))
    sms_status_method = fields.String(allow_none=True, required=True)
    sms_status_at = Timestamp(allow_none=True, required=True)
    created_at = Timestamp(required=True)
    updated_at = Timestamp(required=True)
    version = fields.Integer(required=True, metadata={"description": "The ETag's value."})


class PatientQuerySchema(PageQuerySchema):
    mrn = fields.String(validate=validate.Length(min=1, max=64), metadata={"description": "Exact MRN."})
    q = fields.String(validate=validate.Length(min=2, max=100),
                      metadata={"description": "Name search (clinic staff)."})


class SmsConsentSchema(InputSchema):
    status = fields.String(required=True, validate=validate.OneOf(["opted_in", "opted_out"]))
    method = fields.String(required=True, validate=validate.OneOf(["verbal", "written", "keyword"]))


# --- episodes ------------------------------------------------------------------------------

class FlagsSchema(InputSchema):
    naloxone_given = fields.Boolean()
    moud = fields.String(validate=validate.OneOf(MOUD))
    recent_overdose = fields.Boolean()


class EpisodeCreateSchema(InputSchema):
    patient_id = fields.UUID(required=True)
    level = fields.String(required=True, validate=validate.OneOf(["emergency_department", "inpatient"]))
    presenting_reason = fields.String(required=True, validate=validate.OneOf(PRESENTING_REASONS))
    arrived_at = Timestamp(required=True, validate=not_in_future)
    coach_id = fields.UUID(allow_none=True)
    flags = fields.Nested(FlagsSchema)


class EpisodeUpdateSchema(InputSchema):
    presenting_reason = fields.String(validate=validate.OneOf(PRESENTING_REASONS))
    arrived_at = Timestamp(validate=not_in_future)
    flags = fields.Nested(FlagsSchema)


class DischargeSchema(InputSchema):
    discharged_at = Timestamp(required=True, validate=not_in_future)


class CoachAssignmentSchema(InputSchema):
    coach_id = fields.UUID(required=True)


class CloseSchema(InputSchema):
    reason = fields.String(required=True, validate=validate.OneOf(CLOSE_REASONS))
    note = fields.String(allow_none=True, validate=validate.Length(max=2000))


class LevelPeriodSchema(OutputSchema):
    level = fields.String(required=True)
    started_at = Timestamp(required=True)
    ended_at = Timestamp(allow_none=True, required=True)


class FlagsOutSchema(OutputSchema):
    naloxone_given = fields.Boolean(required=True)
    moud = fields.String(required=True)
    recent_overdose = fields.Boolean(required=True)


class EpisodeSchema(OutputSchema):
    id = fields.UUID(required=True)
    patient_id = fields.UUID(required=True)
    patient_display_name = fields.Function(lambda e: e.patient.display_name, required=True)
    status = fields.String(required=True)
    level = fields.String(required=True)
    level_history = fields.List(fields.Nested(LevelPeriodSchema), attribute="level_periods", required=True)
    presenting_reason = fields.String(required=True)
    coach_id = fields.UUID(allow_none=True, required=True)
    arrived_at = Timestamp(required=True)
    opened_at = Timestamp(required=True)
    discharged_at = Timestamp(allow_none=True, required=True)
    closed_at = Timestamp(allow_none=True, required=True)
    close_reason = fields.String(allow_none=True, required=True)
    close_note = fields.String(allow_none=True, required=True)
    flags = fields.Function(lambda e: {"naloxone_given": e.naloxone_given, "moud": e.moud,
                                       "recent_overdose": e.recent_overdose}, required=True,
                            metadata={"description": "`{naloxone_given, moud, recent_overdose}`"})
    updated_at = Timestamp(required=True)
    version = fields.Integer(required=True)


class EpisodeQuerySchema(PageQuerySchema):
    status = fields.String(validate=validate.OneOf(["open", "closed"]))
    level = fields.String(validate=validate.OneOf(LEVELS))
    coach_id = fields.UUID()
    unassigned = fields.Boolean()


# --- encounters, tasks, appointments -------------------------------------------------------

class EncounterCreateSchema(InputSchema):
    id = fields.UUID(metadata={"description": "Client-generated: a retried create is a no-op."})
    kind = fields.String(required=True, validate=validate.OneOf(ENCOUNTER_KINDS))
    outcome = fields.String(validate=validate.OneOf(OUTCOMES),
                            metadata={"description": "Required for attempts; contacts default to `reached`."})
    occurred_at = Timestamp(required=True, validate=not_in_future)
    duration_minutes = fields.Integer(allow_none=True, strict=True, validate=validate.Range(min=0, max=24 * 60))
    location = fields.String(allow_none=True, validate=validate.Length(max=200))
    note = fields.String(allow_none=True, validate=validate.Length(max=4000))

    @validates_schema
    def _outcome_fits_kind(self, data, **kwargs):
        if data.get("kind") == "attempt" and data.get("outcome", "reached") == "reached":
            raise ValidationError({"outcome": ["An attempt needs its outcome (no_answer, left_message, "
                                               "wrong_number or unreachable)."]})


class EncounterSchema(OutputSchema):
    id = fields.UUID(required=True)
    episode_id = fields.UUID(required=True)
    author_id = fields.UUID(required=True)
    kind = fields.String(required=True)
    outcome = fields.String(required=True)
    occurred_at = Timestamp(required=True)
    duration_minutes = fields.Integer(allow_none=True, required=True)
    location = fields.String(allow_none=True, required=True)
    note = fields.String(allow_none=True, required=True)
    created_at = Timestamp(required=True)


class TaskCreateSchema(InputSchema):
    id = fields.UUID(metadata={"description": "Client-generated: a retried create is a no-op."})
    title = _text(200, required=True)
    due_at = Timestamp(required=True)
    window_start = Timestamp(allow_none=True, metadata={"description": "From when it may be done (≤ due_at)."})
    assignee_id = fields.UUID(allow_none=True, metadata={"description": "Default: the episode's coach."})


class TaskUpdateSchema(InputSchema):
    title = _text(200)
    due_at = Timestamp()
    window_start = Timestamp(allow_none=True)
    assignee_id = fields.UUID(allow_none=True)
    status = fields.String(validate=validate.OneOf(["open", "done", "cancelled"]))


class TaskSchema(OutputSchema):
    id = fields.UUID(required=True)
    episode_id = fields.UUID(required=True)
    title = fields.String(required=True)
    due_at = Timestamp(required=True)
    window_start = Timestamp(allow_none=True, required=True)
    assignee_id = fields.UUID(allow_none=True, required=True)
    status = fields.String(required=True)
    completed_at = Timestamp(allow_none=True, required=True)
    overdue = fields.Function(lambda t: t.status == "open" and t.due_at < utcnow(), required=True)
    created_at = Timestamp(required=True)
    updated_at = Timestamp(required=True)
    version = fields.Integer(required=True)


class TaskQuerySchema(PageQuerySchema):
    assignee = fields.String(metadata={"description": "`me` or a user id."})
    status = fields.String(validate=validate.OneOf(["open", "done", "cancelled"]))


class AppointmentCreateSchema(InputSchema):
    id = fields.UUID(metadata={"description": "Client-generated: a retried create is a no-op."})
    kind = fields.String(required=True, validate=validate.OneOf(APPOINTMENT_KINDS))
    starts_at = Timestamp(required=True)
    program_id = fields.UUID(allow_none=True)
    location = fields.String(allow_none=True, validate=validate.Length(max=200))


class AppointmentUpdateSchema(InputSchema):
    starts_at = Timestamp()
    program_id = fields.UUID(allow_none=True)
    location = fields.String(allow_none=True, validate=validate.Length(max=200))
    status = fields.String(validate=validate.OneOf(["scheduled", "attended", "missed", "cancelled"]))


class AppointmentSchema(OutputSchema):
    id = fields.UUID(required=True)
    episode_id = fields.UUID(required=True)
    kind = fields.String(required=True)
    starts_at = Timestamp(required=True)
    program_id = fields.UUID(allow_none=True, required=True)
    location = fields.String(allow_none=True, required=True)
    status = fields.String(required=True)
    status_changed_at = Timestamp(allow_none=True, required=True)
    created_at = Timestamp(required=True)
    updated_at = Timestamp(required=True)
    version = fields.Integer(required=True)


PatientPageSchema = page_of(PatientSchema, "PatientPageSchema")
EpisodePageSchema = page_of(EpisodeSchema, "EpisodePageSchema")
EncounterPageSchema = page_of(EncounterSchema, "EncounterPageSchema")
TaskPageSchema = page_of(TaskSchema, "TaskPageSchema")
AppointmentPageSchema = page_of(AppointmentSchema, "AppointmentPageSchema")


class TimelineItemSchema(OutputSchema):
    kind = fields.String(required=True, metadata={"description": "What happened (see the endpoint's description)."})
    at = Timestamp(required=True)
    record_id = fields.UUID(allow_none=True, required=True,
                            metadata={"description": "The encounter, task, appointment or event."})
    detail = fields.Dict(required=True, metadata={"description": "Codes and times of the record (no notes)."})


TimelinePageSchema = page_of(TimelineItemSchema, "TimelinePageSchema")


class CaseloadQuerySchema(InputSchema):
    coach_id = fields.UUID(metadata={"description": "Whose caseload (clinic staff must name a coach)."})


class CaseloadEntrySchema(OutputSchema):
    episode_id = fields.UUID(required=True)
    patient_id = fields.UUID(required=True)
    patient_display_name = fields.String(required=True)
    level = fields.String(required=True)
    priority_reasons = fields.List(fields.String(), required=True, metadata={
        "description": "Most urgent first: handoff_overdue, overdue_task, not_contacted_since_discharge, "
                       "missed_appointment_not_followed_up, phone_invalid, unread_reply, no_contact_7_days."})
    last_contact_at = Timestamp(allow_none=True, required=True, metadata={"description": "Last time reached."})
    next_task_due_at = Timestamp(allow_none=True, required=True)
    overdue_tasks = fields.Integer(required=True)
    next_appointment_at = Timestamp(allow_none=True, required=True)
    unread_messages = fields.Integer(required=True, metadata={"description": "Unread text replies."})
    phone_invalid = fields.Boolean(required=True, metadata={
        "description": "Texting failed as an invalid or non-mobile number; find a working number."})
    open_handoff = fields.Dict(allow_none=True, required=True, metadata={
        "description": "`{id, to_level, status, accept_by, arrive_by, overdue}` of the open handoff, if any."})
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


class CaseloadReviewSchema(OutputSchema):
    coaches = fields.List(fields.Nested(CoachLoadSchema), required=True)
    unassigned = fields.Nested(EpisodeListSchema, required=True)
    at_risk = fields.Nested(AtRiskSchema, required=True)
