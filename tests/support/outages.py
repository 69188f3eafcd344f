"""Database outages on demand, for the drills: PostgreSQL stopped or frozen, SQLite locked.

PostgreSQL is reached through `TcpProxy`, a small TCP relay on 127.0.0.1 that the test can
*stop* (connections refused, open ones reset — what clients see when the server stops) or
*freeze* (connections accepted, nothing answered — a server stopped with SIGSTOP, a hung
storage volume). The suite's own server keeps running for every other test. SQLite is made
unavailable by another connection holding its write lock past the app's busy timeout.
"""

from __future__ import annotations

import contextlib
import select
import socket
import sqlite3
import struct
import threading
import time

import sqlalchemy as sa


class TcpProxy:
    def __init__(self, host: str, port: int) -> None:
        self._target = (host, port)
        self._lock = threading.Lock()
        self._connections: list[socket.socket] = []
        self._frozen = threading.Event()
        self._listener: socket.socket | None = None
        self.port = 0
        self.start_database()

    # --- what a test does -------------------------------------------------------------------
    def stop_database(self) -> None:
        """Refuse new connections and reset the open ones."""
        with self._lock:
            listener, self._listener = self._listener, None
            connections, self._connections = self._connections, []
        if listener is not None:
            with contextlib.suppress(OSError):
                listener.shutdown(socket.SHUT_RDWR)  # wakes the accepting thread (close alone does not)
            listener.close()
        for sock in connections:
            _reset(sock)

    def start_database(self) -> None:
        self._frozen.clear()
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self.port = listener.getsockname()[1]
        with self._lock:
            self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def freeze(self) -> None:
        """Keep every connection open but relay nothing, either way."""
        self._frozen.set()

    def thaw(self) -> None:
        self._frozen.clear()

    def close(self) -> None:
        self.stop_database()

    # --- the relay --------------------------------------------------------------------------
    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                server = socket.create_connection(self._target)
            except OSError:
                _reset(client)
                continue
            with self._lock:
                self._connections += [client, server]
            threading.Thread(target=self._relay, args=(client, server), daemon=True).start()

    def _relay(self, client: socket.socket, server: socket.socket) -> None:
        peers = {client: server, server: client}
        try:
            while True:
                readable, _, _ = select.select(list(peers), [], [], 0.1)
                for sock in readable:
                    data = sock.recv(65536)
                    if not data:
                        raise OSError("closed")
                    while self._frozen.is_set():  # hold what arrived until thawed
                        time.sleep(0.05)
                    peers[sock].sendall(data)
        except (OSError, ValueError):
            for sock in peers:
                _reset(sock)


def _reset(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    with contextlib.suppress(OSError):
        sock.close()


class Outage:
    """`database_url` is what the app should use; `begin()` makes the database unavailable to
    it, `end()` brings it back."""

    def __init__(self, database_url: str) -> None:
        url = sa.make_url(database_url)
        self.kind = url.get_backend_name()
        self._proxy: TcpProxy | None = None
        self._lock: sqlite3.Connection | None = None
        if self.kind == "postgresql":
            self._proxy = TcpProxy(url.host or "127.0.0.1", url.port or 5432)
            url = url.set(host="127.0.0.1", port=self._proxy.port)
        self._path = url.database
        self.database_url = url.render_as_string(hide_password=False)

    def begin(self, how: str = "stopped") -> None:
        if self._proxy is None:
            self._lock = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False)
            self._lock.execute("BEGIN EXCLUSIVE")
        elif how == "frozen":
            self._proxy.freeze()
        else:
            self._proxy.stop_database()

    def end(self) -> None:
        if self._lock is not None:
            self._lock.rollback()
            self._lock.close()
            self._lock = None
        elif self._proxy is not None:
            self._proxy.thaw()
            if self._proxy._listener is None:
                self._proxy.start_database()

    def close(self) -> None:
        self.end()
        if self._proxy is not None:
            self._proxy.close()
