"""Message templates and messages: the outbox (outbound texts waiting, sent or stopped) and the
replies that come back, in one table, so a patient's thread is one ordered query.

A message's life (api.md): `queued` → `sending` (claimed by a dispatcher, committed before the
request leaves) → `sent` (Twilio accepted it) → `delivered` / `undelivered` / `failed` (status
callbacks). A queued text may end `cancelled` (its plan no longer holds) or `blocked` (a rule
refused it: not opted in, no valid phone, too late to be useful); a text whose fate is not known
after the request left is `unknown` and is never retried automatically. Replies are `received`.
"""

from __future__ import annotations

import datetime as dt
import enum
import uuid

import sqlalchemy as sa
from sqlalchemy.ext.hybrid import hybrid_property
from sqlalchemy.orm import Mapped, mapped_column

from backend.database import UUIDPrimaryKey, enum_column, utcnow
from backend.extensions import db


class MessageTemplate(UUIDPrimaryKey, db.Model):
    """A text with named placeholders (`{first_name}`…), checked by the privacy rules on save."""

    __tablename__ = "message_templates"
    __table_args__ = (sa.UniqueConstraint("name", "language"),)

    #: A built-in text's name (`check_in`, `help`…) replaces that text in the template's language.
    name: Mapped[str] = mapped_column(sa.String(100))
    body: Mapped[str] = mapped_column(sa.String(600))
    #: BCP 47 tag of a language Bridgeline texts in (`en`, `es`, `es-MX`…).
    language: Mapped[str] = mapped_column(sa.String(35), default="en", server_default="en")
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class MessageStatus(enum.StrEnum):
    QUEUED = "queued"
    SENDING = "sending"
    SENT = "sent"
    DELIVERED = "delivered"
    UNDELIVERED = "undelivered"
    FAILED = "failed"
    CANCELLED = "cancelled"
    BLOCKED = "blocked"
    UNKNOWN = "unknown"
    RECEIVED = "received"


class MessageDirection(enum.StrEnum):
    OUTBOUND = "outbound"
    INBOUND = "inbound"


class MessageKind(enum.StrEnum):
    CHECK_IN = "check_in"
    APPOINTMENT_REMINDER = "appointment_reminder"
    #: A coach's (or clinic staff's) one-off text.
    STAFF = "staff"
    #: The answer to STOP, START or HELP, given in the webhook's TwiML.
    AUTO_REPLY = "auto_reply"
    #: Sent by the patient (or by a number that matches no single patient).
    REPLY = "reply"


#: Planned by Bridgeline itself: quiet hours and the rate limit apply, opting out cancels them.
AUTOMATIC_KINDS = (MessageKind.CHECK_IN, MessageKind.APPOINTMENT_REMINDER)
#: Statuses that mean the text went (or may have gone) to the phone: they count for the rate limit.
WENT_OUT = (MessageStatus.SENDING, MessageStatus.SENT, MessageStatus.DELIVERED, MessageStatus.UNDELIVERED,
            MessageStatus.UNKNOWN)


#: Texts a person should look at: they may or may not have reached the patient, or were stopped.
REVIEW_STATUSES = (MessageStatus.UNKNOWN, MessageStatus.FAILED, MessageStatus.BLOCKED)
NEEDS_REVIEW = f"status IN ({', '.join(repr(str(status)) for status in REVIEW_STATUSES)})"
INBOUND = "direction = 'inbound'"


def _where(condition: str) -> dict:
    """A partial index condition for both dialects."""
    return {"sqlite_where": sa.text(condition), "postgresql_where": sa.text(condition)}


class Message(UUIDPrimaryKey, db.Model):
    __tablename__ = "messages"
    # Every index is paid for by each planned text and each status change, so those that serve
    # only some rows are partial: a queued check-in touches five indexes, not twelve.
    __table_args__ = (
        # The dispatcher's claim: only queued rows, however long the history grows.
        sa.Index("ix_messages_queued_due", "due_at", "id", **_where("status = 'queued'")),
        # The sweep for rows left in `sending`.
        sa.Index("ix_messages_sending_claimed", "claimed_at", **_where("status = 'sending'")),
        # A patient's thread.
        sa.Index("ix_messages_patient_created", "patient_id", "created_at", "id"),
        # The rate limit's look-back: texts that went out.
        sa.Index("ix_messages_patient_claimed", "patient_id", "claimed_at", **_where("claimed_at IS NOT NULL")),
        # Replies: the inbox, and the caseload's unread counts.
        sa.Index("ix_messages_inbound_created", "created_at", "id", **_where(INBOUND)),
        sa.Index("ix_messages_unread_replies", "patient_id", **_where("direction = 'inbound' AND read_at IS NULL")),
        # The review list of texts that need a person.
        sa.Index("ix_messages_review_created", "created_at", "id", **_where(NEEDS_REVIEW)),
        sa.Index("ix_messages_appointment_id", "appointment_id", **_where("appointment_id IS NOT NULL")),
        sa.Index("ix_messages_episode_id", "episode_id"),
        # The review's count of texts that went in English for want of the patient's language.
        sa.Index("ix_messages_fell_back_claimed", "claimed_at", sqlite_where=sa.text("fell_back = 1"),
                 postgresql_where=sa.text("fell_back")),
        # One planned text per plan (a check-in day, a reminder of one appointment time), however
        # often the plan is made; a cancelled plan may be made again.
        sa.Index("uq_messages_plan_key", "plan_key", unique=True, **_where("status <> 'cancelled'")),
        # Idempotency of webhooks and callbacks.
        sa.Index("uq_messages_twilio_sid", "twilio_sid", unique=True, **_where("twilio_sid IS NOT NULL")),
    )

    #: None for a reply from a number that matches no single patient (the clinic inbox).
    patient_id: Mapped[uuid.UUID | None] = mapped_column(sa.ForeignKey("patients.id"))
    episode_id: Mapped[uuid.UUID | None] = mapped_column(sa.ForeignKey("episodes.id"))
    appointment_id: Mapped[uuid.UUID | None] = mapped_column(sa.ForeignKey("appointments.id"))
    template_id: Mapped[uuid.UUID | None] = mapped_column(sa.ForeignKey("message_templates.id"))
    #: outbound or inbound (the migrations made a plain string column: no CHECK).
    direction: Mapped[MessageDirection] = mapped_column(
        enum_column(MessageDirection, "message_direction", length=10, constraint=False))
    kind: Mapped[MessageKind] = mapped_column(enum_column(MessageKind, "message_kind", length=20))
    body: Mapped[str] = mapped_column(sa.Text)
    #: E.164: the recipient (set when the text is claimed) or the sender of a reply.
    phone: Mapped[str | None] = mapped_column(sa.String(20))
    status: Mapped[MessageStatus] = mapped_column(enum_column(MessageStatus, "message_status", length=20))
    #: Why the status is what it is, in plain words (deferred by quiet hours, blocked because…).
    status_reason: Mapped[str | None] = mapped_column(sa.String(300))
    #: For automatic texts, e.g. `check_in:<episode>:day3`; unique among live messages.
    plan_key: Mapped[str | None] = mapped_column(sa.String(120))
    #: When the text was planned or asked to go.
    send_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    #: When a queued text may next go (moves on deferral and retry); None once it left the queue.
    due_at: Mapped[dt.datetime | None]
    attempts: Mapped[int] = mapped_column(default=0)
    claimed_at: Mapped[dt.datetime | None]
    sent_at: Mapped[dt.datetime | None]
    status_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    #: Twilio's error code when it refused or failed the text.
    error_code: Mapped[int | None]
    twilio_sid: Mapped[str | None] = mapped_column(sa.String(64))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    created_by_id: Mapped[uuid.UUID | None] = mapped_column(sa.ForeignKey("users.id"))
    read_at: Mapped[dt.datetime | None]
    #: The language the text is written in (automatic texts and keyword answers; a coach's own
    #: text and a reply: None).
    language: Mapped[str | None] = mapped_column(sa.String(35))
    #: An automatic text that went in English because none exists in the patient's language.
    fell_back: Mapped[bool] = mapped_column(default=False, server_default=sa.false())
    read_by_id: Mapped[uuid.UUID | None] = mapped_column(sa.ForeignKey("users.id"))
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    @property
    def automatic(self) -> bool:
        return self.kind in AUTOMATIC_KINDS

    @hybrid_property
    def unread_reply(self) -> bool:
        """A reply nobody has read yet (the caseload's `unread_reply`; the phone keeps these)."""
        return self.direction == MessageDirection.INBOUND and self.read_at is None

    @unread_reply.inplace.expression
    @classmethod
    def _unread_reply_expression(cls) -> sa.ColumnElement[bool]:
        return sa.and_(cls.direction == MessageDirection.INBOUND, cls.read_at.is_(None))
