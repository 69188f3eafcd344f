"""A stand-in for Sentry's ingestion endpoint on 127.0.0.1, for the real `sentry-sdk` to post to.

The SDK's transport POSTs envelopes to `/api/<project>/envelope/` (gzip-compressed): a line of
JSON headers, then for each item a line of item headers and the item's payload. This server
keeps each request's decompressed bytes, as they arrived, and answers 200.
"""

from __future__ import annotations

import gzip
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class FakeSentry:
    def __init__(self) -> None:
        #: (path, decompressed body) of every POST received.
        self.received: list[tuple[str, bytes]] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - the http.server API
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if self.headers.get("Content-Encoding") == "gzip":
                    body = gzip.decompress(body)
                fake.received.append((self.path, body))
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, *args):  # keep the test output quiet
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def dsn(self) -> str:
        return f"http://publickey@127.0.0.1:{self._server.server_address[1]}/1"

    def events(self) -> list[dict]:
        """The `event` items of every envelope received, parsed."""
        found = []
        for _path, body in self.received:
            _envelope_headers, _, rest = body.partition(b"\n")
            while rest.strip():
                item_headers, _, rest = rest.partition(b"\n")
                headers = json.loads(item_headers)
                if "length" in headers:
                    payload, rest = rest[:headers["length"]], rest[headers["length"]:].removeprefix(b"\n")
                else:
                    payload, _, rest = rest.partition(b"\n")
                if headers.get("type") == "event":
                    found.append(json.loads(payload))
        return found

    def text(self) -> str:
        """Everything received, as text, for searching."""
        return "\n".join(body.decode("utf-8", "replace") for _path, body in self.received)

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
