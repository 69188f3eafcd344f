"""`/metrics` (README "Observability"): who may read it, what it measures, and that it keeps
answering when the database does not."""

from __future__ import annotations

import contextlib
import datetime as dt
import ipaddress
import re
import socket
import sqlite3
import time
import uuid

import pytest
import sqlalchemy as sa
from prometheus_client.parser import text_string_to_metric_families

from backend import create_app
from backend.auth.access import public
from backend.clock import run_job
from backend.config import Config, TestConfig
from backend.database import utcnow
from backend.extensions import db
from backend.ops import jobs as ops_jobs
from backend.ops.models import JobHeartbeat
from backend.outreach import jobs as outreach_jobs
from backend.outreach.models import (
    Message,
    MessageDirection,
    MessageKind,
    MessageStatus,
)

LOOPBACK = (ipaddress.ip_network("127.0.0.0/8"),)
TOKEN = "metrics-token-" + "x" * 32
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def samples(text: str) -> dict[tuple[str, frozenset], float]:
    """Every sample of a scrape: (name, labels) → value."""
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def value(text: str, name: str, **labels) -> float | None:
    return samples(text).get((name, frozenset(labels.items())))


@pytest.fixture
def loopback_may_scrape(app, monkeypatch):
    monkeypatch.setitem(app.config, "METRICS_ALLOWED_NETWORKS", LOOPBACK)


def test_metrics_are_the_404_of_a_missing_path_unless_the_operator_opened_them(client):
    missing = client.get("/no-such-path")
    for method in ("GET", "HEAD", "OPTIONS", "POST", "DELETE"):
        refused = client.open("/metrics", method=method)
        assert refused.status_code == 404, method
        assert refused.mimetype == "application/problem+json"
        assert "Allow" not in refused.headers
    body = client.get("/metrics").get_json()
    assert {k: v for k, v in body.items() if k != "request_id"} == \
        {k: v for k, v in missing.get_json().items() if k != "request_id"}


def test_an_address_in_the_allowed_networks_may_scrape_and_another_may_not(client, loopback_may_scrape):
    scraped = client.get("/metrics")
    assert scraped.status_code == 200
    assert scraped.mimetype == "text/plain" and "bridgeline_http_request_duration_seconds" in scraped.text
    assert client.get("/metrics", environ_base={"REMOTE_ADDR": "203.0.113.9"}).status_code == 404
    assert client.get("/metrics", environ_base={"REMOTE_ADDR": "::ffff:127.0.0.1"}).status_code == 200
    assert client.options("/metrics").status_code == 404  # only GET and HEAD, and only for the allowed


def test_the_metrics_token_opens_them_from_anywhere_and_a_wrong_one_does_not(app, client, monkeypatch):
    monkeypatch.setitem(app.config, "METRICS_TOKEN", TOKEN)
    outside = {"REMOTE_ADDR": "203.0.113.9"}
    assert client.get("/metrics", environ_base=outside, headers={"Authorization": f"Bearer {TOKEN}"}).status_code \
        == 200
    for wrong in (f"Bearer {TOKEN}x", f"Bearer {TOKEN[:-1]}", f"Basic {TOKEN}", "Bearer "):
        assert client.get("/metrics", environ_base=outside, headers={"Authorization": wrong}).status_code == 404


def test_behind_a_proxy_both_the_proxy_and_the_client_it_reports_must_be_allowed(tmp_path):
    config = TestConfig(f"sqlite:///{tmp_path}/proxied.db")
    config.TRUSTED_PROXY_COUNT = 1
    config.METRICS_ALLOWED_NETWORKS = (ipaddress.ip_network("10.0.0.0/8"),)
    client = create_app(config).test_client()

    def status(peer: str, forwarded: str | None) -> int:
        headers = {"X-Forwarded-For": forwarded} if forwarded else {}
        return client.get("/metrics", environ_base={"REMOTE_ADDR": peer}, headers=headers).status_code

    assert status("10.0.0.2", None) == 200  # the scraper on the proxy's network, straight to gunicorn
    assert status("10.0.0.2", "10.0.5.5") == 200  # through the proxy, from inside
    assert status("10.0.0.2", "198.51.100.7") == 404  # through the proxy, from the internet
    assert status("10.0.0.2", "10.0.5.5, 198.51.100.7") == 404  # a forged first hop changes nothing
    assert status("198.51.100.7", "10.0.5.5") == 404  # a forged header, straight to gunicorn


def test_requests_are_timed_by_route_template_never_by_path(client, loopback_may_scrape):
    patient = uuid.uuid4()
    client.get(f"/api/v1/patients/{patient}")  # 401: no token
    client.get("/api/v1/patients/Jane-Roe-MRN-445566")  # no route has a name in it
    client.open("/health", method="BREW")
    text = client.get("/metrics").text
    assert value(text, "bridgeline_http_request_duration_seconds_count",
                 route="/api/v1/patients/<uuid:patient_id>", method="GET", status="401") >= 1
    assert value(text, "bridgeline_http_request_duration_seconds_count",
                 route="unmatched", method="GET", status="404") >= 1
    assert value(text, "bridgeline_http_request_duration_seconds_count",
                 route="unmatched", method="other", status="405") >= 1  # no rule takes that method
    assert str(patient) not in text and "Jane" not in text and "BREW" not in text


def test_the_request_log_names_the_route_template_not_the_path(client, json_log):
    patient = uuid.uuid4()
    client.get(f"/api/v1/patients/{patient}?q=Jane")
    line = [entry for entry in json_log.lines() if entry["msg"] == "request"][-1]
    assert line["route"] == "/api/v1/patients/<uuid:patient_id>" and line["status"] == 401
    assert str(patient) not in json_log.text()


def test_database_errors_are_counted_by_kind(tmp_path, monkeypatch):
    config = TestConfig(f"sqlite:///{tmp_path}/errors.db")
    config.METRICS_ALLOWED_NETWORKS = LOOPBACK
    app = create_app(config)

    @public
    def disk_full():  # the database cannot serve
        raise sa.exc.OperationalError("INSERT …", {}, sqlite3.OperationalError("database or disk is full"))

    @public
    def locked():  # a conflict: retry
        raise sa.exc.OperationalError("UPDATE …", {}, sqlite3.OperationalError("database is locked"))

    app.add_url_rule("/_test/disk-full", view_func=disk_full)
    app.add_url_rule("/_test/locked", view_func=locked)
    client = app.test_client()
    before = client.get("/metrics").text
    assert [client.get(path).status_code for path in ("/_test/disk-full", "/_test/locked", "/_test/locked")] \
        == [503, 503, 503]
    after = client.get("/metrics").text
    for kind, more in (("unavailable", 1), ("busy", 2)):
        assert value(after, "bridgeline_database_errors_total", kind=kind) \
            == value(before, "bridgeline_database_errors_total", kind=kind) + more


def test_every_clock_job_that_finishes_is_on_record_the_dispatcher_too(app, ctx):
    run_job(app, outreach_jobs.dispatch_texts)
    beat = db.session.get(JobHeartbeat, "dispatch_texts")
    assert beat is not None and utcnow() - beat.last_run_at < dt.timedelta(minutes=1)

    def failing_job():
        raise RuntimeError("boom")

    run_job(app, failing_job)
    assert db.session.get(JobHeartbeat, "failing_job") is None  # only a good run counts


def test_a_scrape_reads_texts_the_oldest_due_text_and_the_clocks_jobs(live_app):
    live_app.config["METRICS_ALLOWED_NETWORKS"] = LOOPBACK
    run_job(live_app, ops_jobs.heartbeat)
    run_job(live_app, outreach_jobs.dispatch_texts)  # nothing due yet
    now = utcnow()
    with live_app.app_context():
        def text(status: MessageStatus, due: dt.timedelta | None) -> Message:
            return Message(direction=MessageDirection.OUTBOUND, kind=MessageKind.STAFF, body="hello", status=status,
                           due_at=now + due if due is not None else None)

        db.session.add_all([text(MessageStatus.QUEUED, -dt.timedelta(minutes=5)),
                            text(MessageStatus.QUEUED, dt.timedelta(hours=3)),
                            text(MessageStatus.SENDING, None), text(MessageStatus.FAILED, None),
                            text(MessageStatus.DELIVERED, None)])
        db.session.commit()
    scrape = live_app.test_client().get("/metrics").text
    assert value(scrape, "bridgeline_database_up") == 1
    counts = {status: value(scrape, "bridgeline_texts", status=status)
              for status in ("queued", "sending", "unknown", "failed", "blocked")}
    assert counts == {"queued": 2, "sending": 1, "unknown": 0, "failed": 1, "blocked": 0}
    assert 300 <= value(scrape, "bridgeline_oldest_due_text_age_seconds") < 360
    for job in ("heartbeat", "dispatch_texts"):
        assert 0 <= value(scrape, "bridgeline_job_last_run_age_seconds", job=job) < 60


def test_a_scrape_without_a_database_still_answers_and_says_so(tmp_path):
    config = TestConfig(f"sqlite:///{tmp_path}/missing-dir/db.sqlite")
    config.METRICS_ALLOWED_NETWORKS = LOOPBACK
    client = create_app(config).test_client()
    client.get("/health")
    scrape = client.get("/metrics")
    assert scrape.status_code == 200
    assert value(scrape.text, "bridgeline_database_up") == 0
    assert "bridgeline_texts" not in scrape.text and "bridgeline_job_last_run_age_seconds" not in scrape.text
    assert value(scrape.text, "bridgeline_http_request_duration_seconds_count", route="/health", method="GET",
                 status="200") >= 1


@contextlib.contextmanager
def silent_server():
    """A TCP port that accepts connections and never says a word (a database behind a
    firewall that drops packets looks like this to a client waiting for its greeting)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    try:
        yield listener.getsockname()[1]
    finally:
        listener.close()


def test_a_database_that_does_not_answer_cannot_hold_the_scrape(tmp_path):
    with silent_server() as port:
        config = TestConfig(f"postgresql+psycopg://bridgeline@127.0.0.1:{port}/bridgeline")
        config.METRICS_ALLOWED_NETWORKS = LOOPBACK
        config.DATABASE_CONNECT_TIMEOUT_SECONDS = 4
        client = create_app(config).test_client()
        for _ in range(2):  # the second finds the first read still waiting, and does not wait behind it
            started = time.monotonic()
            scrape = client.get("/metrics")
            assert time.monotonic() - started < 2.5
            assert scrape.status_code == 200 and value(scrape.text, "bridgeline_database_up") == 0


def test_no_label_is_an_id(client, loopback_may_scrape, make_client):
    clinic = make_client("clinic_staff")
    clinic.get(f"/api/v1/patients/{uuid.uuid4()}")
    clinic.get(f"/api/v1/episodes/{uuid.uuid4()}/timeline")
    assert _UUID.search(client.get("/metrics").text) is None


def test_metrics_settings_that_could_open_them_by_mistake_stop_the_start(monkeypatch, tmp_path):
    monkeypatch.setenv("METRICS_ALLOWED_NETWORKS", "10.0.0.0/8, everyone")
    with pytest.raises(RuntimeError, match="METRICS_ALLOWED_NETWORKS"):
        Config()
    monkeypatch.setenv("METRICS_ALLOWED_NETWORKS", "10.0.0.0/8, ::1")
    assert [str(n) for n in Config().METRICS_ALLOWED_NETWORKS] == ["10.0.0.0/8", "::1/128"]
    for name, value in {"BRIDGELINE_ENV": "production", "SECRET_KEY": "s" * 48, "AUDIT_HMAC_KEY": "k" * 48,
                        "PUBLIC_BASE_URL": "https://bridgeline.example.org",
                        "DATABASE_URL": "postgresql+psycopg://app@db/bridgeline", "METRICS_TOKEN": "short"}.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(RuntimeError, match="METRICS_TOKEN"):
        Config().validate()
    token_file = tmp_path / "metrics_token"
    token_file.write_text(TOKEN + "\n")
    monkeypatch.delenv("METRICS_TOKEN")
    monkeypatch.setenv("METRICS_TOKEN_FILE", str(token_file))
    config = Config()
    config.validate()
    assert config.METRICS_TOKEN == TOKEN
