"""`flask --app backend reports recount`: count the outcomes report's stored facts afresh."""

from __future__ import annotations

import click
from flask.cli import AppGroup

from backend import unit_of_work
from backend.reports import refresh

reports_cli = AppGroup("reports", help="The outcomes report.")


@reports_cli.command("recount")
def recount_command() -> None:
    """Recompute every episode's stored facts (after a fix made in SQL that moved or deleted
    records; definitions that change are recounted on their own)."""
    refresh.refresh(full=True, unlimited=True)
    unit_of_work.commit()
    click.echo("outcomes report facts recounted")
