"""Audit events and the head of their hash chain.

An event is written unsealed, in the transaction of the change it records, with only an
insertion number (`seq`, given by the database without a lock). The sequencer (the clock's
`seal_audit_trail`: `backend.audit.service.next_batch`, then `write_batch`) then seals it:
gives it its place in the chain (`chain_seq`, 1, 2, 3… without gaps), the previous sealed
event's hash and its own HMAC over its canonical form, which includes that previous hash:
altering or removing a sealed event breaks every hash after it (`flask --app backend audit
verify`). Database triggers refuse DELETE, and refuse any UPDATE but the one that seals an
unsealed event; retention is at least six years.
"""

from __future__ import annotations

import datetime as dt
import uuid

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from backend.database import UuidList
from backend.extensions import db

GENESIS_HASH = "0" * 64


class AuditEvent(db.Model):
    __tablename__ = "audit_events"
    __table_args__ = (
        sa.CheckConstraint("(chain_seq IS NULL) = (prev_hash IS NULL) AND (chain_seq IS NULL) = (hash IS NULL)",
                           name="sealed_whole"),
        # The sequencer's work list: only the unsealed tail, however long the trail.
        sa.Index("ix_audit_events_unsealed", "seq", postgresql_where=sa.text("chain_seq IS NULL"),
                 sqlite_where=sa.text("chain_seq IS NULL")),
    )

    #: Insertion number, given by the database at insert without a lock (PostgreSQL: a sequence,
    #: whose numbers may commit out of order; SQLite: the rowid). For events sealed before the
    #: sequencer (migration 0019) it equals `chain_seq`.
    seq: Mapped[int] = mapped_column(sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True,
                                     autoincrement=True)
    #: Position in the chain, 1, 2, 3… without gaps (a gap means a deleted event); None until sealed.
    chain_seq: Mapped[int | None] = mapped_column(sa.BigInteger, index=True, unique=True)
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
    #: The previous sealed event's hash, and this event's (None until sealed).
    prev_hash: Mapped[str | None] = mapped_column(sa.String(64))
    hash: Mapped[str | None] = mapped_column(sa.String(64))

    #: The patients the event touched (a list endpoint touches every patient it returns), in id
    #: order, written with the event and covered by its hash. In its own row (migration 0022):
    #: a caseload read's 60 were 60 rows of another table, each with its key and a check of its
    #: event. Not indexed by patient here: the sequencer does that when it seals the event
    #: (`AuditPatientIndex`).
    patient_ids: Mapped[list[uuid.UUID]] = mapped_column(UuidList(), nullable=True)


class AuditPatientIndex(db.Model):
    """The sealed events' patients by patient, written by the sequencer in the transaction that
    seals the events (a second's reads of one patient land on one page, not a page each). A
    patient's events are these, and the unsealed events that list the patient
    (`backend.audit.service.events_of_patient`). Append-only like the events.

    No foreign key (checking each entry's event tripled the sequencer's index write on
    PostgreSQL): `audit verify` compares the index with the events' patients pair by pair and
    counts entries whose event does not exist (migration 0021)."""

    __tablename__ = "audit_patient_index"
    __table_args__ = {"sqlite_with_rowid": False}

    patient_id: Mapped[uuid.UUID] = mapped_column(sa.Uuid, primary_key=True)
    event_seq: Mapped[int] = mapped_column(sa.BigInteger, primary_key=True)


class AuditChainHead(db.Model):
    """One row: the last sealed event's place in the chain and its hash. Only the sequencer
    writes it, and only from the value it read (compare and set); requests never touch it."""

    __tablename__ = "audit_chain_head"

    id: Mapped[int] = mapped_column(primary_key=True)
    last_seq: Mapped[int] = mapped_column(sa.BigInteger)
    last_hash: Mapped[str] = mapped_column(sa.String(64))
