"""SQLite: requests that only read never take the write lock, and writers queue for it in turn."""

from __future__ import annotations

import threading
import time

import pytest
import sqlalchemy as sa

from backend.audit import outbox
from backend.auth.models import Role
from backend.database import WriterQueueConnection
from backend.extensions import db
from tests.support import ApiClient, make_user


@pytest.fixture
def sqlite_app(database_url, request):
    if database_url.startswith("postgresql"):
        pytest.skip("SQLite's locking (PostgreSQL readers and writers never share a lock)")
    return request.getfixturevalue("live_app")


def _begin_write(engine: sa.Engine, timeout_ms: int = 5000) -> sa.Connection:
    connection = engine.connect().execution_options(sqlite_busy_timeout_ms=timeout_ms)
    connection.begin()
    return connection


def test_a_get_reads_and_records_its_audit_event_while_another_writer_holds_the_lock(sqlite_app):
    made = make_user(sqlite_app, role=Role.COACH)
    coach = ApiClient(sqlite_app.test_client())
    coach.sign_in(made.username, made.password)
    with sqlite_app.app_context():
        engine = db.engine
        writer = _begin_write(engine)
        writer.exec_driver_sql("UPDATE users SET display_name = display_name")  # holds the write lock
        assert isinstance(writer.connection.dbapi_connection, WriterQueueConnection)
    answered = {}

    def read_a_caseload():
        answered["response"] = coach.get("/api/v1/caseload")
        answered["at"] = time.monotonic()

    reader = threading.Thread(target=read_a_caseload)
    reader.start()
    reader.join(3)  # the read, and its audit event in the outbox beside the database, wait for nobody
    released = time.monotonic()
    writer.commit()
    writer.close()
    reader.join(10)
    assert answered["response"].status_code == 200 and answered["at"] < released
    with sqlite_app.app_context():
        outbox.move_and_commit()  # as the clock's sequencer does every second
        assert db.session.scalar(sa.text("SELECT count(*) FROM audit_events WHERE action = 'caseload.read'")) == 1


def test_writers_queue_for_the_lock_and_the_next_one_goes_as_soon_as_it_is_released(sqlite_app):
    with sqlite_app.app_context():
        engine = db.engine
    first = _begin_write(engine)
    started, entered = threading.Event(), {}

    def second_writer():
        started.set()
        connection = _begin_write(engine)
        entered["at"] = time.monotonic()
        connection.rollback()
        connection.close()

    waiting = threading.Thread(target=second_writer)
    waiting.start()
    started.wait()
    time.sleep(0.2)
    assert "at" not in entered  # it waits in the queue
    released = time.monotonic()
    first.commit()
    first.close()
    waiting.join(10)
    assert entered["at"] - released < 0.05  # handed on at once, not after a sleep of SQLite's backoff


def test_a_writer_that_waits_past_the_busy_timeout_gives_up_as_database_is_locked(sqlite_app):
    with sqlite_app.app_context():
        engine = db.engine
    first = _begin_write(engine)
    try:
        started = time.monotonic()
        with pytest.raises(sa.exc.OperationalError, match="database is locked"):
            _begin_write(engine, timeout_ms=200)
        assert 0.2 <= time.monotonic() - started < 1.0
    finally:
        first.rollback()
        first.close()


def test_a_get_that_writes_without_saying_so_is_refused_in_the_tests(sqlite_app):
    """Undeclared, it would upgrade its read transaction and fail whenever another process had
    written since it began; declared (`takes_write_lock`), it begins as a writer."""
    from backend.auth.access import public
    from backend.database import takes_write_lock

    def touch():
        db.session.execute(sa.text("UPDATE users SET display_name = display_name"))
        return {}, 200

    sqlite_app.add_url_rule("/_test/touch", view_func=public(touch), methods=["GET"])
    sqlite_app.add_url_rule("/_test/touch-declared", view_func=public(takes_write_lock(lambda: touch())),
                            endpoint="touch_declared", methods=["GET"])
    browser = sqlite_app.test_client()
    assert browser.get("/_test/touch").status_code == 500
    assert browser.get("/_test/touch-declared").status_code == 200


def test_the_sequencer_reads_and_hashes_without_the_write_lock(sqlite_app, monkeypatch):
    """Requests write their audit events while the sequencer hashes a batch: it takes the write
    lock only to write the seals, not for the reading and hashing (40-200 ms a batch)."""
    from backend.audit import jobs as audit_jobs
    from backend.audit import service as audit_service
    from backend.unit_of_work import commit

    with sqlite_app.app_context():
        for n in range(3):
            audit_service.record("test.to_seal", details={"n": n})
        commit()
        engine = db.engine
    written_meanwhile = []
    hash_event = audit_service.compute_hash

    def a_request_writes():
        other = _begin_write(engine, timeout_ms=300)  # the lock is free, or this gives up
        other.exec_driver_sql("UPDATE users SET display_name = display_name")
        other.commit()
        other.close()
        written_meanwhile.append(True)

    def hash_while_a_request_writes(*args, **kwargs):
        if not written_meanwhile:
            request = threading.Thread(target=a_request_writes)  # as another worker would
            request.start()
            request.join(5)
        return hash_event(*args, **kwargs)

    monkeypatch.setattr(audit_service, "compute_hash", hash_while_a_request_writes)
    with sqlite_app.app_context():
        assert audit_jobs.seal_batches_and_commit() >= 3
        assert audit_service.unsealed().count == 0 and audit_service.verify_chain().problem is None
    assert written_meanwhile == [True]
