"""gunicorn's worker for Bridgeline (the Procfile's `--worker-class`).

gunicorn refuses some requests before the app sees them: a request line longer than
`--limit-request-line`, too many or too large headers, a request that is not valid HTTP/1.1.
Its own answer is an HTML page; this worker answers those with problem+json like every other
error (api.md: never an HTML page), with a request id, and logs them without the request line or
headers (they may carry a query or a token). Everything else is gunicorn's sync worker as is.
"""

from __future__ import annotations

import json
import uuid
from http import HTTPStatus

from gunicorn import util
from gunicorn.http import errors as http_errors
from gunicorn.workers.sync import SyncWorker

from backend.errors import PROBLEM_MIMETYPE, problem_body

#: gunicorn's refusals, with the status gunicorn gives each; any other malformed request is 400.
_REFUSALS = (
    (http_errors.LimitRequestLine, 414, "The request line (method, path and query) is over 8,190 bytes."),
    (http_errors.LimitRequestHeaders, 431, "Too many request headers, or one over 8,190 bytes."),
    (http_errors.UnsupportedTransferCoding, 501, "Transfer-Encoding other than chunked is not supported."),
    (http_errors.ExpectationFailed, 417, "The only expectation supported is 100-continue."),
    (http_errors.ForbiddenProxyRequest, 403, "Proxy requests are not accepted from this address."),
)
#: Parse errors that are the server's fault (a response header the app made), not the client's.
_SERVER_FAULTS = (http_errors.InvalidResponseHeader, http_errors.InvalidResponseHeaderName,
                  http_errors.ConfigurationProblem)


class Worker(SyncWorker):
    def handle_error(self, req, client, addr, exc):
        if not isinstance(exc, http_errors.ParseException) or isinstance(exc, _SERVER_FAULTS):
            return super().handle_error(req, client, addr, exc)  # a 500: gunicorn's answer and log
        status, detail = next(((status, detail) for kind, status, detail in _REFUSALS if isinstance(exc, kind)),
                              (400, "The request is not valid HTTP/1.1."))
        request_id = uuid.uuid4().hex
        self.log.warning("request refused before the app: %s %s (request %s)",
                         status, type(exc).__name__, request_id)
        # A 400 here is malformed HTTP, not the malformed JSON that api.md's 400 type names.
        problem_type = "bad-request" if status == 400 else None
        body = json.dumps(problem_body(status, detail, type=problem_type, request_id=request_id)).encode()
        head = (f"HTTP/1.1 {status} {HTTPStatus(status).phrase}\r\n"
                f"Content-Type: {PROBLEM_MIMETYPE}\r\nContent-Length: {len(body)}\r\n"
                f"X-Request-Id: {request_id}\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n")
        try:
            util.write_nonblock(client, head.encode("latin-1") + body)
        except OSError:
            self.log.debug("could not send the refusal")

