"""Scheduled jobs of the reports module."""

from __future__ import annotations

from backend.reports import refresh


def refresh_report_facts() -> None:
    """Every 5 minutes: count the latest changes into the outcomes report's stored facts, so that a
    report has little left to do (it refreshes them too, before it reads them)."""
    refresh.refresh(unlimited=True)
