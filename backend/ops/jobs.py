"""Scheduled jobs of the operations module."""

from __future__ import annotations

from backend import idempotency
from backend.ops import service


def heartbeat() -> None:
    """Record that the clock process is alive (shown by `/ready`)."""
    service.record_heartbeat()


def purge_idempotency_records() -> None:
    """Hourly: forget Idempotency-Key responses past their retention."""
    idempotency.purge_expired()
