"""Commit or roll back a unit of work: an HTTP request (see `backend.web`), a job run (see
`backend.clock`) or a command.

Only the units of work commit: the request wrapper, the job wrapper, the commands — and the text
dispatcher, whose every step must be on record before the next (a claim before its send, each
send's outcome as it comes), in functions named for it (`…_and_commit`). Services flush, never
commit. A test holds the code to this.

Audit events gathered during the unit are written with it: in the same transaction when it
succeeds, so a change and its audit record commit together; in a fresh transaction after the
rollback when it fails, so refused and failed attempts stay on the record (privacy.md). Events
written without a change (a read's, a failed unit's) go on SQLite to the audit outbox, a file
beside the database, which the sequencer moves into the trail (`backend.audit.outbox`).

Bookkeeping that must not hold row locks for the length of the unit (a device session's
last-seen time) is deferred with `after()` and runs in its own short transaction once the
unit has ended, whether it committed or not.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from backend import database, errors
from backend.audit import service as audit_service
from backend.extensions import db

log = logging.getLogger(__name__)


_AFTER = "bridgeline.after_unit"


def after(task: Callable[[], None]) -> None:
    """Run `task` in a transaction of its own when the unit of work has ended."""
    db.session.info.setdefault(_AFTER, []).append(task)


def commit(status_code: int | None = None) -> None:
    """Write the gathered audit events and commit. Raises if the commit fails.

    A unit of work that only read (an HTTP GET on SQLite: `database.sqlite_reads_deferred`)
    ends its read transaction first, and writes its events in a short write transaction of
    their own (on SQLite, in the audit outbox's file): readers never hold, nor wait for,
    SQLite's write lock while they work."""
    if database.reading():
        db.session.commit()
        database.stop_reading()
        audit_service.write_pending_alone_and_commit(status_code)
    else:
        audit_service.write_pending(status_code)
        db.session.commit()
    audit_service.clear_pending()
    _run_deferred()


def roll_back(status_code: int | None, cause: BaseException | None = None) -> None:
    """Roll back the work, then record the gathered audit events with the failing status —
    unless the unit failed because the database connection was lost (`cause`): then nothing
    can be recorded, and trying would only hold the answer for another connect timeout."""
    db.session.rollback()
    database.stop_reading()
    if cause is not None and errors.lost_connection(cause):
        if audit_service.has_pending():
            log.error("audit events of a unit of work not recorded: the database connection was lost",
                      extra={"status": status_code})
        audit_service.clear_pending()
        db.session.info.pop(_AFTER, None)
        return
    try:
        audit_service.write_pending_alone_and_commit(status_code)
    except Exception:
        db.session.rollback()
        log.exception("could not record the audit events of a failed unit of work")
    finally:
        audit_service.clear_pending()
    _run_deferred()


def _run_deferred() -> None:
    for task in db.session.info.pop(_AFTER, []):
        try:
            task()
            db.session.commit()
        except Exception:
            db.session.rollback()
            log.exception("deferred bookkeeping failed", extra={"task": getattr(task, "__name__", "?")})
