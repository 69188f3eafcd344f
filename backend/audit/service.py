"""Recording and checking the audit trail.

`record()` is the one function other modules call for every read or write of patient data and
for security events. Events are gathered on the session and written by the unit of work
(`backend.unit_of_work`) just before it commits — with the request's final status over HTTP —
in the same transaction as the change they record (or in one of their own after a rollback).

Writing an event touches no shared row: it is inserted *unsealed*, with an insertion number
(`seq`) the database gives without a lock. (On SQLite an event written with no change to commit
with it, a read's, waits in the audit outbox beside the database until the sequencer moves it
in: `backend.audit.outbox`.) The **sequencer**, `next_batch` then `write_batch`
(the clock runs them every second: `backend.audit.jobs.seal_audit_trail`), then chains the new
events into the hash chain in batches, the way transparency logs (Certificate Transparency,
Trillian's sequencer) keep tamper evidence at scale:

- it reads the chain head and the unsealed events it can see, in insertion order, without a
  lock, and gives each its place in the chain (`chain_seq`, the head's + 1, + 2…), the previous
  event's hash and its own HMAC; the order is fixed then, and stored, so anyone holding the key
  can verify it;
- it then writes them in a short transaction that moves the head only if the head is still
  where it read it (compare and set): a second sequencer (a second clock started by mistake)
  that sealed first makes this batch write nothing, so no event is sealed twice and the chain
  never forks (the trigger refuses resealing, too).

Why no safety margin for numbers that commit out of order: on PostgreSQL an event numbered 10
may commit after one numbered 11, and a sequencer may seal 11 before 10 is visible. That is
harmless here: the chain's order is the order of sealing (`chain_seq`), not `seq`, and the
sequencer selects "every unsealed event", not "every event above a high-water mark", so event
10 is sealed in the next batch and nothing is ever skipped. A crash mid-batch rolls the whole
batch back; the next run seals it again from the same head.

Each event's hash is an HMAC-SHA256 keyed with AUDIT_HMAC_KEY (kept outside the database):
someone who can write to the database but does not hold the key cannot re-forge the chain. The
events not yet sealed (normally the last second's) are protected by the append-only triggers
alone; `audit verify` reports them (how many, the oldest's age), and `/ready` and the metrics
show the seal lag.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import hashlib
import hmac
import ipaddress
import json
import logging
import operator
import uuid
from collections.abc import Iterable, Iterator

import sqlalchemy as sa
from flask import current_app, g, has_request_context, request
from sqlalchemy.dialects import postgresql

from backend.audit import outbox
from backend.audit.models import GENESIS_HASH, AuditChainHead, AuditEvent, AuditPatientIndex
from backend.database import elements_of, utcnow
from backend.extensions import db
from backend.pagination import keyset_page

log = logging.getLogger(__name__)

_CHAIN_HEAD_ID = 1
_PENDING = "bridgeline.audit_pending"


@dataclasses.dataclass
class _Pending:
    action: str
    occurred_at: dt.datetime
    actor_id: uuid.UUID | None
    actor_username: str | None
    actor_role: str | None
    device_session_id: uuid.UUID | None
    resource_type: str | None
    resource_id: str | None
    patient_ids: list[uuid.UUID]
    request_id: str | None
    client_ip: str | None
    details: dict | None


def record(
    action: str,
    *,
    resource_type: str | None = None,
    resource_id: object | None = None,
    patient_ids: Iterable[uuid.UUID] = (),
    details: dict | None = None,
    actor=None,
    device_session=None,
) -> None:
    """Record that the current user (or `actor`, a User, on `device_session`) did `action`.

    `details` holds ids and counts only: never names, phone numbers, message text or notes.
    """
    in_request = has_request_context()
    user = actor if actor is not None else (g.get("user") if in_request else None)
    session = device_session if device_session is not None else (g.get("device_session") if in_request else None)
    event = _Pending(
        action=action,
        occurred_at=utcnow(),
        actor_id=user.id if user is not None else None,
        actor_username=user.username if user is not None else None,
        actor_role=str(user.role) if user is not None else None,
        device_session_id=session.id if session is not None else None,
        resource_type=resource_type,
        resource_id=str(resource_id) if resource_id is not None else None,
        # ids in order: a UUID's number orders as its text does (fixed-width hex); 60 ids sort in
        # 2 µs by number, 12 µs by UUID's own `<` (Python), 26 µs by text
        patient_ids=sorted({p if type(p) is uuid.UUID else uuid.UUID(str(p)) for p in patient_ids}, key=_number),
        request_id=g.get("request_id") if in_request else None,
        client_ip=_client_ip() if in_request else None,
        details=_checked_details(details),
    )
    db.session.info.setdefault(_PENDING, []).append(event)


_number = operator.attrgetter("int")


def _client_ip() -> str | None:
    """The caller's address, if it is one (behind trusted proxies it comes from a header)."""
    try:
        return str(ipaddress.ip_address(request.remote_addr or ""))
    except ValueError:
        return None


def _checked_details(details: dict | None) -> dict | None:
    """Details must survive a JSON round trip unchanged, or the stored event would not match
    its hash; fail here, in the caller, rather than at commit."""
    if details is not None and json.loads(json.dumps(details)) != details:
        raise TypeError("audit details must be plain JSON (str, int, bool, None, lists, dicts)")
    return details


def pending_patient_ids() -> list[uuid.UUID]:
    """Every patient the unit of work's gathered events touched so far."""
    return sorted({pid for event in db.session.info.get(_PENDING, []) for pid in event.patient_ids}, key=str)


def username_fingerprint(username: str) -> str:
    """A keyed hash of a typed username: failed sign-ins can be correlated (and a suspected
    name checked) without the trail keeping what was typed — sometimes a password."""
    key = current_app.config["AUDIT_HMAC_KEY"].encode()
    return hmac.new(key, b"username:" + username.encode(), hashlib.sha256).hexdigest()[:16]


def has_pending() -> bool:
    return bool(db.session.info.get(_PENDING))


def write_pending(status_code: int | None) -> None:
    """Append the gathered events to the current transaction (kept until cleared)."""
    if has_pending():
        _append(db.session.info[_PENDING], status_code=status_code)


def write_pending_alone_and_commit(status_code: int | None) -> None:
    """Write the gathered events in a transaction of their own, with no change to commit with
    them (a unit of work that only read, or one rolled back), and commit: on SQLite into the
    outbox (`backend.audit.outbox`: a read then costs no other worker its page cache), elsewhere
    into the trail. Kept until cleared."""
    if not has_pending():
        return
    rows = _rows(db.session.info[_PENDING], status_code=status_code)
    if outbox.engine() is not None:
        try:
            outbox.append_and_commit(rows)
            return
        except outbox.FAILURES as exc:
            # Into the trail, then, as without an outbox (the same ids: if the outbox did commit
            # them, the sequencer moves none twice). A full disk still leaves room in the
            # database's reused write-ahead log, where a new outbox has none.
            log.warning("audit outbox not writable; events written to the trail",
                        extra={"exc_type": type(exc).__name__})
    _insert(rows)
    db.session.commit()


def clear_pending() -> None:
    db.session.info.pop(_PENDING, None)


#: The columns an event is written with (everything but its seal).
_CONTENT = [f.name for f in dataclasses.fields(_Pending)]


def _append(events: list[_Pending], *, status_code: int | None) -> None:
    """Insert the events unsealed: no lock, no shared row (the sequencer seals them). One
    statement, each event one row with its patients in it (a caseload read's 60: 0.38 -> 0.14 ms
    on PostgreSQL when they were rows of their own, migration 0022)."""
    _insert(_rows(events, status_code=status_code))


def _insert(rows: list[dict]) -> None:
    # One row goes as one execution (a list, even of one, is an executemany)
    db.session.connection().execute(_INSERT_EVENT, rows[0] if len(rows) == 1 else rows)


def _rows(events: list[_Pending], *, status_code: int | None) -> list[dict]:
    return [{"id": uuid.uuid4(), "status_code": status_code, **{name: getattr(e, name) for name in _CONTENT}}
            for e in events]


_INSERT_EVENT = AuditEvent.__table__.insert()


#: The unsealed events, written as the tail they are. With statistics gathered while many events
#: waited (`chain_seq` then looks mostly null), SQLite read `chain_seq IS NULL` by scanning every
#: event in `seq` order (50 ms at 120,000 events, every second, and growing with the trail). From
#: the oldest unsealed event on (found in an index), it reads the last second's events.
UNSEALED = sa.and_(AuditEvent.chain_seq.is_(None), AuditEvent.seq >= sa.select(sa.func.min(AuditEvent.seq))
                   .where(AuditEvent.chain_seq.is_(None)).scalar_subquery())

#: Events sealed per batch: read and hashed without a lock, then written in one short
#: transaction (on SQLite, the only part that holds the write lock). The write grows with the
#: patients the events touched (a caseload read: 60): 200 reads of 60 patients hold the lock
#: for about 20-30 ms, 500 for 50-60 ms, which every request waiting to write then waits too.
SEAL_BATCH = 200


@dataclasses.dataclass
class SealBatch:
    """Events hashed into the chain from a head, not yet written (`next_batch`, `write_batch`)."""

    from_seq: int
    from_hash: str
    seals: list[dict]


def next_batch(limit: int = SEAL_BATCH) -> SealBatch | None:
    """The sequencer's first half, reads only: up to `limit` unsealed events in insertion order,
    each given its place in the chain after the head as it stands, the previous hash and its own
    HMAC. None when nothing waits. Run it in a read transaction (`backend.audit.jobs`): on SQLite
    reading and hashing a second's events took 40-200 ms, and under the write lock every
    request would wait for it."""
    connection = db.session.connection()  # rows, not entities: the ORM has nothing to add to them
    last_seq, last_hash = connection.execute(
        sa.select(AuditChainHead.last_seq, AuditChainHead.last_hash).where(AuditChainHead.id == _CHAIN_HEAD_ID)
    ).one()
    table = AuditEvent.__table__
    patients, as_text = _patients_as_text(table.c.patient_ids, connection.dialect)
    events = connection.execute(
        sa.select(*(column for column in table.c if column.name != "patient_ids"), patients.label("patients"))
        .where(UNSEALED).order_by(table.c.seq).limit(limit)).all()
    if not events:
        return None
    seals, chain_seq, prev = [], last_seq, last_hash
    for event in events:
        chain_seq += 1
        digest = compute_hash(event, as_text(event.patients), chain_seq=chain_seq, prev_hash=prev)
        seals.append({"b_seq": event.seq, "b_chain_seq": chain_seq, "b_prev_hash": prev, "b_hash": digest})
        prev = digest
    return SealBatch(from_seq=last_seq, from_hash=last_hash, seals=seals)


def _patients_as_text(column, dialect: sa.Dialect):
    """The events' patients as the text of their ids, which the hash covers, read without making
    UUIDs of them (made and unmade, a batch's 12,000 were two thirds of the sequencer's CPU):
    the column to select, and what turns its value into the ids' text. PostgreSQL sends the text
    (`CAST AS TEXT[]`); SQLite's JSON array of 32-digit ids is read as `UuidList` reads it, each
    id's text kept for the next time (the same patients are read again and again)."""
    if dialect.name == "postgresql":
        return sa.cast(column, postgresql.ARRAY(sa.Text)), lambda texts: texts or ()
    return sa.type_coerce(column, sa.Text), _ids_text_from_json


def _ids_text_from_json(text: str | None) -> list[str]:
    return [_id_text_of_digits(digits) for digits in json.loads(text)] if text else []


_id_text_of_digits = functools.lru_cache(maxsize=1 << 14)(lambda digits: str(uuid.UUID(digits)))


def write_batch(batch: SealBatch) -> int:
    """The sequencer's second half, a short write: move the head to the batch's last event only
    if it is still where the batch was hashed from (compare and set), and write the seals.
    Returns how many it sealed: 0, writing nothing, if another sequencer moved the head first
    (the next run goes on from there). The sealed events' patients go into the index by patient
    in the same transaction. The caller commits; a crash leaves everything unsealed."""
    head = AuditChainHead.__table__
    last = batch.seals[-1]
    moved = db.session.execute(
        head.update().where(head.c.id == _CHAIN_HEAD_ID, head.c.last_seq == batch.from_seq,
                            head.c.last_hash == batch.from_hash)
        .values(last_seq=last["b_chain_seq"], last_hash=last["b_hash"]))
    if moved.rowcount != 1:
        return 0
    table = AuditEvent.__table__
    written = db.session.connection().execute(
        table.update().where(table.c.seq == sa.bindparam("b_seq"), table.c.chain_seq.is_(None))
        .values(chain_seq=sa.bindparam("b_chain_seq"), prev_hash=sa.bindparam("b_prev_hash"),
                hash=sa.bindparam("b_hash")),
        batch.seals)
    if written.rowcount != len(batch.seals):
        raise RuntimeError(f"sealing {len(batch.seals)} events changed {written.rowcount}: the batch is rolled back")
    db.session.execute(_index_sealed_patients(db.session.connection().dialect),
                       {"first": batch.from_seq + 1, "last": last["b_chain_seq"]})
    return len(batch.seals)


def _event_patients(dialect: sa.Dialect) -> sa.Select:
    """Every (patient_id, event_seq) pair of the events' patient lists, as rows; add a WHERE."""
    patient = elements_of(AuditEvent.patient_ids, dialect)
    return (sa.select(patient.c.value.label("patient_id"), AuditEvent.seq.label("event_seq"))
            .select_from(AuditEvent).join(patient, sa.true()))


def _index_sealed_patients(dialect: sa.Dialect) -> sa.Insert:
    """The patients of the events sealed at places `first`..`last`, into the index by patient, in
    its order, copied by the database: 500 caseload reads are 30,000 pairs, which took 250 ms
    under the write lock as Python parameters and take 30 ms this way."""
    pairs = _event_patients(dialect).where(AuditEvent.chain_seq.between(sa.bindparam("first"), sa.bindparam("last")))
    return AuditPatientIndex.__table__.insert().from_select(
        ["patient_id", "event_seq"], pairs.order_by(*pairs.selected_columns))


@dataclasses.dataclass
class Unsealed:
    """The tail the sequencer has not chained yet."""

    count: int
    oldest_at: dt.datetime | None

    def lag_seconds(self, now: dt.datetime) -> float:
        """How long the oldest unsealed event has waited (0 when none waits)."""
        return max(0.0, (now - self.oldest_at).total_seconds()) if self.oldest_at else 0.0


def unsealed(waiting: outbox.Waiting | None = None) -> Unsealed:
    """How many events wait for the sequencer, and when the oldest happened (the tail only), with
    SQLite's outbox (`waiting`, or read now): read first, before the trail's snapshot begins, so
    an event moved meanwhile is counted twice, never missed."""
    waiting = outbox.waiting(outbox.engine()) if waiting is None else waiting
    row = db.session.execute(sa.select(sa.func.count(), sa.func.min(AuditEvent.occurred_at)).where(UNSEALED)).one()
    return Unsealed(*dataclasses.astuple(waiting.plus(row[0], row[1])))


def compute_hash(event, patient_ids: Iterable[uuid.UUID], *, chain_seq: int | None = None,
                 prev_hash: str | None = None) -> str:
    """HMAC-SHA256 over the event's canonical JSON, which includes its place in the chain and
    the previous event's hash (the event's own, or those given when sealing it). `event` is
    an AuditEvent or a row of its table."""
    canonical = {
        "seq": event.chain_seq if chain_seq is None else chain_seq,
        "id": str(event.id),
        "occurred_at": event.occurred_at.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "actor_id": _str(event.actor_id),
        "actor_username": event.actor_username,
        "actor_role": event.actor_role,
        "device_session_id": _str(event.device_session_id),
        "action": event.action,
        "status_code": event.status_code,
        "resource_type": event.resource_type,
        "resource_id": event.resource_id,
        "patient_ids": sorted(str(p) for p in patient_ids),
        "request_id": event.request_id,
        "client_ip": event.client_ip,
        "details": event.details,
        "prev_hash": event.prev_hash if prev_hash is None else prev_hash,
    }
    payload = json.dumps(canonical, sort_keys=True, separators=(",", ":"), default=str)
    key = current_app.config["AUDIT_HMAC_KEY"].encode()
    return hmac.new(key, payload.encode(), hashlib.sha256).hexdigest()


def _str(value: object | None) -> str | None:
    return None if value is None else str(value)


@dataclasses.dataclass
class ChainProblem:
    """The first place the chain does not hold, for `audit verify` to name."""

    seq: int
    event_id: str | None
    reason: str


@dataclasses.dataclass
class ChainCheck:
    """What `verify_chain` found: how far the chain holds, up to which head, and the first problem."""

    #: Events whose links and hashes were checked and held.
    checked: int
    #: The head the walk stopped at (read first, so a live system verifies cleanly).
    head_seq: int
    head_hash: str
    #: Anchors at or below the head (each matched unless `problem` says otherwise).
    anchors_covered: int
    problem: ChainProblem | None
    #: The events not sealed yet (checked by nothing but the append-only triggers).
    unsealed: Unsealed | None = None


def chain_head() -> tuple[int, str]:
    head = db.session.get(AuditChainHead, _CHAIN_HEAD_ID, populate_existing=True)
    return head.last_seq, head.last_hash


def verify_chain(batch_size: int = 1000, anchors: dict[int, str] | None = None) -> ChainCheck:
    """Walk the sealed chain up to the head as it stands now and report how far it holds, and
    the unsealed tail. Events sealed meanwhile are left for the next run, so a live system
    verifies cleanly; on SQLite the walk reads a snapshot without blocking writers.

    `anchors` maps sequence numbers to hashes recorded outside the database (the clock logs
    the head regularly): they catch a rewrite by someone holding the key, or a cut tail —
    such as a restore from a backup older than the newest anchor."""
    anchors = anchors or {}
    waiting = outbox.waiting(outbox.engine())  # before the snapshot (see `unsealed`)
    if not db.session().in_transaction():
        db.session.connection(execution_options={"sqlite_begin": "DEFERRED"})
    head = db.session.get(AuditChainHead, _CHAIN_HEAD_ID)
    if head is None:
        return ChainCheck(0, 0, GENESIS_HASH, 0, ChainProblem(0, None, "the chain head is missing"))
    head_seq, head_hash = head.last_seq, head.last_hash
    covered = sum(1 for seq in anchors if 0 < seq <= head_seq)
    tail = unsealed(waiting)

    def result(checked: int, problem: ChainProblem | None = None) -> ChainCheck:
        return ChainCheck(checked, head_seq, head_hash, covered, problem, tail)

    expected_prev, expected_seq, checked = GENESIS_HASH, 1, 0
    for event in _events_in_order(batch_size, up_to=head_seq):
        if event.chain_seq != expected_seq:
            return result(checked, ChainProblem(expected_seq, None, f"event {expected_seq} is missing"))
        if event.prev_hash != expected_prev:
            return result(checked, ChainProblem(event.chain_seq, str(event.id),
                                                "prev_hash does not match the previous event"))
        if compute_hash(event, event.patient_ids) != event.hash:
            return result(checked, ChainProblem(event.chain_seq, str(event.id), "contents do not match its hash"))
        if event.chain_seq in anchors and anchors[event.chain_seq] != event.hash:
            return result(checked, ChainProblem(event.chain_seq, str(event.id),
                                                "hash differs from the anchor recorded for it"))
        expected_prev, expected_seq, checked = event.hash, event.chain_seq + 1, checked + 1
    if checked != head_seq or expected_prev != head_hash:
        return result(checked, ChainProblem(expected_seq, None, "the newest events are missing (chain head is ahead)"))
    misstored = _patient_lists_not_as_written(head_seq)
    if misstored:
        return result(checked, ChainProblem(
            head_seq, None, f"{misstored} sealed events hold their patients in a form Bridgeline never writes "
                            "(edited by hand: a patient's access history could differ from what the hash covers)"))
    misindexed = _patient_index_mismatch(head_seq)
    if misindexed:
        return result(checked, ChainProblem(
            head_seq, None, f"the index by patient does not match the sealed events' patients: "
                            f"{misindexed} (patient, event) pairs missing from it or extra in it "
                            "(a patient's access history would be wrong)"))
    beyond = [seq for seq in anchors if seq > head_seq]
    if beyond:
        return result(checked, ChainProblem(
            head_seq + 1, None,
            f"an anchored event is missing (the chain was cut short): the chain ends at event {head_seq}, "
            f"but an anchor was recorded at event {max(beyond)} (the database predates that anchor, "
            "or its newest events were removed)"))
    return result(checked)


def _patient_lists_not_as_written(head_seq: int) -> int:
    """On SQLite an event's patients are JSON text, which the hash reads with Python and the
    index and a patient's history read with SQLite's `json_each`: how many sealed events hold
    text other than what Bridgeline writes (a compact JSON array of 32-digit lowercase hex ids),
    on which the two readings could differ (an object with a repeated key, an id in another
    form). Only a hand-edit makes such text. PostgreSQL's `uuid[]` has one form."""
    if db.session.connection().dialect.name != "sqlite":
        return 0
    return db.session.execute(sa.text(
        "SELECT count(*) FROM audit_events WHERE chain_seq <= :head AND patient_ids IS NOT NULL AND "
        "CASE WHEN json_valid(patient_ids) AND json_type(patient_ids) = 'array' THEN "
        "  patient_ids <> (SELECT json_group_array(value) FROM json_each(audit_events.patient_ids)) "
        "  OR EXISTS (SELECT 1 FROM json_each(audit_events.patient_ids) "
        "             WHERE type <> 'text' OR length(value) <> 32 OR value GLOB '*[^0-9a-f]*') "
        "ELSE 1 END"), {"head": head_seq}).scalar_one()


def _patient_index_mismatch(head_seq: int) -> int:
    """How many (patient, event) pairs of the events sealed up to `head_seq` the index by patient
    lacks, plus how many it has that no such event touched, plus its entries whose event does not
    exist at all (no foreign key refuses them: migration 0021). Those events and their index
    entries were committed together and never change, so the count does not depend on when each
    statement's snapshot was taken."""
    touched = _event_patients(db.session.connection().dialect).where(AuditEvent.chain_seq <= head_seq)
    indexed = (sa.select(AuditPatientIndex.patient_id, AuditPatientIndex.event_seq)
               .join(AuditEvent, AuditEvent.seq == AuditPatientIndex.event_seq)
               .where(AuditEvent.chain_seq <= head_seq))
    mismatched = sum(db.session.scalar(sa.select(sa.func.count()).select_from(sa.except_(a, b).subquery()))
                     for a, b in ((touched, indexed), (indexed, touched)))
    orphans = db.session.scalar(sa.select(sa.func.count()).select_from(AuditPatientIndex).where(
        ~sa.exists().where(AuditEvent.seq == AuditPatientIndex.event_seq)))
    return mismatched + orphans


def _events_in_order(batch_size: int, *, up_to: int) -> Iterator[AuditEvent]:
    last = 0
    while True:
        batch = db.session.scalars(
            sa.select(AuditEvent).where(AuditEvent.chain_seq > last, AuditEvent.chain_seq <= up_to)
            .order_by(AuditEvent.chain_seq).limit(batch_size).execution_options(populate_existing=True)
        ).all()
        if not batch:
            return
        yield from batch
        last = batch[-1].chain_seq
        db.session.expunge_all()


def events_of_patient(patient_id: uuid.UUID) -> sa.CompoundSelect:
    """The `seq` of every event that touched the patient: the sealed ones from the index by
    patient, the unsealed tail (about a second's events) from the events' own patients. One
    statement, so one snapshot: the sequencer seals events and indexes them in one transaction,
    and an event is never in both parts, nor in neither."""
    unsealed_pairs = _event_patients(db.session.connection().dialect).where(UNSEALED).subquery()
    return sa.union_all(
        sa.select(AuditPatientIndex.event_seq).where(AuditPatientIndex.patient_id == patient_id),
        sa.select(unsealed_pairs.c.event_seq).where(unsealed_pairs.c.patient_id == patient_id))


def list_events(*, patient_id=None, actor_id=None, action=None, since=None, until=None,
                cursor: str | None, limit: int):
    """One page of events, newest first (as they entered the trail: on SQLite a read's event
    enters when the sequencer moves it in from the outbox, a second or so after the writes of the
    same second; its view is marked `outbox.reads_the_trail`), and the next page's cursor."""
    stmt = sa.select(AuditEvent)
    if patient_id is not None:
        stmt = stmt.where(AuditEvent.seq.in_(events_of_patient(patient_id)))
    if actor_id is not None:
        stmt = stmt.where(AuditEvent.actor_id == actor_id)
    if action is not None:
        stmt = stmt.where(AuditEvent.action == action)
    if since is not None:
        stmt = stmt.where(AuditEvent.occurred_at >= since)
    if until is not None:
        stmt = stmt.where(AuditEvent.occurred_at < until)
    events, next_cursor = keyset_page(stmt, keys=[AuditEvent.seq], cursor=cursor, limit=limit,
                                      descending=True, session=db.session)
    # Reading the trail is itself on the trail (who looked at whose history).
    record("audit.read", patient_ids=[patient_id] if patient_id else (),
           details={"actor_id": _str(actor_id), "action": action, "count": len(events)})
    return events, next_cursor
