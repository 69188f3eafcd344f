"""Keeping the report's stored facts (`backend.reports.models`) up to date.

Every write to an episode, its patient, encounters, appointments, handoffs or texts leaves a row
in the change feed (`backend.sync`, written by database triggers, so bulk updates too). A refresh
recomputes the facts of the episodes named in the feed since the last refresh, with the
definitions of `backend.reports.facts`, and moves the stored position on: a fixed number of
statements, whatever the number of episodes. It runs before every report (which therefore counts
every change committed before it) and every few minutes in the clock process (so that a report
seldom has much to do).

Everything is recomputed instead when the facts were never computed, when the definitions
changed (their fingerprint), or when the last refresh is older than the feed keeps its rows.
"""

from __future__ import annotations

import datetime as dt
import hashlib

import sqlalchemy as sa

from backend.cases.models import Episode
from backend.database import utcnow
from backend.extensions import db
from backend.reports.facts import facts
from backend.reports.models import EpisodeFacts, HandoffFacts, RefreshState, TextFacts
from backend.sync.models import Change
from backend.sync.service import KEEP_CHANGES, Position, horizon_and_top, written_after

TABLES = (EpisodeFacts, HandoffFacts, TextFacts)
STATE_ID = 1
#: A transaction horizon above every transaction: every committed feed row.
_EVERY_COMMITTED = 2**63 - 1


def refresh(*, full: bool = False, unlimited: bool = False) -> None:
    """Bring the stored facts up to date with every change committed so far; `full` recomputes
    them all. `unlimited` lifts the statement time limit (the clock's job and the command: a
    full recount of a big database outlasts a request's limit; in a request it answers 503)."""
    if unlimited and db.engine.dialect.name == "postgresql":
        db.session.execute(sa.text("SET LOCAL statement_timeout = 0"))
    state = db.session.execute(sa.select(RefreshState).where(RefreshState.id == STATE_ID)
                               .with_for_update()).scalar_one()  # one refresh at a time
    position, now = Position(state.txid, state.seq), utcnow()
    _, top = horizon_and_top(position)
    full = (full or state.refreshed_at is None or state.fingerprint != fingerprint()
            or state.refreshed_at < now - KEEP_CHANGES + dt.timedelta(days=1))
    # Every committed change is counted, also those of transactions younger than one still
    # running (PostgreSQL); the position only moves up to the horizon, so those are counted
    # again next time: recounting an episode twice changes nothing.
    written = written_after(position, _EVERY_COMMITTED)
    if full:
        episode_ids = sa.select(Episode.id)
        for table in TABLES:
            db.session.execute(sa.delete(table))
    elif db.session.scalar(sa.select(sa.exists().where(*written))):
        episode_ids = _changed_episodes(written)
        for table in TABLES:
            db.session.execute(sa.delete(table).where(_changed_rows(table, episode_ids, written)))
    else:
        episode_ids = None  # nothing written since
    if episode_ids is not None:
        for table, rows in facts(episode_ids).items():
            db.session.execute(sa.insert(table).from_select(list(rows.selected_columns.keys()), rows))
    state.txid, state.seq, state.refreshed_at, state.fingerprint = top.txid, top.seq, now, fingerprint()
    db.session.flush()


def _changed_episodes(written: list[sa.ColumnElement[bool]]) -> sa.CompoundSelect:
    """The episodes written since the last refresh, and those of the patients written since."""
    return sa.union(sa.select(Change.episode_id).where(*written, Change.episode_id.is_not(None)),
                    sa.select(Episode.id).join(Change, Change.patient_id == Episode.patient_id)
                    .where(*written, Change.episode_id.is_(None)))


def _changed_rows(table, episode_ids: sa.CompoundSelect, written: list[sa.ColumnElement[bool]]):
    """A table's rows to recount: those of the changed episodes, and a changed handoff's or
    text's wherever it was (no write path moves one to another episode, but a fix made in SQL
    could; the old episode's own facts then need `flask --app backend reports recount`)."""
    own = {HandoffFacts: ("handoff", HandoffFacts.handoff_id), TextFacts: ("message", TextFacts.message_id)}
    if table not in own:
        return table.episode_id.in_(episode_ids)
    entity, key = own[table]
    # A union of keys rather than OR: each side then seeks an index.
    return key.in_(sa.union(sa.select(key).where(table.episode_id.in_(episode_ids)),
                            sa.select(Change.entity_id).where(*written, Change.entity == entity)))


_fingerprints: dict[str, str] = {}


def fingerprint() -> str:
    """A digest of the facts' definitions as this database runs them, constants included."""
    dialect = db.engine.dialect
    if dialect.name not in _fingerprints:
        text = "\n".join(str(rows.compile(dialect=dialect, compile_kwargs={"literal_binds": True}))
                         for rows in facts(sa.select(Episode.id)).values())
        _fingerprints[dialect.name] = hashlib.sha256(text.encode()).hexdigest()
    return _fingerprints[dialect.name]
