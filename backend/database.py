"""The SQLAlchemy foundation every model builds on: declarative base, column types, engine setup.

Holds what is true of the database as a whole: the constraint naming convention Alembic needs,
UTC timestamps that read back timezone-aware on SQLite and PostgreSQL alike, the columns every
domain shares (UUID keys, the optimistic-lock version, enums stored as text), and the SQLite
connection settings (foreign keys on, WAL, transactions that begin with a write lock).
"""

from __future__ import annotations

import contextlib
import contextvars
import datetime as dt
import enum
import fcntl
import functools
import json
import os
import sqlite3
import time
import uuid

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, registry

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> dt.datetime:
    """The current instant, timezone-aware in UTC (the only clock the code reads)."""
    return dt.datetime.now(dt.timezone.utc)


class UTCDateTime(sa.TypeDecorator):
    """A timestamp stored in UTC and always returned timezone-aware.

    SQLite has no timezone type and would hand back naive values; refusing naive input keeps a
    local time from ever being stored as if it were UTC.
    """

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    @property
    def python_type(self) -> type:
        # What a keyset cursor reads a timestamp back as (a TypeDecorator would say `object`,
        # and every list ordered by a timestamp would refuse its own next page).
        return dt.datetime

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(dt.timezone.utc)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def result_processor(self, dialect, coltype):
        """Values read back aware and in UTC (SQLite's naive text is UTC), after the dialect's
        own conversion, in one call per value (a TypeDecorator's `process_result_value` is three;
        a caseload reads some 400 timestamps). SQLite's text is read with its offset appended:
        `datetime.replace(tzinfo=…)` costs five times the parse (0.6 µs)."""
        parse, utc = self.impl_instance.result_processor(dialect, coltype), dt.timezone.utc

        def process(value):
            if value is None:
                return None
            if parse is not None:
                if type(value) is str and _stored_without_offset(value):
                    return _from_iso(value + "+00:00")
                value = parse(value)
            zone = value.tzinfo
            if zone is utc:  # PostgreSQL's, in a UTC session (`create_app`)
                return value
            return value.replace(tzinfo=utc) if zone is None else value.astimezone(utc)
        return process


_from_iso = dt.datetime.fromisoformat


def _stored_without_offset(text: str) -> bool:
    """SQLite's text of a UTC timestamp as SQLAlchemy and SQLite write it: `2026-01-02 03:04:05`,
    with `.678901` or not. Anything else (an offset, `Z`, fewer digits) is parsed the long way."""
    return text[16:17] == ":" and (len(text) == 19 or (len(text) == 26 and text[19] == "." and text[20:].isdigit()))


class RecurringUuid(sa.types.TypeDecorator):
    """A UUID column read through a per-process cache on SQLite, where ids are stored as text and
    parsing one costs 0.7 µs: for ids a process reads again and again (a coach's episodes and
    patients, on every caseload request). PostgreSQL's driver hands UUIDs over already made.
    Use it in a select: `sa.type_coerce(Episode.id, RecurringUuid())`."""

    impl = sa.Uuid
    cache_ok = True

    def result_processor(self, dialect, coltype):
        if self.impl_instance.result_processor(dialect, coltype) is None:
            return None
        return _recurring_uuid


_uuid_from_text = functools.lru_cache(maxsize=1 << 14)(uuid.UUID)  # some 4 MB: a hundred caseloads


def _recurring_uuid(value):
    return None if value is None else _uuid_from_text(value)


class UuidList(sa.types.TypeDecorator):
    """Ids in one column, in one row: PostgreSQL's `uuid[]`; on SQLite a JSON array of the ids as
    its Uuid columns hold them (32 hex digits). An empty list is stored as NULL and NULL read as
    an empty list. `elements_of` reads them as rows."""

    impl = sa.Text
    cache_ok = True

    def load_dialect_impl(self, dialect):
        if dialect.name == "postgresql":
            return dialect.type_descriptor(postgresql.ARRAY(sa.Uuid()))
        return dialect.type_descriptor(sa.Text())

    def process_bind_param(self, value, dialect):
        if not value:
            return None
        if dialect.name == "postgresql":
            return list(value)
        return json.dumps([v.hex for v in value], separators=(",", ":"))

    def process_result_value(self, value, dialect):
        if value is None:
            return []
        if dialect.name == "postgresql":
            return list(value)
        return [uuid.UUID(v) for v in json.loads(value)]


def elements_of(column, dialect: sa.Dialect) -> sa.TableValuedAlias:
    """A `UuidList` column's ids as rows of one column, `value` (PostgreSQL's `unnest`, SQLite's
    `json_each`), to select from beside the column's table."""
    value = sa.column("value", sa.Uuid())
    if dialect.name == "postgresql":
        return sa.func.unnest(column).table_valued(value).render_derived()  # AS anon_1(value)
    return sa.func.json_each(column).table_valued(value)  # its columns have their names


class epoch_ms(sa.sql.functions.FunctionElement):  # noqa: N801 (an SQL function)
    """A timestamp as whole milliseconds since 1970 (an integer), for exact arithmetic on
    instants in SQL on both databases: SQLite keeps timestamps as text, and its date functions
    work to the millisecond."""

    type = sa.BigInteger()
    inherit_cache = True


@compiles(epoch_ms)
def _epoch_ms_sqlite(element, compiler, **kw):
    # julianday() resolves to ~50 µs, so rounding to the millisecond is exact.
    return f"CAST(round((julianday({compiler.process(element.clauses, **kw)}) - 2440587.5) * 86400000.0) AS INTEGER)"


@compiles(epoch_ms, "postgresql")
def _epoch_ms_postgresql(element, compiler, **kw):
    # date_part() is float8 arithmetic (EXTRACT is numeric, several times slower); exact to the µs.
    return f"CAST(round(date_part('epoch', {compiler.process(element.clauses, **kw)}) * 1000) AS BIGINT)"


class Base(DeclarativeBase):
    registry = registry(
        metadata=sa.MetaData(naming_convention=NAMING_CONVENTION),
        type_annotation_map={dt.datetime: UTCDateTime},
    )


class UUIDPrimaryKey:
    """Mixin: a UUID primary key generated by the application (clients may also supply one)."""

    #: Public identifier, a UUID.
    id: Mapped[uuid.UUID] = mapped_column(sa.Uuid, primary_key=True, default=uuid.uuid4)


class Versioned:
    """Mixin: an optimistic-lock version, bumped by the ORM on every UPDATE, so a stale edit can
    never overwrite a newer one (the record's ETag; `If-Match` is checked against it)."""

    #: Starts at 1; the ETag of the record.
    version: Mapped[int] = mapped_column(default=1)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    @sa.orm.declared_attr.directive
    def __mapper_args__(cls):  # noqa: N805
        return {"version_id_col": cls.version}


def enum_column(cls: type[enum.Enum], name: str, *, length: int, constraint: bool = True) -> sa.Enum:
    """A column type holding a Python enum's values as text (not a native database enum, so a new
    value is a code change and a CHECK constraint, never an ALTER TYPE). `constraint=False` for
    columns whose migrations created no CHECK (the values are then checked by the code alone)."""
    return sa.Enum(cls, name=name, native_enum=False, create_constraint=constraint, length=length,
                   values_callable=lambda members: [m.value for m in members])


@sa.event.listens_for(sa.engine.Engine, "connect")
def _configure_sqlite_connection(dbapi_connection, _record) -> None:
    if not isinstance(dbapi_connection, sqlite3.Connection):
        return
    # Take transaction control from the sqlite3 module (which would begin lazily and break
    # SAVEPOINTs and transactional DDL); `_begin_sqlite_transaction` issues BEGIN instead.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    # A 64 MB page cache (the default is 2 MB) and temporary B-trees in memory: the outcomes
    # report's sorts and groupings over a year of records run about a quarter faster.
    cursor.execute("PRAGMA cache_size=-65536")
    cursor.execute("PRAGMA temp_store=MEMORY")
    cursor.close()


#: Seconds a pooled connection may sit unused before it is checked with a round trip when lent.
IDLE_BEFORE_PING = 1.0


def ping_when_idle(engine: sa.Engine, *, after: float = IDLE_BEFORE_PING) -> None:
    """Before the pool lends a connection that sat unused for over `after` seconds, check it with
    a round trip (`SELECT 1`); if it died meanwhile (the server restarted, a failover, the
    watchdog shut its socket), the pool replaces it and the request never sees it.

    SQLAlchemy's `pool_pre_ping` checks every connection it lends: a round trip on every request,
    though a connection back in the pool within the second answered a moment ago (5 % of a
    caseload request's time in a profile on PostgreSQL; 0.06 ms of its CPU). The price: a
    connection that dies while in use, or within a second of its last use (a failover under
    load), fails one request with a 503 per worker; that failure invalidates the pool's other
    connections, and the next request gets a new one."""
    @sa.event.listens_for(engine, "checkin")
    def returned(_dbapi_connection, record) -> None:
        record.info["returned_at"] = time.monotonic()

    @sa.event.listens_for(engine, "checkout")
    def lent(dbapi_connection, record, _proxy) -> None:
        returned_at = record.info.get("returned_at")
        if returned_at is None or time.monotonic() - returned_at <= after:
            return  # new, or back from use within the second
        try:
            engine.dialect.do_ping(dbapi_connection)
        except engine.dialect.loaded_dbapi.Error as error:  # the pool connects anew, then lends that
            raise sa.exc.DisconnectionError("a pooled connection died while idle") from error


#: Set while a unit of work only reads (an HTTP GET): its SQLite transactions begin DEFERRED.
_READING = contextvars.ContextVar("bridgeline.sqlite_reading", default=False)


@contextlib.contextmanager
def sqlite_reads_deferred():
    """Within the block, SQLite transactions that ask for nothing else begin DEFERRED: a WAL
    snapshot that takes no lock and never waits for a writer. The unit of work ends that read
    transaction before it writes the request's audit events in a short write transaction of
    their own (`backend.unit_of_work`)."""
    token = _READING.set(True)
    try:
        yield
    finally:
        _READING.reset(token)


#: The mark of `takes_write_lock`.
WRITES_MARK = "bridgeline_writes"


def takes_write_lock(view):
    """Mark a view that writes although its method only reads (the outcomes report brings its
    stored facts up to date): on SQLite it begins with the write lock like any writer, since a
    read transaction that then writes fails when another process wrote meanwhile."""
    setattr(view, WRITES_MARK, True)
    return view


def reading() -> bool:
    return _READING.get()


_WRITING_STATEMENTS = ("INSERT", "UPDATE", "DELETE", "REPLACE")


@sa.event.listens_for(sa.engine.Engine, "before_cursor_execute")
def _no_writes_while_reading(connection, _cursor, statement, *_args) -> None:
    """A GET that writes without `takes_write_lock` would upgrade its read transaction, and
    fail whenever another process wrote since it began: the tests (`TESTING`) refuse it. A
    transaction that asked for the write lock at BEGIN (`sqlite_begin="IMMEDIATE"`) upgrades
    nothing."""
    if _READING.get() and connection.dialect.name == "sqlite" \
            and statement.lstrip()[:7].upper().startswith(_WRITING_STATEMENTS) and _strict() \
            and connection.get_execution_options().get("sqlite_begin") != "IMMEDIATE":
        raise RuntimeError(f"a read-only request wrote ({statement.split(None, 3)[:3]}): mark its view "
                           "with backend.database.takes_write_lock")


def _strict() -> bool:
    from flask import current_app, has_app_context

    return has_app_context() and current_app.testing


def stop_reading() -> None:
    """From here the unit of work writes: later transactions take the write lock at BEGIN."""
    _READING.set(False)


@sa.event.listens_for(sa.engine.Engine, "begin")
def _begin_sqlite_transaction(connection) -> None:
    if connection.dialect.name == "sqlite":
        # Writers take the write lock at BEGIN (IMMEDIATE): a deferred transaction that reads and
        # then writes fails with SQLITE_BUSY when another process wrote in between; waiting for
        # the lock does not. Readers — a request that only reads (`sqlite_reads_deferred`), or
        # long read-only work that asks for `execution_options(sqlite_begin="DEFERRED")` — read
        # a snapshot that neither blocks writers nor waits for them. An explicit option wins.
        options = connection.get_execution_options()
        # How long to wait for another writer's lock: DATABASE_BUSY_TIMEOUT_SECONDS (an engine
        # option), or shorter for one transaction (readiness). Checked at every BEGIN, set on
        # the DBAPI connection only when it differs from what that connection last had.
        timeout_ms = options.get("sqlite_busy_timeout_ms")
        info = connection.connection.info
        if timeout_ms is not None and info.get("busy_timeout_ms") != timeout_ms:
            connection.exec_driver_sql(f"PRAGMA busy_timeout = {int(timeout_ms)}")
            info["busy_timeout_ms"] = timeout_ms
        mode = options.get("sqlite_begin") or ("DEFERRED" if _READING.get() else "IMMEDIATE")
        if mode == "DEFERRED":
            connection.exec_driver_sql("BEGIN DEFERRED")
            return
        dbapi_connection = connection.connection.dbapi_connection
        if isinstance(dbapi_connection, WriterQueueConnection):
            dbapi_connection.queue_for_writing(timeout_ms / 1000 if timeout_ms is not None else 5.0)
        connection.exec_driver_sql("BEGIN IMMEDIATE")


class WriterQueueConnection(sqlite3.Connection):
    """An SQLite connection whose writers queue on a lock file before `BEGIN IMMEDIATE`.

    SQLite's own wait for the write lock is sleep-and-retry (sleeps of up to 100 ms): a writer
    that just committed takes the lock again before a sleeping one wakes, and with two workers
    one starves the other (p99 of seconds). Here every writer of every process waits on an
    exclusive `flock` of `<database>-writer.lock` instead, polled every 0.2–1 ms, and releases it
    the moment its transaction ends (commit or rollback), so the lock is handed on at once.
    SQLite's lock and busy timeout still guard against writers outside the application (the
    `sqlite3` shell, a backup): they are waited for after the queue, within the same timeout.
    In-memory databases have no file and no queue."""

    _lock_fd: int | None = None
    _holding = False

    def queue_for_writing(self, timeout: float) -> None:
        if self._lock_fd is None:
            path = self.execute("PRAGMA database_list").fetchone()[2]
            if not path:
                self._lock_fd = -1
                return
            self._lock_fd = os.open(f"{path}-writer.lock", os.O_RDWR | os.O_CREAT, 0o600)
        if self._lock_fd < 0 or self._holding:
            return
        deadline, pause = time.monotonic() + timeout, 0.0002
        while True:
            try:
                fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                self._holding = True
                return
            except BlockingIOError:
                if time.monotonic() >= deadline:  # as SQLite's own busy timeout would end (503, Retry-After)
                    raise sa.exc.OperationalError("BEGIN IMMEDIATE", None, sqlite3.OperationalError(
                        "database is locked (waited for the application's other writers)")) from None
                time.sleep(pause)
                pause = min(pause * 2, 0.001)

    def _leave_queue(self) -> None:
        if self._holding:
            self._holding = False
            fcntl.flock(self._lock_fd, fcntl.LOCK_UN)

    def commit(self) -> None:
        try:
            super().commit()
        finally:
            self._leave_queue()

    def rollback(self) -> None:
        try:
            super().rollback()
        finally:
            self._leave_queue()

    def close(self) -> None:
        try:
            super().close()
        finally:
            self._leave_queue()
            if self._lock_fd is not None and self._lock_fd >= 0:
                os.close(self._lock_fd)
                self._lock_fd = None


def upsert(model, values: dict | None, *, index_elements: list[str], update: dict | None, dialect: str,
           index_where: sa.ColumnElement[bool] | None = None):
    """INSERT … ON CONFLICT DO UPDATE (or DO NOTHING when `update` is None), for SQLite or
    PostgreSQL (`dialect` is the engine's name). Without `values`, execute it with a list of rows
    (one compiled statement for them all). `index_where` names a partial unique index."""
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    stmt = insert(model) if values is None else insert(model).values(**values)
    if update is None:
        return stmt.on_conflict_do_nothing(index_elements=index_elements, index_where=index_where)
    return stmt.on_conflict_do_update(index_elements=index_elements, index_where=index_where, set_=update)


@contextlib.contextmanager
def foreign_keys_off_for_migration(connection: sa.Connection):
    """SQLite only: let batch migrations rebuild tables that others reference.

    Alembic's batch mode copies a table, drops the old one and renames the copy; with foreign
    keys on, dropping a referenced table fails (or cascades, deleting rows). The pragma only
    takes effect outside a transaction, so this must wrap the migration's transaction; call
    `check_foreign_keys` inside it, before the commit.
    """
    if connection.dialect.name != "sqlite":
        yield
        return
    raw = connection.connection.driver_connection
    raw.execute("PRAGMA foreign_keys=OFF")
    try:
        yield
    finally:
        raw.execute("PRAGMA foreign_keys=ON")


def check_foreign_keys(connection: sa.Connection) -> None:
    """SQLite only: refuse to commit a migration that left rows pointing nowhere."""
    if connection.dialect.name != "sqlite":
        return
    broken = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
    if broken:
        tables = sorted({row[0] for row in broken})
        raise RuntimeError(f"the migration left {len(broken)} rows with broken foreign keys in {tables}")

