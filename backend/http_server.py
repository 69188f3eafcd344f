"""gunicorn's worker and logger for Bridgeline (the Procfile's `--worker-class`; the logger is
named in `gunicorn.conf.py`).

Some requests never reach the app: gunicorn refuses a request line longer than
`--limit-request-line`, too many or too large headers, or a request that is not valid HTTP/1.1,
and answers 500 for a request the app did not finish (a worker timeout). Its own answer is an
HTML page, and its log names the URL with its query. This worker answers all of those with
problem+json like every other error (api.md: never an HTML page), with a request id, and logs
only the status, the kind of failure and that id. Everything else is gunicorn's sync worker as is.

The logger writes gunicorn's own log as the app's JSON lines (`backend.logs`) and keeps no
access log: the app logs every request it answers, by route template, and this worker every
request it refuses; gunicorn's access line would name the URL with its query string.
"""

from __future__ import annotations

import json
import logging
import uuid
from http import HTTPStatus

from gunicorn import glogging, util
from gunicorn.http import errors as http_errors
from gunicorn.workers.sync import SyncWorker

from backend.errors import PROBLEM_MIMETYPE, problem_body
from backend.logs import JsonFormatter

log = logging.getLogger(__name__)

#: Parse errors that are the server's fault (a response header the app made), not the client's.
_SERVER_FAULTS = (http_errors.InvalidResponseHeader, http_errors.InvalidResponseHeaderName,
                  http_errors.ConfigurationProblem)


class Worker(SyncWorker):
    def handle_error(self, req, client, addr, exc):
        status, detail, problem_type = refusal(exc, self.cfg)
        request_id = uuid.uuid4().hex
        level = logging.ERROR if status >= 500 else logging.WARNING
        log.log(level, "request answered by the HTTP server", extra={
            "request_id": request_id, "status": status, "error": type(exc).__name__})
        try:
            util.write_nonblock(client, problem_message(status, detail, problem_type, request_id))
        except OSError:
            log.debug("could not send the answer", extra={"request_id": request_id})


class Logger(glogging.Logger):
    def setup(self, cfg):
        super().setup(cfg)
        for handler in self.error_log.handlers:  # wherever --error-logfile or syslog sends it
            handler.setFormatter(JsonFormatter())

    def access(self, resp, req, environ, request_time):
        """Never: the app logs each request (`backend.web`), without its path's ids or query."""


def refusal(exc: BaseException, cfg) -> tuple[int, str, str | None]:
    """The status, detail and problem type (None: the status's default) for a request gunicorn
    could not hand to the app, or the app did not finish."""
    if not isinstance(exc, http_errors.ParseException) or isinstance(exc, _SERVER_FAULTS):
        return 500, "The server could not finish the request.", None
    if isinstance(exc, http_errors.LimitRequestLine):
        return 414, f"The request line (method, path and query) is over {cfg.limit_request_line} bytes.", None
    if isinstance(exc, http_errors.LimitRequestHeaders):
        return 431, (f"Over {cfg.limit_request_fields} request headers, or one over "
                     f"{cfg.limit_request_field_size} bytes."), None
    if isinstance(exc, http_errors.UnsupportedTransferCoding):
        return 501, "The only transfer coding accepted is chunked.", None
    if isinstance(exc, http_errors.ExpectationFailed):
        return 417, "The only expectation accepted is 100-continue.", None
    # Malformed HTTP: api.md's 400 type, invalid-json, names a JSON body, which this is not.
    return 400, "The request is not valid HTTP/1.1.", "bad-request"


def problem_message(status: int, detail: str, problem_type: str | None, request_id: str) -> bytes:
    """A whole HTTP/1.1 response carrying the problem, as the app's own errors look."""
    body = json.dumps(problem_body(status, detail, type=problem_type, request_id=request_id)).encode()
    head = (f"HTTP/1.1 {status} {HTTPStatus(status).phrase}\r\n"
            f"Content-Type: {PROBLEM_MIMETYPE}\r\nContent-Length: {len(body)}\r\n"
            f"X-Request-Id: {request_id}\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n")
    return head.encode("latin-1") + body
