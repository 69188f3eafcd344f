"""Errors as RFC 9457 problem details (`application/problem+json`), for every failure.

Code raises `Problem` (or any werkzeug HTTPException, or flask-smorest's `abort`); the handlers
registered here turn each into `{type, title, status, detail, request_id}` plus `errors` for
validation. Unexpected exceptions become a 500 that names the request id and shows no trace.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from http import HTTPStatus
from typing import Any

import sqlalchemy as sa
from flask import Flask, current_app, g, has_request_context, json, request
from sqlalchemy.orm.exc import StaleDataError
from werkzeug.exceptions import HTTPException

from backend import metrics

log = logging.getLogger(__name__)

PROBLEM_MIMETYPE = "application/problem+json"

#: The problem type for each status when the raiser did not name a more specific one (api.md).
DEFAULT_TYPES = {
    400: "invalid-json",
    401: "unauthorized",
    403: "forbidden",
    404: "not-found",
    405: "method-not-allowed",
    409: "conflict",
    412: "precondition-failed",
    413: "payload-too-large",
    414: "uri-too-long",  # RFC 9110's name (Python 3.11's phrase is still "Request-URI Too Long")
    415: "unsupported-media-type",
    422: "validation-error",
    428: "precondition-required",
    429: "rate-limited",
    500: "internal-error",
}


class Problem(HTTPException):
    """An error answer: status, problem type, a detail for people, and optional extra members.

    `errors` maps field names to messages (validation); `extra` adds members such as
    `existing_id`; `headers` adds response headers such as `Retry-After`.
    """

    def __init__(
        self,
        status: int,
        detail: str,
        *,
        type: str | None = None,  # noqa: A002 - the RFC 9457 member name
        errors: dict[str, list[str]] | None = None,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(description=detail)
        self.code = status
        self.problem_type = type or DEFAULT_TYPES.get(status, _slug(status))
        self.errors = errors
        self.extra_headers = headers or {}
        self.extra = extra


def _slug(status: int) -> str:
    return HTTPStatus(status).phrase.lower().replace(" ", "-")


def problem_body(status: int, detail: str, *, type: str | None = None, **extra) -> dict:  # noqa: A002
    """The members of a problem: `{type, title, status, detail}` and any extra ones."""
    return {"type": type or DEFAULT_TYPES.get(status, _slug(status)), "title": HTTPStatus(status).phrase,
            "status": status, "detail": detail, **extra}


def problem_response(status: int, detail: str, *, type: str | None = None,  # noqa: A002
                     errors=None, headers=None, **extra):
    """Build the problem+json response itself (used by the handlers and by views that answer
    an error without aborting the unit of work, such as a failed sign-in that must be recorded)."""
    body = problem_body(status, detail, type=type, **extra)
    if errors is not None:
        body["errors"] = errors
    request_id = g.get("request_id")
    if request_id:
        body["request_id"] = request_id
    render = _page_renderer()
    if render is not None:
        response = render(body)
    else:
        response = current_app.response_class(json.dumps(body), status=status, mimetype=PROBLEM_MIMETYPE)
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


#: Paths whose errors are pages for people (the console), with the renderer of the problem.
_PAGES: dict[str, Callable[[dict], Any]] = {}


def render_pages_under(prefix: str, render: Callable[[dict], Any]) -> None:
    """Answer errors under `prefix` with `render(problem)` — an HTML page carrying the same
    status, detail and request id — instead of problem+json."""
    _PAGES[prefix] = render


def _page_renderer() -> Callable[[dict], Any] | None:
    if has_request_context():
        for prefix, render in _PAGES.items():
            if request.path.startswith(prefix):
                return render
    return None


#: The `errors` key of what concerns the body as a whole: a rule across fields ("give either
#: `body` or `template_id`"), a body that is not an object. The empty string is the JSON Pointer
#: of the whole document (RFC 6901), and the empty name before the first dot; a rule across the
#: fields of a nested object is under that object's name (`summary`).
WHOLE_BODY = ""
#: marshmallow's name for the same, never shown to clients.
_MARSHMALLOW_WHOLE = "_schema"


def flatten_messages(messages: Any, prefix: str = "") -> dict[str, list[str]]:
    """Turn marshmallow's nested messages into `{"field.sub": ["message", …]}`; messages about a
    whole object go under its own name (`WHOLE_BODY` for the body)."""
    flat: dict[str, list[str]] = {}
    if isinstance(messages, dict):
        for key, value in messages.items():
            if key == _MARSHMALLOW_WHOLE:
                name = prefix
            else:
                name = f"{prefix}.{key}" if prefix else str(key)
            for field, msgs in flatten_messages(value, name).items():
                flat.setdefault(field, []).extend(msgs)
    elif isinstance(messages, list) and all(isinstance(m, str) for m in messages):
        flat[prefix] = list(messages)
    elif isinstance(messages, list):
        for index, value in enumerate(messages):
            flat.update(flatten_messages(value, f"{prefix}.{index}" if prefix else str(index)))
    else:
        flat[prefix] = [str(messages)]
    return flat


def _validation_errors(data: dict) -> dict[str, list[str]]:
    """webargs puts messages under their location (`json`, `query`, …); clients want fields."""
    errors: dict[str, list[str]] = {}
    for location_messages in (data.get("messages") or {}).values():
        for field, msgs in flatten_messages(location_messages).items():
            errors.setdefault(field, []).extend(msgs)
    return errors


def validation_detail(errors: dict[str, list[str]]) -> str:
    """The detail of a 422: the fields named, and what is wrong with the body as a whole."""
    if not errors:
        return "The request could not be processed."
    fields = sorted(name for name in errors if name != WHOLE_BODY)
    parts = [" ".join(errors[WHOLE_BODY])] if WHOLE_BODY in errors else []
    if fields:
        parts.append("The request has invalid fields: " + ", ".join(fields))
    return " ".join(parts)


def handle_http_exception(exc: HTTPException):
    status = exc.code or 500
    if isinstance(exc, Problem):
        return problem_response(status, exc.description, type=exc.problem_type,
                                errors=exc.errors, headers=exc.extra_headers, **exc.extra)
    headers = {k: v for k, v in exc.get_headers() if k.lower() != "content-type"}
    data = getattr(exc, "data", None) or {}  # set by webargs / flask-smorest `abort`
    headers.update(data.get("headers") or {})
    if status == 422:
        errors = _validation_errors(data)
        return problem_response(422, validation_detail(errors), errors=errors, headers=headers)
    if status == 400 and "json" in (data.get("messages") or {}):
        return problem_response(400, "The request body is not valid JSON.", headers=headers)
    detail = data.get("message") or _DETAILS.get(status) or exc.description or HTTPStatus(status).phrase
    if status >= 500:
        detail = _DETAILS[500]
    return problem_response(status, detail, headers=headers)


#: Seconds a client should wait before retrying while the database is unavailable.
OUTAGE_RETRY_AFTER = 5
#: PostgreSQL states that mean "try again": deadlock, serialization failure, lock timeout.
_TRANSIENT_SQLSTATES = {"40P01", "40001", "55P03"}


def is_transient(exc: BaseException) -> bool:
    """A database conflict that a retry of the whole request would most likely get past."""
    if not isinstance(exc, sa.exc.DBAPIError):
        return False
    return getattr(exc.orig, "sqlstate", None) in _TRANSIENT_SQLSTATES or "database is locked" in str(exc.orig)


#: PostgreSQL states that mean the database cannot serve now: connection exceptions (08…),
#: insufficient resources (53…: disk full, out of memory), operator intervention (57P…: shutting
#: down, not accepting connections), a statement timeout (57014), a read-only server (25006).
_UNAVAILABLE_SQLSTATE_PREFIXES = ("08", "53", "57P")
_UNAVAILABLE_SQLSTATES = {"57014", "25006"}
#: SQLite's words for the same.
_UNAVAILABLE_SQLITE = ("disk is full", "readonly database", "unable to open database", "disk i/o error")
#: Of those, the ones that say the database answers but cannot take a write.
_NOT_WRITABLE_SQLSTATES = ("53", "25006")
_NOT_WRITABLE_SQLITE = ("disk is full", "readonly database", "disk i/o error")


def is_unavailable(exc: BaseException) -> bool:
    """The database is down, unreachable, full, read-only or too slow: an outage, not a bug."""
    if isinstance(exc, sa.exc.TimeoutError):  # no pooled connection came free in time
        return True
    if not isinstance(exc, sa.exc.DBAPIError):
        return False
    if exc.connection_invalidated or isinstance(exc, sa.exc.InterfaceError):
        return True
    state = getattr(exc.orig, "sqlstate", None) or ""
    if state.startswith(_UNAVAILABLE_SQLSTATE_PREFIXES) or state in _UNAVAILABLE_SQLSTATES:
        return True
    if not state and isinstance(exc, sa.exc.OperationalError):
        message = str(exc.orig).lower()
        return any(words in message for words in _UNAVAILABLE_SQLITE) or "connection" in message
    return False


def lost_connection(exc: BaseException) -> bool:
    """The connection to the database failed or was cut: nothing more can be written on it now
    (unlike a timeout or a full disk, after which the server still takes other work)."""
    if isinstance(exc, sa.exc.TimeoutError):
        return True
    if not isinstance(exc, sa.exc.DBAPIError):
        return False
    state = getattr(exc.orig, "sqlstate", None) or ""
    return (exc.connection_invalidated or isinstance(exc, sa.exc.InterfaceError) or state.startswith("08")
            or (not state and isinstance(exc, sa.exc.OperationalError) and "connection" in str(exc.orig).lower()))


def cannot_write(exc: BaseException) -> bool:
    """The database answers but takes no write now: full, read-only, or locked by another writer."""
    if not isinstance(exc, sa.exc.DBAPIError):
        return False
    state = getattr(exc.orig, "sqlstate", None) or ""
    return (is_transient(exc) or state.startswith(_NOT_WRITABLE_SQLSTATES)
            or any(words in str(exc.orig).lower() for words in _NOT_WRITABLE_SQLITE))


def status_for(exc: BaseException) -> int:
    if isinstance(exc, HTTPException):
        return exc.code or 500
    if is_transient(exc) or is_unavailable(exc):
        return 503
    return 409 if isinstance(exc, (StaleDataError, sa.exc.IntegrityError)) else 500


def handle_unexpected_exception(exc: Exception):
    metrics.count_database_error("unavailable" if is_unavailable(exc) else "busy" if is_transient(exc) else None)
    # The exception's message may quote data; log its type and stack only (no PHI in logs).
    if isinstance(exc, (StaleDataError, sa.exc.IntegrityError)):
        # A concurrent change won a race the code did not foresee: a conflict, not a crash.
        log.warning("concurrent change refused", extra={"exc_type": type(exc).__name__})
        return problem_response(409, "Someone changed this at the same moment; nothing was saved. "
                                     "Reload and try again.")
    if is_unavailable(exc):
        log.error("database unavailable; asked the client to retry", extra={"exc_type": type(exc).__name__})
        return problem_response(503, "The database is unavailable right now; nothing was saved. Retry after "
                                     "the number of seconds in Retry-After.",
                                type="service-unavailable", headers={"Retry-After": str(OUTAGE_RETRY_AFTER)})
    if is_transient(exc):
        log.warning("database busy; asked the client to retry", extra={"exc_type": type(exc).__name__})
        return problem_response(503, "The database was busy with a conflicting change; nothing was saved. "
                                     "Retry after the number of seconds in Retry-After.",
                                type="service-unavailable", headers={"Retry-After": "1"})
    log.error("unhandled exception", extra={"exc_type": type(exc).__name__}, exc_info=exc)
    return problem_response(500, _DETAILS[500])


_DETAILS = {
    401: "Sign in: send a valid bearer token in the Authorization header.",
    403: "Your role may not take this action.",
    404: "There is nothing here, or it is outside what you may see.",
    405: "This path does not accept that method; see the Allow header.",
    413: "The request body is larger than the 64 KiB limit.",
    415: "Send the body as JSON with Content-Type: application/json.",
    500: "An unexpected error occurred. Quote the request id when you report it.",
}


def init_app(app: Flask) -> None:
    app.register_error_handler(HTTPException, handle_http_exception)
    app.register_error_handler(Exception, handle_unexpected_exception)
