"""Scheduled jobs of the handoffs module."""

from __future__ import annotations

from backend.handoffs import deadlines


def check_handoff_deadlines() -> None:
    """Every few minutes: escalate missed accept-by and arrive-by deadlines, once each."""
    deadlines.check_deadlines()
