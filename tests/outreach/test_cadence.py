"""Automatic texts end to end: planned by the care pathway, sent by the dispatcher through the real
`twilio` library to a fake Twilio, at patient-local times, within quiet hours and the rate limit.
The tests move the dispatcher's clock; they never sleep."""

from __future__ import annotations

import datetime as dt
import uuid
from collections import Counter
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from backend.database import utcnow
from backend.extensions import db
from backend.outreach.models import Message
from backend.outreach.privacy import revealing_words
from backend.outreach.templates import OPT_OUT_HINT
from tests.outreach.conftest import ACCOUNT_SID, FROM_NUMBER, PATIENT_PHONE, dispatch

BOSTON = ZoneInfo("America/New_York")


def run_clock(twilio, start: dt.datetime, *, hours: int, step=dt.timedelta(minutes=30)) -> list[dt.datetime]:
    """Dispatch every `step` from `start` for `hours`; return the clock time of each text Twilio got."""
    sent_at = []
    at = start
    while at <= start + dt.timedelta(hours=hours):
        before = len(twilio.received)
        dispatch(at)
        sent_at += [at] * (len(twilio.received) - before)
        at += step
    return sent_at


def on_the_hour(moment: dt.datetime) -> dt.datetime:
    return moment.replace(minute=0, second=0, microsecond=0)


def messages(**where) -> list[Message]:
    where = {name: uuid.UUID(value) for name, value in where.items()}
    return list(db.session.scalars(sa.select(Message).filter_by(**where).order_by(Message.send_at)))


def test_a_discharge_sends_the_five_check_ins_at_ten_patient_local_time(ctx, twilio, patient_texting):
    discharged = utcnow() - dt.timedelta(hours=1)
    patient, _ = patient_texting(discharged_at=discharged.isoformat())

    sent_at = run_clock(twilio, on_the_hour(utcnow()), hours=32 * 24)

    local = [moment.astimezone(BOSTON) for moment in sent_at]
    assert [(day.date() - discharged.astimezone(BOSTON).date()).days for day in local] == [1, 3, 7, 14, 30]
    assert {day.time() for day in local} == {dt.time(10, 0)}
    for text in twilio.received:
        assert (text.account_sid, text.auth_user, text.to, text.form["From"]) == \
               (ACCOUNT_SID, ACCOUNT_SID, PATIENT_PHONE, FROM_NUMBER)
        assert text.body.endswith(OPT_OUT_HINT) and revealing_words(text.body) == []
        assert text.form["StatusCallback"].startswith("http://testserver/webhooks/twilio/status?message_id=")
    sent = messages(patient_id=patient["id"])
    assert [m.status for m in sent] == ["sent"] * 5 and all(m.twilio_sid.startswith("SM") for m in sent)
    assert sorted(str(m.id) for m in sent) == sorted(text.message_id for text in twilio.received)


def test_reminders_and_check_ins_together_respect_quiet_hours_and_the_rate_limit(
        ctx, twilio, patient_texting, clinic):
    discharged = utcnow() - dt.timedelta(hours=1)
    _, episode = patient_texting(discharged_at=discharged.isoformat())
    day = discharged.astimezone(BOSTON).date()
    # Visits that crowd the check-ins: early morning (its 2 h reminder falls in quiet hours) and
    # on check-in days.
    for offset, time in ((2, dt.time(8, 30)), (3, dt.time(11, 0)), (4, dt.time(15, 0)), (8, dt.time(9, 0))):
        starts = dt.datetime.combine(day + dt.timedelta(days=offset), time, BOSTON)
        assert clinic.post(f"/api/v1/episodes/{episode['id']}/appointments", json={
            "kind": "transition_clinic", "starts_at": starts.isoformat()}).status_code == 201

    sent_at = run_clock(twilio, on_the_hour(utcnow()), hours=32 * 24)

    local = [moment.astimezone(BOSTON) for moment in sent_at]
    assert all(dt.time(8) <= moment.time() < dt.time(21) for moment in local), local
    assert max(Counter(moment.date() for moment in local).values()) == 1
    for first in sent_at:
        assert sum(1 for other in sent_at if first <= other < first + dt.timedelta(days=7)) <= 3
    assert all(text.body.endswith(OPT_OUT_HINT) and not revealing_words(text.body) for text in twilio.received)
    # Nothing was dropped silently: every planned text went, or says why it did not.
    planned = messages(episode_id=episode["id"])
    assert {m.status for m in planned} <= {"sent", "blocked"}
    assert all(m.status_reason for m in planned if m.status == "blocked")
    assert len([m for m in planned if m.status == "sent"]) == len(twilio.received)
    deferred = [m for m in planned if m.status == "sent" and m.sent_at > m.send_at + dt.timedelta(minutes=30)]
    assert deferred, "the crowded schedule defers some texts"


def test_a_text_due_in_quiet_hours_waits_for_eight_and_says_why(ctx, twilio, patient_texting, clinic):
    _, episode = patient_texting(discharged_at=(utcnow() - dt.timedelta(hours=1)).isoformat())
    tomorrow = (utcnow() + dt.timedelta(days=2)).astimezone(BOSTON).date()
    starts = dt.datetime.combine(tomorrow, dt.time(9, 0), BOSTON)  # 2 h reminder due at 07:00
    clinic.post(f"/api/v1/episodes/{episode['id']}/appointments", json={
        "kind": "transition_clinic", "starts_at": starts.isoformat()})
    reminder = next(m for m in messages(episode_id=episode["id"]) if m.plan_key.endswith(":2h"))

    dispatch(starts - dt.timedelta(hours=2))

    db.session.refresh(reminder)
    assert reminder.status == "queued"
    assert reminder.due_at == dt.datetime.combine(tomorrow, dt.time(8, 0), BOSTON)
    assert "quiet hours" in reminder.status_reason
