"""SQLite's outbox for the audit events written without a change: a file beside the database.

On SQLite the events of a unit of work that changed nothing — a read, or a unit that failed and
was rolled back — are written to `<database>-audit-outbox` (a database of one table), not to the
database itself; the sequencer moves them into the trail before it seals (`move_and_commit`,
every second), and a view that reads the trail (marked `reads_the_trail`) has them copied in
before its request begins (`copy_into_trail_and_commit`, by `backend.web`). Such an
event never had a change to commit with: it has always been written in a transaction of its
own, after the read's (`backend.unit_of_work`). It is on disk, in a WAL-mode file, before the
answer leaves, as before; only the file differs.

Why: SQLite keeps a page cache per connection, and a connection that finds another process has
written the file (any write: one audit event) empties its whole cache before its next read. With
every read writing its event to the database, each worker emptied the other's cache at every
request: 244-325 page reads a caseload request with 2 workers (strace; 16 with the outbox), and
2 workers served only 1.45-1.58x what 1 does. The outbox has its own file, so its own cache: a
read no longer costs the other workers theirs. PostgreSQL's cache is shared by every connection,
so there the events go straight into the trail and there is no outbox.

What the outbox keeps: its rows carry every column of the event but its place in the chain and
its hashes (the sequencer gives those, from the row as moved). A trigger refuses UPDATE; DELETE
cannot be refused, being the mover's (it deletes only rows it has committed to the trail), so
for the second or so an event waits there it is guarded by the file's permissions alone, where
the trail's unsealed tail also has a trigger refusing DELETE. Moving is safe when two sequencers
run at once and after a crash between the two steps: an event is inserted into the trail only if
its `id` is not there yet, and deleted from the outbox only after that insert committed. The
rows' numbers are never reused (AUTOINCREMENT), so "every row up to the last one moved" never
takes a row written since.

Its table is created by the code (at each new connection, if missing), not by the migrations:
the outbox is a queue of the trail's rows, emptied every second. A migration that changes the
audit event's columns must move the outbox first (`move_and_commit`) and change this table too;
until then the move fails, and the sequencer logs an error at every run and seals the rest.
Back up the outbox with the database, and before it: its rows are the last second's reads, and
an event moved between the two copies is then in both (moved once, by its id), never in neither.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import os
import sqlite3

import sqlalchemy as sa
from flask import current_app
from sqlalchemy.dialects import sqlite

from backend.audit.models import AuditEvent
from backend.extensions import db

log = logging.getLogger(__name__)

#: The outbox's file: the database's path with this after it.
SUFFIX = "-audit-outbox"

#: The columns an outbox row carries: the event's, less its insertion number and its seal.
COLUMNS = ["id", "occurred_at", "actor_id", "actor_username", "actor_role", "device_session_id", "action",
           "status_code", "resource_type", "resource_id", "request_id", "client_ip", "details", "patient_ids"]

_metadata = sa.MetaData()
TABLE = sa.Table(
    "audit_outbox", _metadata,
    sa.Column("n", sa.Integer, primary_key=True),
    *(sa.Column(name, AuditEvent.__table__.c[name].type, nullable=AuditEvent.__table__.c[name].nullable)
      for name in COLUMNS),
    sqlite_autoincrement=True,
)
_NO_UPDATE = ("CREATE TRIGGER IF NOT EXISTS audit_outbox_no_update BEFORE UPDATE ON audit_outbox "
              "BEGIN SELECT RAISE(ABORT, 'audit events are append-only'); END")

#: Where the app keeps its outbox's engine (None: no outbox).
EXTENSION = "bridgeline.audit_outbox"

#: What a broken outbox raises: the database's errors, and the file system's (its writers' lock
#: file is opened before SQLite opens the database).
FAILURES = (sa.exc.SQLAlchemyError, sqlite3.Error, OSError)

#: Events moved per statement (the sequencer moves a second's at a time: a few hundred).
MOVE_BATCH = 2000


def init_app(app) -> None:
    """Give the app an outbox when its database is an SQLite file (none in memory, none on
    PostgreSQL). Its engine connects only when first used, with the database's own options
    (WAL, the writers' queue on `<outbox>-writer.lock`, the busy timeout)."""
    url = sa.engine.make_url(app.config["SQLALCHEMY_DATABASE_URI"])
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:") \
            or url.database.startswith("file:"):
        app.extensions[EXTENSION] = None
        return
    options = app.config["SQLALCHEMY_ENGINE_OPTIONS"]
    engine = sa.create_engine(url.set(database=url.database + SUFFIX), hide_parameters=True,
                              connect_args=options.get("connect_args", {}),
                              execution_options=options.get("execution_options", {}))
    sa.event.listen(engine, "connect", _create_table)
    app.extensions[EXTENSION] = engine


def _create_table(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute(str(sa.schema.CreateTable(TABLE, if_not_exists=True).compile(dialect=sqlite.dialect())))
    cursor.execute(_NO_UPDATE)
    cursor.close()


def engine() -> sa.Engine | None:
    """This app's outbox, or None where the events go straight into the trail."""
    return current_app.extensions.get(EXTENSION)


def _exists(outbox: sa.Engine) -> bool:
    """Whether the outbox's file is there yet (the first event written makes it): readers do not
    make it, which would write (on a full disk, fail) where there is nothing to read."""
    return os.path.exists(outbox.url.database)


def append_and_commit(rows: list[dict]) -> None:
    """Write events (rows of the trail's columns in `COLUMNS`) in a transaction of the outbox's
    own, committed before this returns."""
    with engine().begin() as connection:
        connection.execute(TABLE.insert(), rows)


#: The rows as stored, moved without a Python value made of any column: the outbox's columns have
#: the trail's types, so their text is what the trail would have stored (a caseload read's 60
#: patient ids made into UUIDs and back cost the clock 0.25 ms an event).
_STORED = f"SELECT n, {', '.join(COLUMNS)} FROM audit_outbox ORDER BY n LIMIT ?"
_INTO_TRAIL = (f"INSERT INTO audit_events ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))}) "
               "ON CONFLICT (id) DO NOTHING")


def _waiting(connection: sa.Connection, limit: int | None) -> list[tuple]:
    """The outbox's oldest rows as stored, `n` first (SQLite reads LIMIT -1 as no limit)."""
    return [tuple(row) for row in connection.exec_driver_sql(_STORED, (-1 if limit is None else limit,))]


def _insert_into_trail(connection: sa.Connection, rows: list[tuple]) -> None:
    """Insert the rows into the trail (unsealed, like any new event) unless an event with the same
    id is there already: moved by another sequencer, or copied in for a reader."""
    connection.exec_driver_sql(_INTO_TRAIL, [row[1:] for row in rows])


#: The mark of `reads_the_trail`.
READS_TRAIL_MARK = "bridgeline_reads_audit_trail"


def reads_the_trail(view):
    """Mark a view that lists the trail: before its request begins, `backend.web` copies the
    outbox's events into the trail (`copy_into_trail_and_commit`), so it lists every event
    committed before it, and the view itself still reads a snapshot without the write lock."""
    setattr(view, READS_TRAIL_MARK, True)
    return view


def copy_into_trail_and_commit() -> int:
    """Copy the outbox's events into the trail in a short write transaction of its own, on a
    connection of its own, and commit. The rows stay in the outbox; the sequencer deletes them
    when it next moves them (their ids are then in the trail: nothing is inserted twice). Until
    then they are counted twice in the unsealed tail. Returns how many rows were copied or already
    there."""
    outbox = engine()
    if outbox is None or not _exists(outbox):
        return 0
    rows = _read(outbox, None)
    if rows:
        with db.engine.connect() as connection:
            with connection.execution_options(sqlite_begin="IMMEDIATE").begin():
                for start in range(0, len(rows), MOVE_BATCH):
                    _insert_into_trail(connection, rows[start:start + MOVE_BATCH])
    return len(rows)


def _read(outbox: sa.Engine, limit: int | None) -> list[tuple]:
    with outbox.connect() as connection:
        with connection.execution_options(sqlite_begin="DEFERRED").begin():
            return _waiting(connection, limit)


def move_and_commit(batch: int = MOVE_BATCH) -> int:
    """The sequencer's first step: move the outbox's oldest `batch` events into the trail (commit)
    then delete them from the outbox (a second commit, on the outbox). Returns how many it moved.
    A crash between the two commits leaves the events in both: the next move inserts nothing for
    them and deletes them."""
    outbox = engine()
    if outbox is None or not _exists(outbox):
        return 0
    rows = _read(outbox, batch)
    if not rows:
        return 0
    _insert_into_trail(db.session.connection(), rows)
    db.session.commit()
    with outbox.begin() as connection:
        connection.execute(TABLE.delete().where(TABLE.c.n <= rows[-1][0]))
    return len(rows)


@dataclasses.dataclass
class Waiting:
    count: int
    oldest_at: dt.datetime | None

    def plus(self, count: int, oldest_at: dt.datetime | None) -> Waiting:
        """These and the trail's own unsealed tail, together."""
        return Waiting(self.count + count, min((at for at in (oldest_at, self.oldest_at) if at is not None),
                                               default=None))


def waiting(outbox: sa.Engine | None) -> Waiting:
    """How many events wait in the outbox (`engine()`, or None), and when the oldest happened.
    An outbox that cannot be read counts as empty here (the sequencer logs it every second):
    it must not take `/ready` and the metrics down with it."""
    if outbox is None or not _exists(outbox):
        return Waiting(0, None)
    try:
        with outbox.connect() as connection:
            with connection.execution_options(sqlite_begin="DEFERRED").begin():
                count, oldest = connection.execute(sa.select(sa.func.count(), sa.func.min(TABLE.c.occurred_at))).one()
    except FAILURES as exc:
        log.warning("audit outbox could not be read", extra={"exc_type": type(exc).__name__})
        return Waiting(0, None)
    return Waiting(count, oldest)
