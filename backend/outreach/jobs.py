"""Scheduled jobs of the outreach module."""

from __future__ import annotations

from backend.outreach import dispatcher

#: Passes per run (a pass is one batch of SMS_DISPATCH_BATCH texts); the next run continues.
PASSES_PER_RUN = 50


def dispatch_texts() -> None:
    """Every few seconds: send the due texts (see `backend.outreach.dispatcher`)."""
    dispatcher.dispatch_and_commit(max_passes=PASSES_PER_RUN)
