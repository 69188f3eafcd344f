"""The service as it is deployed: the Procfile's `release`, `web` and `clock` on a fresh
database, driven over real HTTP — as the black-box contract tests drive it."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

ROOT = Path(__file__).resolve().parent.parent
PROCFILE = dict(line.split(": ", 1) for line in (ROOT / "Procfile").read_text().splitlines() if ": " in line)


@pytest.fixture
def env(fresh_database_url, tmp_path):
    venv_bin = str(Path(sys.executable).parent)
    return {
        **os.environ,
        "PATH": f"{venv_bin}{os.pathsep}{os.environ.get('PATH', '')}",
        "DATABASE_URL": fresh_database_url,
        "HOME": str(tmp_path),
        "WEB_CONCURRENCY": "2",
        "CLOCK_HEARTBEAT_SECONDS": "1",
    }


def run(command: str, env: dict, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", "-c", command], env=env, cwd=ROOT, input=stdin, text=True,
                          capture_output=True, timeout=120)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def process(name: str, env: dict, **extra_env):
    proc = subprocess.Popen(["bash", "-c", PROCFILE[name]], env={**env, **extra_env}, cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
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


@contextlib.contextmanager
def web(env: dict):
    port = free_port()
    with process("web", env, PORT=str(port)) as proc:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            with contextlib.suppress(requests.RequestException):
                if requests.get(f"{base}/health", timeout=10).status_code == 200:
                    break
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"web did not start: {proc.stdout.read() if proc.poll() is not None else 'timeout'}")
            time.sleep(0.2)
        yield base


def raw_request(base: str, data: bytes) -> requests.Response:
    """Send bytes that no HTTP client would, and read the answer into a `requests.Response`."""
    host, port = base.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as connection:
        connection.sendall(data)
        answer = b"".join(iter(lambda: connection.recv(65536), b""))
    head, _, body = answer.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    response = requests.Response()
    response.status_code = int(status_line.split()[1])
    response.headers.update(line.split(": ", 1) for line in header_lines)
    response._content = body
    return response


@pytest.fixture
def released(env):
    result = run(PROCFILE["release"], env)
    assert result.returncode == 0, result.stderr
    return env


def create_admin(env, username="root", password="a long admin passphrase", role="admin"):
    """An account made at the shell (the bootstrap: active at once, whatever its role)."""
    result = run(f"flask --app backend users create {username} --role {role} --display-name 'First Admin'",
                 env, stdin=password + "\n")
    assert result.returncode == 0, result.stderr
    return username, password


def token_for(base, username, password, device="phone"):
    response = requests.post(f"{base}/api/v1/auth/tokens", timeout=10,
                             json={"username": username, "password": password, "device_name": device})
    assert response.status_code == 201, response.text
    return {"Authorization": f"Bearer {response.json()['token']}"}


def test_release_then_web_serves_the_contract_from_a_fresh_database(released):
    admin_name, admin_password = create_admin(released)
    with web(released) as base:
        assert requests.get(f"{base}/health", timeout=30).json() == {"status": "ok"}
        assert requests.get(f"{base}/ready", timeout=30).status_code == 200
        admin = token_for(base, admin_name, admin_password)
        created = requests.post(f"{base}/api/v1/users", headers=admin, timeout=10, json={
            "username": "coach.one", "display_name": "Coach One", "role": "coach", "password": "coach passphrase"})
        assert created.status_code == 201, created.text

        coach = token_for(base, "coach.one", "coach passphrase")
        assert requests.get(f"{base}/api/v1/me", headers=coach, timeout=30).json()["role"] == "coach"
        devices = requests.get(f"{base}/api/v1/me/devices", headers=coach, timeout=30).json()["items"]
        assert [d["current"] for d in devices] == [True]
        chunked = requests.post(f"{base}/api/v1/auth/tokens", timeout=10, headers={"Content-Type": "application/json"},
                                data=iter([b'{"username": "coach.one", ', b'"password": "coach passphrase"}']))
        assert chunked.status_code == 201, chunked.text  # a chunked body within the limit is read whole
        assert requests.delete(f"{base}/api/v1/auth/tokens/current", headers=coach, timeout=30).status_code == 204
        assert requests.get(f"{base}/api/v1/me", headers=coach, timeout=30).status_code == 401


def test_errors_over_http_are_problem_json_never_html(released):
    with web(released) as base:
        big = b'{"username": "' + b"x" * (70 * 1024) + b'"}'
        cases = [
            (requests.post(f"{base}/api/v1/auth/tokens", data=big, timeout=10,
                           headers={"Content-Type": "application/json"}), 413, "payload-too-large"),
            (requests.post(f"{base}/api/v1/auth/tokens", data="{oops", timeout=10,
                           headers={"Content-Type": "application/json"}), 400, "invalid-json"),
            (requests.post(f"{base}/api/v1/auth/tokens", data="a=b", timeout=10,
                           headers={"Content-Type": "text/plain"}), 415, "unsupported-media-type"),
            (requests.get(f"{base}/api/v1/nothing-here", timeout=10), 404, "not-found"),
            (requests.delete(f"{base}/ready", timeout=10), 405, "method-not-allowed"),
            # A 6 KB query (a long cursor in 4-byte characters) reaches the app, not gunicorn's HTML 414.
            (requests.get(f"{base}/api/v1/patients?cursor=" + "%F0%A5%84%BB" * 500, timeout=10), 401,
             "unauthorized"),
            (requests.post(f"{base}/api/v1/auth/tokens", json={"username": "a", "password": "b", "x": 1},
                           timeout=10), 422, "validation-error"),
            # What gunicorn refuses before the app sees it is answered the same way.
            (requests.get(f"{base}/api/v1/patients?cursor=" + "a" * 9000, timeout=10), 414, "uri-too-long"),
            (requests.get(f"{base}/health", headers={f"X-Filler-{n}": "x" for n in range(120)}, timeout=10), 431,
             "request-header-fields-too-large"),
            (raw_request(base, b"GET /health HTTP/9.9\r\nHost: x\r\n\r\n"), 400, "bad-request"),
            (raw_request(base, b"POST /api/v1/auth/tokens HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                               b"Transfer-Encoding: chunked\r\n\r\nZZ\r\n{}\r\n0\r\n\r\n"), 400, "bad-request"),
            # Transfer codings (the guide): gzip before chunked is not undone, so never read as plain.
            (raw_request(base, b"POST /api/v1/auth/tokens HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                               b"Transfer-Encoding: gzip, chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n"), 501,
             "not-implemented"),
            (raw_request(base, b"POST /api/v1/auth/tokens HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                               b"Transfer-Encoding: gzip\r\n\r\n{}"), 400, "bad-request"),
        ]
        chunked_big = requests.post(f"{base}/api/v1/auth/tokens", timeout=10,
                                    headers={"Content-Type": "application/json"},
                                    data=iter([b'{"username": "a", "password": "b"}', b" " * (70 * 1024)]))
        cases.append((chunked_big, 413, "payload-too-large"))
        for response, status, problem_type in cases:
            assert response.status_code == status, response.text
            assert response.headers["Content-Type"] == "application/problem+json"
            assert response.json()["type"] == problem_type
            assert response.headers["X-Request-Id"]


def test_sign_in_throttling_holds_across_processes(released):
    create_admin(released)
    with web(released) as first, web(released) as second:
        statuses = [
            requests.post(f"{base}/api/v1/auth/tokens", timeout=10,
                          json={"username": "root", "password": "wrong guess"}).status_code
            for base in (first, second, first, second, first)
        ]
        assert statuses == [401] * 5
        for base in (second, first):
            throttled = requests.post(f"{base}/api/v1/auth/tokens", timeout=10,
                                      json={"username": "root", "password": "a long admin passphrase"})
            assert throttled.status_code == 429 and int(throttled.headers["Retry-After"]) > 0


def test_the_clock_process_beats_and_ready_reports_it(released):
    with web(released) as base, process("clock", released) as clock:
        deadline = time.monotonic() + 30
        while requests.get(f"{base}/ready", timeout=30).json()["clock"]["last_heartbeat_at"] is None:
            assert clock.poll() is None, clock.stdout.read()
            assert time.monotonic() < deadline, "the clock never recorded a heartbeat"
            time.sleep(0.5)
        os.killpg(clock.pid, signal.SIGTERM)
        assert clock.wait(timeout=15) is not None


def _in_session(session_id: int) -> list[int]:
    """The processes still in a session (scripts/run's children have process groups of their own)."""
    alive = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(ProcessLookupError, PermissionError):
                if os.getsid(int(entry.name)) == session_id:
                    alive.append(int(entry.name))
    return alive


def _signals_as_a_terminal_leaves_them() -> None:
    """A terminal's shell starts a command with SIGINT and SIGQUIT at their defaults; a suite
    started in the background of a script (CI) would hand its children both ignored, and a
    signal ignored when a shell starts cannot be trapped."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGQUIT, signal.SIG_DFL)


@contextlib.contextmanager
def run_script(env):  # noqa: F811 - the fixture's value
    """`scripts/run` as a terminal would start it (a session of its own), once /ready answers and
    reports the clock's heartbeat (before its scheduler runs, the clock has not yet taken over its
    signals, and one would end it at once)."""
    port = free_port()
    proc = subprocess.Popen([str(ROOT / "scripts" / "run")], env={**env, "PORT": str(port)}, cwd=ROOT, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
                            preexec_fn=_signals_as_a_terminal_leaves_them)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            with contextlib.suppress(requests.RequestException):
                ready = requests.get(f"{base}/ready", timeout=10)
                if ready.status_code == 200 and ready.json()["clock"]["last_heartbeat_at"] is not None:
                    break
            assert proc.poll() is None, proc.stdout.read()
            assert time.monotonic() < deadline, "scripts/run did not come up"
            time.sleep(0.5)
        yield proc, base
    finally:
        for pid in _in_session(proc.pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def _stopped_whole(proc) -> str:
    proc.wait(timeout=60)
    output = proc.stdout.read()
    deadline = time.monotonic() + 20  # gunicorn's workers finish their requests first
    while _in_session(proc.pid):
        if time.monotonic() > deadline:
            pytest.fail(f"web or clock outlived scripts/run: {output[-2000:]}")
        time.sleep(0.2)
    return output


def test_the_readme_run_command_serves_the_demo_and_stops_cleanly(env):
    """`scripts/run`: release, demo data, clock and web on 127.0.0.1; SIGTERM stops them all."""
    with run_script(env) as (proc, base):
        coach = token_for(base, "coach.maria", "demo-coach-pass")
        assert requests.get(f"{base}/api/v1/me", headers=coach, timeout=30).json()["role"] == "coach"
        proc.send_signal(signal.SIGTERM)  # the script alone, as a supervisor would
        output = _stopped_whole(proc)
        assert "demo-coach-pass" in output, output  # the demo passwords were printed
        assert output.count('"clock stopping"') == 1 and '"clock stopped"' in output, output[-3000:]


def test_ctrl_c_under_the_run_command_gives_the_clock_one_signal_so_it_finishes_its_job(env):
    """Ctrl-C: the terminal signals its foreground process group. The clock must get one signal
    (a second ends it at once, mid-job): it logs that it stops, and then that it stopped."""
    with run_script(env) as (proc, _base):
        os.killpg(proc.pid, signal.SIGINT)  # what the terminal does on Ctrl-C
        output = _stopped_whole(proc)
        assert proc.returncode == 130
        assert output.count('"clock stopping"') == 1 and '"clock stopped"' in output, output[-3000:]


def test_the_clock_texts_through_twilio_and_the_webhooks_answer_over_http(released):
    """The deployed path of a text: the coach's POST, the clock's dispatcher and the real twilio
    library to TWILIO_API_BASE_URL, then Twilio's signed status and inbound webhooks."""
    from twilio.request_validator import RequestValidator

    from tests.support.fake_twilio import FakeTwilio

    fake = FakeTwilio()
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    texting = {**released, "SMS_BACKEND": "twilio", "TWILIO_ACCOUNT_SID": "AC" + "1" * 32,
               "TWILIO_AUTH_TOKEN": "procfile-auth-token", "TWILIO_FROM_NUMBER": "+16175550000",
               "TWILIO_API_BASE_URL": fake.url, "PUBLIC_BASE_URL": base, "SMS_DISPATCH_SECONDS": "1"}
    admin_name, admin_password = create_admin(texting)
    create_admin(texting, username="clinic.t", password="a passphrase", role="clinic_staff")
    try:
        with process("web", texting, PORT=str(port)), process("clock", texting):
            deadline = time.monotonic() + 30
            while True:
                with contextlib.suppress(requests.RequestException):
                    if requests.get(f"{base}/health", timeout=10).status_code == 200:
                        break
                assert time.monotonic() < deadline, "web did not start"
                time.sleep(0.2)
            admin = token_for(base, admin_name, admin_password)
            made = requests.post(f"{base}/api/v1/users", headers=admin, timeout=10, json={
                "username": "coach.t", "display_name": "Maria T", "role": "coach", "password": "a passphrase"})
            assert made.status_code == 201 and made.json()["access"] == "pending"
            clinic = token_for(base, "clinic.t", "a passphrase")  # made at the shell below: active
            assert requests.post(f"{base}/api/v1/users/{made.json()['id']}/access-approval", headers=clinic,
                                 timeout=10, json={}).status_code == 200  # a second person approves
            coach = token_for(base, "coach.t", "a passphrase")
            coach_id = requests.get(f"{base}/api/v1/me", headers=coach, timeout=10).json()["id"]
            patient = requests.post(f"{base}/api/v1/patients", headers=clinic, timeout=10, json={
                "given_name": "Alex", "family_name": "Rivera", "birth_date": "1990-04-02",
                "phone": "617-555-0134"}).json()
            requests.put(f"{base}/api/v1/patients/{patient['id']}/sms-consent", headers=clinic, timeout=10,
                         json={"status": "opted_in", "method": "written"}).raise_for_status()
            requests.post(f"{base}/api/v1/episodes", headers=clinic, timeout=10, json={
                "patient_id": patient["id"], "level": "emergency_department", "presenting_reason": "overdose",
                "arrived_at": "2026-01-01T10:00:00Z", "coach_id": coach_id}).raise_for_status()
            queued = requests.post(f"{base}/api/v1/patients/{patient['id']}/messages", headers=coach, timeout=10,
                                   json={"body": "Hi Alex, it's Maria. Free for a call today?"})
            assert queued.status_code == 202, queued.text

            deadline = time.monotonic() + 30
            while not fake.received:
                assert time.monotonic() < deadline, "the clock never sent the text"
                time.sleep(0.2)
            text = fake.received[0]
            assert (text.to, text.body) == ("+16175550134", "Hi Alex, it's Maria. Free for a call today?")

            validator = RequestValidator("procfile-auth-token")
            callback = text.form["StatusCallback"]
            assert callback.startswith(f"{base}/webhooks/twilio/status?message_id=")
            thread_url = f"{base}/api/v1/patients/{patient['id']}/messages"
            deadline = time.monotonic() + 10
            while requests.get(thread_url, headers=coach, timeout=10).json()["items"][0]["status"] != "sent":
                assert time.monotonic() < deadline, "the send was never recorded"
                time.sleep(0.2)
            form = {"MessageSid": text.sid, "MessageStatus": "delivered"}
            delivered = requests.post(callback, data=form, timeout=10,
                                      headers={"X-Twilio-Signature": validator.compute_signature(callback, form)})
            assert delivered.status_code == 200 and delivered.headers["Content-Type"].startswith("text/xml")
            assert requests.get(thread_url, headers=coach, timeout=10).json()["items"][0]["status"] == "delivered"

            inbound_url = f"{base}/webhooks/twilio/inbound"
            form = {"MessageSid": "SM" + "3" * 32, "From": "+16175550134", "To": "+16175550000", "Body": "STOP"}
            forged = requests.post(inbound_url, data=form, timeout=10, headers={"X-Twilio-Signature": "forged"})
            assert forged.status_code == 403
            stop = requests.post(inbound_url, data=form, timeout=10,
                                 headers={"X-Twilio-Signature": validator.compute_signature(inbound_url, form)})
            assert stop.status_code == 200 and "<Message>" in stop.text
            after = requests.get(f"{base}/api/v1/patients/{patient['id']}", headers=clinic, timeout=10).json()
            assert after["sms_status"] == "opted_out"
    finally:
        fake.stop()
