"""The HTTP request cycle: request ids, body hygiene, access checks and the unit of work.

`BridgelineFlask.dispatch_request` is the one place that commits for HTTP (as Indico's
`RH.process`): access is checked, an `Idempotency-Key` retry is replayed (`backend.idempotency`),
the view runs, then the session commits; any exception rolls everything back,
and the audit events the request gathered are still written, with the failing status, in a
transaction of their own. Services only ever `flush()`.
"""

from __future__ import annotations

import gzip
import io
import json
import logging
import re
import time
import uuid

from flask import Flask, current_app, g, request
from gunicorn.http.errors import NoMoreData, ParseException

from backend import errors, idempotency, metrics, unit_of_work, watchdog
from backend.audit import outbox as audit_outbox
from backend.auth import access
from backend.database import WRITES_MARK, sqlite_reads_deferred
from backend.errors import WHOLE_BODY, Problem
from backend.extensions import db
from backend.json_output import OrjsonProvider

log = logging.getLogger("backend.request")

#: Served over plain HTTP in production too: the platform's probes, and the scrape (which has
#: its own access rule: `backend.ops.scrape`).
_PROBES = ("/health", "/ready", "/metrics")
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
_BODY_METHODS = {"POST", "PUT", "PATCH", "DELETE"}
#: Paths whose bodies are not JSON (Twilio posts forms; so do the console's pages; the hospital's
#: interface engine posts HL7 v2 ER7).
_FORM_PREFIXES = ("/webhooks/", "/console/", "/api/v1/interfaces/")
_API_PREFIX = "/api/"
#: Bodies up to this size are read and discarded before a 413, so that the client, still
#: sending, sees the answer rather than a connection reset.
_DRAIN_LIMIT = 1024 * 1024


#: Requests that only read: on SQLite they run in a read transaction (no write lock).
_READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class BridgelineFlask(Flask):
    json_provider_class = OrjsonProvider

    def dispatch_request(self):
        if request.routing_exception is not None:
            self.raise_routing_exception(request)
        if self._only_reads():
            with sqlite_reads_deferred():
                return self._unit_of_work()
        return self._unit_of_work()

    def _only_reads(self) -> bool:
        """A GET on SQLite, unless its view says it writes (`database.takes_write_lock`)."""
        if request.method not in _READ_METHODS or not self.extensions.get(_SQLITE) or request.url_rule is None:
            return False
        return not _marked(WRITES_MARK)

    def _unit_of_work(self):
        try:
            access.enforce()
            if audit_outbox.engine() is not None and _marked(audit_outbox.READS_TRAIL_MARK):
                _copy_audit_outbox_and_commit()
            response = idempotency.replay_or_reserve()
            if response is None:
                response = self.make_response(super().dispatch_request())
                if response.status_code >= 500:  # a server-side failure answered, not raised
                    unit_of_work.roll_back(response.status_code)
                    return response
                idempotency.remember(response)
            unit_of_work.commit(response.status_code)
        except BaseException as exc:
            unit_of_work.roll_back(errors.status_for(exc), cause=exc)
            raise
        return response


def _marked(mark: str) -> bool:
    """Whether the view that answers this request (a function, or a MethodView's method) has `mark`."""
    if request.url_rule is None:
        return False
    view = current_app.view_functions.get(request.url_rule.endpoint)
    view_class = getattr(view, "view_class", None)
    handler = getattr(view_class, request.method.lower(), None) if view_class is not None else view
    return getattr(handler, mark, False)


def _copy_audit_outbox_and_commit() -> None:
    """For a view that lists the trail, once its caller is known to be allowed: end the access
    check's read transaction, then copy SQLite's audit outbox into the trail (a short write of its
    own), so the view's snapshot holds every event committed before the request."""
    db.session.commit()
    audit_outbox.copy_into_trail_and_commit()


def _assign_request_id() -> None:
    g.started = time.perf_counter()
    incoming = request.headers.get("X-Request-Id", "")
    g.request_id = incoming if _REQUEST_ID.match(incoming) else uuid.uuid4().hex


def _check_body() -> None:
    """Size, media type and JSON syntax, checked before any view sees the body."""
    _refuse_transfer_codings()
    if request.method not in _BODY_METHODS:
        return
    max_length = request.max_content_length
    length = request.content_length
    if length is not None and max_length is not None and length > max_length:
        if length <= _DRAIN_LIMIT:
            request.environ["wsgi.input"].read(length)
        raise Problem(413, f"The request body is {length} bytes; the limit is {max_length} (64 KiB).")
    if length is None and "chunked" in request.headers.get("Transfer-Encoding", "").lower():
        _buffer_unsized_body(max_length)
    if request.path.startswith(_FORM_PREFIXES):
        return
    body = request.get_data(cache=True)
    if not body:
        return
    if not request.is_json:
        raise Problem(415, f"Send the body as JSON with Content-Type: application/json "
                           f"(got {request.mimetype or 'none'}).")
    try:
        parsed = request.get_json(silent=True)
    except RecursionError:  # absurdly deep nesting
        parsed = None
    if parsed is None and body.strip() != b"null":
        raise Problem(400, "The request body is not valid JSON.")
    try:
        json.loads(body, object_pairs_hook=_names_once)
    except _RepeatedName as repeated:
        raise Problem(400, f"The body names {repeated} twice in one object; send each field once.") from None
    _refuse_unstorable_text(parsed)


def _refuse_transfer_codings() -> None:
    """`chunked` is the one transfer coding the server takes (the guide). gunicorn answers a
    request whose codings do not end in `chunked` with 400 (RFC 9112 §6.3 says it must: its
    length cannot be known); one that ends in `chunked` after another coding (`gzip, chunked`)
    reaches the app with the other coding not undone, and would be read as plain: 501
    (RFC 9112 §6.1), before anything reads the body."""
    codings = [c.strip(" \t").lower() for c in request.headers.get("Transfer-Encoding", "").split(",")]
    codings = [c for c in codings if c]
    if codings and codings != ["chunked"]:
        raise Problem(501, f"Transfer-Encoding {', '.join(codings)}: the only transfer coding accepted is chunked, "
                           "alone: send the body as it is, with a Content-Length or chunked.",
                      type="not-implemented")


class _RepeatedName(ValueError):
    pass


def _names_once(pairs: list[tuple[str, object]]) -> dict:
    """A JSON object, refusing a repeated name (RFC 8259 leaves its meaning open; parsers differ
    on which value wins, so the phone and the server could read different records)."""
    names = set()
    for name, _ in pairs:
        if name in names:
            raise _RepeatedName(json.dumps(name if len(name) <= 64 else name[:64] + "..."))
        names.add(name)
    return dict(pairs)


def _buffer_unsized_body(max_length: int) -> None:
    """A chunked body has no Content-Length, and werkzeug would silently cut it at the limit:
    read it here, refuse it whole if it is too long, and hand werkzeug a sized copy."""
    try:
        body = request.environ["wsgi.input"].read(max_length + 1)
    except (ParseException, NoMoreData):  # gunicorn reads the chunks as the app asks for them
        raise Problem(400, "The chunked body is malformed or was cut short.", type="bad-request") from None
    if len(body) > max_length:
        raise Problem(413, f"The request body is over the limit of {max_length} bytes (64 KiB).")
    request.environ["wsgi.input"] = io.BytesIO(body)
    # Now it is an ordinary sized body (werkzeug ignores Content-Length while chunked is set).
    request.environ["CONTENT_LENGTH"] = str(len(body))
    request.environ.pop("HTTP_TRANSFER_ENCODING", None)
    request.environ.pop("wsgi.input_terminated", None)


#: NUL and unpaired surrogates are valid JSON escapes but not storable text (PostgreSQL
#: refuses NUL; UTF-8 cannot encode a lone surrogate).
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
#: No request of ours nests deeper; deeper bodies are refused before anything walks them.
MAX_JSON_DEPTH = 32


def _refuse_unstorable_text(value) -> None:
    """Walk the parsed body (iteratively: depth is the client's choice) for text that cannot
    be stored, and refuse absurd nesting."""
    bad: list[str] = []
    stack = [("", value, 0)]
    while stack:
        path, item, depth = stack.pop()
        if depth > MAX_JSON_DEPTH:
            raise Problem(422, f"The body is nested more than {MAX_JSON_DEPTH} levels deep.",
                          errors={path or WHOLE_BODY: [f"Nested more than {MAX_JSON_DEPTH} levels deep."]})
        if isinstance(item, str):
            if _UNSTORABLE.search(item):
                bad.append(path or WHOLE_BODY)
        elif isinstance(item, dict):
            for key, child in item.items():
                child_path = f"{path}.{key}" if path else str(key)
                if _UNSTORABLE.search(str(key)):
                    bad.append(child_path)
                stack.append((child_path, child, depth + 1))
        elif isinstance(item, list):
            stack.extend((f"{path}.{i}" if path else str(i), child, depth + 1) for i, child in enumerate(item))
    if bad:
        raise Problem(422, "Text may not contain NUL or unpaired surrogate characters.",
                      errors={p: ["Contains a NUL or an unpaired surrogate character."] for p in sorted(bad)})


def _check_query() -> None:
    """A query parameter given twice (`?limit=1&limit=3`) is a 422 naming it: which value wins
    is the server's guess, like a JSON name given twice (no parameter of the API is a list)."""
    _refuse_unstorable_text({name: values for name, values in request.args.lists()})
    if request.path.startswith(_API_PREFIX):
        repeated = sorted(name for name, values in request.args.lists() if len(values) > 1)
        if repeated:
            raise Problem(422, f"Query parameters given more than once: {', '.join(repeated)}; send each once.",
                          errors={name: ["Given more than once; send it once."] for name in repeated})


def _require_https() -> None:
    """Production serves patient data over HTTPS only (probes excepted: platforms call them
    over the internal network). Behind a proxy, set TRUSTED_PROXY_COUNT so the scheme is seen."""
    if request.scheme != "https" and request.path not in _PROBES:
        raise Problem(403, "Use HTTPS.")


#: JSON bodies and console pages at least this long are gzipped for clients that accept it (a
#: phone on a slow network gains most on caseloads, timelines and syncs; tiny bodies would only
#: grow). Console pages carry a CSRF token next to what was typed, the shape a BREACH attack
#: needs; it also needs the victim's browser to send many cross-site requests with the session
#: cookie, which `SameSite=Lax` cookies refuse to anything but top-level navigation.
GZIP_MIN_BYTES = 512
_COMPRESSIBLE = {"application/json", errors.PROBLEM_MIMETYPE, "text/html"}
#: Answers that carry a fresh secret are never compressed (no BREACH-style length oracle on it).
_NEVER_COMPRESSED = ("/api/v1/auth/tokens", "/console/sign-in")


def _compress(response) -> None:
    if response.mimetype not in _COMPRESSIBLE or response.direct_passthrough or response.is_streamed \
            or "Content-Encoding" in response.headers or request.path in _NEVER_COMPRESSED:
        return
    response.vary.add("Accept-Encoding")
    if request.method == "HEAD" or request.accept_encodings.quality("gzip") <= 0:
        return
    body = response.get_data()
    if len(body) >= GZIP_MIN_BYTES:
        response.set_data(gzip.compress(body, compresslevel=6))
        response.headers["Content-Encoding"] = "gzip"


def _finish(response):
    response.headers["X-Request-Id"] = g.get("request_id", "")
    # Responses carry tokens and patient data: no cache (phone, proxy) may keep them.
    response.headers["Cache-Control"] = "no-store"
    if current_app.config["BRIDGELINE_ENV"] == "production":
        response.headers["Strict-Transport-Security"] = "max-age=31536000"
    if response.status_code == 204 or (not response.is_streamed and not response.direct_passthrough
                                       and response.get_data() == b""):
        response.headers.pop("Content-Type", None)
    _compress(response)
    started = g.get("started")
    seconds = time.perf_counter() - started if started else None
    user_id = g.get("user_id")
    route = request.url_rule.rule if request.url_rule else None
    metrics.observe_request(route, request.method, response.status_code, seconds)
    log.info(
        "request",
        extra={
            # The route template, never the path: paths carry patient ids, query strings names and
            # MRNs, and a path that matched no route is whatever the client typed.
            "method": request.method,
            "route": route or metrics.UNMATCHED,
            "endpoint": request.endpoint,
            "status": response.status_code,
            "duration_ms": round(seconds * 1000, 1) if seconds is not None else None,
            "user_id": str(user_id) if user_id is not None else None,
        },
    )
    return response


def _watch() -> None:
    """Tell the database watchdog a request is under way (see `backend.watchdog`)."""
    dog = watchdog.of(current_app)
    if dog is not None:
        g.watchdog_ticket = dog.begin()


def _unwatch(_exc) -> None:
    dog, ticket = watchdog.of(current_app), g.pop("watchdog_ticket", None)
    if dog is not None and ticket is not None:
        dog.end(ticket)


_SQLITE = "bridgeline.sqlite"


def init_app(app: Flask) -> None:
    app.extensions[_SQLITE] = app.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite")
    app.before_request(_watch)
    app.teardown_request(_unwatch)
    app.before_request(_assign_request_id)
    if app.config["BRIDGELINE_ENV"] == "production":
        app.before_request(_require_https)
    app.before_request(_check_query)
    app.before_request(_check_body)
    app.after_request(_finish)
