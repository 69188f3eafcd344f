"""Automatic texts are planned as queued messages when the care pathway says so, and cancelled
when the plan no longer holds.

- **Discharge** plans the check-ins: days 1, 3, 7, 14 and 30 after the patient-local discharge
  date, at 10:00 patient-local (`SMS_CHECK_IN_DAYS`, `SMS_CHECK_IN_TIME`).
- **Booking** an appointment plans its reminders 24 h and 2 h before (`SMS_REMINDER_HOURS`);
  **moving** it cancels the queued ones and plans new; **cancelling** it (or marking it attended
  or missed) cancels them.
- **Closing** the episode cancels every queued text of the episode; **opting out** cancels every
  queued text of the patient, automatic or not. Only patients opted in get plans; **opting in**
  (first time or again) plans what is still ahead.

Texts planned for a time that has already passed when the plan is made (a discharge recorded
late, an appointment booked at short notice) follow one rule: **a reminder whose time has passed
is not planned** (a 24 h reminder for an appointment in 5 h would be wrong, the 2 h one still
goes); **of the check-ins already passed, only the latest is kept, as one late check-in** that
goes at the next allowed time (quiet hours and the rate limit still apply); earlier ones are
dropped, so a patient never receives a burst of stale check-ins. Opting back in plans no late
check-in.

A planned text's body is a preview: the dispatcher writes it again when it goes, in the
patient's language and with their values as they are then (`backend.outreach.dispatcher`).

Planning is idempotent: each planned text has a `plan_key` that is unique among live messages,
so a repeated signal or a second process plans nothing twice.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import uuid
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from flask import current_app

from backend import signals
from backend.auth.models import User
from backend.cases.models import (
    Appointment,
    AppointmentStatus,
    Episode,
    Patient,
    SmsStatus,
)
from backend.database import upsert, utcnow
from backend.extensions import db
from backend.outreach import rules, templates
from backend.outreach.models import (
    Message,
    MessageDirection,
    MessageKind,
    MessageStatus,
)

_LIVE_PLAN = sa.text("status <> 'cancelled'")
_COACH_NAMES = "bridgeline.coach_names"
_BATCH = "bridgeline.planned_rows"


def plan_check_ins(episode: Episode, *, now: dt.datetime | None = None, late: bool = True) -> None:
    """Queue the post-discharge check-ins of `episode` (those not planned yet)."""
    now = now or utcnow()
    patient = episode.patient
    if episode.discharged_at is None or not episode.is_open or \
            patient.sms_status != SmsStatus.OPTED_IN:
        return
    config = current_app.config
    zone = ZoneInfo(patient.timezone)
    discharge_day = episode.discharged_at.astimezone(zone).date()
    planned = [(day, rules.local_at(discharge_day + dt.timedelta(days=day), config["SMS_CHECK_IN_TIME"], zone))
               for day in config["SMS_CHECK_IN_DAYS"]]
    upcoming = [(day, at, at, None) for day, at in planned if at > now]
    missed = [(day, at) for day, at in planned if at <= now]
    if missed and late:
        day, at = missed[-1]
        upcoming.insert(0, (day, at, now, f"late: planned for {_local(at, zone)}; goes at the next allowed time"))
    text = templates.automatic_text(MessageKind.CHECK_IN, patient=patient,
                                    coach_display_name=_coach_display_name(episode.coach_id))
    _queue([_row(patient, episode.id, MessageKind.CHECK_IN, text, f"check_in:{episode.id}:day{day}",
                 send_at=at, due_at=due, reason=reason, now=now)
            for day, at, due, reason in upcoming])


def sync_reminders(appointment: Appointment, *, now: dt.datetime | None = None) -> None:
    """Make the queued reminders of `appointment` match it: cancel those for another time or a
    visit no longer scheduled; plan those still ahead."""
    now = now or utcnow()
    episode = db.session.get(Episode, appointment.episode_id)
    live = appointment.status == AppointmentStatus.SCHEDULED and episode.is_open
    prefix = f"reminder:{appointment.id}:{appointment.starts_at.astimezone(dt.timezone.utc):%Y%m%dT%H%MZ}:"
    stale = Message.appointment_id == appointment.id
    if live:
        stale = sa.and_(stale, ~Message.plan_key.startswith(prefix, autoescape=True))
    cancel_queued(stale, reason="the appointment was moved" if live else f"the appointment is {appointment.status}")
    patient = episode.patient
    if not live or patient.sms_status != SmsStatus.OPTED_IN:
        return
    text = templates.automatic_text(MessageKind.APPOINTMENT_REMINDER, patient=patient,
                                    coach_display_name=_coach_display_name(episode.coach_id),
                                    appointment_starts_at=appointment.starts_at)
    rows = []
    for hours in current_app.config["SMS_REMINDER_HOURS"]:
        at = appointment.starts_at - dt.timedelta(hours=hours)
        if at > now:
            rows.append(_row(patient, episode.id, MessageKind.APPOINTMENT_REMINDER, text, f"{prefix}{hours}h",
                             send_at=at, due_at=at, reason=None, now=now, appointment_id=appointment.id))
    _queue(rows)


def cancel_queued(*conditions: sa.ColumnElement[bool], reason: str) -> int:
    """Cancel the queued texts matching `conditions`; return how many."""
    result = db.session.execute(
        sa.update(Message).where(Message.status == MessageStatus.QUEUED, *conditions)
        .values(status=MessageStatus.CANCELLED, status_reason=f"cancelled: {reason}", due_at=None,
                status_at=utcnow(), updated_at=utcnow())
        .execution_options(synchronize_session=False))
    return result.rowcount


def _coach_display_name(coach_id: uuid.UUID | None) -> str | None:
    """The coach's name, as texts sign off (looked up once per session: plans come in runs)."""
    names = db.session.info.setdefault(_COACH_NAMES, {})
    if coach_id not in names:
        names[coach_id] = db.session.scalar(sa.select(User.display_name).where(User.id == coach_id)) \
            if coach_id else None
    return names[coach_id]


def _row(patient: Patient, episode_id: uuid.UUID, kind: MessageKind, text: templates.Rendered, plan_key: str, *,
         send_at: dt.datetime, due_at: dt.datetime, reason: str | None, now: dt.datetime,
         appointment_id: uuid.UUID | None = None) -> dict:
    return {"id": uuid.uuid4(), "patient_id": patient.id, "episode_id": episode_id, "appointment_id": appointment_id,
            "direction": MessageDirection.OUTBOUND, "kind": kind, "body": text.body, "language": text.language,
            "fell_back": text.fell_back, "status": MessageStatus.QUEUED,
            "status_reason": reason, "plan_key": plan_key, "send_at": send_at, "due_at": due_at, "attempts": 0,
            "status_at": now, "created_at": now, "updated_at": now}


@contextlib.contextmanager
def batch():
    """Plan many at once (opting in re-plans, back-fills): the planned texts are written together
    when the block ends, in one round trip instead of one per plan."""
    if _BATCH in db.session.info:  # already inside a batch
        yield
        return
    db.session.info[_BATCH] = []
    try:
        yield
        _insert(db.session.info[_BATCH])
    finally:
        db.session.info.pop(_BATCH, None)


def _queue(rows: list[dict]) -> None:
    pending = db.session.info.get(_BATCH)
    if pending is not None:
        pending.extend(rows)
    else:
        _insert(rows)


def _insert(rows: list[dict]) -> None:
    """Insert the planned texts, skipping those already planned (their plan_key is live)."""
    if rows:
        stmt = upsert(Message, None, index_elements=["plan_key"], update=None, index_where=_LIVE_PLAN,
                      dialect=db.engine.dialect.name)
        # Core, not the ORM's bulk path: one compiled statement for all the rows, far less overhead.
        db.session.connection().execute(stmt, rows)


def _local(at: dt.datetime, zone: ZoneInfo) -> str:
    return at.astimezone(zone).isoformat(timespec="minutes")


# --- reacting to the care pathway ----------------------------------------------------------

def on_episode_discharged(episode: Episode) -> None:
    plan_check_ins(episode)


def on_appointment_changed(appointment: Appointment, change: str) -> None:
    sync_reminders(appointment)


def on_episode_closed(episode: Episode) -> None:
    cancel_queued(Message.episode_id == episode.id, reason="the episode closed")


def on_sms_consent_changed(patient: Patient) -> None:
    if patient.sms_status == SmsStatus.OPTED_OUT:
        cancel_queued(Message.patient_id == patient.id, reason="the patient opted out")
        return
    if patient.sms_status != SmsStatus.OPTED_IN:
        return
    episode = db.session.scalar(sa.select(Episode).where(Episode.patient_id == patient.id,
                                                         Episode.is_open))
    if episode is None:
        return
    with batch():
        plan_check_ins(episode, late=False)
        for appointment in db.session.scalars(sa.select(Appointment).where(
                Appointment.episode_id == episode.id, Appointment.status == AppointmentStatus.SCHEDULED,
                Appointment.starts_at > utcnow())):
            sync_reminders(appointment)


def connect_signals() -> None:
    signals.episode_discharged.connect(on_episode_discharged)
    signals.appointment_changed.connect(on_appointment_changed)
    signals.episode_closed.connect(on_episode_closed)
    signals.sms_consent_changed.connect(on_sms_consent_changed)
