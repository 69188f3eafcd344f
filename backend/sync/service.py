"""The phone's sync: everything in the caller's scope that changed since their cursor.

What a phone keeps is the caller's *open* episodes (cases.scopes: a coach's own, an ED nurse's
hospital-level and self-opened ones, every one for clinic staff), with their patients and, for
the roles that work them, their encounters, tasks, appointments and texts; handoffs, the naloxone log and
medication supplies for every clinical role. Admins keep nothing.

- **First sync** (no cursor): the whole current scope, a page of episodes at a time, each with
  its working set (below). The feed position taken before the first page is carried in the
  cursor, so what changes while the pages are read comes with the next sync.
- **Working set.** An episode is sent with its patient, its handoffs, and of its other records
  those still to act on or touched in the last RECENT_HISTORY: open tasks, appointments from a
  week ago on, unread replies, and encounters, tasks, appointments and texts of the past week.
  Older history is read online (the episode's timeline, the patient's thread), as CommCare
  restores open cases without their old forms and the Community Health Toolkit purges old
  reports from phones: a month of every text and visit would triple a first sync for records
  a coach in the field rarely opens. Once on the phone, a record gets its changes until its
  episode leaves the scope.
- **Incremental sync**: feed rows (`backend.sync.models`) after the cursor, in feed order. A
  record changed in an episode the caller sees now is sent in its current state; an episode that
  entered the caller's scope (a new episode, a reassignment) is sent with its working set; one that left
  it (reassigned, closed, moved beyond the hospital) comes back in `removed` with every record
  the phone holds of it. Scope is judged by the records' state now, so `changes` and `removed`
  never name the same record.

Reads the cases, continuity, handoffs and outreach models directly: the sync is one read of everything a
phone holds, bounded to a fixed number of queries per page, which calls per record to the
domain services could not be.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid
from collections import defaultdict
from collections.abc import Callable

import sqlalchemy as sa
from marshmallow import Schema

from backend.audit import service as audit
from backend.auth.models import CASE_WORKERS, CLINICAL_ROLES, Role, User
from backend.cases.models import (
    Appointment,
    Encounter,
    Episode,
    EpisodeStatus,
    Patient,
    Task,
    TaskStatus,
)
from backend.cases.schemas import (
    AppointmentSchema,
    EncounterSchema,
    EpisodeSchema,
    PatientSchema,
    TaskSchema,
)
from backend.cases.scopes import episode_visible_to
from backend.continuity.models import MedicationSupply, NaloxoneEvent
from backend.continuity.schemas import MedicationSupplySchema, NaloxoneEventSchema
from backend.database import utcnow
from backend.errors import Problem
from backend.extensions import db
from backend.handoffs.models import Handoff
from backend.handoffs.schemas import HandoffSchema
from backend.outreach.models import Message
from backend.outreach.schemas import MessageSchema
from backend.pagination import decode_cursor, encode_cursor, invalid_cursor
from backend.sync.models import Change, txid_horizon
from backend.sync.scopes import on_the_phone

#: Feed rows read per incremental page.
FEED_PAGE = 500
#: Episodes sent whole per page (a first sync's page, or episodes that entered the scope).
EPISODES_PAGE = 50
#: How far back an episode's history is sent to a phone (see "Working set").
RECENT_HISTORY = dt.timedelta(days=7)
#: How long the feed keeps a change. A cursor older than this, less a day's margin for a
#: transaction still running when its position was read, could miss purged changes.
KEEP_CHANGES = dt.timedelta(days=30)



@dataclasses.dataclass(frozen=True)
class Kind:
    """A kind of record a phone keeps."""

    #: The feed's and `removed`'s name for it.
    name: str
    #: Its list in `changes`.
    key: str
    model: type
    schema: type[Schema]
    #: The roles whose phones keep it (the roles its own endpoints answer).
    roles: frozenset[Role]
    #: For records of an episode: which of them belong to its working set, given the cutoff of
    #: RECENT_HISTORY. None: all of them.
    working_set: Callable[[dt.datetime], sa.ColumnElement[bool]] | None = None


KINDS = (
    Kind("patient", "patients", Patient, PatientSchema, CLINICAL_ROLES),
    Kind("episode", "episodes", Episode, EpisodeSchema, CLINICAL_ROLES),
    Kind("encounter", "encounters", Encounter, EncounterSchema, CASE_WORKERS,
         lambda cutoff: sa.or_(Encounter.occurred_at >= cutoff, Encounter.created_at >= cutoff)),
    Kind("task", "tasks", Task, TaskSchema, CASE_WORKERS,
         lambda cutoff: sa.or_(Task.status == TaskStatus.OPEN, Task.updated_at >= cutoff)),
    Kind("appointment", "appointments", Appointment, AppointmentSchema, CASE_WORKERS,
         lambda cutoff: sa.or_(Appointment.starts_at >= cutoff, Appointment.updated_at >= cutoff)),
    Kind("handoff", "handoffs", Handoff, HandoffSchema, CLINICAL_ROLES),
    # Continuity of treatment: the naloxone log's recent entries, and the supplies still covering
    # (or changed lately), for every role its endpoints answer.
    Kind("naloxone", "naloxone", NaloxoneEvent, NaloxoneEventSchema, CLINICAL_ROLES,
         lambda cutoff: sa.or_(NaloxoneEvent.occurred_at >= cutoff, NaloxoneEvent.created_at >= cutoff)),
    Kind("medication", "medications", MedicationSupply, MedicationSupplySchema, CLINICAL_ROLES,
         lambda cutoff: sa.or_(MedicationSupply.ends_at >= cutoff, MedicationSupply.updated_at >= cutoff)),
    Kind("message", "messages", Message, MessageSchema, CASE_WORKERS,
         lambda cutoff: sa.or_(Message.send_at >= cutoff, Message.updated_at >= cutoff,
                               Message.unread_reply)),
)
#: Episodes as they are now, beside the feed row or the episode being asked about. Built once:
#: a fresh alias per request costs about 1 ms of Python.
_CURRENT = sa.orm.aliased(Episode, name="current")
_OTHER = sa.orm.aliased(Episode, name="other")
#: Kinds that belong to an episode (`episode_id`).
_PARTS = tuple(kind for kind in KINDS if kind.name not in ("patient", "episode"))


@dataclasses.dataclass(frozen=True, order=True)
class Position:
    """A place in the feed: every row at or before it has been read (or never will be written),
    as of `read_at`."""

    txid: int
    seq: int
    read_at: dt.datetime = dataclasses.field(compare=False, default_factory=utcnow)


@dataclasses.dataclass
class Page:
    cursor: str
    has_more: bool
    changes: dict[str, list]
    removed: list[dict]


def sync(*, user: User, cursor: str | None) -> Page:
    """One page of the caller's sync (api.md `GET /api/v1/sync`)."""
    kinds = [kind for kind in KINDS if user.role in kind.roles]
    if cursor is None:
        _, start = horizon_and_top(Position(0, 0))
        return _first_sync_page(user, kinds, start=start, after=None)
    txid, seq, after, read_at = decode_cursor(cursor, [int, int, str, int])
    try:
        position = Position(txid, seq, dt.datetime.fromtimestamp(read_at, dt.timezone.utc))
        after_episode = uuid.UUID(after) if after else None
    except (ValueError, OverflowError, OSError) as exc:  # signed by us: only a key change or a bug gets here
        raise invalid_cursor() from exc
    if position.read_at < utcnow() - KEEP_CHANGES + dt.timedelta(days=1):
        raise Problem(409, "This cursor is older than the changes the server keeps: send your pending writes, "
                           "delete the local copy and sync again without a cursor.", type="conflict",
                      errors={"cursor": ["Too old: start again with a first sync."]})
    if after_episode is not None:
        return _first_sync_page(user, kinds, start=position, after=after_episode)
    return _changes_page(user, kinds, position)


def _encode(position: Position, after: uuid.UUID | None = None) -> str:
    return encode_cursor([position.txid, position.seq, str(after) if after else "", int(position.read_at.timestamp())])


def horizon_and_top(floor: Position) -> tuple[int, Position]:
    """The transaction horizon (every feed row below it was written by a finished transaction)
    and the last feed row below it, or `floor`: one round trip. The top may be read before the
    rows up to it, as rows below the horizon no longer change."""
    horizon = sa.select(txid_horizon().label("horizon")).subquery()  # one statement, one snapshot
    last = (sa.select(Change.txid, Change.seq).where(Change.txid < txid_horizon())
            .order_by(Change.txid.desc(), Change.seq.desc()).limit(1).subquery())
    row = db.session.execute(sa.select(horizon.c.horizon, last.c.txid, last.c.seq)
                             .select_from(horizon).outerjoin(last, sa.true())).one()
    top = max(floor, Position(row.txid, row.seq)) if row.txid is not None else floor
    return row.horizon, Position(top.txid, top.seq)  # complete as of now


# --- first sync ------------------------------------------------------------------------------

def _first_sync_page(user: User, kinds: list[Kind], *, start: Position, after: uuid.UUID | None) -> Page:
    if not kinds:
        return Page(_encode(start), False, _empty(), [])
    stmt = sa.select(Episode.id, Episode.patient_id).where(on_the_phone(user)).order_by(Episode.id)
    if after is not None:
        stmt = stmt.where(Episode.id > after)
    rows = db.session.execute(stmt.limit(EPISODES_PAGE + 1)).all()
    has_more = len(rows) > EPISODES_PAGE
    rows = rows[:EPISODES_PAGE]
    episodes = {episode_id: patient_id for episode_id, patient_id in rows}
    changes = _load(kinds, whole=episodes, changed={})
    cursor = _encode(start, rows[-1].id) if has_more else _encode(start)
    return Page(cursor, has_more, changes, [])


# --- incremental sync ------------------------------------------------------------------------

def _changes_page(user: User, kinds: list[Kind], position: Position) -> Page:
    horizon, top = horizon_and_top(position)
    rows = db.session.execute(_feed(user, kinds, position, horizon).limit(FEED_PAGE + 1)).all()
    changed: dict[str, dict[uuid.UUID, uuid.UUID]] = defaultdict(dict)  # kind → record → patient
    whole: dict[uuid.UUID, uuid.UUID] = {}  # episodes sent with all their records → patient
    gone: set[uuid.UUID] = set()
    has_more, last = len(rows) > FEED_PAGE, position
    for row in rows[:FEED_PAGE]:
        if not row.now_in:
            gone.add(row.episode_id)
        elif row.entity == "episode" and not row.was_in:
            if row.episode_id not in whole and len(whole) == EPISODES_PAGE:
                has_more = True
                break
            whole[row.episode_id] = row.patient_id
        else:
            changed[row.entity][row.entity_id] = row.patient_id
        last = Position(row.txid, row.seq)
    # A page that stops early is no fresher than the cursor it started from: the rows after it
    # are as old as they were, so the cursor's age (and its expiry) carries over.
    next_position = Position(last.txid, last.seq, position.read_at) if has_more else max(top, last)
    changes = _load(kinds, whole=whole, changed=changed) if whole or changed else _empty()
    removed = _removed(user, kinds, gone) if gone else []
    return Page(_encode(next_position), has_more, changes, removed)


def _feed(user: User, kinds: list[Kind], position: Position, horizon: int) -> sa.Select:
    """Feed rows after `position` that matter to `user`: those of episodes in their scope now,
    and an episode's updates that took it out of their scope."""
    current = _CURRENT
    patients_open_episode = (sa.select(Episode.id)
                             .where(Episode.patient_id == Change.patient_id, Episode.is_open)
                             .scalar_subquery())
    now_in = on_the_phone(user, current)
    was_in = sa.and_(Change.entity == "episode", Change.was_status == EpisodeStatus.OPEN, episode_visible_to(
        user, coach_id=Change.was_coach_id, level=Change.was_level, opened_by_id=current.opened_by_id))
    return (sa.select(Change.txid, Change.seq, Change.entity, Change.entity_id,
                      current.id.label("episode_id"), current.patient_id,
                      sa.case((now_in, True), else_=False).label("now_in"),
                      sa.case((was_in, True), else_=False).label("was_in"))
            .join(current, current.id == sa.func.coalesce(Change.episode_id, patients_open_episode))
            .where(*written_after(position, horizon),
                   Change.entity.in_([kind.name for kind in kinds]),
                   sa.or_(now_in, was_in))
            .order_by(*_feed_order()))


def written_after(position: Position, horizon: int) -> list[sa.ColumnElement[bool]]:
    """Feed rows after `position` written by finished transactions."""
    if db.engine.dialect.name == "sqlite":
        # txid is always 0 there; bounding or ordering by it makes SQLite's planner walk the
        # whole (txid, seq) index instead of seeking to `seq` in the rowid.
        return [Change.seq > position.seq]
    return [sa.tuple_(Change.txid, Change.seq) > sa.tuple_(sa.literal(position.txid, sa.BigInteger),
                                                           sa.literal(position.seq, sa.BigInteger)),
            Change.txid < horizon]


def _feed_order() -> list:
    return [Change.seq] if db.engine.dialect.name == "sqlite" else [Change.txid, Change.seq]


def _removed(user: User, kinds: list[Kind], episodes: set[uuid.UUID]) -> list[dict]:
    """What the phone holds of `episodes`, which left the caller's scope: the episodes, their
    records, and their patients unless another episode keeps the patient in scope."""
    names = {kind.name for kind in kinds}
    other = _OTHER
    parts = [sa.select(sa.literal("episode"), Episode.id).where(Episode.id.in_(episodes)),
             sa.select(sa.literal("patient"), Episode.patient_id).where(
                 Episode.id.in_(episodes),
                 ~sa.exists().where(other.patient_id == Episode.patient_id, on_the_phone(user, other)))]
    parts += [sa.select(sa.literal(kind.name), kind.model.id).where(kind.model.episode_id.in_(episodes))
              for kind in _PARTS if kind.name in names]
    return [{"type": kind, "id": record_id} for kind, record_id in db.session.execute(sa.union_all(*parts))]


# --- loading ---------------------------------------------------------------------------------

def _empty() -> dict[str, list]:
    return {kind.key: [] for kind in KINDS}


def _load(kinds: list[Kind], *, whole: dict[uuid.UUID, uuid.UUID],
          changed: dict[str, dict[uuid.UUID, uuid.UUID]]) -> dict[str, list]:
    """The current state of the changed records and of the working sets of the episodes sent
    whole; one query per kind. Audited as one read, with every patient it shows."""
    changes = _empty()
    cutoff = utcnow() - RECENT_HISTORY
    patients = set(whole.values())
    for kind in kinds:
        ids = changed.get(kind.name, {})
        patients.update(ids.values())
        if kind.name == "patient":
            condition = Patient.id.in_(set(ids) | set(whole.values()))
        elif kind.name == "episode":
            condition = Episode.id.in_(set(ids) | set(whole))
        else:
            in_working_set = kind.model.episode_id.in_(whole)
            if kind.working_set is not None:
                in_working_set = sa.and_(in_working_set, kind.working_set(cutoff))
            condition = sa.or_(kind.model.id.in_(ids), in_working_set)
        if ids or whole:
            changes[kind.key] = db.session.scalars(sa.select(kind.model).where(condition)
                                                   .order_by(kind.model.id)).all()
    records = sum(len(items) for items in changes.values())
    audit.record("sync.read", resource_type="sync", patient_ids=patients,
                 details={"records": records, "episodes_whole": len(whole)})
    return changes


def purge_changes(*, now: dt.datetime | None = None) -> int:
    """Forget feed rows older than KEEP_CHANGES; cursors that old are refused (409)."""
    cutoff = (now or utcnow()) - KEEP_CHANGES
    return db.session.execute(sa.delete(Change).where(Change.changed_at < cutoff)).rowcount
