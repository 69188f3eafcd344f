"""Scheduled jobs of the operations module."""

from __future__ import annotations

from backend.ops import service


def heartbeat() -> None:
    """Record that the clock process is alive (shown by `/ready`)."""
    service.record_heartbeat()
