"""How the caseload's statement reaches the database: one text whatever the coach, its constants
written into it, and on PostgreSQL one plan made once for every coach."""

from __future__ import annotations

import uuid

import pytest
import sqlalchemy as sa

from backend.caseload import service
from backend.database import utcnow
from backend.extensions import db
from backend.query_plans import plan_once_as_lookups


def _sent(run):
    """The SQL text and parameters of the caseload statement as the driver received them."""
    sent = []

    def capture(_conn, _cursor, statement, parameters, *_args):
        if "episode_contacts" in statement:
            sent.append((statement, parameters))

    sa.event.listen(db.engine, "before_cursor_execute", capture)
    try:
        run()
    finally:
        sa.event.remove(db.engine, "before_cursor_execute", capture)
    return sent


def test_the_caseload_statement_leaves_only_the_coach_and_the_instants_as_parameters(app, ctx):
    """Its statuses, kinds and directions are written into the SQL: a plan made once for any
    coach still sees which status each condition asks for and which partial index answers it."""
    first, second = uuid.uuid4(), uuid.uuid4()
    now = utcnow()
    sent = _sent(lambda: [service._coach_rows(coach, now) for coach in (first, second)])
    (text, parameters), (other_text, _) = sent
    assert text == other_text
    instants = service._instants(now)
    if db.engine.dialect.name == "postgresql":
        assert set(parameters) <= {"coach_id", *instants}
    else:
        stored = {first.hex, *(moment.replace(tzinfo=None).isoformat(" ") for moment in instants.values())}
        assert set(parameters) <= stored | {0}  # SQLite's dialect sends a subquery's OFFSET 0 as a parameter
    for constant in ("'open'", "'scheduled'", "'missed'", "'inbound'"):
        assert constant in text


def test_on_postgresql_every_caseload_is_served_by_the_one_generic_plan_of_lookups(app, ctx):
    if db.engine.dialect.name != "postgresql":
        pytest.skip("PostgreSQL's plan cache (SQLite plans each prepared statement once anyway)")
    for _ in range(8):  # the driver prepares a statement on its sixth execution
        service._coach_rows(uuid.uuid4(), utcnow())
    generic, custom = db.session.execute(sa.text(
        "SELECT generic_plans, custom_plans FROM pg_prepared_statements "
        "WHERE statement LIKE '%episode_contacts%'")).one()
    assert generic >= 1 and custom == 0


def test_on_postgresql_the_caseloads_plan_settings_end_with_its_transaction(app, ctx):
    """A committed transaction, then the next one on the same connection: planned as usual."""
    if db.engine.dialect.name != "postgresql":
        pytest.skip("PostgreSQL's planner settings")

    def settings(connection):
        return [connection.exec_driver_sql(f"SHOW {name}").scalar()
                for name in ("plan_cache_mode", "enable_hashjoin", "enable_mergejoin")]

    with db.engine.connect() as connection:
        with connection.begin():
            plan_once_as_lookups(connection)
            assert settings(connection) == ["force_generic_plan", "off", "off"]
        assert settings(connection) == ["auto", "on", "on"]


def test_a_reads_audit_event_is_one_row_holding_its_patients_written_by_one_statement(app, ctx):
    """A caseload read's 60 patients are written in its event's row, not as 60 rows of their own."""
    from backend import unit_of_work
    from backend.audit import service as audit_service
    from backend.audit.models import AuditEvent
    from tests.support import counted_statements

    patients = sorted(uuid.uuid4() for _ in range(60))
    audit_service.record("caseload.read", patient_ids=reversed(patients))
    with counted_statements(db.engine) as statements:
        unit_of_work.commit()
    writes = [s for s in statements if s.startswith(("INSERT", "WITH", "UPDATE"))]
    assert len(writes) == 1 and writes[0].startswith("INSERT INTO audit_events"), writes
    written = db.session.scalar(sa.select(AuditEvent.patient_ids).where(AuditEvent.action == "caseload.read")
                                .order_by(AuditEvent.seq.desc()).limit(1))
    assert written == patients  # in id order
