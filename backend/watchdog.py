"""Frees work stuck on a PostgreSQL server that stopped answering.

A server that is down refuses connections at once, and one that is slow is stopped by its own
`statement_timeout`. A *frozen* one — its processes stopped, its volume hung, a network path
that drops packets — does neither: the kernel keeps the TCP connection open and nothing ever
comes back, so a request would wait until gunicorn kills its worker (issue: outages must answer
503 within seconds).

So each process has a watchdog thread. It knows when work began (a request, a clock job) and
every database connection the process holds. When some work has run `STUCK_AFTER` seconds it
asks the server, on a fresh connection, to answer `SELECT 1` within `PROBE_TIMEOUT` seconds.
If the server does not answer in time, the watchdog shuts down the sockets of the process's
connections: the waiting driver calls fail at once as a lost connection, which answers 503
`service-unavailable` with Retry-After, and the pool makes new connections (each bounded by
`DATABASE_CONNECT_TIMEOUT_SECONDS`) once the server is back. A slow statement on a healthy
server is never touched: the probe answers, and `statement_timeout` stays in charge.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import os
import socket
import threading
import time
import weakref
from collections.abc import Iterator

import sqlalchemy as sa

log = logging.getLogger(__name__)

#: Seconds of work before the watchdog asks whether the server still answers.
STUCK_AFTER = 1.5
#: Seconds a fresh connection has to answer `SELECT 1`.
PROBE_TIMEOUT = 1.5


class Watchdog:
    def __init__(self, engine: sa.Engine, *, stuck_after: float = STUCK_AFTER,
                 probe_timeout: float = PROBE_TIMEOUT) -> None:
        self._engine = engine
        self._stuck_after = stuck_after
        self._probe_timeout = probe_timeout
        self._lock = threading.Lock()
        self._work: dict[int, float] = {}
        self._tickets = itertools.count()
        self._connections: weakref.WeakSet = weakref.WeakSet()
        self._thread: threading.Thread | None = None
        self._pid = os.getpid()
        sa.event.listen(engine, "connect", self._connected)

    @contextlib.contextmanager
    def watching(self) -> Iterator[None]:
        """Mark a unit of work (a request, a job) for the length of the block."""
        ticket = self.begin()
        try:
            yield
        finally:
            self.end(ticket)

    def begin(self) -> int:
        self._ensure_running()
        ticket = next(self._tickets)
        with self._lock:
            self._work[ticket] = time.monotonic()
        return ticket

    def end(self, ticket: int) -> None:
        with self._lock:
            self._work.pop(ticket, None)

    def _connected(self, dbapi_connection, _record) -> None:
        with self._lock:
            self._connections.add(dbapi_connection)

    def _ensure_running(self) -> None:
        # Started on first use, in the process that uses it (gunicorn forks after import).
        if self._thread is None or self._pid != os.getpid() or not self._thread.is_alive():
            with self._lock:
                if self._thread is None or self._pid != os.getpid() or not self._thread.is_alive():
                    self._pid = os.getpid()
                    self._thread = threading.Thread(target=self._run, name="db-watchdog", daemon=True)
                    self._thread.start()

    def _run(self) -> None:
        while True:
            time.sleep(self._stuck_after / 4)
            with self._lock:
                oldest = min(self._work.values(), default=None)
            if oldest is None or time.monotonic() - oldest < self._stuck_after:
                continue
            if not self.server_answers():
                self.cut_connections()

    def server_answers(self, timeout: float | None = None) -> bool:
        """True unless a fresh connection's `SELECT 1` goes unanswered for `timeout` seconds
        (`probe_timeout` by default). A refusal is an answer: the connections in use then fail
        on their own."""
        timeout = self._probe_timeout if timeout is None else timeout
        answered = threading.Event()

        def probe() -> None:
            cargs, cparams = self._engine.dialect.create_connect_args(self._engine.url)
            cparams["connect_timeout"] = max(1, round(timeout))
            try:
                connection = self._engine.dialect.loaded_dbapi.connect(*cargs, **cparams)
            except Exception:  # refused, reset, too many clients: the server did answer
                answered.set()
                return
            try:
                connection.execute("SELECT 1")
                answered.set()
            except Exception:
                answered.set()
            finally:
                with contextlib.suppress(Exception):
                    connection.close()

        threading.Thread(target=probe, name="db-watchdog-probe", daemon=True).start()
        return answered.wait(timeout)

    def cut_connections(self) -> int:
        """Shut down the socket of every connection of this process; the calls waiting on them fail."""
        with self._lock:
            connections = list(self._connections)
        cut = 0
        for connection in connections:
            fileno = _socket_of(connection)
            if fileno is None:
                continue
            with contextlib.suppress(OSError), socket.socket(fileno=os.dup(fileno)) as sock:
                sock.shutdown(socket.SHUT_RDWR)
                cut += 1
        log.error("the database stopped answering; its connections were cut", extra={"connections": cut})
        return cut


def _socket_of(connection) -> int | None:
    with contextlib.suppress(Exception):
        fileno = connection.pgconn.socket  # psycopg 3
        return fileno if fileno >= 0 else None
    return None


def attach(engine: sa.Engine) -> Watchdog | None:
    """A watchdog for `engine`, attached before its first connection (PostgreSQL only: SQLite's
    waits are bounded by its busy timeout, and a file does not freeze behind a live socket)."""
    return Watchdog(engine) if engine.dialect.name == "postgresql" else None


def of(app) -> Watchdog | None:
    return app.extensions.get("bridgeline.watchdog")
