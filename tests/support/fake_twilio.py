"""A small stand-in for Twilio's Messages API on 127.0.0.1, for the real `twilio` library to talk to.

It records every request it receives (the form fields, the account in the path, the Basic auth
user) and answers as scripted, one behaviour per request, then "accepted" once the script is
used up: `Error(status, code)` answers a Twilio error, `Delay(seconds)` answers late (the client
times out first), `Drop()` reads the request and closes the connection without an answer,
`Meanwhile(action)` calls `action()` (say, to stop the database mid-batch) and then accepts.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import socket
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, parse_qsl, urlparse


@dataclasses.dataclass(frozen=True)
class Error:
    status: int
    code: int


@dataclasses.dataclass(frozen=True)
class Delay:
    seconds: float


@dataclasses.dataclass(frozen=True)
class Drop:
    pass


@dataclasses.dataclass(frozen=True)
class Meanwhile:
    action: Callable[[], None]


@dataclasses.dataclass(frozen=True)
class Received:
    account_sid: str
    auth_user: str
    form: dict[str, str]
    #: The SID the fake gave the message (when it accepted it).
    sid: str

    @property
    def to(self) -> str:
        return self.form["To"]

    @property
    def body(self) -> str:
        return self.form["Body"]

    @property
    def message_id(self) -> str:
        """Bridgeline's message id, from the status callback URL it gave."""
        return parse_qs(urlparse(self.form["StatusCallback"]).query)["message_id"][0]


class FakeTwilio:
    def __init__(self) -> None:
        self.received: list[Received] = []
        self._script: deque = deque()
        self._lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as Twilio
            disable_nagle_algorithm = True  # headers and body go out at once, as from a real server

            def do_POST(self):  # noqa: N802 - the http.server API
                length = int(self.headers.get("Content-Length", 0))
                form = dict(parse_qsl(self.rfile.read(length).decode()))
                parts = self.path.strip("/").split("/")
                if len(parts) != 4 or parts[:2] != ["2010-04-01", "Accounts"] or parts[3] != "Messages.json":
                    return self._json(404, {"code": 20404, "message": "not found", "status": 404})
                auth = base64.b64decode(self.headers.get("Authorization", "Basic ").split()[-1] or b"").decode()
                sid = f"SM{uuid.uuid4().hex}"
                with fake._lock:
                    fake.received.append(Received(parts[2], auth.partition(":")[0], form, sid))
                    behaviour = fake._script.popleft() if fake._script else None
                if isinstance(behaviour, Drop):
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return None
                if isinstance(behaviour, Delay):
                    time.sleep(behaviour.seconds)
                if isinstance(behaviour, Meanwhile):
                    behaviour.action()
                if isinstance(behaviour, Error):
                    return self._json(behaviour.status, {"code": behaviour.code, "message": "refused",
                                                         "more_info": "", "status": behaviour.status})
                return self._json(201, {"sid": sid, "status": "queued", "to": form.get("To"),
                                        "body": form.get("Body"), "account_sid": parts[2]})

            def _json(self, status: int, payload: dict):
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):  # quiet
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def answer(self, *behaviours) -> None:
        """Answer the next requests with `behaviours`, in order (then accept as usual)."""
        with self._lock:
            self._script.extend(behaviours)

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def closed_port_url() -> str:
    """A local URL where nothing listens: connections are refused before anything is sent."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"
