"""Scheduled jobs of the audit trail."""

from __future__ import annotations

import logging

from backend.audit import outbox, service
from backend.database import sqlite_reads_deferred
from backend.extensions import db

log = logging.getLogger(__name__)

#: The message of the clock's anchor lines; `audit verify --anchors-from` looks for it.
CHAIN_HEAD_MESSAGE = "audit chain head"


def log_chain_head() -> None:
    """Every 10 minutes: write the chain head to the logs, which live outside the database.
    `audit verify --anchors-from` (or `--anchor SEQ:HASH`) then catches a rewritten or
    shortened chain, such as a restore from a backup older than the anchor."""
    seq, digest = service.chain_head()
    log.info(CHAIN_HEAD_MESSAGE, extra={"audit_seq": seq, "audit_hash": digest})


#: At most this many batches per run, so one run of the job stays short after a long outage
#: (the next run, a second later, goes on).
SEAL_BATCHES_PER_RUN = 40


def seal_audit_trail() -> None:
    """Every second (AUDIT_SEAL_SECONDS): the sequencer chains the new events into the hash
    chain (`service.next_batch`, `service.write_batch`), each batch committed on its own."""
    seal_batches_and_commit()


def seal_batches_and_commit(batch: int = service.SEAL_BATCH, batches: int = SEAL_BATCHES_PER_RUN) -> int:
    """Seal batch after batch until the tail is sealed or `batches` ran; returns how many events
    were sealed. Each batch is read and hashed in a read transaction (on SQLite a snapshot that
    takes no lock), then written in a short transaction of its own. On SQLite the audit outbox's
    events are moved into the trail first (`backend.audit.outbox`), a batch at a time."""
    total = 0
    for _ in range(batches):
        try:
            if outbox.move_and_commit() < outbox.MOVE_BATCH:
                break
        except outbox.FAILURES as exc:  # the trail's own events are sealed all the same
            db.session.rollback()
            log.error("audit outbox: its events could not be moved into the trail",
                      extra={"exc_type": type(exc).__name__})
            break
    for _ in range(batches):
        with sqlite_reads_deferred():
            hashed = service.next_batch(batch)
            db.session.commit()  # the read transaction ends (it wrote nothing)
        if hashed is None:
            break
        sealed = service.write_batch(hashed)
        db.session.commit()  # (the unit of work sits above the audit trail; sealing records no events)
        total += sealed
        if sealed < batch:
            break
    return total
