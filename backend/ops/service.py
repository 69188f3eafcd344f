"""Readiness of the service (database, migrations, clock) and the clock's heartbeat."""

from __future__ import annotations

import sqlalchemy as sa
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from flask import current_app

from backend import errors, unit_of_work, watchdog
from backend.audit import service as audit_service
from backend.database import upsert, utcnow
from backend.extensions import db, migrate
from backend.ops.models import JobHeartbeat

HEARTBEAT_JOB = "heartbeat"


def record_heartbeat(*, job_name: str = HEARTBEAT_JOB) -> None:
    now = utcnow()
    db.session.execute(upsert(JobHeartbeat, {"job_name": job_name, "last_run_at": now},
                              index_elements=["job_name"], update={"last_run_at": now},
                              dialect=db.engine.dialect.name))


def _migration_heads() -> set[str]:
    cache = current_app.extensions.setdefault("bridgeline.migration_heads", {})
    if "heads" not in cache:
        script = ScriptDirectory.from_config(migrate.get_config())
        cache["heads"] = set(script.get_heads())
    return cache["heads"]


#: `/ready` answers within 2 s whatever the database does: it gives the database this long.
READY_WAIT_SECONDS = 1.0
READINESS_JOB = "readiness"


def readiness_and_commit() -> dict:
    """What `/ready` reports; `ready` is False unless the database answers, its migrations are
    current and it takes a write (a row of its own, committed: a full disk or a read-only
    database fails here, as a frozen one fails the watchdog's probe), each within a second."""
    heads = _migration_heads()
    report = {
        "database": "unreachable",
        "migrations": {"current": [], "head": sorted(heads), "up_to_date": False},
        "clock": {"last_heartbeat_at": None},
        "audit": {"unsealed_events": None, "seal_lag_seconds": None},
        "ready": False,
    }
    dog = watchdog.of(current_app)
    if dog is not None and not dog.server_answers(timeout=READY_WAIT_SECONDS):
        report["database"] = "not_answering"
        return report
    try:
        connection = db.session.connection(  # it writes: the write lock from the start, as for any writer
            execution_options={"sqlite_busy_timeout_ms": int(READY_WAIT_SECONDS * 1000), "sqlite_begin": "IMMEDIATE"})
        if connection.dialect.name == "postgresql":
            connection.exec_driver_sql(f"SET LOCAL statement_timeout = {int(READY_WAIT_SECONDS * 1000)}")
        current = set(MigrationContext.configure(connection).get_current_heads())
    except sa.exc.SQLAlchemyError as exc:
        unit_of_work.roll_back(None)
        report["database"] = "not_writable" if errors.cannot_write(exc) else "unreachable"
        return report
    report["database"] = "ok"
    up_to_date = current == heads
    report["migrations"].update(current=sorted(current), up_to_date=up_to_date)
    if not up_to_date:
        return report
    beat = db.session.get(JobHeartbeat, HEARTBEAT_JOB)
    report["clock"]["last_heartbeat_at"] = beat.last_run_at.isoformat() if beat else None
    tail = audit_service.unsealed()  # with SQLite's audit outbox
    report["audit"].update(unsealed_events=tail.count,
                           seal_lag_seconds=int(tail.lag_seconds(utcnow())))  # whole seconds (metrics: exact)
    try:
        record_heartbeat(job_name=READINESS_JOB)
        unit_of_work.commit()
    except sa.exc.SQLAlchemyError:
        unit_of_work.roll_back(None)
        report["database"] = "not_writable"
        return report
    report["ready"] = True
    return report
