"""Scheduled jobs of the sync module."""

from __future__ import annotations

from backend.sync import service


def purge_sync_changes() -> None:
    """Hourly: forget feed rows older than the sync keeps them (a cursor that old gets 409)."""
    service.purge_changes()
