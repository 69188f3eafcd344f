"""Handoffs between levels of care.

A handoff is a closed-loop referral with an append-only event log (corrections are new
events). A deadline escalation row exists once per (handoff, deadline): its unique key is what
makes the deadline job create exactly one follow-up task however often, or in however many
processes, it runs.
"""

from __future__ import annotations

import datetime as dt
import enum
import uuid

import sqlalchemy as sa
from sqlalchemy.ext.hybrid import hybrid_method
from sqlalchemy.orm import Mapped, mapped_column, relationship

from backend.cases.models import Level
from backend.database import UUIDPrimaryKey, Versioned, enum_column, utcnow
from backend.extensions import db

METHODS = ("warm_in_person", "warm_phone", "warm_video", "referral")
#: The levels of care a handoff leads to.
TO_LEVELS = (Level.TRANSITION_CLINIC, Level.COMMUNITY_PROGRAM)


class HandoffStatus(enum.StrEnum):
    """sent → accepted | declined | cancelled; accepted → completed | no_show | cancelled."""

    SENT = "sent"
    ACCEPTED = "accepted"
    DECLINED = "declined"
    COMPLETED = "completed"
    NO_SHOW = "no_show"
    CANCELLED = "cancelled"


#: Still waiting for the receiving side: to answer (sent) or for the patient to arrive (accepted).
OPEN_STATUSES = (HandoffStatus.SENT, HandoffStatus.ACCEPTED)
class HandoffEventKind(enum.StrEnum):
    #: The handoff moved to the event's status.
    TRANSITION = "transition"
    #: A missed deadline was escalated (the status is unchanged).
    OVERDUE_ACCEPT = "overdue_accept"
    OVERDUE_ARRIVAL = "overdue_arrival"


#: Each deadline, and the statuses in which it is still to be met.
DEADLINE_PENDING_IN = {"accept_by": (HandoffStatus.SENT,), "arrive_by": OPEN_STATUSES}


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
    #: Where the referral stands. The migrations made a plain string column (no CHECK): a value
    #: outside HandoffStatus, written by hand in SQL, would fail to load; fix such rows in SQL.
    status: Mapped[HandoffStatus] = mapped_column(enum_column(HandoffStatus, "handoff_status", length=20,
                                                              constraint=False), default=HandoffStatus.SENT)
    accept_by: Mapped[dt.datetime]
    arrive_by: Mapped[dt.datetime]
    arrived_at: Mapped[dt.datetime | None]
    created_by_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("users.id"))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    events: Mapped[list[HandoffEvent]] = relationship(lazy="selectin", order_by="HandoffEvent.seq")

    @hybrid_method
    def missed(self, deadline: str, now: dt.datetime) -> bool:
        """The handoff is past `deadline` (accept_by or arrive_by) without having met it."""
        return self.status in DEADLINE_PENDING_IN[deadline] and getattr(self, deadline) < now

    @missed.inplace.expression
    @classmethod
    def _missed_expression(cls, deadline: str, now: dt.datetime) -> sa.ColumnElement[bool]:
        return sa.and_(cls.status.in_(DEADLINE_PENDING_IN[deadline]), getattr(cls, deadline) < now)

    @hybrid_method
    def overdue(self, now: dt.datetime) -> bool:
        """Past a deadline it has not met: unanswered after accept-by, or not arrived by arrive-by."""
        return self.missed("accept_by", now) or self.missed("arrive_by", now)

    @overdue.inplace.expression
    @classmethod
    def _overdue_expression(cls, now: dt.datetime) -> sa.ColumnElement[bool]:
        return sa.or_(cls.missed("accept_by", now), cls.missed("arrive_by", now))

    def sent_from_current_level(self, episode) -> bool:
        """The episode is still at the level this handoff was sent from: only then may it move the
        episode on (a handoff never moves an episode backwards)."""
        return str(episode.level) == self.from_level

    @property
    def transition_events(self) -> list[HandoffEvent]:
        return [e for e in self.events if e.kind == HandoffEventKind.TRANSITION]

    @property
    def escalation_events(self) -> list[HandoffEvent]:
        return [e for e in self.events if e.kind != HandoffEventKind.TRANSITION]


class HandoffEvent(db.Model):
    """One step of a handoff: who, when, to which status, and why."""

    __tablename__ = "handoff_events"
    __table_args__ = (sa.UniqueConstraint("handoff_id", "seq"),)

    id: Mapped[uuid.UUID] = mapped_column(sa.Uuid, primary_key=True, default=uuid.uuid4)
    handoff_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("handoffs.id"), index=True)
    #: Order within the handoff (timestamps can tie).
    seq: Mapped[int]
    #: The handoff's status after the event (the migrations made plain string columns: no CHECK).
    status: Mapped[HandoffStatus] = mapped_column(enum_column(HandoffStatus, "handoff_status", length=20,
                                                              constraint=False))
    at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    #: None when the system acted (deadline job, episode closed).
    by_id: Mapped[uuid.UUID | None] = mapped_column(sa.ForeignKey("users.id"))
    note: Mapped[str | None] = mapped_column(sa.Text)
    kind: Mapped[HandoffEventKind] = mapped_column(
        enum_column(HandoffEventKind, "handoff_event_kind", length=30, constraint=False),
        default=HandoffEventKind.TRANSITION)


class DeadlineEscalation(db.Model):
    """A missed deadline, escalated once: the primary key is the exactly-once guarantee."""

    __tablename__ = "deadline_escalations"

    handoff_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("handoffs.id"), primary_key=True)
    #: accept_by or arrive_by
    deadline: Mapped[str] = mapped_column(sa.String(10), primary_key=True)
    task_id: Mapped[uuid.UUID | None] = mapped_column(sa.Uuid)
    escalated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
