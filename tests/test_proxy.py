"""The reverse proxy as shipped (`deploy/nginx/bridgeline.conf`), run by Debian's nginx in front of
the Procfile's web process in production mode: slow clients, ETags, forwarded headers, the
answers nginx gives itself and what it logs. Only ports, the upstream address, the certificate
and the log files differ from the shipped file (see `shipped_config`)."""

from __future__ import annotations

import contextlib
import dataclasses
import http.client
import os
import re
import secrets
import select
import socket
import ssl
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import requests
import urllib3

from backend.errors import problem_body
from tests.support.binaries import system_binary
from tests.support.databases import fresh_database
from tests.test_procfile import (
    PROCFILE,
    ROOT,
    create_admin,
    free_port,
    raw_request,
    run,
    token_for,
    web,
)

pytestmark = pytest.mark.once  # no particular database: with the SQLite suite only

SHIPPED = ROOT / "deploy" / "nginx" / "bridgeline.conf"
SERVER_NAME = re.search(r"server_name (\S+);", SHIPPED.read_text()).group(1)
HSTS = "max-age=31536000"
CLINIC = ("clinic", "a clinic passphrase")
ADMIN = ("root", "a long admin passphrase")
#: The web process refuses plain HTTP in production; a request straight to it says what nginx would.
AS_THE_PROXY_SAYS = {"X-Forwarded-Proto": "https"}

#: The parts of Debian's /etc/nginx/nginx.conf that matter here, with JSON added to gzip_types as
#: an administrator might: the server block must still leave the app's answers as they are. Temp
#: paths and the pid file go to the test's directory (nginx runs without root's paths).
HOST_CONF = """worker_processes 1;
events {{ worker_connections 1024; }}
http {{
    gzip on;
    gzip_types application/json application/problem+json;
    access_log {dir}/host-access.log;
    client_body_temp_path {dir}/body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    include {dir}/bridgeline.conf;
}}
"""


def shipped_config(*, web_port: int, http_port: int, https_port: int, certificate: Path, directory: Path) -> str:
    """The shipped file with what differs on a test machine replaced, each line named exactly (a
    change to one of them in the shipped file fails here rather than going unnoticed)."""
    key = certificate.with_suffix(".key")
    replacements = {
        "server 127.0.0.1:8000;": f"server 127.0.0.1:{web_port};",
        "listen 80;": f"listen 127.0.0.1:{http_port};",
        "listen [::]:80;": "",
        "listen 443 ssl;": f"listen 127.0.0.1:{https_port} ssl;",
        "listen [::]:443 ssl;": "",
        "ssl_certificate     /etc/ssl/certs/bridgeline-fullchain.pem;": f"ssl_certificate {certificate};",
        "ssl_certificate_key /etc/ssl/private/bridgeline.key;": f"ssl_certificate_key {key};",
        "access_log /var/log/nginx/bridgeline-access.log bridgeline;": f"access_log {directory}/access.log bridgeline;",
        "error_log /var/log/nginx/bridgeline-error.log crit;": f"error_log {directory}/error.log crit;",
    }
    lines, replaced = [], set()
    for line in SHIPPED.read_text().splitlines():
        directive = line.split("#")[0].strip()
        if directive in replacements:
            replaced.add(directive)
            line = line.replace(directive, replacements[directive])
        lines.append(line)
    assert replaced == set(replacements), f"not in the shipped file: {set(replacements) - replaced}"
    return "\n".join(lines) + "\n"


def self_signed_certificate(directory: Path) -> Path:
    """A certificate for SERVER_NAME and 127.0.0.1 (`cert.pem`), its key beside it (`cert.key`)."""
    openssl = system_binary("/usr/bin/openssl", "openssl")
    subprocess.run([openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                    "-days", "2", "-subj", f"/CN={SERVER_NAME}",
                    "-addext", f"subjectAltName=DNS:{SERVER_NAME},IP:127.0.0.1",
                    "-keyout", str(directory / "cert.key"), "-out", str(directory / "cert.pem")],
                   check=True, capture_output=True, timeout=30)
    return directory / "cert.pem"


@dataclasses.dataclass
class Proxy:
    url: str  #: https://127.0.0.1:PORT
    http_url: str  #: the plain-HTTP listener (redirects)
    port: int
    directory: Path

    def logs(self) -> str:
        return "".join(path.read_text(errors="replace") for path in sorted(self.directory.glob("*.log")))


@contextlib.contextmanager
def nginx(directory: Path, web_port: int, certificate: Path):
    """Debian's nginx with the shipped server blocks, in the foreground, unprivileged paths only."""
    binary = system_binary("/usr/sbin/nginx", "nginx")
    http_port, https_port = free_port(), free_port()
    (directory / "bridgeline.conf").write_text(shipped_config(
        web_port=web_port, http_port=http_port, https_port=https_port, certificate=certificate, directory=directory))
    (directory / "nginx.conf").write_text(HOST_CONF.format(dir=directory))
    proc = subprocess.Popen([binary, "-p", str(directory), "-c", str(directory / "nginx.conf"),
                             "-e", str(directory / "nginx-error.log"), "-g", f"daemon off; pid {directory}/nginx.pid;"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 10
        while True:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", https_port), timeout=1):
                break
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"nginx did not start: {proc.stdout.read() if proc.poll() is not None else 'timeout'}"
                            f"{(directory / 'nginx-error.log').read_text(errors='replace')}")
            time.sleep(0.05)
        yield Proxy(url=f"https://127.0.0.1:{https_port}", http_url=f"http://127.0.0.1:{http_port}",
                    port=https_port, directory=directory)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@dataclasses.dataclass
class Deployment:
    proxy: Proxy
    direct: str  #: the web process itself, http://127.0.0.1:PORT
    tls: ssl.SSLContext  #: trusts the test's certificate
    cert: Path
    admin: dict
    clinic: dict


@pytest.fixture(scope="module")
def deployment(database_url, tmp_path_factory):
    """release, two accounts made at the shell, web in production mode behind nginx (once for the
    module: each start costs seconds)."""
    system_binary("/usr/sbin/nginx", "nginx")
    directory = tmp_path_factory.mktemp("proxy")
    cert = self_signed_certificate(directory)
    with fresh_database(database_url, directory) as url, pytest.MonkeyPatch.context() as patch:
        patch.setenv("REQUESTS_CA_BUNDLE", str(cert))  # requests (and token_for) trust the test's certificate
        env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
               "DATABASE_URL": url, "HOME": str(directory), "WEB_CONCURRENCY": "2",
               "BRIDGELINE_ENV": "production", "TRUSTED_PROXY_COUNT": "1",
               "SECRET_KEY": secrets.token_hex(32), "AUDIT_HMAC_KEY": secrets.token_hex(32),
               "PUBLIC_BASE_URL": f"https://{SERVER_NAME}"}
        released = run(PROCFILE["release"], env)
        assert released.returncode == 0, released.stderr
        create_admin(env, *ADMIN)
        create_admin(env, *CLINIC, role="clinic_staff")
        with web(env) as direct, nginx(directory, int(direct.rsplit(":", 1)[1]), cert) as proxy:
            yield Deployment(proxy=proxy, direct=direct, tls=ssl.create_default_context(cafile=str(cert)), cert=cert,
                             admin=token_for(proxy.url, *ADMIN), clinic=token_for(proxy.url, *CLINIC))


class SlowClients:
    """Connections that send a request a byte a second, or send part of it and go silent. One
    thread owns every socket: it sends the bytes and notes when the server closed each one."""

    def __init__(self, port: int, tls: ssl.SSLContext | None) -> None:
        self.port, self.tls = port, tls
        self.kinds: list[str] = []
        self.sockets: list[socket.socket] = []
        self.trickles: list[bytes] = []
        self.opened: list[float] = []
        self.closed_after: dict[int, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def open(self, kind: str, count: int, head: bytes, trickle: bytes = b"") -> None:
        for _ in range(count):
            connection = socket.create_connection(("127.0.0.1", self.port), timeout=5)
            if self.tls is not None:
                connection = self.tls.wrap_socket(connection, server_hostname="127.0.0.1")
            connection.sendall(head)
            self.kinds.append(kind)
            self.sockets.append(connection)
            self.trickles.append(trickle)
            self.opened.append(time.monotonic())

    def start(self) -> SlowClients:
        self._thread.start()
        return self

    def held(self, kind: str | None = None) -> int:
        return sum(1 for i, k in enumerate(self.kinds) if (kind is None or k == kind) and i not in self.closed_after)

    def closed_within(self, kind: str) -> list[float]:
        return [self.closed_after[i] for i, k in enumerate(self.kinds) if k == kind and i in self.closed_after]

    def _run(self) -> None:
        sent = 0
        while not self._stop.wait(1 if sent else 0):
            live = [i for i in range(len(self.sockets)) if i not in self.closed_after]
            readable, _, _ = select.select([self.sockets[i] for i in live], [], [], 0)
            for i in live:
                if self.sockets[i] in readable and self._hung_up(self.sockets[i]):
                    self.closed_after[i] = time.monotonic() - self.opened[i]
                elif sent < len(self.trickles[i]):
                    try:
                        self.sockets[i].sendall(self.trickles[i][sent:sent + 1])
                    except OSError:
                        self.closed_after[i] = time.monotonic() - self.opened[i]
            sent += 1

    @staticmethod
    def _hung_up(connection: socket.socket) -> bool:
        """Whether the server closed the connection (or answered, and will): readable can also mean
        a TLS session ticket, which is no answer."""
        connection.setblocking(False)
        try:
            connection.recv(4096)
            return True  # an end of stream (b"") or an answer: either way the request is over
        except (ssl.SSLWantReadError, BlockingIOError):
            return False
        except OSError:
            return True
        finally:
            connection.settimeout(5)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        for connection in self.sockets:
            connection.close()


def timed(method: str, url: str, **kwargs) -> tuple[requests.Response, float]:
    started = time.perf_counter()
    response = requests.request(method, url, timeout=10, **kwargs)
    return response, time.perf_counter() - started


SLOW_HEADERS = b"GET /api/v1/me HTTP/1.1\r\nHost: 127.0.0.1\r\n"
SLOW_BODY_HEAD = (b"POST /api/v1/auth/tokens HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                  b"Content-Length: 4000\r\n\r\n")


def test_slow_clients_tie_up_no_worker_behind_the_proxy_and_the_api_keeps_answering(deployment):
    proxy = deployment.proxy
    slow = SlowClients(proxy.port, deployment.tls)
    try:
        slow.open("trickled headers", 50, SLOW_HEADERS, trickle=b"X-Slow: " + b"a" * 100)
        slow.open("trickled body", 50, SLOW_BODY_HEAD, trickle=b" " * 100)
        slow.open("stalled body", 10, SLOW_BODY_HEAD + b'{"username": ')
        slow.start()
        time.sleep(2)  # every slow client is in flight, as it would be when a phone calls

        answers = [timed("GET", f"{proxy.url}/health") for _ in range(5)]
        answers += [timed("GET", f"{proxy.url}/api/v1/me", headers=deployment.admin) for _ in range(3)]
        answers.append(timed("POST", f"{proxy.url}/api/v1/auth/tokens", json={
            "username": CLINIC[0], "password": CLINIC[1], "device_name": "desk"}))
        seconds = [round(elapsed, 3) for _, elapsed in answers]
        assert [response.status_code for response, _ in answers] == [200] * 8 + [201], seconds
        assert max(seconds) < 2, seconds
        assert slow.held() == 110, "every slow client was still connected while the API answered"

        # nginx drops what does not come: a header unfinished after 10 s, a body silent for 10 s.
        deadline = time.monotonic() + 15
        while slow.held("trickled headers") or slow.held("stalled body"):
            assert time.monotonic() < deadline, slow.closed_after
            time.sleep(0.25)
        assert max(slow.closed_within("trickled headers") + slow.closed_within("stalled body")) < 13
    finally:
        slow.close()


def test_without_the_proxy_two_slow_clients_stop_the_web_process(deployment):
    """Why the proxy is required: each of gunicorn's two sync workers waits on one slow client."""
    slow = SlowClients(int(deployment.direct.rsplit(":", 1)[1]), tls=None)
    try:
        slow.open("trickled headers", 2, SLOW_HEADERS, trickle=b"X-Slow: " + b"a" * 20)
        slow.start()
        time.sleep(0.5)
        with pytest.raises(requests.Timeout):
            requests.get(f"{deployment.direct}/health", timeout=3)
    finally:
        slow.close()
    assert requests.get(f"{deployment.direct}/health", timeout=5).status_code == 200  # freed once they left


def test_strong_etags_and_conditional_requests_pass_through_the_proxy_unchanged(deployment):
    proxy, clinic = deployment.proxy.url, deployment.clinic
    created = requests.post(f"{proxy}/api/v1/patients", headers=clinic, timeout=10,
                            json={"given_name": "Al", "family_name": "Ng", "birth_date": "1990-04-02"})
    assert created.status_code == 201, created.text
    path, etag = f"/api/v1/patients/{created.json()['id']}", created.headers["ETag"]
    gzip_ok = {**clinic, "Accept-Encoding": "gzip"}

    through = requests.get(f"{proxy}{path}", headers=gzip_ok, timeout=10)
    straight = requests.get(f"{deployment.direct}{path}", headers={**gzip_ok, **AS_THE_PROXY_SAYS}, timeout=10)
    assert through.status_code == straight.status_code == 200
    assert through.headers["ETag"] == straight.headers["ETag"] == etag and not etag.startswith("W/")
    # The host's nginx.conf gzips JSON; this record is too small for the app to: it stays as the app sent it.
    assert "Content-Encoding" not in through.headers and through.content == straight.content
    for tag in (etag, '"999"'):
        through = requests.get(f"{proxy}{path}", headers={**clinic, "If-None-Match": tag}, timeout=10)
        straight = requests.get(f"{deployment.direct}{path}", timeout=10,
                                headers={**clinic, "If-None-Match": tag, **AS_THE_PROXY_SAYS})
        assert (through.status_code, through.headers["ETag"]) == (straight.status_code, straight.headers["ETag"])

    patched = requests.patch(f"{proxy}{path}", json={"preferred_name": "Ally"}, timeout=10,
                             headers={**gzip_ok, "If-Match": etag})
    assert patched.status_code == 200, patched.text
    assert patched.headers["ETag"] not in (etag, f"W/{etag}") and not patched.headers["ETag"].startswith("W/")
    stale = requests.patch(f"{proxy}{path}", json={"preferred_name": "Al"}, headers={**clinic, "If-Match": etag},
                           timeout=10)
    assert stale.status_code == 412 and stale.headers["Content-Type"] == "application/problem+json"


def test_the_app_sees_https_and_the_clients_real_address_never_a_claimed_one(deployment):
    proxy, admin = deployment.proxy.url, deployment.admin
    # Production refuses plain HTTP: the web process takes a request as HTTPS only from the proxy.
    assert requests.get(f"{deployment.direct}/api/v1/me", headers=admin, timeout=10).status_code == 403
    through = requests.get(f"{proxy}/api/v1/me", headers=admin, timeout=10)
    assert through.status_code == 200
    assert through.headers["Strict-Transport-Security"] == HSTS  # one header: nginx's, not the app's as well
    assert through.headers["Server"] == "nginx"  # no version

    def from_address(address):
        return urllib3.PoolManager(ssl_context=deployment.tls, source_address=(address, 0), retries=False)

    claims = {"X-Forwarded-For": "203.0.113.7", "X-Real-IP": "203.0.113.7", "Forwarded": "for=203.0.113.7"}
    signed_in = from_address("127.0.0.2").request("POST", f"{proxy}/api/v1/auth/tokens", headers=claims, json={
        "username": CLINIC[0], "password": CLINIC[1], "device_name": "ward pc"})
    assert signed_in.status == 201
    events = requests.get(f"{proxy}/api/v1/audit-events", params={"action": "auth.sign_in", "limit": 1},
                          headers=admin, timeout=10).json()["items"]
    assert events[0]["client_ip"] == "127.0.0.2"

    # Sign-in throttling counts the real address: failures claiming many addresses lock that one only.
    guesser = from_address("127.0.0.3")
    for n in range(5):
        failed = guesser.request("POST", f"{proxy}/api/v1/auth/tokens", headers={"X-Forwarded-For": f"198.51.100.{n}"},
                                 json={"username": ADMIN[0], "password": "a wrong guess", "device_name": "x"})
        assert failed.status == 401
    right = {"username": ADMIN[0], "password": ADMIN[1], "device_name": "x"}
    throttled = guesser.request("POST", f"{proxy}/api/v1/auth/tokens", json=right,
                                headers={"X-Forwarded-For": "198.51.100.99"})
    assert throttled.status == 429 and int(throttled.headers["Retry-After"]) > 0
    assert from_address("127.0.0.4").request("POST", f"{proxy}/api/v1/auth/tokens", json=right).status == 201


def test_plain_http_is_redirected_to_https_on_the_public_name(deployment):
    answer = requests.get(f"{deployment.proxy.http_url}/api/v1/me?cursor=abc", allow_redirects=False, timeout=10)
    assert answer.status_code == 301
    assert answer.headers["Location"] == f"https://{SERVER_NAME}/api/v1/me?cursor=abc"
    assert "Strict-Transport-Security" not in answer.headers  # RFC 6797: never over plain HTTP


def tls_request(deployment, data: bytes) -> requests.Response:
    """Bytes no HTTP client would send, over TLS, with the answer read into a `requests.Response`."""
    with socket.create_connection(("127.0.0.1", deployment.proxy.port), timeout=10) as raw, \
            deployment.tls.wrap_socket(raw, server_hostname="127.0.0.1") as connection:
        connection.sendall(data)
        answer = http.client.HTTPResponse(connection)
        answer.begin()
        response = requests.Response()
        response.status_code = answer.status
        response.headers.update(answer.getheaders())
        response._content = answer.read()
    return response


def sign_in_body(size: int) -> bytes:
    body = b'{"username": "nobody.here", "password": "wrong", "device_name": "x"}'
    return body + b" " * (size - len(body))


def test_what_nginx_answers_itself_is_problem_json_like_the_apps_errors(deployment):
    proxy, plain = deployment.proxy.url, deployment.proxy.http_url
    json_type = {"Content-Type": "application/json"}
    over_tls = [
        (requests.post(f"{proxy}/api/v1/auth/tokens", data=sign_in_body(64 * 1024 + 1), headers=json_type,
                       timeout=10), 413),
        (requests.post(f"{proxy}/api/v1/auth/tokens", data=iter([sign_in_body(64 * 1024), b" "]), headers=json_type,
                       timeout=10), 413),
        (requests.get(f"{proxy}/api/v1/patients?cursor=" + "a" * 9000, timeout=10), 414),
        (requests.get(f"{proxy}/health", headers={"X-Filler": "x" * 9000}, timeout=10), 431),
        (requests.request("TRACE", f"{proxy}/health", timeout=10), 405),
        (tls_request(deployment, b"NOT HTTP AT ALL\r\n\r\n"), 400),
        (tls_request(deployment, b"GET /health HTTP/9.9\r\nHost: x\r\n\r\n"), 505),
    ]
    # Plain HTTP, refused before any redirect (HSTS never goes over it: RFC 6797).
    plain_http = [
        (requests.get(f"http://127.0.0.1:{deployment.proxy.port}/health", timeout=10), 400),  # to the HTTPS port
        (raw_request(plain, b"NOT HTTP AT ALL\r\n\r\n"), 400),
        (requests.get(f"{plain}/health", headers={"X-Filler": "x" * 9000}, timeout=10), 431),
    ]
    for (response, status), secure in [(case, True) for case in over_tls] + [(case, False) for case in plain_http]:
        assert response.status_code == status, response.text
        assert response.headers["Content-Type"] == "application/problem+json", response.text
        problem = response.json()
        app_would_say = problem_body(status, "", type="bad-request" if status == 400 else None)
        assert (problem["type"], problem["title"], problem["status"]) == \
               (app_would_say["type"], app_would_say["title"], status)
        assert problem["detail"] and problem["request_id"] == response.headers["X-Request-Id"]
        assert response.headers["Cache-Control"] == "no-store"
        assert response.headers.get("Strict-Transport-Security") == (HSTS if secure else None)


def test_a_body_the_app_would_take_always_passes_the_proxy(deployment):
    """The proxy's limit is the app's (64 KiB), sized or chunked: the app answers, not nginx."""
    proxy, json_type = deployment.proxy.url, {"Content-Type": "application/json"}
    sized = requests.post(f"{proxy}/api/v1/auth/tokens", data=sign_in_body(64 * 1024), headers=json_type, timeout=10)
    chunked = requests.post(f"{proxy}/api/v1/auth/tokens", headers=json_type, timeout=10,
                            data=iter([sign_in_body(32 * 1024), b" " * (32 * 1024)]))
    for response in (sized, chunked):
        assert response.status_code == 401, response.text  # the app read it whole: an unknown user


def test_metrics_is_never_served_through_the_proxy(deployment):
    for path in ("/metrics", "/metrics/", "//metrics", "/%6Detrics", "/metrics?name[]=x", "/api/../metrics"):
        refused = requests.get(f"{deployment.proxy.url}{path}", timeout=10)
        assert refused.status_code == 403, path
        assert refused.headers["Content-Type"] == "application/problem+json" and refused.json()["type"] == "forbidden"


def test_a_stopped_web_process_answers_503_with_retry_after(deployment, tmp_path):
    """The shipped file in front of a port where nothing listens, as when the web process is down."""
    with nginx(tmp_path, free_port(), deployment.cert) as proxy:
        for method, path in (("GET", "/api/v1/patients?mrn=MRN-31337"), ("POST", "/api/v1/auth/tokens")):
            down = requests.request(method, f"{proxy.url}{path}", json={}, timeout=10)
            assert down.status_code == 503
            assert down.headers["Content-Type"] == "application/problem+json"
            assert down.json()["type"] == "service-unavailable" and int(down.headers["Retry-After"]) > 0
        assert "MRN-31337" not in proxy.logs() and "upstream=502" in proxy.logs()


def test_the_proxy_logs_no_query_string_and_the_apps_request_id(deployment):
    proxy, clinic = deployment.proxy.url, deployment.clinic
    found = requests.get(f"{proxy}/api/v1/patients", params={"mrn": "MRN-884422"}, timeout=10,
                         headers={**clinic, "X-Request-Id": "lookup-884"})
    assert found.status_code == 200 and found.headers["X-Request-Id"] == "lookup-884"
    refused = requests.get(f"{proxy}/metrics", params={"mrn": "MRN-884422"}, timeout=10)
    assert refused.status_code == 403
    renamed = requests.get(f"{proxy}/health", headers={"X-Request-Id": "not a valid id"}, timeout=10)
    assert re.fullmatch(r"[0-9a-f]{32}", renamed.headers["X-Request-Id"])  # nginx's own, passed to the app

    logs = deployment.proxy.logs()
    assert "MRN-884422" not in logs
    assert re.search(r'"GET /api/v1/patients HTTP/1.1" 200 .* upstream=200 .* id=lookup-884\n', logs), logs
    assert f"id={refused.headers['X-Request-Id']}" in logs
