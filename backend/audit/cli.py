"""`flask --app backend audit verify`: check the hash chain of the audit trail, against anchors
recorded outside the database — the clock's "audit chain head" log lines — for example after
restoring a backup (README, "Backup and restore").

What it prints is sequence numbers, event ids and hashes: never the contents of an event.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Iterable

import click
from flask.cli import AppGroup

from backend.audit import service
from backend.audit.jobs import CHAIN_HEAD_MESSAGE
from backend.database import utcnow

audit_cli = AppGroup("audit", help="The audit trail.")

_HASH = re.compile(r"[0-9a-f]{64}")


def _moment(_ctx, _param, value: str | None) -> dt.datetime | None:
    """`--logged-before`: a moment with its offset (log lines are stamped in UTC)."""
    if value is None:
        return None
    try:
        moment = dt.datetime.fromisoformat(value.strip())
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        raise click.BadParameter("give a time with its offset, such as 20261203T020000Z or "
                                 "2026-12-03T02:00:00+00:00", param_hint="--logged-before")
    return moment


@audit_cli.command("verify")
@click.option("--anchor", "anchors", multiple=True, metavar="SEQ:HASH",
              help="A head recorded outside the database (from the clock's 'audit chain head' log lines).")
@click.option("--anchors-from", "anchor_log", type=click.File("r", encoding="utf-8", errors="replace"),
              metavar="FILE", help="A saved log of the clock ('-': standard input); every "
                                   "'audit chain head' line in it is an anchor.")
@click.option("--logged-before", "before", metavar="TIME", callback=_moment,
              help="Only the log's anchors logged before TIME (ISO 8601 with an offset, e.g. "
                   "20261203T020000Z): when a backup started, to check that backup.")
def verify_command(anchors: tuple[str, ...], anchor_log, before: dt.datetime | None) -> None:
    """Recompute every event's hash and check it against the anchors; exit 1 naming the first
    event that does not hold, or the anchor the database no longer reaches."""
    recorded = [_parse_anchor(anchor) for anchor in anchors]
    if before is not None and anchor_log is None:
        raise click.BadParameter("needs --anchors-from", param_hint="--logged-before")
    if anchor_log is not None:
        from_log = list(_anchors_in_log(anchor_log, before=before))
        if not from_log:
            when = f" logged before {before.isoformat()}" if before else ""
            raise click.BadParameter(f"no '{CHAIN_HEAD_MESSAGE}' lines{when} in {anchor_log.name}: "
                                     "it must hold the clock's JSON log lines", param_hint="--anchors-from")
        recorded += from_log
    by_seq: dict[int, tuple[str, str]] = {}
    for seq, digest, where in recorded:
        earlier = by_seq.setdefault(seq, (digest, where))
        if earlier[0] != digest:
            _broken(f"audit trail BROKEN: the anchors give two different hashes for event {seq} "
                    f"({earlier[1]} and {where}): the trail was rewritten, or restored from an older "
                    "backup, between them; find out which before trusting either")
    parsed = {seq: digest for seq, (digest, _where) in by_seq.items()}
    check = service.verify_chain(anchors=parsed)
    head = f"head: event {check.head_seq}, hash {check.head_hash}"
    if check.problem is None:
        click.echo(f"audit trail intact: {check.checked} events verified; {head}")
        click.echo(_anchor_summary(parsed, check))
        click.echo(_unsealed_summary(check))
        return
    problem = check.problem
    event = f" (id {problem.event_id})" if problem.event_id else ""
    _broken(f"audit trail BROKEN at event {problem.seq}{event}: {problem.reason}; "
            f"{check.checked} events before it verified\n{head}")


def _parse_anchor(anchor: str) -> tuple[int, str, str]:
    seq, _, digest = anchor.partition(":")
    if not seq.strip().isdigit() or not _HASH.fullmatch(digest.strip().lower()):
        raise click.BadParameter("anchors look like 1234:<64 hex digits>", param_hint="--anchor")
    return int(seq), digest.strip().lower(), f"--anchor {int(seq)}"


def _anchors_in_log(lines: Iterable[str], *, before: dt.datetime | None) -> Iterable[tuple[int, str, str]]:
    """Each anchor in a log as (seq, hash, which line), only those logged before `before` if
    given. The JSON may follow a prefix (a time stamp, a process name), as log stores and drains
    add one; other lines are skipped."""
    for number, line in enumerate(lines, 1):
        start = line.find("{")
        if start < 0 or CHAIN_HEAD_MESSAGE not in line:
            continue
        try:
            entry = json.loads(line[start:])
        except ValueError:
            continue
        if not isinstance(entry, dict) or entry.get("msg") != CHAIN_HEAD_MESSAGE:
            continue
        seq, digest = entry.get("audit_seq"), entry.get("audit_hash")
        if type(seq) is not int or seq < 0 or not isinstance(digest, str) or not _HASH.fullmatch(digest):
            raise click.BadParameter(f"line {number} is an '{CHAIN_HEAD_MESSAGE}' line without a "
                                     "sequence number and hash", param_hint="--anchors-from")
        if before is not None and _logged_at(entry, number) >= before:
            continue
        yield seq, digest, f"line {number}"


def _logged_at(entry: dict, number: int) -> dt.datetime:
    try:
        logged_at = dt.datetime.fromisoformat(entry["ts"])
    except (KeyError, TypeError, ValueError):
        logged_at = None
    if logged_at is None or logged_at.tzinfo is None:
        raise click.BadParameter(f"line {number} has no time stamp ('ts') with an offset",
                                 param_hint="--anchors-from")
    return logged_at


def _anchor_summary(anchors: dict[int, str], check: service.ChainCheck) -> str:
    if not anchors:
        return ("anchors: none given; a cut tail, or a rewrite by someone holding AUDIT_HMAC_KEY, "
                "would not show (pass --anchors-from with the clock's log)")
    if not check.anchors_covered:
        return "anchors: none after event 0"
    latest = max(seq for seq in anchors if seq <= check.head_seq)
    newer = check.head_seq - latest
    return (f"anchors: {check.anchors_covered} matched, the latest at event {latest}"
            + (f"; the events after it ({newer}) are checked by their hashes alone" if newer else ""))


def _unsealed_summary(check: service.ChainCheck) -> str:
    """The tail the sequencer has not chained yet: checked by nothing but the triggers."""
    tail = check.unsealed
    if tail is None or not tail.count:
        return "unsealed: none (every event is in the chain)"
    lag = tail.lag_seconds(utcnow())
    return (f"unsealed: {tail.count} events not yet sealed into the chain, the oldest {lag:.1f} s old "
            "(the clock's sequencer seals them every AUDIT_SEAL_SECONDS; a growing lag means it is not running)")


def _broken(message: str) -> None:
    click.echo(message, err=True)
    raise SystemExit(1)
