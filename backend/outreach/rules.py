"""When an automatic text may go: the send window and the rate limit, in the patient's time zone.

privacy.md: nothing automatic outside 08:00–21:00 patient-local (a text due then waits for the
window to open); at most 1 automatic text a local day and 3 in any 7 days (rolling). Texts are
deferred, never dropped, and the reason is written on the message. Coaches' one-off texts are
not subject to either rule.

Pure functions of their arguments (no clock, no database), so every edge is unit-tested.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterable
from zoneinfo import ZoneInfo

WEEK = dt.timedelta(days=7)


@dataclasses.dataclass(frozen=True)
class Policy:
    window_start: dt.time
    window_end: dt.time
    per_day: int
    per_week: int

    @classmethod
    def from_config(cls, config) -> Policy:
        return cls(config["SMS_SEND_WINDOW_START"], config["SMS_SEND_WINDOW_END"],
                   config["SMS_MAX_AUTOMATIC_PER_DAY"], config["SMS_MAX_AUTOMATIC_PER_WEEK"])


def local_at(day: dt.date, time: dt.time, zone: ZoneInfo) -> dt.datetime:
    """`time` on `day` in `zone`, as UTC (a wall time skipped by a DST change moves forward)."""
    naive = dt.datetime.combine(day, time)
    aware = naive.replace(tzinfo=zone)
    # Round-trip through UTC: a nonexistent local time (spring forward) comes back shifted.
    return aware.astimezone(dt.timezone.utc)


def earliest_send(at: dt.datetime, zone: ZoneInfo, policy: Policy,
                  earlier_sends: Iterable[dt.datetime]) -> tuple[dt.datetime, str | None]:
    """The first instant at or after `at` when an automatic text may go to a patient who was
    sent automatic texts at `earlier_sends`; with the first rule that moved it (None if none)."""
    sends = sorted(earlier_sends)
    reason = None
    for _ in range(64):  # each rule only moves forward; a few rounds settle it
        local = at.astimezone(zone)
        if local.time() < policy.window_start:
            at, reason = local_at(local.date(), policy.window_start, zone), reason or _quiet_hours(policy, zone)
            continue
        if local.time() >= policy.window_end:
            at = local_at(local.date() + dt.timedelta(days=1), policy.window_start, zone)
            reason = reason or _quiet_hours(policy, zone)
            continue
        today = sum(1 for sent in sends if sent.astimezone(zone).date() == local.date())
        if today >= policy.per_day:
            at = local_at(local.date() + dt.timedelta(days=1), policy.window_start, zone)
            reason = reason or f"at most {policy.per_day} automatic text(s) a day"
            continue
        this_week = [sent for sent in sends if at - WEEK < sent <= at]
        if len(this_week) >= policy.per_week:
            at = this_week[len(this_week) - policy.per_week] + WEEK
            reason = reason or f"at most {policy.per_week} automatic texts in 7 days"
            continue
        return at, reason
    raise RuntimeError("the send window and rate limit do not settle")  # pragma: no cover


def _quiet_hours(policy: Policy, zone: ZoneInfo) -> str:
    return (f"quiet hours (texts go {policy.window_start:%H:%M}–{policy.window_end:%H:%M} "
            f"{zone.key})")
