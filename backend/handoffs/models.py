"""Community programs, handoffs between levels of care, and 42 CFR Part 2 consents.

A handoff is a closed-loop referral with an append-only event log (corrections are new
events). A deadline escalation row exists once per (handoff, deadline): its unique key is what
makes the deadline job create exactly one follow-up task however often, or in however many
processes, it runs. Consents and disclosures are append-only records too: a revocation is a
new row, never an edit.
"""

from __future__ import annotations

import datetime as dt
import uuid

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from backend.cases.models import Versioned
from backend.database import UUIDPrimaryKey, utcnow
from backend.extensions import db

SERVICES = ("otp", "obot", "iop", "residential", "withdrawal_management", "recovery_center", "harm_reduction",
            "recovery_housing", "other")
METHODS = ("warm_in_person", "warm_phone", "warm_video", "referral")
OPEN_STATUSES = ("sent", "accepted")


class Program(UUIDPrimaryKey, Versioned, db.Model):
    """A community program in the directory."""

    __tablename__ = "programs"

    name: Mapped[str] = mapped_column(sa.String(200))
    #: otp, obot, iop, residential, withdrawal_management, recovery_center, harm_reduction, …
    service: Mapped[str] = mapped_column(sa.String(30), index=True)
    asam_level: Mapped[str | None] = mapped_column(sa.String(10))
    #: e.g. "3rd" or "4th": the ASAM Criteria edition the level refers to.
    asam_edition: Mapped[str | None] = mapped_column(sa.String(10))
    phone: Mapped[str | None] = mapped_column(sa.String(20))
    address: Mapped[str | None] = mapped_column(sa.String(300))
    accepting_patients: Mapped[bool] = mapped_column(default=True)
    #: Outside the hospital's SUD program: a Part 2 consent is needed to hand off to it.
    external: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class Handoff(UUIDPrimaryKey, Versioned, db.Model):
    __tablename__ = "handoffs"
    __table_args__ = (sa.Index("ix_handoffs_episode_status", "episode_id", "status"),
                      sa.Index("ix_handoffs_status_deadlines", "status", "accept_by", "arrive_by"))

    episode_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("episodes.id"))
    from_level: Mapped[str] = mapped_column(sa.String(30))
    #: transition_clinic or community_program
    to_level: Mapped[str] = mapped_column(sa.String(30))
    to_program_id: Mapped[uuid.UUID | None] = mapped_column(sa.ForeignKey("programs.id"))
    to_user_id: Mapped[uuid.UUID | None] = mapped_column(sa.ForeignKey("users.id"))
    #: warm_in_person, warm_phone, warm_video, referral
    method: Mapped[str] = mapped_column(sa.String(20))
    #: {moud, last_dose_at, naloxone_given, risks, plan, goals, note}: what the receiver gets.
    summary: Mapped[dict] = mapped_column(sa.JSON)
    #: sent, accepted, declined, completed, no_show, cancelled
    status: Mapped[str] = mapped_column(sa.String(20), default="sent")
    accept_by: Mapped[dt.datetime]
    arrive_by: Mapped[dt.datetime]
    arrived_at: Mapped[dt.datetime | None]
    created_by_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("users.id"))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    events: Mapped[list[HandoffEvent]] = relationship(lazy="selectin", order_by="HandoffEvent.seq")

    @property
    def transition_events(self) -> list[HandoffEvent]:
        return [e for e in self.events if e.kind == "transition"]

    @property
    def escalation_events(self) -> list[HandoffEvent]:
        return [e for e in self.events if e.kind != "transition"]


class HandoffEvent(db.Model):
    """One step of a handoff: who, when, to which status, and why."""

    __tablename__ = "handoff_events"
    __table_args__ = (sa.UniqueConstraint("handoff_id", "seq"),)

    id: Mapped[uuid.UUID] = mapped_column(sa.Uuid, primary_key=True, default=uuid.uuid4)
    handoff_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("handoffs.id"), index=True)
    #: Order within the handoff (timestamps can tie).
    seq: Mapped[int]
    status: Mapped[str] = mapped_column(sa.String(20))
    at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    #: None when the system acted (deadline job, episode closed).
    by_id: Mapped[uuid.UUID | None] = mapped_column(sa.ForeignKey("users.id"))
    note: Mapped[str | None] = mapped_column(sa.Text)
    #: overdue_accept, overdue_arrival are events too (status unchanged).
    kind: Mapped[str] = mapped_column(sa.String(30), default="transition")


class DeadlineEscalation(db.Model):
    """A missed deadline, escalated once: the primary key is the exactly-once guarantee."""

    __tablename__ = "deadline_escalations"

    handoff_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("handoffs.id"), primary_key=True)
    #: accept_by or arrive_by
    deadline: Mapped[str] = mapped_column(sa.String(10), primary_key=True)
    task_id: Mapped[uuid.UUID | None] = mapped_column(sa.Uuid)
    escalated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class Consent(UUIDPrimaryKey, db.Model):
    """A patient's 42 CFR Part 2 consent to disclose to one recipient. Never edited: a
    revocation is a row of its own, and a new consent supersedes by being newer."""

    __tablename__ = "consents"

    patient_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("patients.id"), index=True)
    #: Who may disclose: the hospital's SUD program (Bridgeline's operator).
    disclosing_program: Mapped[str] = mapped_column(sa.String(200))
    #: The recipient: a program from the directory, or a named person or organisation.
    recipient_program_id: Mapped[uuid.UUID | None] = mapped_column(sa.ForeignKey("programs.id"))
    recipient_name: Mapped[str | None] = mapped_column(sa.String(200))
    purpose: Mapped[str] = mapped_column(sa.String(500))
    #: Kinds of information covered, e.g. ["handoff_summary", "medications", "appointments"].
    information: Mapped[list] = mapped_column(sa.JSON)
    signed_at: Mapped[dt.datetime]
    #: written or electronic
    signature_method: Mapped[str] = mapped_column(sa.String(20))
    expires_at: Mapped[dt.datetime | None]
    #: Ends when the episode open at signing closes.
    expires_on_end_of_treatment: Mapped[bool] = mapped_column(default=False)
    episode_id: Mapped[uuid.UUID | None] = mapped_column(sa.ForeignKey("episodes.id"))
    recorded_by_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("users.id"))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    revocation: Mapped[ConsentRevocation | None] = relationship(lazy="selectin")


class ConsentRevocation(UUIDPrimaryKey, db.Model):
    __tablename__ = "consent_revocations"

    consent_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("consents.id"), unique=True)
    revoked_at: Mapped[dt.datetime]
    #: written or electronic
    method: Mapped[str] = mapped_column(sa.String(20))
    recorded_by_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("users.id"))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class Disclosure(UUIDPrimaryKey, db.Model):
    """One disclosure of Part 2 information: what, to whom, when, under which consent, by whom."""

    __tablename__ = "disclosures"

    patient_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("patients.id"), index=True)
    consent_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("consents.id"))
    recipient_program_id: Mapped[uuid.UUID | None] = mapped_column(sa.ForeignKey("programs.id"))
    recipient_name: Mapped[str] = mapped_column(sa.String(200))
    information: Mapped[list] = mapped_column(sa.JSON)
    #: Exactly what was disclosed.
    content: Mapped[dict] = mapped_column(sa.JSON)
    #: The §2.32 notice that accompanied it.
    notice: Mapped[str] = mapped_column(sa.Text)
    handoff_id: Mapped[uuid.UUID | None] = mapped_column(sa.ForeignKey("handoffs.id"))
    disclosed_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    disclosed_by_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("users.id"))
