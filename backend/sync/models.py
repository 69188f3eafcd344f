"""The change feed: one row per write to a record that phones keep, written by database triggers.

Triggers (migration 0009) rather than ORM events, because bulk UPDATEs (closing an episode
cancels its tasks, the dispatcher moves texts along) bypass the ORM: a write that missed the
feed would never reach a phone. The tests check that every synced table still feeds it, since
a SQLite batch migration that rebuilds a table drops its triggers.

Order: a row's position is `(txid, seq)`. On PostgreSQL `txid` is the writing transaction's id
and a reader only takes rows of transactions older than every one still running (the snapshot's
xmin), so a transaction that commits late can never land behind a cursor already handed out.
SQLite runs one writer at a time, so `seq` alone is commit order there and `txid` is always 0.
"""

from __future__ import annotations

import datetime as dt
import uuid

import sqlalchemy as sa
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Mapped, mapped_column

from backend.extensions import db


class current_txid(sa.sql.expression.FunctionElement):  # noqa: N801 (an SQL function)
    """The writing transaction's id on PostgreSQL; 0 on SQLite."""

    type = sa.BigInteger()
    inherit_cache = True


@compiles(current_txid)
def _current_txid(element, compiler, **kw):
    return "0"


@compiles(current_txid, "postgresql")
def _current_txid_postgresql(element, compiler, **kw):
    return "(pg_current_xact_id()::text::bigint)"


class txid_horizon(sa.sql.expression.FunctionElement):  # noqa: N801 (an SQL function)
    """Every transaction with a smaller id has finished: its rows are committed or gone."""

    type = sa.BigInteger()
    inherit_cache = True


@compiles(txid_horizon)
def _txid_horizon(element, compiler, **kw):
    return "1"


@compiles(txid_horizon, "postgresql")
def _txid_horizon_postgresql(element, compiler, **kw):
    return "(pg_snapshot_xmin(pg_current_snapshot())::text::bigint)"


class Change(db.Model):
    """A record a phone may keep was inserted or updated."""

    __tablename__ = "sync_changes"
    __table_args__ = (sa.Index("ix_sync_changes_position", "txid", "seq"),
                      sa.Index("ix_sync_changes_changed_at", "changed_at"),
                      {"sqlite_autoincrement": True})

    #: Insertion order (never reused, even after a purge).
    seq: Mapped[int] = mapped_column(sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True)
    #: The writing transaction (PostgreSQL); 0 on SQLite.
    txid: Mapped[int] = mapped_column(sa.BigInteger, server_default=current_txid())
    #: patient, episode, encounter, task, appointment, handoff, message
    entity: Mapped[str] = mapped_column(sa.String(20))
    entity_id: Mapped[uuid.UUID] = mapped_column(sa.Uuid)
    #: The episode the record belongs to; None for a patient (`patient_id` then), and for a text
    #: that belongs to no episode. No foreign keys: the feed must stay cheap to write.
    episode_id: Mapped[uuid.UUID | None] = mapped_column(sa.Uuid)
    patient_id: Mapped[uuid.UUID | None] = mapped_column(sa.Uuid)
    #: For an episode's update, who could see it before: its status, level and coach then.
    #: None for an insert. What the phone must delete is worked out from these.
    was_status: Mapped[str | None] = mapped_column(sa.String(20))
    was_level: Mapped[str | None] = mapped_column(sa.String(40))
    was_coach_id: Mapped[uuid.UUID | None] = mapped_column(sa.Uuid)
    changed_at: Mapped[dt.datetime] = mapped_column(server_default=sa.func.now())
