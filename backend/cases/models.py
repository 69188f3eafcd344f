"""Patients, their episodes of care, and the coach's work on each episode.

An episode is the case: one per patient at a time (a partial unique index enforces it), with
the history of its levels of care, its lifecycle events, the coach's encounters (contacts and
attempts), follow-up tasks and appointments. Editable records carry a `version` that the ORM
checks on every UPDATE, so a stale edit can never overwrite a newer one (ETag / If-Match).
"""

from __future__ import annotations

import datetime as dt
import enum
import uuid

import sqlalchemy as sa
from sqlalchemy.ext.hybrid import hybrid_method, hybrid_property
from sqlalchemy.orm import Mapped, mapped_column, relationship

from backend.database import UUIDPrimaryKey, Versioned, enum_column, utcnow
from backend.extensions import db


class SmsStatus(enum.StrEnum):
    UNKNOWN = "unknown"
    OPTED_IN = "opted_in"
    OPTED_OUT = "opted_out"


class Level(enum.StrEnum):
    EMERGENCY_DEPARTMENT = "emergency_department"
    INPATIENT = "inpatient"
    TRANSITION_CLINIC = "transition_clinic"
    COMMUNITY_PROGRAM = "community_program"


#: Levels at which an ED nurse sees an episode (privacy.md).
HOSPITAL_LEVELS = (Level.EMERGENCY_DEPARTMENT, Level.INPATIENT)


class EpisodeStatus(enum.StrEnum):
    OPEN = "open"
    CLOSED = "closed"


class Patient(UUIDPrimaryKey, Versioned, db.Model):
    __tablename__ = "patients"
    __table_args__ = (sa.Index("ix_patients_names", "family_name", "given_name", "id"),
                      sa.Index("ix_patients_registered_by_id", "registered_by_id"))

    #: Hospital medical record number; unique when present.
    mrn: Mapped[str | None] = mapped_column(sa.String(64), unique=True)
    given_name: Mapped[str] = mapped_column(sa.String(100))
    family_name: Mapped[str] = mapped_column(sa.String(100))
    preferred_name: Mapped[str | None] = mapped_column(sa.String(100))
    birth_date: Mapped[dt.date]
    #: E.164, normalised with libphonenumber.
    phone: Mapped[str | None] = mapped_column(sa.String(20), index=True)
    #: IANA time zone; texts and quiet hours use it.
    timezone: Mapped[str] = mapped_column(sa.String(64))
    #: BCP 47 language tag.
    language: Mapped[str] = mapped_column(sa.String(35), default="en")
    sms_status: Mapped[SmsStatus] = mapped_column(
        enum_column(SmsStatus, "sms_status", length=40), default=SmsStatus.UNKNOWN)
    #: How the SMS status was last set: verbal, written or keyword.
    sms_status_method: Mapped[str | None] = mapped_column(sa.String(20))
    sms_status_at: Mapped[dt.datetime | None]
    #: Set when Twilio refused the number (21211 invalid, 21614 not a mobile); cleared when the
    #: phone changes. The caseload tells the coach.
    phone_invalid_at: Mapped[dt.datetime | None]
    phone_invalid_code: Mapped[int | None]
    #: Who registered the patient (an ED nurse keeps sight of patients they registered).
    registered_by_id: Mapped[uuid.UUID | None] = mapped_column(sa.ForeignKey("users.id"))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    @hybrid_property
    def first_name(self) -> str:
        """What the patient is called (texts greet them so): the preferred name, else the given name."""
        return self.preferred_name or self.given_name

    @first_name.inplace.expression
    @classmethod
    def _first_name_expression(cls) -> sa.ColumnElement[str]:
        return sa.func.coalesce(sa.func.nullif(cls.preferred_name, ""), cls.given_name)

    @hybrid_property
    def display_name(self) -> str:
        """How staff screens name the patient: the first name and the family name."""
        return f"{self.first_name} {self.family_name}"

    @display_name.inplace.expression
    @classmethod
    def _display_name_expression(cls) -> sa.ColumnElement[str]:
        return cls.first_name + " " + cls.family_name


class Disposition(enum.StrEnum):
    """Where the patient went at discharge (the ED quality measures exclude all but `home`)."""

    HOME = "home"
    AGAINST_MEDICAL_ADVICE = "against_medical_advice"
    ELOPED = "eloped"
    TRANSFERRED = "transferred"
    ADMITTED = "admitted"
    DECEASED = "deceased"
    OTHER = "other"
    #: The discharge did not say (a client older than API 1.12).
    UNKNOWN = "unknown"


class Episode(UUIDPrimaryKey, Versioned, db.Model):
    __tablename__ = "episodes"
    __table_args__ = (
        # At most one open episode per patient, enforced by the database (also under races).
        sa.Index("uq_episodes_one_open_per_patient", "patient_id", unique=True,
                 sqlite_where=sa.text("status = 'open'"), postgresql_where=sa.text("status = 'open'")),
        sa.Index("ix_episodes_coach_status", "coach_id", "status"),
        # The list's order, and the ED nurse's scope.
        sa.Index("ix_episodes_opened_at_id", "opened_at", "id"),
        sa.Index("ix_episodes_level_status", "level", "status"),
        sa.Index("ix_episodes_opened_by_id", "opened_by_id"),
        # The outcomes report's cohort: episodes discharged in a period.
        sa.Index("ix_episodes_discharged_at", "discharged_at"),
        # The review: its pass over the open episodes by coach, from the index alone; its lists,
        # open episodes by discharge and by opening (the unassigned), in the order they show.
        sa.Index("ix_episodes_status_coach", "status", "coach_id", "discharged_at", "id"),
        sa.Index("ix_episodes_status_discharged_at_id", "status", "discharged_at", "id"),
        sa.Index("ix_episodes_status_opened_at_id", "status", "opened_at", "id"),
    )

    patient_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("patients.id"), index=True)
    status: Mapped[EpisodeStatus] = mapped_column(
        enum_column(EpisodeStatus, "episode_status", length=40), default=EpisodeStatus.OPEN)
    #: Current level of care; changed only by handoffs (level_periods keeps the history).
    level: Mapped[Level] = mapped_column(enum_column(Level, "care_level", length=40))
    presenting_reason: Mapped[str] = mapped_column(sa.String(20))
    #: When the patient arrived at the ED or was admitted.
    arrived_at: Mapped[dt.datetime]
    opened_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    opened_by_id: Mapped[uuid.UUID | None] = mapped_column(sa.ForeignKey("users.id"))
    #: The primary coach (one at a time); None while unassigned.
    coach_id: Mapped[uuid.UUID | None] = mapped_column(sa.ForeignKey("users.id"))
    discharged_at: Mapped[dt.datetime | None]
    #: Where the patient went from the ED or ward (a Disposition); `unknown` when the discharge
    #: did not say (clients before API 1.12). NULL until discharged, and on episodes discharged
    #: before migration 0015 (shown as `unknown`: the column was added without rewriting them).
    disposition: Mapped[str | None] = mapped_column(sa.String(30))
    closed_at: Mapped[dt.datetime | None]
    close_reason: Mapped[str | None] = mapped_column(sa.String(30))
    close_note: Mapped[str | None] = mapped_column(sa.Text)
    naloxone_given: Mapped[bool] = mapped_column(default=False)
    #: Medication for opioid use disorder: none, buprenorphine, methadone, naltrexone.
    moud: Mapped[str] = mapped_column(sa.String(20), default="none")
    recent_overdose: Mapped[bool] = mapped_column(default=False)

    patient: Mapped[Patient] = relationship(lazy="joined", innerjoin=True)
    level_periods: Mapped[list[LevelPeriod]] = relationship(
        lazy="selectin", order_by="LevelPeriod.started_at", cascade="all, delete-orphan")

    @hybrid_property
    def is_open(self) -> bool:
        """The case is open: work is recorded on it, texts go out for it, its coach sees it."""
        return self.status == EpisodeStatus.OPEN

    @is_open.inplace.expression
    @classmethod
    def _is_open_expression(cls) -> sa.ColumnElement[bool]:
        return cls.status == EpisodeStatus.OPEN


class LevelPeriod(db.Model):
    """One stretch of an episode at one level of care (FHIR EpisodeOfCare.statusHistory)."""

    __tablename__ = "level_periods"

    id: Mapped[int] = mapped_column(primary_key=True)
    episode_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("episodes.id"), index=True)
    level: Mapped[Level] = mapped_column(enum_column(Level, "care_level", length=40))
    started_at: Mapped[dt.datetime]
    ended_at: Mapped[dt.datetime | None]


class EpisodeEvent(db.Model):
    """Append-only lifecycle of an episode (opened, discharged, coach assigned, closed…), for
    the timeline. (Migration 0012 is the one exception: it deleted the `level_changed` events,
    which repeated the level periods.)"""

    __tablename__ = "episode_events"

    id: Mapped[uuid.UUID] = mapped_column(sa.Uuid, primary_key=True, default=uuid.uuid4)
    episode_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("episodes.id"), index=True)
    #: opened, discharged, coach_assigned, flags_changed, closed
    kind: Mapped[str] = mapped_column(sa.String(30))
    at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    actor_id: Mapped[uuid.UUID | None] = mapped_column(sa.ForeignKey("users.id"))
    #: Ids and codes only (coach ids, reasons), never free text.
    data: Mapped[dict] = mapped_column(sa.JSON, default=dict)


class Encounter(db.Model):
    """A contact or an attempt to reach the patient (attempts matter as much as contacts)."""

    __tablename__ = "encounters"
    __table_args__ = (sa.Index("ix_encounters_episode_occurred", "episode_id", "occurred_at"),)

    #: May be generated by the phone, so a retried create is a no-op.
    id: Mapped[uuid.UUID] = mapped_column(sa.Uuid, primary_key=True, default=uuid.uuid4)
    episode_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("episodes.id"))
    author_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("users.id"))
    #: in_person, phone, video, sms, attempt
    kind: Mapped[str] = mapped_column(sa.String(20))
    #: reached, no_answer, left_message, wrong_number, unreachable
    outcome: Mapped[str] = mapped_column(sa.String(20))
    occurred_at: Mapped[dt.datetime]
    duration_minutes: Mapped[int | None]
    location: Mapped[str | None] = mapped_column(sa.String(200))
    note: Mapped[str | None] = mapped_column(sa.Text)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    #: The outcome of a contact (a coach reached the patient); attempts have the others.
    REACHED = "reached"

    @hybrid_property
    def reached(self) -> bool:
        """The coach reached the patient (what "contacted" means in the caseload and the measures)."""
        return self.outcome == Encounter.REACHED

    @reached.inplace.expression
    @classmethod
    def _reached_expression(cls) -> sa.ColumnElement[bool]:
        return cls.outcome == cls.REACHED


class EpisodeContact(db.Model):
    """When an open episode's patient was last reached: the newest `reached` encounter's time, one
    row per open episode reached at least once. Written only by the database (triggers on
    `encounters` and, to drop the row when the episode closes, on `episodes`: migration 0015),
    so every encounter counts however it was written; the caseload and the review read it
    instead of every open episode's encounters."""

    __tablename__ = "episode_contacts"
    # On SQLite the table is its primary key's b-tree: one lookup per episode, not two.
    __table_args__ = {"sqlite_with_rowid": False}

    episode_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("episodes.id"), primary_key=True)
    last_reached_at: Mapped[dt.datetime]


class TaskStatus(enum.StrEnum):
    OPEN = "open"
    DONE = "done"
    CANCELLED = "cancelled"


class Task(Versioned, db.Model):
    """A follow-up with a due time; a window start lets it be done early (and early is done)."""

    __tablename__ = "tasks"
    __table_args__ = (sa.Index("ix_tasks_episode_status_due", "episode_id", "status", "due_at"),
                      sa.Index("ix_tasks_assignee_status_due", "assignee_id", "status", "due_at"))

    id: Mapped[uuid.UUID] = mapped_column(sa.Uuid, primary_key=True, default=uuid.uuid4)
    episode_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("episodes.id"))
    title: Mapped[str] = mapped_column(sa.String(200))
    due_at: Mapped[dt.datetime]
    window_start: Mapped[dt.datetime | None]
    assignee_id: Mapped[uuid.UUID | None] = mapped_column(sa.ForeignKey("users.id"))
    status: Mapped[TaskStatus] = mapped_column(
        enum_column(TaskStatus, "task_status", length=40), default=TaskStatus.OPEN)
    completed_at: Mapped[dt.datetime | None]
    created_by_id: Mapped[uuid.UUID | None] = mapped_column(sa.ForeignKey("users.id"))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    @hybrid_method
    def overdue(self, now: dt.datetime) -> bool:
        """Still open past its due time."""
        return self.status == TaskStatus.OPEN and self.due_at < now

    @overdue.inplace.expression
    @classmethod
    def _overdue_expression(cls, now: dt.datetime) -> sa.ColumnElement[bool]:
        return sa.and_(cls.status == TaskStatus.OPEN, cls.due_at < now)


class AppointmentKind(enum.StrEnum):
    TRANSITION_CLINIC = "transition_clinic"
    PROGRAM_INTAKE = "program_intake"
    OTHER = "other"


class AppointmentStatus(enum.StrEnum):
    SCHEDULED = "scheduled"
    ATTENDED = "attended"
    MISSED = "missed"
    CANCELLED = "cancelled"


class Appointment(Versioned, db.Model):
    __tablename__ = "appointments"
    __table_args__ = (sa.Index("ix_appointments_episode_status_starts", "episode_id", "status", "starts_at"),)

    id: Mapped[uuid.UUID] = mapped_column(sa.Uuid, primary_key=True, default=uuid.uuid4)
    episode_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("episodes.id"))
    #: An AppointmentKind (the migrations made a plain string column).
    kind: Mapped[str] = mapped_column(sa.String(30))
    starts_at: Mapped[dt.datetime]
    #: A community program from the directory (`backend.programs`).
    program_id: Mapped[uuid.UUID | None] = mapped_column(sa.Uuid)
    location: Mapped[str | None] = mapped_column(sa.String(200))
    status: Mapped[AppointmentStatus] = mapped_column(
        enum_column(AppointmentStatus, "appointment_status", length=40), default=AppointmentStatus.SCHEDULED)
    status_changed_at: Mapped[dt.datetime | None]
    created_by_id: Mapped[uuid.UUID | None] = mapped_column(sa.ForeignKey("users.id"))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
