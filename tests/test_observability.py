"""Metrics and logs carry no patient data: the Procfile's `web` (gunicorn, two workers) and
`clock` run a day's work on a patient whose every detail is distinctive — registration, a
text sent, a note, searches, refused and malformed requests — then every log line both
processes wrote, and a scrape of `/metrics`, are searched for any of it."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from tests.test_procfile import (
    PROCFILE,
    ROOT,
    create_admin,
    free_port,
    raw_request,
    run,
    token_for,
)

pytestmark = pytest.mark.once  # no particular database: with the SQLite suite only

GIVEN, FAMILY = "Zebulon", "Quillfeather"
PHONE_TYPED, PHONE_E164 = "617-555-0199", "+16175550199"
MRN, BIRTH_DATE = "MRN-7Q4X9Z", "1971-03-14"
TEXT_BODY = "Hi Zebulon, the marigold lantern pass is ready at the desk"
NOTE = "Spoke about the copper-kettle plan with his sister"
PATIENT_DATA = (GIVEN, FAMILY, PHONE_TYPED, PHONE_E164, "6175550199", MRN, BIRTH_DATE, "marigold lantern",
                "copper-kettle")


@pytest.fixture
def scenario_env(fresh_database_url, tmp_path):
    venv_bin = str(Path(os.sys.executable).parent)
    env = {**os.environ, "PATH": f"{venv_bin}{os.pathsep}{os.environ.get('PATH', '')}",
           "DATABASE_URL": fresh_database_url, "HOME": str(tmp_path), "WEB_CONCURRENCY": "2",
           "SMS_BACKEND": "console", "SMS_DISPATCH_SECONDS": "1", "CLOCK_HEARTBEAT_SECONDS": "1",
           "METRICS_ALLOWED_NETWORKS": "127.0.0.1/32",
           # A directory the operator named, holding a file an earlier run left: emptied at start.
           "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "metrics")}
    env.pop("SENTRY_DSN", None)
    (tmp_path / "metrics").mkdir()
    (tmp_path / "metrics" / "counter_1.db").write_bytes(b"left by an earlier run")
    result = run(PROCFILE["release"], env)
    assert result.returncode == 0, result.stderr
    return env


@contextlib.contextmanager
def logged(name: str, env: dict, log: Path, **extra_env):
    """A Procfile process writing stdout and stderr to `log`, stopped with SIGTERM at the end."""
    with log.open("w") as out:
        proc = subprocess.Popen(["bash", "-c", PROCFILE[name]], env={**env, **extra_env}, cwd=ROOT, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)
        try:
            yield proc
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


def wait_for(check, what: str, seconds: float = 30):
    deadline = time.monotonic() + seconds
    while not (result := check()):
        assert time.monotonic() < deadline, what
        time.sleep(0.2)
    return result


def metric_samples(text: str) -> dict[tuple[str, frozenset], float]:
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def test_after_a_days_work_no_log_line_or_metric_carries_patient_data(scenario_env, tmp_path):
    create_admin(scenario_env)
    create_admin(scenario_env, username="clinic.o", password="a clinic passphrase", role="clinic_staff")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    web_log, clock_log = tmp_path / "web.log", tmp_path / "clock.log"
    with logged("web", scenario_env, web_log, PORT=str(port)), logged("clock", scenario_env, clock_log):
        wait_for(lambda: _answers(f"{base}/health"), "web did not start")
        admin = token_for(base, "root", "a long admin passphrase")
        clinic = token_for(base, "clinic.o", "a clinic passphrase")
        coach_id = requests.post(f"{base}/api/v1/users", headers=admin, timeout=10, json={
            "username": "coach.o", "display_name": "Coach O", "role": "coach", "password": "a coach passphrase"}
        ).json()["id"]
        requests.post(f"{base}/api/v1/users/{coach_id}/access-approval", headers=clinic, timeout=10,
                      json={}).raise_for_status()
        coach = token_for(base, "coach.o", "a coach passphrase")

        patient = requests.post(f"{base}/api/v1/patients", headers=clinic, timeout=10, json={
            "given_name": GIVEN, "family_name": FAMILY, "birth_date": BIRTH_DATE, "phone": PHONE_TYPED, "mrn": MRN})
        assert patient.status_code == 201, patient.text
        patient_id = patient.json()["id"]
        requests.put(f"{base}/api/v1/patients/{patient_id}/sms-consent", headers=clinic, timeout=10,
                     json={"status": "opted_in", "method": "written"}).raise_for_status()
        episode = requests.post(f"{base}/api/v1/episodes", headers=clinic, timeout=10, json={
            "patient_id": patient_id, "level": "emergency_department", "presenting_reason": "overdose",
            "arrived_at": "2026-01-01T10:00:00Z", "coach_id": coach_id})
        assert episode.status_code == 201, episode.text
        episode_id = episode.json()["id"]
        thread = f"{base}/api/v1/patients/{patient_id}/messages"
        assert requests.post(thread, headers=coach, timeout=10, json={"body": TEXT_BODY}).status_code == 202
        later = (dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=1)).isoformat()
        assert requests.post(thread, headers=coach, timeout=10, json={"body": TEXT_BODY, "send_at": later}
                             ).status_code == 202
        note = requests.post(f"{base}/api/v1/episodes/{episode_id}/encounters", headers=coach, timeout=10, json={
            "kind": "phone", "outcome": "reached", "occurred_at": "2026-01-02T15:00:00Z", "note": NOTE})
        assert note.status_code == 201, note.text
        assert requests.get(f"{base}/api/v1/patients", params={"mrn": MRN}, headers=clinic,
                            timeout=10).json()["items"][0]["id"] == patient_id
        assert requests.get(f"{base}/api/v1/patients", params={"q": FAMILY}, headers=clinic,
                            timeout=10).status_code == 200
        # Requests that fail, carrying patient data where a client might put it.
        assert requests.get(f"{base}/api/v1/patients/{GIVEN}-{FAMILY}", headers=clinic, timeout=10
                            ).status_code == 404
        assert requests.post(f"{base}/api/v1/patients", headers=clinic, timeout=10, json={
            "given_name": GIVEN, "family_name": FAMILY, "birth_date": MRN, "phone": PHONE_TYPED}).status_code == 422
        assert requests.get(f"{base}/api/v1/patients", params={"mrn": MRN}, timeout=10,
                            headers={"Authorization": f"Bearer {GIVEN}", "X-Patient": FAMILY}).status_code == 401
        assert requests.get(f"{base}/api/v1/patients?q={FAMILY}&pad=" + "x" * 9000, timeout=10).status_code == 414
        assert raw_request(base, f"GET /api/v1/patients?mrn={MRN} HTTP/9.9\r\nHost: x\r\n\r\n".encode()
                           ).status_code == 400
        wait_for(lambda: requests.get(thread, headers=coach, timeout=10).json()["items"][-1]["status"] == "sent",
                 "the clock never sent the text")
        # Each half of these is answered by a different worker: the other is kept waiting for
        # the rest of a request.
        first = hold_a_worker(port)
        for _ in range(10):
            requests.get(f"{base}/health", timeout=10)
        second = hold_a_worker(port)
        first.close()
        for _ in range(10):
            requests.get(f"{base}/health", timeout=10)
        second.close()

        def scrape_with_both_jobs() -> str | None:
            text = requests.get(f"{base}/metrics", timeout=10).text
            jobs = {labels for name, labels in metric_samples(text) if name == "bridgeline_job_last_run_age_seconds"}
            return text if {frozenset({("job", "heartbeat")}), frozenset({("job", "dispatch_texts")})} <= jobs \
                else None

        scrape = wait_for(scrape_with_both_jobs, "the clock's jobs never showed in /metrics")
        assert requests.get(f"{base}/metrics", timeout=10, headers={"X-Forwarded-For": "127.0.0.1"}).status_code \
            == 200
        tokens = [value.split()[-1] for value in (admin, clinic, coach) for value in value.values()]

    # Every line either process wrote is JSON (gunicorn's own lines included).
    lines = {path.name: path.read_text().splitlines() for path in (web_log, clock_log)}
    for name, text in lines.items():
        for line in text:
            assert isinstance(json.loads(line), dict), (name, line)
    web_loggers = {json.loads(line)["logger"] for line in lines["web.log"]}
    assert {"gunicorn.error", "backend.request", "backend.http_server"} <= web_loggers
    assert any(json.loads(line)["msg"] == "sms sent (console backend)" for line in lines["clock.log"])

    # No patient data, no patient or episode id, no token: in the logs or in the metrics.
    everything = {"web log": web_log.read_text(), "clock log": clock_log.read_text(), "metrics": scrape}
    for where, text in everything.items():
        leaked = [secret for secret in (*PATIENT_DATA, patient_id, episode_id, *tokens) if secret in text]
        assert leaked == [], where

    # The families the operator watches, the counts summed over both workers.
    samples = metric_samples(scrape)
    health_answered = sum(1 for line in map(json.loads, lines["web.log"])
                          if line.get("route") == "/health" and line["status"] == 200)
    assert samples[("bridgeline_http_request_duration_seconds_count",
                    frozenset({"route": "/health", "method": "GET", "status": "200"}.items()))] == health_answered
    assert samples[("bridgeline_http_request_duration_seconds_count", frozenset(
        {"route": "/api/v1/patients/<uuid:patient_id>/messages", "method": "POST", "status": "202"}.items()))] == 2
    assert samples[("bridgeline_texts", frozenset({"status": "queued"}.items()))] == 1
    assert samples[("bridgeline_oldest_due_text_age_seconds", frozenset())] == 0  # the queued one is for tomorrow
    assert samples[("bridgeline_database_up", frozenset())] == 1
    assert {("bridgeline_database_errors_total", frozenset({"kind": kind}.items())) for kind in ("unavailable", "busy")
            } <= set(samples)
    workers = {path.name for path in (tmp_path / "metrics").glob("histogram_*.db")}
    assert len(workers) == 2  # both workers answered, and the scrape summed them
    assert not (tmp_path / "metrics" / "counter_1.db").exists()


def hold_a_worker(port: int) -> socket.socket:
    """A connection that sends half a request: the worker that took it waits for the rest."""
    connection = socket.create_connection(("127.0.0.1", port), timeout=10)
    connection.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n")
    time.sleep(0.5)  # until a worker has accepted it
    return connection


def _answers(url: str) -> bool:
    with contextlib.suppress(requests.RequestException):
        return requests.get(url, timeout=5).status_code == 200
    return False
