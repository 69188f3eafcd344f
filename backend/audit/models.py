"""Audit events and the head of their hash chain.

Each event stores the SHA-256 of its own canonical form, which includes the previous event's
hash: altering or removing any row breaks every hash after it (`flask --app backend audit
verify`). Database triggers refuse UPDATE and DELETE; retention is at least six years.
"""

from __future__ import annotations

import datetime as dt
import uuid

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from backend.extensions import db

GENESIS_HASH = "0" * 64


class AuditEvent(db.Model):
    __tablename__ = "audit_events"

    #: Position in the chain, 1, 2, 3… without gaps (a gap means a deleted event).
    seq: Mapped[int] = mapped_column(sa.BigInteger, primary_key=True, autoincrement=False)
    id: Mapped[uuid.UUID] = mapped_column(sa.Uuid, unique=True, default=uuid.uuid4)
    occurred_at: Mapped[dt.datetime] = mapped_column(index=True)
    #: Who acted: a user id (None for the system, e.g. a scheduled job or the command line).
    actor_id: Mapped[uuid.UUID | None] = mapped_column(sa.Uuid, index=True)
    actor_username: Mapped[str | None] = mapped_column(sa.String(255))
    actor_role: Mapped[str | None] = mapped_column(sa.String(20))
    device_session_id: Mapped[uuid.UUID | None] = mapped_column(sa.Uuid)
    #: What was done, `domain.verb`: `auth.sign_in`, `patient.read`, `access.denied`…
    action: Mapped[str] = mapped_column(sa.String(64), index=True)
    #: HTTP status the request ended with (None outside HTTP).
    status_code: Mapped[int | None]
    resource_type: Mapped[str | None] = mapped_column(sa.String(40))
    resource_id: Mapped[str | None] = mapped_column(sa.String(64))
    request_id: Mapped[str | None] = mapped_column(sa.String(64))
    client_ip: Mapped[str | None] = mapped_column(sa.String(45))
    #: Ids and counts only, never patient data.
    details: Mapped[dict | None] = mapped_column(sa.JSON)
    prev_hash: Mapped[str] = mapped_column(sa.String(64))
    hash: Mapped[str] = mapped_column(sa.String(64))

    patients: Mapped[list[AuditEventPatient]] = relationship(
        lazy="selectin", order_by="AuditEventPatient.patient_id"
    )

    @property
    def patient_ids(self) -> list[uuid.UUID]:
        return [p.patient_id for p in self.patients]


class AuditEventPatient(db.Model):
    """The patients an event touched (a list endpoint touches every patient it returns)."""

    __tablename__ = "audit_event_patients"

    event_seq: Mapped[int] = mapped_column(sa.ForeignKey("audit_events.seq"), primary_key=True)
    patient_id: Mapped[uuid.UUID] = mapped_column(sa.Uuid, primary_key=True, index=True)


class AuditChainHead(db.Model):
    """One row: the last sequence number and hash. Locking it serialises appends."""

    __tablename__ = "audit_chain_head"

    id: Mapped[int] = mapped_column(primary_key=True)
    last_seq: Mapped[int] = mapped_column(sa.BigInteger)
    last_hash: Mapped[str] = mapped_column(sa.String(64))
