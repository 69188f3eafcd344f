"""`flask --app backend handoffs check-deadlines`: run the deadline job once."""

from __future__ import annotations

import click
from flask.cli import AppGroup

from backend import unit_of_work
from backend.handoffs import deadlines

handoffs_cli = AppGroup("handoffs", help="Handoffs between levels of care.")


@handoffs_cli.command("check-deadlines")
def check_deadlines_command() -> None:
    """Escalate missed handoff deadlines once (what the clock does every few minutes)."""
    escalated = deadlines.check_deadlines()
    unit_of_work.commit()
    click.echo(f"{escalated} missed deadlines escalated")
