"""Request and response bodies of patients, episodes, encounters, tasks and appointments."""

from __future__ import annotations

import datetime as dt

from marshmallow import ValidationError, fields, missing, validate, validates_schema

from backend.cases.models import (
    HOSPITAL_LEVELS,
    AppointmentKind,
    AppointmentStatus,
    Disposition,
    Encounter,
    EpisodeStatus,
    Level,
    SmsStatus,
    TaskStatus,
)
from backend.database import utcnow
from backend.schemas import (
    InputSchema,
    LanguageTag,
    OutputSchema,
    PageQuerySchema,
    PhoneNumber,
    Text,
    Timestamp,
    TimeZone,
    not_in_future,
    one_of,
    page_of,
    text,
)

PRESENTING_REASONS = ["overdose", "withdrawal", "other"]
MOUD = ["none", "buprenorphine", "methadone", "naltrexone"]
CLOSE_REASONS = ["engaged_in_care", "lost_to_follow_up", "declined_services", "transferred", "moved_away",
                 "incarcerated", "deceased", "other"]
ENCOUNTER_KINDS = ["in_person", "phone", "video", "sms", "attempt"]
OUTCOMES = [Encounter.REACHED, "no_answer", "left_message", "wrong_number", "unreachable"]


def _past_date(day: dt.date) -> None:
    if day > dt.date.today():
        raise ValidationError("Must not be in the future.")
    if day < dt.date(1900, 1, 1):
        raise ValidationError("Must be after 1900-01-01.")


# --- patients ------------------------------------------------------------------------------

class PatientFieldsSchema(InputSchema):
    mrn = Text(allow_none=True, validate=validate.Length(min=1, max=64),
               metadata={"description": "Medical record number; unique when present."})
    given_name = text(100)
    family_name = text(100)
    preferred_name = Text(allow_none=True, validate=validate.Length(min=1, max=100))
    birth_date = fields.Date(validate=_past_date)
    phone = PhoneNumber(allow_none=True, metadata={"description": "Any common format; stored as E.164."})
    timezone = TimeZone(metadata={"description": "IANA name; defaults to the program's (DEFAULT_TIMEZONE)."})
    language = LanguageTag(
                             metadata={"description": "BCP 47 tag; default `en`."})


class PatientCreateSchema(PatientFieldsSchema):
    given_name = text(100, required=True)
    family_name = text(100, required=True)
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
    sms_status = fields.String(required=True, validate=one_of(SmsStatus))
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
    status = fields.String(required=True, validate=one_of((SmsStatus.OPTED_IN, SmsStatus.OPTED_OUT)))
    method = fields.String(required=True, validate=validate.OneOf(["verbal", "written", "keyword"]))


# --- episodes ------------------------------------------------------------------------------

class FlagsSchema(InputSchema):
    naloxone_given = fields.Boolean(metadata={
        "description": "Derived from the naloxone log (1.12): accepted when it agrees, else 422; log a kit instead."})
    moud = fields.String(validate=validate.OneOf(MOUD), metadata={
        "description": "Derived from the latest medication supply (1.12): accepted when it agrees, else 422; log a "
                       "supply instead."})
    recent_overdose = fields.Boolean()


class EpisodeCreateSchema(InputSchema):
    patient_id = fields.UUID(required=True)
    level = fields.String(required=True, validate=one_of(HOSPITAL_LEVELS))
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
    disposition = fields.String(validate=one_of(d for d in Disposition if d != Disposition.UNKNOWN), metadata={
        "description": "Where the patient went; none sent is recorded as `unknown` (clients before 1.12)."})


class CoachAssignmentSchema(InputSchema):
    coach_id = fields.UUID(required=True)


class CloseSchema(InputSchema):
    reason = fields.String(required=True, validate=validate.OneOf(CLOSE_REASONS))
    note = fields.String(allow_none=True, validate=validate.Length(max=2000))


class LevelPeriodSchema(OutputSchema):
    level = fields.String(required=True)
    started_at = Timestamp(required=True)
    ended_at = Timestamp(allow_none=True, required=True)


class EpisodeFlagsSchema(OutputSchema):
    naloxone_given = fields.Boolean(required=True)
    moud = fields.String(required=True, metadata={"description": "`none`, `buprenorphine`, `methadone`, `naltrexone`."})
    recent_overdose = fields.Boolean(required=True)


class _OwnFields(fields.Nested):
    """A nested object drawn from the record's own attributes (an episode's flags are columns of
    the episode), so that the spec describes its fields instead of a free-form object."""

    def get_value(self, obj, attr, accessor=None, default=missing):
        return obj


class EpisodeSchema(OutputSchema):
    id = fields.UUID(required=True)
    patient_id = fields.UUID(required=True)
    patient_display_name = fields.Function(lambda e: e.patient.display_name, required=True, metadata={"type": "string"})
    status = fields.String(required=True)
    level = fields.String(required=True)
    level_history = fields.List(fields.Nested(LevelPeriodSchema), attribute="level_periods", required=True)
    presenting_reason = fields.String(required=True)
    coach_id = fields.UUID(allow_none=True, required=True)
    arrived_at = Timestamp(required=True)
    opened_at = Timestamp(required=True)
    discharged_at = Timestamp(allow_none=True, required=True)
    disposition = fields.Function(
        lambda e: e.disposition or (Disposition.UNKNOWN.value if e.discharged_at is not None else None),
        required=True, allow_none=True, metadata={
            "type": "string", "enum": [*(str(d) for d in Disposition), None],
            "description": "Where the patient went at discharge (`home`, `against_medical_advice`, `eloped`, "
                           "`transferred`, `admitted`, `deceased`, `other`, or `unknown` when the discharge did "
                           "not say); null until discharged."})
    closed_at = Timestamp(allow_none=True, required=True)
    close_reason = fields.String(allow_none=True, required=True)
    close_note = fields.String(allow_none=True, required=True)
    flags = _OwnFields(EpisodeFlagsSchema, required=True)
    updated_at = Timestamp(required=True)
    version = fields.Integer(required=True)


class EpisodeQuerySchema(PageQuerySchema):
    status = fields.String(validate=one_of(EpisodeStatus))
    level = fields.String(validate=one_of(Level))
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
        if data.get("kind") == "attempt" and data.get("outcome", Encounter.REACHED) == Encounter.REACHED:
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
    title = text(200, required=True)
    due_at = Timestamp(required=True)
    window_start = Timestamp(allow_none=True, metadata={"description": "From when it may be done (≤ due_at)."})
    assignee_id = fields.UUID(allow_none=True, metadata={"description": "Default: the episode's coach."})


class TaskUpdateSchema(InputSchema):
    title = text(200)
    due_at = Timestamp()
    window_start = Timestamp(allow_none=True)
    assignee_id = fields.UUID(allow_none=True)
    status = fields.String(validate=one_of(TaskStatus))


class TaskSchema(OutputSchema):
    id = fields.UUID(required=True)
    episode_id = fields.UUID(required=True)
    title = fields.String(required=True)
    due_at = Timestamp(required=True)
    window_start = Timestamp(allow_none=True, required=True)
    assignee_id = fields.UUID(allow_none=True, required=True)
    status = fields.String(required=True)
    completed_at = Timestamp(allow_none=True, required=True)
    overdue = fields.Function(lambda task: task.overdue(utcnow()), required=True, metadata={"type": "boolean"})
    created_at = Timestamp(required=True)
    updated_at = Timestamp(required=True)
    version = fields.Integer(required=True)


class TaskQuerySchema(PageQuerySchema):
    assignee = fields.String(metadata={"description": "`me` or a user id."})
    status = fields.String(validate=one_of(TaskStatus))


class AppointmentCreateSchema(InputSchema):
    id = fields.UUID(metadata={"description": "Client-generated: a retried create is a no-op."})
    kind = fields.String(required=True, validate=one_of(AppointmentKind))
    starts_at = Timestamp(required=True)
    program_id = fields.UUID(allow_none=True)
    location = fields.String(allow_none=True, validate=validate.Length(max=200))


class AppointmentUpdateSchema(InputSchema):
    starts_at = Timestamp()
    program_id = fields.UUID(allow_none=True)
    location = fields.String(allow_none=True, validate=validate.Length(max=200))
    status = fields.String(validate=one_of(AppointmentStatus))


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
