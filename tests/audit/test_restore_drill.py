"""The restore drill (README, "Backup and restore"): back up a database while the app writes to
it, restore the backup into a fresh database, and check the copy with the real `flask --app
backend audit verify --anchors-from` against the anchors the clock logged — the commands IT runs,
with the environment IT sets.

On PostgreSQL the backups are `pg_dump --format=custom` and `pg_restore`; the drill fails, never
skips, when they are missing. On SQLite (the embedded default) they are SQLite's online backup,
the API the sqlite3 shell's `.backup` uses.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import itertools
import json
import logging
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import sqlalchemy as sa

from backend import clock
from backend.audit import jobs as audit_jobs
from backend.auth.models import Role
from backend.config import SECRETS
from backend.logs import JsonFormatter, RequestIdFilter
from tests.support import ApiClient, make_user
from tests.support.databases import committing_app, fresh_database

ROOT = Path(__file__).resolve().parents[2]
#: The key the drill's app chains the trail with; the commands are given the same, as in production.
AUDIT_KEY = "restore-drill-audit-key-0123456789abcdef"
_mrns = itertools.count(1)


@dataclasses.dataclass
class Backup:
    path: Path
    #: When the backup began: anchors logged before it are in it.
    started: dt.datetime


@dataclasses.dataclass
class Anchor:
    seq: int
    hash: str


@dataclasses.dataclass
class History:
    """A database's life: activity and the clock's anchors, an older and a newer backup, and
    more activity and anchors after the newer one, all logged to `clock_log`."""

    clock_log: Path
    older: Backup
    newer: Backup
    anchors: list[Anchor]


def _is_postgresql(url: str) -> bool:
    return url.startswith("postgresql")


def _libpq(url: str) -> str:
    """The URL as pg_dump and pg_restore take it (no SQLAlchemy driver name)."""
    return sa.make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def _sqlite_file(url: str) -> str:
    return sa.make_url(url).database


def _run(command: list[str]) -> None:
    result = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, f"{command[0]} failed: {result.stderr}"


def take_backup(url: str, path: Path) -> Backup:
    started = dt.datetime.now(dt.timezone.utc)
    if _is_postgresql(url):
        _run(["pg_dump", "--format=custom", f"--file={path}", f"--dbname={_libpq(url)}"])
    else:
        with contextlib.closing(sqlite3.connect(_sqlite_file(url))) as source, \
                contextlib.closing(sqlite3.connect(path)) as copy:
            source.backup(copy)
    return Backup(path, started)


def restore(backup: Backup, url: str) -> None:
    """Into a fresh, empty database."""
    if _is_postgresql(url):
        _run(["pg_restore", "--exit-on-error", "--single-transaction", f"--dbname={_libpq(url)}", str(backup.path)])
    else:
        with contextlib.closing(sqlite3.connect(backup.path)) as copy, \
                contextlib.closing(sqlite3.connect(_sqlite_file(url))) as target:
            copy.backup(target)


def flask(*args: str, database_url: str) -> subprocess.CompletedProcess:
    """A `flask --app backend` command as IT runs it: DATABASE_URL at the restored copy, the
    production audit key."""
    venv_bin = str(Path(sys.executable).parent)
    env = {key: value for key, value in os.environ.items() if key not in {f"{name}_FILE" for name in SECRETS}}
    env.update(PATH=f"{venv_bin}{os.pathsep}{env.get('PATH', '')}", DATABASE_URL=database_url,
               AUDIT_HMAC_KEY=AUDIT_KEY)
    return subprocess.run(["flask", "--app", "backend", *args], env=env, cwd=ROOT, capture_output=True,
                          text=True, timeout=120)


@contextlib.contextmanager
def log_store(path: Path):
    """Every log line the app writes meanwhile, as the production formatter writes it to stderr
    and the log store keeps it."""
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(JsonFormatter())
    handler.addFilter(RequestIdFilter())
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        yield
    finally:
        root.removeHandler(handler)
        handler.close()


def register_patients(nurse: ApiClient, count: int) -> None:
    for _ in range(count):
        response = nurse.post("/api/v1/patients", json={
            "mrn": f"DRILL-{next(_mrns)}", "given_name": "Alex", "family_name": "Rivera",
            "birth_date": "1990-04-02", "phone": "(617) 555-0134"})
        assert response.status_code == 201, response.get_json()
        assert nurse.get(f"/api/v1/patients/{response.get_json()['id']}").status_code == 200


def seal_and_anchor(app) -> None:
    """The clock's sequencer, then its anchor line."""
    clock.run_job(app, audit_jobs.seal_audit_trail)
    clock.run_job(app, audit_jobs.log_chain_head)


@contextlib.contextmanager
def app_writing(app, user):
    """Sign-ins, each an audit event sealed by the sequencer after it, one after another until
    the block ends; at least two are committed and sealed before it starts."""
    stop, written = threading.Event(), threading.Semaphore(0)

    def sign_in_repeatedly():
        client = app.test_client()
        while not stop.is_set():
            response = client.post("/api/v1/auth/tokens", json={"username": user.username, "password": user.password})
            assert response.status_code == 201
            clock.run_job(app, audit_jobs.seal_audit_trail)
            written.release()

    writer = threading.Thread(target=sign_in_repeatedly)
    writer.start()
    try:
        assert written.acquire(timeout=30) and written.acquire(timeout=30)
        yield
    finally:
        stop.set()
        writer.join()


@pytest.fixture(scope="module")
def history(database_url, tmp_path_factory) -> History:
    if _is_postgresql(database_url):
        missing = [tool for tool in ("pg_dump", "pg_restore") if shutil.which(tool) is None]
        if missing:
            pytest.fail(f"{' and '.join(missing)} not found: the restore drill on PostgreSQL needs "
                        "PostgreSQL's client tools (Debian's postgresql-client)")
    work = tmp_path_factory.mktemp("drill")
    clock_log = work / "clock.log"
    with committing_app(database_url, tmp_path_factory.mktemp("source"), AUDIT_HMAC_KEY=AUDIT_KEY) as app, \
            log_store(clock_log):
        url = app.config["SQLALCHEMY_DATABASE_URI"]
        made = make_user(app, role=Role.ED_NURSE)
        nurse = ApiClient(app.test_client())
        nurse.sign_in(made.username, made.password)
        register_patients(nurse, 3)
        seal_and_anchor(app)
        older = take_backup(url, work / "older.dump")
        register_patients(nurse, 3)
        seal_and_anchor(app)
        with app_writing(app, made):
            newer = take_backup(url, work / "newer.dump")
        register_patients(nurse, 2)
        seal_and_anchor(app)  # the clock goes on after the last backup
    logged = [json.loads(line) for line in clock_log.read_text().splitlines()]
    anchors = [Anchor(entry["audit_seq"], entry["audit_hash"]) for entry in logged
               if entry["msg"] == "audit chain head"]
    assert len(anchors) == 3 and anchors[0].seq < anchors[1].seq < anchors[2].seq
    return History(clock_log, older, newer, anchors)


@pytest.fixture
def restored(database_url, tmp_path):
    """`restored(backup)`: the URL of a fresh database the backup was restored into."""

    @contextlib.contextmanager
    def into_fresh_database(backup: Backup):
        with fresh_database(database_url, tmp_path) as url:
            restore(backup, url)
            yield url

    return into_fresh_database


def verify_backup(history: History, backup: Backup, url: str) -> subprocess.CompletedProcess:
    return flask("audit", "verify", "--anchors-from", str(history.clock_log),
                 "--logged-before", backup.started.isoformat(), database_url=url)


def test_a_backup_taken_while_the_app_writes_verifies_against_every_anchor_logged_before_it(history, restored):
    with restored(history.newer) as url:
        migration = flask("db", "current", database_url=url)
        result = verify_backup(history, history.newer, url)
    assert migration.returncode == 0 and "(head)" in migration.stdout, migration.stderr
    assert result.returncode == 0, result.stderr
    verified = re.search(r"audit trail intact: (\d+) events verified; head: event (\d+), hash [0-9a-f]{64}",
                         result.stdout)
    assert verified and verified[1] == verified[2], result.stdout
    # Sign-ins committed while the backup began are in it, after the newest anchor before it.
    assert int(verified[2]) > history.anchors[1].seq
    assert f"anchors: 2 matched, the latest at event {history.anchors[1].seq}" in result.stdout


def test_a_restore_that_lost_the_tail_is_caught_by_audit_verify(history, restored):
    newest = history.anchors[-1]
    with restored(history.older) as url:
        against_the_whole_log = flask("audit", "verify", "--anchors-from", str(history.clock_log), database_url=url)
        against_the_newest_anchor = flask("audit", "verify", "--anchor", f"{newest.seq}:{newest.hash}",
                                          database_url=url)
        as_of_its_own_time = verify_backup(history, history.older, url)
    for result in (against_the_whole_log, against_the_newest_anchor):
        assert result.returncode == 1, result.stdout
        assert "the chain was cut short" in result.stderr
        assert (f"the chain ends at event {history.anchors[0].seq}, but an anchor was recorded at event "
                f"{newest.seq}") in result.stderr
    # What is lost is the tail; the copy itself is intact up to the moment it was taken.
    assert as_of_its_own_time.returncode == 0, as_of_its_own_time.stderr


def test_a_restored_copy_with_one_audit_event_changed_is_caught(history, restored):
    changed = history.anchors[0].seq - 1
    with restored(history.newer) as url:
        engine = sa.create_engine(url)
        with engine.begin() as connection:  # what someone with rights over the copy could do
            if _is_postgresql(url):
                connection.exec_driver_sql("ALTER TABLE audit_events DISABLE TRIGGER audit_events_append_only")
            else:
                connection.exec_driver_sql("DROP TRIGGER audit_events_no_update")
            connection.execute(sa.text("UPDATE audit_events SET client_ip = '10.6.6.6' WHERE chain_seq = :seq"),
                               {"seq": changed})
        engine.dispose()
        result = verify_backup(history, history.newer, url)
    assert result.returncode == 1, result.stdout
    assert f"audit trail BROKEN at event {changed} (id " in result.stderr
    assert "contents do not match its hash" in result.stderr
