"""`/health`, `/ready` and the clock's heartbeat (api.md "Operations and identity")."""

from __future__ import annotations

import datetime as dt

import pytest
from flask_migrate import downgrade, upgrade

from backend import create_app
from backend.clock import build_scheduler, run_job
from backend.config import TestConfig
from backend.ops import jobs


def test_health_says_ok(anonymous):
    response = anonymous.get("/health")
    assert response.status_code == 200 and response.get_json() == {"status": "ok"}


def test_ready_when_the_database_answers_and_migrations_are_current(anonymous):
    response = anonymous.get("/ready")
    assert response.status_code == 200
    body = response.get_json()
    assert body["status"] == "ready" and body["database"] == "ok"
    assert body["migrations"]["up_to_date"] is True
    assert body["migrations"]["current"] == body["migrations"]["head"] != []


def test_ready_reports_when_the_clock_last_ran(app, anonymous):
    run_job(app, jobs.heartbeat)
    beat = anonymous.get("/ready").get_json()["clock"]["last_heartbeat_at"]
    assert dt.datetime.now(dt.timezone.utc) - dt.datetime.fromisoformat(beat) < dt.timedelta(minutes=1)


def test_the_clock_schedules_the_heartbeat(app):
    scheduler = build_scheduler(app)
    assert [job.id for job in scheduler.get_jobs()] == ["heartbeat", "purge_sign_in_counters",
                                                         "purge_idempotency_records", "log_chain_head",
                                                         "seal_audit_trail",
                                                         "check_handoff_deadlines", "check_medication_supplies",
                                                         "dispatch_texts",
                                                         "purge_sync_changes", "refresh_report_facts"]


def test_not_ready_while_migrations_are_behind(fresh_database_url):
    app = create_app(TestConfig(fresh_database_url))
    client = app.test_client()
    response = client.get("/ready")
    assert response.status_code == 503
    assert response.mimetype == "application/problem+json"
    assert response.get_json()["migrations"]["up_to_date"] is False
    with app.app_context():
        upgrade()
    assert client.get("/ready").status_code == 200
    with app.app_context():
        downgrade(revision="base")
    assert client.get("/ready").status_code == 503


def test_not_ready_when_the_database_is_unreachable(tmp_path):
    app = create_app(TestConfig(f"sqlite:///{tmp_path}/missing-dir/db.sqlite"))
    response = app.test_client().get("/ready")
    assert response.status_code == 503
    assert response.get_json()["database"] == "unreachable"
    assert app.test_client().get("/health").status_code == 200


def _closed_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]  # nothing listens here once the probe closes


@pytest.mark.parametrize("url", ["sqlite:///{tmp}/missing-dir/db.sqlite",
                                 "postgresql+psycopg://bridgeline@127.0.0.1:{port}/bridgeline"])
def test_an_unreachable_database_answers_503_with_retry_after_not_500(tmp_path, url):
    """An outage is not a bug: the phone is told to retry (api.md `service-unavailable`)."""
    import time

    app = create_app(TestConfig(url.format(tmp=tmp_path, port=_closed_port())))
    started = time.monotonic()
    response = app.test_client().get("/api/v1/me", headers={"Authorization": "Bearer some-token"})
    assert time.monotonic() - started < 10
    assert response.status_code == 503 and response.headers["Retry-After"] == "5"
    assert response.get_json()["type"].endswith("service-unavailable")
    assert response.mimetype == "application/problem+json"
