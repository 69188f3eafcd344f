"""Scheduled jobs of continuity of treatment."""

from __future__ import annotations

from backend.continuity import supply_endings


def check_medication_supplies() -> None:
    """Every few minutes: escalate supplies ending within 24 h with nothing booked, once each."""
    supply_endings.check_supply_endings()
