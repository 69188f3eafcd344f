"""SQLite's audit outbox: a read's event is written beside the database, not into it, and the
sequencer moves it into the trail — once, whatever crashes or runs twice — before sealing it.

Why it matters: a write to the database file empties every other worker's page cache; a read
must leave the file as it was (`PRAGMA data_version`, which changes for a connection whenever
another one commits to the file, tells).
"""

from __future__ import annotations

import ipaddress
import sqlite3
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
import sqlalchemy as sa

from backend.audit import jobs as audit_jobs
from backend.audit import outbox
from backend.audit import service as audit_service
from backend.audit.models import AuditEvent
from backend.auth.models import Role
from backend.extensions import db
from tests.console.conftest import ConsoleClient
from tests.console.test_admin_audit import rows
from tests.support import ApiClient, make_user
from tests.support.databases import committing_app


@pytest.fixture
def sqlite_app(database_url, tmp_path):
    if database_url.startswith("postgresql"):
        pytest.skip("SQLite's outbox (PostgreSQL's shared cache needs none: tested below)")
    with committing_app(database_url, tmp_path) as app:
        yield app


def _signed_in(app, role: Role) -> ApiClient:
    made = make_user(app, role=role)
    client = ApiClient(app.test_client())
    client.sign_in(made.username, made.password)
    client.user = made
    return client


@pytest.fixture
def coach(sqlite_app) -> ApiClient:
    return _signed_in(sqlite_app, Role.COACH)


def _read(coach: ApiClient) -> int:
    return coach.get("/api/v1/caseload").status_code


def _database_file(app) -> str:
    return sa.make_url(app.config["SQLALCHEMY_DATABASE_URI"]).database


def _in_trail(app, action: str) -> list[AuditEvent]:
    with app.app_context():
        return list(db.session.scalars(sa.select(AuditEvent).where(AuditEvent.action == action)
                                       .order_by(AuditEvent.seq)))


def _in_outbox(app) -> list[dict]:
    with app.app_context():
        with outbox.engine().connect() as connection:
            return [dict(row) for row in connection.execute(sa.select(outbox.TABLE)).mappings()]


def test_a_read_writes_its_event_to_the_outbox_and_leaves_the_database_file_as_it_was(sqlite_app, coach):
    _read(coach)  # the first read makes the outbox's file
    watcher = sqlite3.connect(_database_file(sqlite_app))
    try:
        before = watcher.execute("PRAGMA data_version").fetchone()[0]
        for _ in range(3):
            assert _read(coach) == 200
        assert watcher.execute("PRAGMA data_version").fetchone()[0] == before  # nobody wrote the file
    finally:
        watcher.close()
    waiting = [row for row in _in_outbox(sqlite_app) if row["action"] == "caseload.read"]
    assert len(waiting) == 4 and {row["status_code"] for row in waiting} == {200}
    assert {row["actor_id"] for row in waiting} == {coach.user.id}
    assert _in_trail(sqlite_app, "caseload.read") == []


def test_the_sequencer_moves_the_outbox_into_the_trail_and_seals_it_as_written(sqlite_app, coach):
    _read(coach)
    written = _in_outbox(sqlite_app)
    with sqlite_app.app_context():
        assert audit_jobs.seal_batches_and_commit() >= len(written)
    assert _in_outbox(sqlite_app) == []
    moved = {event.id: event for event in _in_trail(sqlite_app, "caseload.read")}
    row = next(row for row in written if row["action"] == "caseload.read")
    event = moved[row["id"]]
    assert event.chain_seq is not None and event.hash is not None
    assert [(getattr(event, name)) for name in outbox.COLUMNS] == [row[name] for name in outbox.COLUMNS]
    assert sqlite_app.test_cli_runner().invoke(args=["audit", "verify"]).exit_code == 0


def test_a_crash_between_moving_and_deleting_puts_no_event_in_the_trail_twice(sqlite_app, coach):
    for _ in range(3):
        _read(coach)
    with sqlite_app.app_context():
        # The state a crash after the move's commit leaves: every event in the trail and still
        # in the outbox (a reader's copy makes the same state).
        outbox.copy_into_trail_and_commit()
        assert len(_in_outbox(sqlite_app)) == 3 and len(_in_trail(sqlite_app, "caseload.read")) == 3
        assert outbox.move_and_commit() == 3
    assert _in_outbox(sqlite_app) == []
    assert len(_in_trail(sqlite_app, "caseload.read")) == 3


def test_two_sequencers_moving_while_coaches_read_move_every_event_exactly_once(sqlite_app, coach):
    reads, stop = 40, threading.Event()

    def read() -> list[int]:
        return [_read(coach) for _ in range(reads)]

    def sequencer() -> None:
        while not stop.is_set():
            with sqlite_app.app_context():
                audit_jobs.seal_batches_and_commit(batch=5, batches=2)

    with ThreadPoolExecutor(3) as pool:
        sequencers = [pool.submit(sequencer), pool.submit(sequencer)]
        statuses = pool.submit(read).result()
        stop.set()
        for future in sequencers:
            future.result()
    with sqlite_app.app_context():
        audit_jobs.seal_batches_and_commit()
    assert statuses == [200] * reads
    assert _in_outbox(sqlite_app) == []
    events = _in_trail(sqlite_app, "caseload.read")
    assert len(events) == reads and all(event.chain_seq for event in events)
    result = sqlite_app.test_cli_runner().invoke(args=["audit", "verify"])
    assert result.exit_code == 0 and "unsealed: none" in result.output, result.output


def test_an_auditor_sees_reads_the_sequencer_has_not_moved_yet(sqlite_app, coach):
    admin = _signed_in(sqlite_app, Role.ADMIN)
    assert _read(coach) == 200
    page = admin.get("/api/v1/audit-events", query_string={"action": "caseload.read"}).get_json()
    assert [item["actor_id"] for item in page["items"]] == [str(coach.user.id)]
    # Copied, not moved: the sequencer moves it (and inserts nothing twice) on its next run.
    with sqlite_app.app_context():
        audit_jobs.seal_batches_and_commit()
    assert len(_in_trail(sqlite_app, "caseload.read")) == 1 and _in_outbox(sqlite_app) == []


def test_the_consoles_audit_page_lists_reads_waiting_in_the_outbox(sqlite_app, coach):
    admin = make_user(sqlite_app, role=Role.ADMIN)
    browser = ConsoleClient(sqlite_app.test_client(), admin)
    assert browser.sign_in(admin.username, admin.password).status_code == 302
    assert _read(coach) == 200
    response = browser.get("/console/audit?action=caseload.read")
    assert response.status_code == 200
    assert len(rows(response.get_data(as_text=True))) == 1  # the read, not yet moved by the sequencer


def test_the_seal_lag_counts_the_events_waiting_in_the_outbox(sqlite_app, coach):
    sqlite_app.config["METRICS_ALLOWED_NETWORKS"] = (ipaddress.ip_network("127.0.0.0/8"),)
    with sqlite_app.app_context():
        audit_jobs.seal_batches_and_commit()
    _read(coach)
    with sqlite_app.app_context():
        tail = audit_service.unsealed()
    assert tail.count == 1 and tail.oldest_at is not None
    result = sqlite_app.test_cli_runner().invoke(args=["audit", "verify"])
    assert "unsealed: 1 events not yet sealed" in result.output, result.output
    assert "bridgeline_audit_unsealed_events 1.0" in sqlite_app.test_client().get("/metrics").text
    assert sqlite_app.test_client().get("/ready").get_json()["audit"]["unsealed_events"] >= 1


def test_the_outbox_refuses_to_change_an_event(sqlite_app, coach):
    _read(coach)
    with sqlite_app.app_context(), pytest.raises(sa.exc.IntegrityError, match="append-only"):
        with outbox.engine().begin() as connection:
            connection.execute(outbox.TABLE.update().values(action="nothing.happened"))


@pytest.mark.parametrize("in_the_way", ["", "-writer.lock"], ids=["its file", "its writers' lock file"])
def test_when_the_outbox_cannot_be_written_the_read_is_recorded_in_the_trail(sqlite_app, coach, tmp_path,
                                                                             in_the_way):
    # Something else stands where the outbox's file (or its writers' queue) would be.
    (tmp_path / ("fresh.db" + outbox.SUFFIX + in_the_way)).mkdir()
    assert _read(coach) == 200
    assert [event.status_code for event in _in_trail(sqlite_app, "caseload.read")] == [200]


def test_an_outbox_that_cannot_be_read_stops_no_sealing_and_no_readiness(sqlite_app, coach, tmp_path):
    (tmp_path / ("fresh.db" + outbox.SUFFIX)).mkdir()  # it exists, and is no database
    _read(coach)  # into the trail, then
    with sqlite_app.app_context():
        assert audit_jobs.seal_batches_and_commit() >= 1
        assert audit_service.unsealed().count == 0
    assert sqlite_app.test_client().get("/ready").status_code == 200


def test_a_refused_read_is_on_record_from_the_outbox_with_its_status(sqlite_app, coach):
    other = _signed_in(sqlite_app, Role.ED_NURSE)
    patient = other.post("/api/v1/patients", json={"mrn": "OUT-1", "given_name": "Alex", "family_name": "Rivera",
                                                    "birth_date": "1990-04-02"}).get_json()
    assert coach.get(f"/api/v1/patients/{patient['id']}").status_code == 404
    refusals = [row for row in _in_outbox(sqlite_app) if row["action"] == "access.denied"]
    assert [(row["status_code"], row["actor_id"]) for row in refusals] == [(404, coach.user.id)]


@pytest.mark.parametrize("url", ["postgresql+psycopg://db.internal/bridgeline", "sqlite://",
                                 "sqlite:///:memory:"])
def test_only_a_database_file_has_an_outbox(url):
    from backend import create_app
    from backend.config import TestConfig

    assert create_app(TestConfig(url)).extensions[outbox.EXTENSION] is None
