"""Readiness of the service (database, migrations, clock) and the clock's heartbeat."""

from __future__ import annotations

import sqlalchemy as sa
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from flask import current_app

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


def readiness() -> dict:
    """What `/ready` reports; `ready` is False when the database is unreachable or behind."""
    heads = _migration_heads()
    report = {
        "database": "unreachable",
        "migrations": {"current": [], "head": sorted(heads), "up_to_date": False},
        "clock": {"last_heartbeat_at": None},
    }
    try:
        connection = db.session.connection()
        current = set(MigrationContext.configure(connection).get_current_heads())
        report["database"] = "ok"
    except sa.exc.SQLAlchemyError:
        db.session.rollback()
        report["ready"] = False
        return report
    up_to_date = current == heads
    report["migrations"].update(current=sorted(current), up_to_date=up_to_date)
    if up_to_date:
        beat = db.session.get(JobHeartbeat, HEARTBEAT_JOB)
        report["clock"]["last_heartbeat_at"] = beat.last_run_at.isoformat() if beat else None
    report["ready"] = up_to_date
    return report
