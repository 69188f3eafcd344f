"""The audit sequencer: requests write events without a lock; the clock seals them into the chain.

Concurrent writers never share a row, every 201 has its row and its event, two sequencers at
once neither seal an event twice nor fork the chain, a crash mid-batch seals nothing, and the
unsealed tail is reported (`audit verify`, `/ready`, `/metrics`).
"""

from __future__ import annotations

import ipaddress
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
import sqlalchemy as sa

from backend import clock, unit_of_work
from backend.audit import jobs as audit_jobs
from backend.audit import service as audit_service
from backend.audit.models import AuditEvent
from backend.auth.models import Role
from backend.extensions import db
from tests.support import ApiClient, make_user
from tests.support.databases import committing_app

#: An event's patients as rows of their own, as they were kept until migration 0022.
EVENT_PATIENTS_BEFORE_0022 = sa.table("audit_event_patients", sa.column("event_seq"), sa.column("patient_id", sa.Uuid))
WRITERS = 4
PATIENTS_EACH = 6


@pytest.fixture(scope="module")
def busy_app(database_url, tmp_path_factory):
    """One committing app for the module's concurrency tests (each checks its own events)."""
    with committing_app(database_url, tmp_path_factory.mktemp("sequencer")) as app:
        app.config["METRICS_ALLOWED_NETWORKS"] = (ipaddress.ip_network("127.0.0.0/8"),)
        yield app


def _nurses(app, n: int) -> list[ApiClient]:
    nurses = []
    for _ in range(n):
        made = make_user(app, role=Role.ED_NURSE)
        nurse = ApiClient(app.test_client())
        nurse.sign_in(made.username, made.password)
        nurses.append(nurse)
    return nurses


def _register_patients(nurse: ApiClient, tag: str) -> list[tuple[int, str | None]]:
    answers = []
    for n in range(PATIENTS_EACH):
        response = nurse.post("/api/v1/patients", json={
            "mrn": f"SEQ-{tag}-{n}", "given_name": "Alex", "family_name": "Rivera", "birth_date": "1990-04-02"})
        answers.append((response.status_code, (response.get_json() or {}).get("id")))
    return answers


def _write_concurrently(app, tag: str, *, while_writing=None) -> list[tuple[int, str | None]]:
    nurses = _nurses(app, WRITERS)
    barrier = threading.Barrier(WRITERS)

    def write(i: int):
        barrier.wait()
        return _register_patients(nurses[i], f"{tag}{i}")

    with ThreadPoolExecutor(WRITERS + 2) as pool:
        writing = [pool.submit(write, i) for i in range(WRITERS)]
        extra = while_writing(pool, writing) if while_writing else []
        answers = [answer for future in writing for answer in future.result()]
        for future in extra:
            future.result()
    return answers


def _chain_state(app) -> tuple[list[int], int, int]:
    """(every sealed place in the chain, in order; how many events are unsealed; the head)."""
    with app.app_context():
        places = list(db.session.scalars(sa.select(AuditEvent.chain_seq).where(AuditEvent.chain_seq.is_not(None))
                                         .order_by(AuditEvent.chain_seq)))
        return places, audit_service.unsealed().count, audit_service.chain_head()[0]


def _verify(app):
    return app.test_cli_runner().invoke(args=["audit", "verify"])


def test_every_201_under_concurrent_writers_has_its_row_and_its_audit_event(busy_app):
    answers = _write_concurrently(busy_app, "w")
    assert [status for status, _ in answers] == [201] * (WRITERS * PATIENTS_EACH)
    created = {patient_id for _, patient_id in answers}
    with busy_app.app_context():
        rows = set(db.session.scalars(sa.text("SELECT CAST(id AS VARCHAR(36)) FROM patients")))
        events = db.session.scalars(sa.select(AuditEvent.resource_id)
                                    .where(AuditEvent.action == "patient.create")).all()
    assert {str(pid).replace("-", "") for pid in created} <= {row.replace("-", "") for row in rows}
    assert sorted(events) == sorted(created)  # one event each, none lost, none phantom
    # Written unsealed, without a lock; the sequencer then chains every one of them.
    clock.run_job(busy_app, audit_jobs.seal_audit_trail)
    places, unsealed, head = _chain_state(busy_app)
    assert unsealed == 0 and places == list(range(1, head + 1))
    assert _verify(busy_app).exit_code == 0


def test_two_sequencers_at_once_seal_every_event_once_without_forking_the_chain(busy_app):
    def two_sequencers(pool, writing):
        start = threading.Barrier(2)

        def sequencer():
            start.wait()
            while not all(future.done() for future in writing):
                with busy_app.app_context():
                    audit_jobs.seal_batches_and_commit(batch=5, batches=3)
        return [pool.submit(sequencer), pool.submit(sequencer)]

    answers = _write_concurrently(busy_app, "s", while_writing=two_sequencers)
    assert {status for status, _ in answers} == {201}
    clock.run_job(busy_app, audit_jobs.seal_audit_trail)
    places, unsealed, head = _chain_state(busy_app)
    assert unsealed == 0 and places == list(range(1, head + 1))  # each event once, no gap, one chain
    result = _verify(busy_app)
    assert result.exit_code == 0 and f"{head} events verified" in result.output, result.output


def test_the_unsealed_tail_is_reported_by_verify_ready_and_metrics(busy_app):
    clock.run_job(busy_app, audit_jobs.seal_audit_trail)
    with busy_app.app_context():
        for n in range(3):
            audit_service.record("test.unsealed", details={"n": n})
        unit_of_work.commit()
    result = _verify(busy_app)
    assert result.exit_code == 0
    assert "unsealed: 3 events not yet sealed into the chain, the oldest" in result.output
    ready = busy_app.test_client().get("/ready").get_json()["audit"]
    assert ready["unsealed_events"] >= 3 and ready["seal_lag_seconds"] >= 0  # /ready's own event may join them
    scrape = busy_app.test_client().get("/metrics").text
    assert "bridgeline_audit_unsealed_events" in scrape and "bridgeline_audit_seal_lag_seconds" in scrape
    clock.run_job(busy_app, audit_jobs.seal_audit_trail)
    result = _verify(busy_app)
    assert "unsealed: none" in result.output
    assert busy_app.test_client().get("/ready").get_json()["audit"]["seal_lag_seconds"] == 0


def test_a_sequencer_that_crashes_mid_batch_seals_nothing_and_the_next_run_seals_it_all(app, ctx):
    for n in range(4):
        audit_service.record("test.event", details={"n": n})
    unit_of_work.commit()
    head_before = audit_service.chain_head()

    def crash_before_the_head_moves(_conn, _cursor, statement, *_args):
        if statement.lstrip().upper().startswith("UPDATE AUDIT_CHAIN_HEAD"):
            raise RuntimeError("the clock's process died mid-batch")

    sa.event.listen(db.engine, "before_cursor_execute", crash_before_the_head_moves)
    try:
        with pytest.raises(RuntimeError):
            audit_jobs.seal_batches_and_commit()
    finally:
        sa.event.remove(db.engine, "before_cursor_execute", crash_before_the_head_moves)
    db.session.rollback()
    assert audit_service.chain_head() == head_before and audit_service.unsealed().count == 4
    assert audit_jobs.seal_batches_and_commit() == 4
    assert audit_service.unsealed().count == 0
    check = audit_service.verify_chain()
    assert check.problem is None and check.head_seq == head_before[0] + 4


def test_a_batch_hashed_from_a_head_another_sequencer_moved_writes_nothing(app, ctx):
    for n in range(3):
        audit_service.record("test.event", details={"n": n})
    unit_of_work.commit()
    late = audit_service.next_batch()  # hashed, then overtaken before it writes
    db.session.commit()
    first = audit_service.next_batch()
    db.session.commit()
    assert audit_service.write_batch(first) == len(first.seals) >= 3
    db.session.commit()
    head = audit_service.chain_head()
    assert audit_service.write_batch(late) == 0
    db.session.commit()
    assert audit_service.chain_head() == head and audit_service.unsealed().count == 0
    assert audit_service.verify_chain().problem is None


def test_a_sealed_event_cannot_be_sealed_again_nor_an_unsealed_one_changed(app, ctx):
    audit_service.record("test.event", details={"n": 1})
    audit_service.record("test.event", details={"n": 2})
    unit_of_work.commit()
    assert audit_jobs.seal_batches_and_commit(batch=1, batches=1) == 1
    sealed, unsealed = db.session.execute(sa.select(AuditEvent.seq).where(AuditEvent.action == "test.event")
                                          .order_by(AuditEvent.seq)).scalars().all()
    for statement, seq in (("UPDATE audit_events SET hash = prev_hash WHERE seq = :seq", sealed),
                           ("UPDATE audit_events SET chain_seq = chain_seq + 1000 WHERE seq = :seq", sealed),
                           ("UPDATE audit_events SET action = 'forged.action' WHERE seq = :seq", unsealed),
                           ("UPDATE audit_events SET chain_seq = 99999, prev_hash = :h, hash = :h, "
                            "client_ip = '10.6.6.6' WHERE seq = :seq", unsealed),
                           ("DELETE FROM audit_events WHERE seq = :seq", unsealed)):
        with pytest.raises(sa.exc.DatabaseError):
            with db.session.begin_nested():
                db.session.execute(sa.text(statement), {"seq": seq, "h": "0" * 64})


def test_the_migration_carries_the_existing_chain_over_unchanged(fresh_database_url):
    """A chain written the old way (each event's place given under the head's lock, its patients
    in rows of their own) verifies after 0019 and 0022 as it was, and new events are sealed
    after it."""
    import datetime as dt
    import types
    import uuid

    from flask_migrate import upgrade

    from backend import create_app
    from backend.audit.models import GENESIS_HASH, AuditChainHead
    from backend.config import TestConfig

    app = create_app(TestConfig(fresh_database_url))
    with app.app_context():
        upgrade(revision="0017")
        prev, patient = GENESIS_HASH, uuid.uuid4()
        for seq in (1, 2, 3):
            event = types.SimpleNamespace(
                id=uuid.uuid4(), occurred_at=dt.datetime(2026, 11, 1, 9, seq, tzinfo=dt.timezone.utc), actor_id=None,
                actor_username=None, actor_role=None, device_session_id=None, action="patient.read", status_code=200,
                resource_type="patient", resource_id=str(patient), request_id=None, client_ip="10.0.0.1",
                details={"n": seq})
            digest = audit_service.compute_hash(event, [patient], chain_seq=seq, prev_hash=prev)
            columns = {name: getattr(event, name) for name in vars(event)}
            db.session.execute(AuditEvent.__table__.insert().values(seq=seq, prev_hash=prev, hash=digest, **columns))
            db.session.execute(EVENT_PATIENTS_BEFORE_0022.insert().values(event_seq=seq, patient_id=patient))
            prev = digest
        db.session.execute(sa.update(AuditChainHead).values(last_seq=3, last_hash=prev))
        db.session.commit()
        db.session.remove()
        upgrade()
        result = app.test_cli_runner().invoke(args=["audit", "verify", "--anchor", f"3:{prev}"])
        assert result.exit_code == 0, result.output
        assert f"3 events verified; head: event 3, hash {prev}" in result.output
        audit_service.record("test.after_migration")
        unit_of_work.commit()
        assert audit_jobs.seal_batches_and_commit() == 1
        new = db.session.execute(sa.select(AuditEvent.seq, AuditEvent.chain_seq, AuditEvent.prev_hash)
                                 .where(AuditEvent.action == "test.after_migration")).one()
        assert tuple(new) == (4, 4, prev)
        assert "4 events verified" in app.test_cli_runner().invoke(args=["audit", "verify"]).output
        # the events sealed before 0020 were indexed by patient by the migration
        events, _ = audit_service.list_events(patient_id=patient, cursor=None, limit=10)
        assert [event.chain_seq for event in events] == [3, 2, 1]
        assert [event.patient_ids for event in events] == [[patient]] * 3  # moved into their rows by 0022
    with app.app_context():
        db.engine.dispose()


def test_a_patients_events_are_found_before_and_after_they_are_sealed_each_once(app, ctx):
    """The request writes an event's patients in the event's order; the sequencer indexes them by
    patient when it seals. A patient's history reads both, in one snapshot: nothing is missing
    while an event waits, and nothing is counted twice once it is sealed."""
    import uuid

    from backend.audit.models import AuditPatientIndex

    patient, other = uuid.uuid4(), uuid.uuid4()
    audit_service.record("patient.read", patient_ids=[patient])
    unit_of_work.commit()
    assert audit_jobs.seal_batches_and_commit() >= 1
    audit_service.record("caseload.read", patient_ids=[other, patient])
    audit_service.record("caseload.read", patient_ids=[other])
    unit_of_work.commit()

    def history(of):
        events, _ = audit_service.list_events(patient_id=of, cursor=None, limit=50)
        audit_service.clear_pending()
        return [event.action for event in events]

    def indexed(of):
        return db.session.scalar(sa.select(sa.func.count()).where(AuditPatientIndex.patient_id == of))

    assert history(patient) == ["caseload.read", "patient.read"]
    assert (indexed(patient), indexed(other)) == (1, 0)
    assert audit_jobs.seal_batches_and_commit() >= 2
    assert history(patient) == ["caseload.read", "patient.read"]
    assert history(other) == ["caseload.read", "caseload.read"]
    assert (indexed(patient), indexed(other)) == (2, 2)


def test_reading_the_unsealed_tail_never_scans_the_whole_trail(app, ctx):
    """The sequencer (every second), `audit verify`, `/ready` and the metrics read the unsealed
    events. With statistics gathered while a burst of events waited (so `chain_seq` looks mostly
    null), SQLite scanned every event of the trail for them — 50 ms at 120,000 events, growing
    with the trail — until the condition was written as the tail it is."""
    from backend.ops import scrape

    if db.engine.dialect.name != "sqlite":
        pytest.skip("SQLite's planner (PostgreSQL keeps its statistics current)")
    for n in range(20):
        audit_service.record("test.event", details={"n": n})
    unit_of_work.commit()
    db.session.execute(sa.text("ANALYZE"))
    db.session.commit()
    audit_jobs.seal_batches_and_commit()
    audit_service.record("test.event")
    unit_of_work.commit()
    statements = []

    def capture(_conn, _cursor, statement, parameters, _context, _many):
        if "audit_events" in statement and statement.lstrip().upper().startswith("SELECT"):
            statements.append((statement, parameters))

    sa.event.listen(db.engine, "before_cursor_execute", capture)
    try:
        audit_service.next_batch()
        audit_service.unsealed()
        db.session.execute(scrape.UNSEALED).one()
    finally:
        sa.event.remove(db.engine, "before_cursor_execute", capture)
        db.session.rollback()
    assert len(statements) == 3
    for statement, parameters in statements:
        plan = [row[3] for row in db.session.connection().exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}",
                                                                          parameters)]
        assert not [step for step in plan if step.startswith("SCAN audit_events")], (statement, plan)
