"""`flask --app backend audit verify`: check the hash chain of the audit trail."""

from __future__ import annotations

import click
from flask.cli import AppGroup

from backend.audit import service

audit_cli = AppGroup("audit", help="The audit trail.")


@audit_cli.command("verify")
@click.option("--anchor", "anchors", multiple=True, metavar="SEQ:HASH",
              help="A head recorded outside the database (the clock's 'audit chain head' log lines).")
def verify_command(anchors: tuple[str, ...]) -> None:
    """Recompute every event's hash; exit 1 naming the first event that does not hold."""
    try:
        parsed = {int(seq): digest for seq, digest in (anchor.split(":", 1) for anchor in anchors)}
    except ValueError:
        raise click.BadParameter("anchors look like 1234:<64 hex digits>", param_hint="--anchor") from None
    checked, problem = service.verify_chain(anchors=parsed)
    if problem is None:
        click.echo(f"audit trail intact: {checked} events verified")
        return
    event = f" (id {problem.event_id})" if problem.event_id else ""
    click.echo(f"audit trail BROKEN at event {problem.seq}{event}: {problem.reason}; "
               f"{checked} events before it verified", err=True)
    raise SystemExit(1)
