"""ETag and If-Match for records people edit (api.md): no lost update when a coach and clinic
staff edit at once.

The ETag is the record's version. A PATCH must send `If-Match` with it (428 without); a stale
one answers 412 with the current record in the body. The ORM's version check on UPDATE also
catches an edit that slipped in between the check and the write (the 412 then too).
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import contextmanager

from flask import request
from sqlalchemy.orm.exc import StaleDataError

from backend.errors import Problem
from backend.extensions import db


def etag_of(record) -> str:
    return f'"{record.version}"'


def headers(record) -> dict[str, str]:
    return {"ETag": etag_of(record)}


def require_if_match(record, current: Callable[[], dict]) -> None:
    """Refuse a PATCH whose `If-Match` is missing (428) or not the record's ETag (412).
    `current` dumps the record for the 412 body and must audit that read."""
    sent = request.headers.get("If-Match")
    if sent is None:
        raise Problem(428, "Send If-Match with the ETag you last read, so that no one's change is lost.")
    # `*` means "any current version" (RFC 9110): the condition would hold, and the edit would
    # overwrite changes the sender never saw. Not a failed condition (412) but a missing one.
    if "*" in {tag.strip() for tag in sent.split(",")}:
        raise Problem(428, "If-Match: * is not accepted: send the ETag of the version you edited (a specific "
                           "version is required), so that no one's change is lost.")
    # Strong comparison (RFC 9110): `*` or a weak tag would skip the lost-update guard.
    if etag_of(record) not in {tag.strip() for tag in sent.split(",")}:
        _stale(record, current)


@contextmanager
def written_unless_changed(record, current: Callable[[], dict]):
    """Flush the changes made in the block; a concurrent edit that won meanwhile makes it 412."""
    try:
        with db.session.begin_nested():
            yield
            db.session.flush()
    except StaleDataError:
        db.session.refresh(record)
        _stale(record, current)


def guarded_update(record, *, current: Callable[[], dict], change: Callable[[], object]):
    """A PATCH's whole guard: If-Match checked, `change()` applied and flushed unless someone
    else's change won meanwhile. Returns the record with its new ETag, for the view to answer."""
    require_if_match(record, current)
    with written_unless_changed(record, current):
        change()
    return record, headers(record)


def _stale(record, current: Callable[[], dict]):
    raise Problem(412, "Someone changed this record since you read it; merge with the current "
                       "version and send its ETag.", current=current(), headers=headers(record))
