"""Planning follows the care pathway: discharge, booking, moving and cancelling appointments,
closing the episode and opting out each leave exactly the queued texts they should."""

from __future__ import annotations

import datetime as dt
import uuid
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from backend.database import utcnow
from backend.extensions import db
from backend.outreach import planning
from backend.outreach.models import Message
from backend.outreach.rules import Policy, earliest_send, local_at

BOSTON = ZoneInfo("America/New_York")
POLICY = Policy(dt.time(8), dt.time(21), per_day=1, per_week=3)


def queued(episode) -> list[Message]:
    return list(db.session.scalars(sa.select(Message).where(
        Message.episode_id == uuid.UUID(episode["id"]), Message.status == "queued").order_by(Message.send_at)))


def book(client, episode, starts_at: dt.datetime):
    response = client.post(f"/api/v1/episodes/{episode['id']}/appointments",
                           json={"kind": "transition_clinic", "starts_at": starts_at.isoformat()})
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def patch(client, appointment, **changes):
    url = f"/api/v1/appointments/{appointment['id']}"
    etag = client.get(url).headers["ETag"]
    response = client.patch(url, json=changes, headers={"If-Match": etag})
    assert response.status_code == 200, response.get_json()


def test_a_late_recorded_discharge_keeps_only_the_latest_missed_check_in_sent_now(ctx, patient_texting):
    discharged = utcnow() - dt.timedelta(days=8)  # days 1, 3 and 7 have passed
    _, episode = patient_texting(discharged_at=discharged.isoformat())
    plans = queued(episode)
    assert [m.plan_key.rsplit(":", 1)[1] for m in plans] == ["day7", "day14", "day30"]
    late = plans[0]
    assert late.due_at <= utcnow() and late.status_reason.startswith("late: planned for")
    day = discharged.astimezone(BOSTON).date()
    assert plans[1].send_at == local_at(day + dt.timedelta(days=14), dt.time(10), BOSTON)


def test_a_reminder_whose_time_has_passed_is_not_planned(ctx, patient_texting, clinic):
    _, episode = patient_texting()
    book(clinic, episode, utcnow() + dt.timedelta(hours=5))
    assert [m.plan_key.rsplit(":", 1)[1] for m in queued(episode)] == ["2h"]
    book(clinic, episode, utcnow() + dt.timedelta(hours=1))
    assert len(queued(episode)) == 1


def test_moving_an_appointment_moves_its_reminders_and_cancelling_it_cancels_them(ctx, patient_texting, clinic):
    _, episode = patient_texting()
    first = utcnow() + dt.timedelta(days=3)
    appointment = book(clinic, episode, first)
    assert [m.send_at for m in queued(episode)] == [first - dt.timedelta(hours=24), first - dt.timedelta(hours=2)]

    moved = first + dt.timedelta(days=2)
    patch(clinic, appointment, starts_at=moved.isoformat())
    assert [m.send_at for m in queued(episode)] == [moved - dt.timedelta(hours=24), moved - dt.timedelta(hours=2)]
    cancelled = db.session.scalars(sa.select(Message).where(Message.status == "cancelled")).all()
    assert len(cancelled) == 2 and all("moved" in m.status_reason for m in cancelled)

    patch(clinic, appointment, starts_at=first.isoformat())  # and back again: planned afresh
    assert [m.send_at for m in queued(episode)] == [first - dt.timedelta(hours=24), first - dt.timedelta(hours=2)]

    patch(clinic, appointment, status="cancelled")
    assert queued(episode) == []


def test_closing_the_episode_cancels_everything_queued(ctx, patient_texting, clinic):
    _, episode = patient_texting(discharged_at=(utcnow() - dt.timedelta(hours=1)).isoformat())
    book(clinic, episode, utcnow() + dt.timedelta(days=2))
    assert len(queued(episode)) == 7
    response = clinic.post(f"/api/v1/episodes/{episode['id']}/close", json={"reason": "engaged_in_care"})
    assert response.status_code == 200, response.get_json()
    assert queued(episode) == []


def test_planning_twice_plans_nothing_twice(ctx, patient_texting):
    from backend.cases.models import Episode

    _, episode = patient_texting(discharged_at=(utcnow() - dt.timedelta(hours=1)).isoformat())
    record = db.session.get(Episode, uuid.UUID(episode["id"]))
    before = {m.id for m in queued(episode)}
    planning.plan_check_ins(record)
    assert {m.id for m in queued(episode)} == before
    planning.cancel_queued(Message.plan_key.endswith(":day30"), reason="a test")
    planning.plan_check_ins(record)  # only the cancelled one is planned again
    again = queued(episode)
    assert len(again) == 5 and len({m.id for m in again} - before) == 1


def test_only_opted_in_patients_get_plans_and_opting_in_later_plans_what_is_ahead(ctx, patient_texting, clinic):
    two_days_ago = (utcnow() - dt.timedelta(days=2)).isoformat()
    _, refused = patient_texting(sms_status="opted_out", discharged_at=two_days_ago)
    patient, episode = patient_texting(sms_status="unknown", discharged_at=two_days_ago)
    book(clinic, episode, utcnow() + dt.timedelta(days=3))
    assert queued(refused) == queued(episode) == []

    clinic.put(f"/api/v1/patients/{patient['id']}/sms-consent", json={"status": "opted_in", "method": "written"})
    plans = queued(episode)
    assert sorted(m.plan_key.rsplit(":", 1)[1] for m in plans) == ["24h", "2h", "day14", "day3", "day30", "day7"]
    assert all(m.send_at > utcnow() for m in plans)  # day 1 has passed: no late check-in on opting in


# --- the send window and the rate limit, as pure rules --------------------------------------

def at(day: int, hour: int, minute: int = 0, *, month: int = 4) -> dt.datetime:
    """Boston wall time in 2026, as UTC."""
    return dt.datetime(2026, month, day, hour, minute, tzinfo=BOSTON).astimezone(dt.timezone.utc)


def test_inside_the_window_with_nothing_sent_a_text_goes_now():
    assert earliest_send(at(2, 10), BOSTON, POLICY, []) == (at(2, 10), None)


def test_before_eight_waits_for_eight_and_after_nine_pm_for_the_next_morning():
    assert earliest_send(at(2, 7, 59), BOSTON, POLICY, [])[0] == at(2, 8)
    moved, reason = earliest_send(at(2, 21), BOSTON, POLICY, [])
    assert moved == at(3, 8) and "quiet hours" in reason


def test_one_a_day_moves_a_second_text_to_the_next_morning():
    moved, reason = earliest_send(at(2, 15), BOSTON, POLICY, [at(2, 9)])
    assert moved == at(3, 8) and "a day" in reason


def test_three_a_week_waits_until_the_oldest_leaves_the_seven_days():
    sent = [at(2, 10), at(4, 10), at(6, 10)]
    moved, reason = earliest_send(at(7, 10), BOSTON, POLICY, sent)
    assert moved == at(9, 10) and "7 days" in reason


def test_the_window_follows_the_patients_clock_across_daylight_saving():
    # 8 March 2026: clocks in Boston go from 02:00 to 03:00; 07:30 local is 11:30 UTC that day.
    moved, _ = earliest_send(at(8, 7, 30, month=3), BOSTON, POLICY, [])
    assert moved.astimezone(BOSTON).time() == dt.time(8) and moved.utcoffset() == dt.timedelta(0)
    assert moved == dt.datetime(2026, 3, 8, 12, 0, tzinfo=dt.timezone.utc)


def test_a_batch_of_plans_is_written_together_when_it_ends(ctx, patient_texting):
    from backend.cases.models import Episode

    _, episode = patient_texting(discharged_at=(utcnow() - dt.timedelta(hours=1)).isoformat())
    planning.cancel_queued(Message.episode_id == uuid.UUID(episode["id"]), reason="a test")
    record = db.session.get(Episode, uuid.UUID(episode["id"]))
    with planning.batch():
        planning.plan_check_ins(record)
        with planning.batch():  # nested: still the one batch
            planning.plan_check_ins(record)
        assert queued(episode) == []
    assert len(queued(episode)) == 5
