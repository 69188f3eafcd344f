"""Keyset pagination with opaque cursors, stable under concurrent inserts.

A cursor names the last item returned (its unique key); the next page starts strictly after its
place in the order, so rows inserted meanwhile never shift or repeat items (unlike OFFSET). Cursors are signed
with SECRET_KEY, so one the server did not issue is refused before it reaches a query.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import hmac
import json
import uuid
from collections.abc import Sequence

import sqlalchemy as sa
from flask import current_app

from backend.errors import Problem


def _signature(payload: str) -> str:
    key = current_app.config["SECRET_KEY"].encode()
    return hmac.new(key, b"cursor:" + payload.encode(), hashlib.sha256).hexdigest()[:24]


def encode_cursor(values: Sequence) -> str:
    raw = json.dumps([v.isoformat() if isinstance(v, dt.datetime) else
                      str(v) if isinstance(v, uuid.UUID) else v for v in values])
    payload = base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")
    return f"{payload}.{_signature(payload)}"


def decode_cursor(cursor: str, types: Sequence[type]) -> list:
    try:
        payload, _, signature = cursor.partition(".")
        if not hmac.compare_digest(signature, _signature(payload)):
            raise ValueError
        raw = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        if not isinstance(raw, list) or len(raw) != len(types):
            raise ValueError
        return [_parse(value, kind) for value, kind in zip(raw, types, strict=True)]
    except (ValueError, TypeError, OverflowError, binascii.Error, UnicodeDecodeError) as exc:
        raise invalid_cursor() from exc


def invalid_cursor() -> Problem:
    """The answer to a cursor this server did not issue (or no longer can read)."""
    return Problem(422, "The cursor is not one this server issued.", errors={"cursor": ["Invalid cursor."]})


def _parse(value, kind: type):
    if kind is dt.datetime:
        parsed = dt.datetime.fromisoformat(value)
        if parsed.tzinfo is None:
            raise ValueError
        return parsed
    if kind is uuid.UUID:
        return uuid.UUID(value)
    if kind is int and isinstance(value, int) and not isinstance(value, bool) and abs(value) < 2**63:
        return value
    if kind is str and isinstance(value, str):
        return value
    raise ValueError


def keyset_page(stmt: sa.Select, *, keys: Sequence, cursor: str | None, limit: int,
                descending: bool = False, session) -> tuple[list, str | None]:
    """Run `stmt` ordered by `keys` (unique together, the last unique alone), one page after
    `cursor`.

    Returns the rows and the cursor of the next page (None when this is the last). A cursor
    carries the last row's unique key only (an id, a sequence number): never a name or a date a
    patient could be known by, since cursors travel in URLs. The page after it starts after
    that row's place in the order, read back when the cursor is used (one more statement).
    """
    *_, unique = keys
    if cursor:
        (after,) = decode_cursor(cursor, [unique.type.python_type])
        place = session.execute(sa.select(*keys).where(unique == after)).one_or_none()
        if place is None:
            raise invalid_cursor()
        row_key = sa.tuple_(*keys)
        bound = sa.tuple_(*(sa.literal(value, key.type) for key, value in zip(keys, place, strict=True)))
        stmt = stmt.where(row_key < bound if descending else row_key > bound)
    order = [k.desc() if descending else k.asc() for k in keys]
    rows = session.scalars(stmt.order_by(*order).limit(limit + 1)).all()
    if len(rows) <= limit:
        return list(rows), None
    rows = list(rows[:limit])
    return rows, encode_cursor([getattr(rows[-1], unique.key)])
