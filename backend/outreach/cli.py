"""`flask --app backend outreach dispatch`: send the due texts once (what the clock does every
few seconds)."""

from __future__ import annotations

import click
from flask.cli import AppGroup

from backend.outreach import dispatcher

outreach_cli = AppGroup("outreach", help="Texting patients.")


@outreach_cli.command("dispatch")
def dispatch_command() -> None:
    """Send every text that is due now, then stop."""
    tally = dispatcher.dispatch_and_commit()
    click.echo(f"{tally.sent} sent, {tally.deferred} deferred, {tally.blocked} blocked, {tally.cancelled} cancelled, "
               f"{tally.retrying} to retry, {tally.failed} failed, {tally.unknown} unknown")
