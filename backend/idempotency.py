"""`Idempotency-Key` on POST (api.md "Conventions"): a phone's retry replays, never re-runs.

The first request with a key reserves `(user, key)` by inserting a row in its own transaction
and stores its response there before the unit of work commits, so the record and the work it
describes commit together. A retry with the same key and the same request gets the stored
response with `Idempotent-Replayed: true`; with a different request, 422. Two requests with
one key at the same moment never both run: on PostgreSQL the second one's insert waits for the
first to commit, then replays it; on SQLite transactions already run one at a time. A request
that fails (an exception, so a rollback) leaves no record, and its retry runs afresh.

Keys are kept `IDEMPOTENCY_RETENTION_DAYS` (at least 7: a phone may queue a write offline for
days). Past that, what keeps a create from running twice is the client-generated `id`
(`created_before`): the request that first used an id is remembered, as a fingerprint, for as
long as the record lives.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
import uuid

import sqlalchemy as sa
from flask import Response, current_app, g, request
from sqlalchemy.orm import Mapped, mapped_column

from backend.audit import service as audit
from backend.database import utcnow
from backend.errors import Problem
from backend.extensions import db
from backend.schemas import json_ready

HEADER = "Idempotency-Key"
MAX_KEY_LENGTH = 255
_REPLAYED_HEADERS = ("Content-Type", "Location", "ETag")
_KEY = re.compile(f"[\\x20-\\x7e]{{1,{MAX_KEY_LENGTH}}}")


class IdempotencyRecord(db.Model):
    __tablename__ = "idempotency_records"

    user_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("users.id"), primary_key=True)
    #: The client's key, as sent.
    key: Mapped[str] = mapped_column(sa.String(MAX_KEY_LENGTH), primary_key=True)
    #: SHA-256 of method, path and body (JSON canonicalised): "the same request".
    fingerprint: Mapped[str] = mapped_column(sa.String(64))
    status_code: Mapped[int]
    #: The response body as sent (it may hold patient data, like the records it describes).
    body: Mapped[str] = mapped_column(sa.Text)
    headers: Mapped[dict] = mapped_column(sa.JSON)
    #: Patients the first response concerned: a replay is audited as a read of them.
    patient_ids: Mapped[list] = mapped_column(sa.JSON, default=list)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow, index=True)


class ClientId(db.Model):
    """An id a client chose for a record it created (a text, a handoff, a consent), with the
    request that created it: a retry with the same id and request answers the record, whenever it
    comes; another request with the id is a 409. Kept as long as the record."""

    __tablename__ = "client_ids"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    #: The table of the record that carries the id.
    kind: Mapped[str] = mapped_column(sa.String(40))
    #: SHA-256 of the request as loaded (canonical JSON) and what it was sent to (the patient…).
    fingerprint: Mapped[str] = mapped_column(sa.String(64))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


def created_before(model, record_id: uuid.UUID | None, *, request: dict):
    """The `model` record a retry of this create already made, or None (then the id is claimed
    for the record about to be created, in the same unit of work). The same id with another
    request — or an id some other record has — is a 409 naming `id`."""
    if record_id is None:
        return None
    kind = model.__tablename__
    canonical = json.dumps(json_ready({"kind": kind, **request}), sort_keys=True, separators=(",", ":"), default=str)
    fingerprint = hashlib.sha256(canonical.encode()).hexdigest()
    claim = db.session.get(ClientId, record_id, populate_existing=True)
    if claim is None and db.session.get(model, record_id) is None:
        try:
            with db.session.begin_nested():
                db.session.add(ClientId(id=record_id, kind=kind, fingerprint=fingerprint))
            return None
        except sa.exc.IntegrityError:  # the same create, running at the same moment, committed first
            claim = db.session.get(ClientId, record_id, populate_existing=True)
    if claim is not None and claim.kind == kind and claim.fingerprint == fingerprint:
        record = db.session.get(model, record_id, populate_existing=True)
        if record is not None:
            return record
    raise Problem(409, f"The id {record_id} is already used by a different record.",
                  errors={"id": ["Already used by a different record."]})


def replay_or_reserve() -> Response | None:
    """Before the view: the stored response to replay, or None after reserving the key."""
    key = request.headers.get(HEADER)
    user = g.get("user")
    if request.method != "POST" or key is None or user is None:
        return None
    if not _KEY.fullmatch(key):
        raise Problem(422, f"{HEADER} must be 1 to {MAX_KEY_LENGTH} visible ASCII characters.",
                      errors={HEADER: [f"1 to {MAX_KEY_LENGTH} visible ASCII characters."]})
    fingerprint = _fingerprint()
    existing = _find(user.id, key)
    if existing is None:
        try:
            with db.session.begin_nested():
                db.session.add(IdempotencyRecord(user_id=user.id, key=key, fingerprint=fingerprint,
                                                 status_code=0, body="", headers={}))
            g.idempotency_key = key
            return None
        except sa.exc.IntegrityError:  # a concurrent request with this key committed first
            existing = _find(user.id, key)
    if existing is None or existing.fingerprint != fingerprint:
        raise Problem(422, f"This {HEADER} was already used with a different request.",
                      errors={HEADER: ["Already used with a different request."]})
    audit.record("request.replayed", details={"status_code": existing.status_code},
                 patient_ids=[uuid.UUID(pid) for pid in existing.patient_ids])
    response = current_app.response_class(existing.body, status=existing.status_code, headers=existing.headers)
    response.headers["Idempotent-Replayed"] = "true"
    return response


def remember(response: Response) -> None:
    """After the view: store the response under the reserved key. (Server errors never get
    here: their unit of work is rolled back with the reservation, and a retry runs afresh.)"""
    key = g.pop("idempotency_key", None)
    if key is None:
        return
    record = _find(g.user.id, key)
    record.status_code = response.status_code
    record.body = response.get_data(as_text=True)
    record.headers = {name: response.headers[name] for name in _REPLAYED_HEADERS if name in response.headers}
    record.patient_ids = [str(pid) for pid in audit.pending_patient_ids()]


def purge_expired(*, now: dt.datetime | None = None) -> int:
    cutoff = (now or utcnow()) - dt.timedelta(days=current_app.config["IDEMPOTENCY_RETENTION_DAYS"])
    return db.session.execute(sa.delete(IdempotencyRecord).where(IdempotencyRecord.created_at < cutoff)).rowcount


def _find(user_id: uuid.UUID, key: str) -> IdempotencyRecord | None:
    return db.session.get(IdempotencyRecord, (user_id, key), populate_existing=True)


def _fingerprint() -> str:
    body = request.get_data(cache=True)
    parsed = request.get_json(silent=True) if body else None
    canonical = json.dumps(parsed, sort_keys=True, separators=(",", ":")).encode() if parsed is not None else body
    target = request.full_path.rstrip("?").encode()  # the query string is part of the request
    return hashlib.sha256(b"\n".join([request.method.encode(), target, canonical])).hexdigest()
