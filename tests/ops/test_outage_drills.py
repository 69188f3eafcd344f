"""Outage drills on the deployed service (the Procfile's `web`): the database down, frozen or
full. Each time the API answers 503 `service-unavailable` with Retry-After within seconds,
`/ready` says not ready within 2 s, and the service recovers without a restart.
"""

from __future__ import annotations

import resource
import time
from pathlib import Path

import pytest
import requests

from tests.support.outages import Outage
from tests.test_procfile import PROCFILE, create_admin, env, run, token_for, web  # noqa: F401 - env: a fixture

#: Longest an API request may take to answer 503 in a drill: well under gunicorn's 30 s.
API_DEADLINE = 15.0
READY_DEADLINE = 2.0
PROGRAM = {"name": "Drill program", "service": "otp", "accepting_patients": True, "external": False}


@pytest.fixture
def outage(fresh_database_url):
    outage = Outage(fresh_database_url)
    yield outage
    outage.close()


@pytest.fixture
def service(outage, env):  # noqa: F811 - the imported fixture
    """The web process on the outage's database, and an admin's token."""
    env = {**env, "DATABASE_URL": outage.database_url, "WEB_CONCURRENCY": "2"}
    assert run(PROCFILE["release"], env).returncode == 0
    name, password = create_admin(env)
    with web(env) as base:
        yield base, token_for(base, name, password)


def timed(method: str, url: str, **kwargs) -> tuple[requests.Response, float]:
    started = time.monotonic()
    response = requests.request(method, url, timeout=40, **kwargs)
    return response, time.monotonic() - started


def assert_outage_answers(base: str, token: dict, *, expect: str, reads_work: bool = False) -> None:
    """`/ready` and the API during the outage; `reads_work`: a read that writes nothing (the
    admin's user list) is still served, as from a full disk."""
    ready, took = timed("GET", f"{base}/ready")
    assert ready.status_code == 503 and took < READY_DEADLINE, (ready.status_code, took)
    assert ready.json()["database"] == expect and ready.headers["Retry-After"]
    if reads_work:
        assert requests.get(f"{base}/api/v1/users", headers=token, timeout=10).status_code == 200
    for method, path in ((("POST", "/api/v1/programs"),) if reads_work else
                         (("GET", "/api/v1/users"), ("POST", "/api/v1/programs"))):
        response, took = timed(method, f"{base}{path}", headers=token,
                               **({"json": PROGRAM} if method == "POST" else {}))
        assert response.status_code == 503 and took < API_DEADLINE, (method, path, response.status_code, took)
        assert response.headers["Content-Type"] == "application/problem+json"
        assert response.json()["type"].endswith("service-unavailable") and int(response.headers["Retry-After"]) > 0


def assert_recovered(base: str, token: dict) -> None:
    deadline = time.monotonic() + 15
    while (ready := requests.get(f"{base}/ready", timeout=10)).status_code != 200:
        assert time.monotonic() < deadline, ready.json()
        time.sleep(0.5)
    assert requests.get(f"{base}/api/v1/users", headers=token, timeout=10).status_code == 200


@pytest.fixture
def postgresql_only(database_url):
    if not database_url.startswith("postgresql"):
        pytest.skip("a PostgreSQL drill (the SQLite drills below cover the embedded database)")


@pytest.fixture
def sqlite_only(database_url):
    if database_url.startswith("postgresql"):
        pytest.skip("a SQLite drill (the PostgreSQL drills above cover the production database)")


@pytest.mark.usefixtures("postgresql_only")
@pytest.mark.parametrize("how, expect", [("stopped", "unreachable"), ("frozen", "not_answering")])
def test_postgresql_stopped_or_frozen_answers_503_within_seconds_and_recovers_without_a_restart(
        outage, service, how, expect):
    base, token = service
    assert requests.get(f"{base}/api/v1/users", headers=token, timeout=10).status_code == 200
    outage.begin(how)
    assert_outage_answers(base, token, expect=expect)
    outage.end()
    assert_recovered(base, token)


@pytest.mark.usefixtures("sqlite_only")
def test_sqlite_locked_past_its_busy_timeout_answers_503_and_recovers(outage, service):
    """Writes wait out the busy timeout and answer 503; a read that writes nothing is served
    meanwhile (it reads a snapshot in a read transaction, which no writer blocks)."""
    base, token = service
    outage.begin()
    assert_outage_answers(base, token, expect="not_writable", reads_work=True)
    outage.end()
    assert_recovered(base, token)


def workers_of(base: str) -> list[int]:
    """The gunicorn worker processes serving `base` (children of the process that listens)."""
    port = int(base.rsplit(":", 1)[1])
    inode = next(line.split()[9] for line in Path("/proc/net/tcp").read_text().splitlines()[1:]
                 if int(line.split()[1].split(":")[1], 16) == port and line.split()[3] == "0A")
    owners = {int(fd.parts[2]) for fd in Path("/proc").glob("[0-9]*/fd/*")
              if _readlink(fd) == f"socket:[{inode}]"}
    return sorted(pid for pid in owners
                  if int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1]) in owners)


def _readlink(path: Path) -> str | None:
    try:
        return str(path.readlink())
    except OSError:
        return None


@pytest.mark.usefixtures("sqlite_only")
def test_sqlite_on_a_full_disk_answers_503_and_recovers_when_space_returns(service):
    """A full disk, as the workers see it: no file may grow (RLIMIT_FSIZE), so every write of
    the database fails as it would on a full volume, while reads of what is on disk still work."""
    base, token = service
    workers = workers_of(base)
    assert len(workers) == 2
    limits = {pid: resource.prlimit(pid, resource.RLIMIT_FSIZE) for pid in workers}
    for pid, (_soft, hard) in limits.items():
        resource.prlimit(pid, resource.RLIMIT_FSIZE, (0, hard))
    try:
        assert_outage_answers(base, token, expect="not_writable", reads_work=True)
    finally:
        for pid, limit in limits.items():
            resource.prlimit(pid, resource.RLIMIT_FSIZE, limit)
    assert_recovered(base, token)
