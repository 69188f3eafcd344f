"""Scheduled jobs of the identity module."""

from __future__ import annotations

from backend.auth import service


def purge_sign_in_counters() -> None:
    """Hourly: drop sign-in failure counters that no longer matter."""
    service.purge_stale_sign_in_counters()
