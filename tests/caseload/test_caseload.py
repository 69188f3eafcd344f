"""The coach's caseload, most urgent first, and the clinic's caseload review."""

from __future__ import annotations

import datetime as dt
import uuid

import sqlalchemy as sa

from backend import unit_of_work
from backend.auth.models import Role
from backend.cases.models import Episode
from backend.database import utcnow
from backend.extensions import db
from backend.outreach.models import (
    Message,
    MessageDirection,
    MessageKind,
    MessageStatus,
)
from tests.cases.conftest import ago
from tests.support import counted_statements


def contact(coach, episode, **when):
    response = coach.post(f"/api/v1/episodes/{episode['id']}/encounters",
                          json={"kind": "phone", "occurred_at": ago(**when)})
    assert response.status_code == 201, response.get_json()


def caseload(coach):
    response = coach.get("/api/v1/caseload")
    assert response.status_code == 200, response.get_json()
    return response.get_json()["items"]


def test_each_rule_ranks_the_caseload_most_urgent_first(coach, nurse, open_episode):
    fine = open_episode(coach=coach)
    contact(coach, fine, hours=1)

    stale = open_episode(coach=coach, arrived_at=ago(days=9))
    contact(coach, stale, days=8)

    missed = open_episode(coach=coach)
    contact(coach, missed, hours=3)
    booked = coach.post(f"/api/v1/episodes/{missed['id']}/appointments",
                        json={"kind": "transition_clinic", "starts_at": ago(hours=2)})
    coach.patch(f"/api/v1/appointments/{booked.get_json()['id']}", json={"status": "missed"},
                headers={"If-Match": booked.headers["ETag"]})

    silent = open_episode(coach=coach, arrived_at=ago(hours=48))
    contact(coach, silent, hours=40)
    nurse.post(f"/api/v1/episodes/{silent['id']}/discharge", json={"discharged_at": ago(hours=30)})

    overdue = open_episode(coach=coach)
    contact(coach, overdue, hours=1)
    coach.post(f"/api/v1/episodes/{overdue['id']}/tasks", json={"title": "Call back", "due_at": ago(hours=1)})

    entries = caseload(coach)
    assert [(e["episode_id"], e["priority_reasons"]) for e in entries] == [
        (overdue["id"], ["overdue_task"]),
        (silent["id"], ["not_contacted_since_discharge"]),
        (missed["id"], ["missed_appointment_not_followed_up"]),
        (stale["id"], ["no_contact_7_days"]),
        (fine["id"], []),
    ]
    first = entries[0]
    assert first["overdue_tasks"] == 1 and first["next_task_due_at"] is not None
    assert first["patient_display_name"] == "Alex Rivera" and first["level"] == "emergency_department"


def test_a_followed_up_missed_appointment_no_longer_ranks(coach, open_episode):
    episode = open_episode(coach=coach)
    booked = coach.post(f"/api/v1/episodes/{episode['id']}/appointments",
                        json={"kind": "transition_clinic", "starts_at": ago(hours=3)})
    coach.patch(f"/api/v1/appointments/{booked.get_json()['id']}", json={"status": "missed"},
                headers={"If-Match": booked.headers["ETag"]})
    assert "missed_appointment_not_followed_up" in caseload(coach)[0]["priority_reasons"]
    coach.post(f"/api/v1/episodes/{episode['id']}/encounters",
               json={"kind": "attempt", "outcome": "left_message", "occurred_at": ago(hours=1)})
    assert "missed_appointment_not_followed_up" not in caseload(coach)[0]["priority_reasons"]


def test_ties_go_to_more_reasons_then_longest_since_contact_then_oldest(coach, open_episode):
    one_reason = open_episode(coach=coach)
    contact(coach, one_reason, hours=1)
    coach.post(f"/api/v1/episodes/{one_reason['id']}/tasks", json={"title": "a", "due_at": ago(hours=1)})
    two_reasons = open_episode(coach=coach)  # overdue task and never reached
    coach.post(f"/api/v1/episodes/{two_reasons['id']}/tasks", json={"title": "b", "due_at": ago(hours=1)})
    contacted_long_ago = open_episode(coach=coach, arrived_at=ago(days=20))
    contact(coach, contacted_long_ago, days=10)
    never_older = open_episode(coach=coach)
    never_newer = open_episode(coach=coach)
    order = [e["episode_id"] for e in caseload(coach)]
    assert order == [two_reasons["id"], one_reason["id"], never_older["id"], never_newer["id"],
                     contacted_long_ago["id"]]


def test_the_caseload_is_the_coachs_own_open_episodes(coach, make_client, clinic, open_episode):
    mine = open_episode(coach=coach)
    open_episode(coach=make_client(Role.COACH))
    closed = open_episode(coach=coach)
    coach.post(f"/api/v1/episodes/{closed['id']}/close", json={"reason": "moved_away"})
    assert [e["episode_id"] for e in caseload(coach)] == [mine["id"]]
    assert coach.get(f"/api/v1/caseload?coach_id={clinic.user.id}").status_code == 403
    assert clinic.get("/api/v1/caseload").status_code == 422
    assert [e["episode_id"] for e in clinic.get(f"/api/v1/caseload?coach_id={coach.user.id}").get_json()["items"]
            ] == [mine["id"]]


def test_a_caseload_asked_for_someone_who_is_no_coach_is_422_not_an_empty_list(clinic, nurse):
    for who in (nurse.user.id, clinic.user.id, uuid.uuid4()):
        response = clinic.get(f"/api/v1/caseload?coach_id={who}")
        assert response.status_code == 422 and response.get_json()["errors"] == {"coach_id": ["Not a coach."]}


def test_the_review_counts_each_coach_and_lists_who_is_slipping(clinic, coach, nurse, open_episode):
    due = open_episode(coach=coach, arrived_at=ago(hours=90))
    nurse.post(f"/api/v1/episodes/{due['id']}/discharge", json={"discharged_at": ago(hours=80)})
    coach.post(f"/api/v1/episodes/{due['id']}/tasks", json={"title": "late", "due_at": ago(hours=2)})
    ok = open_episode(coach=coach)
    contact(coach, ok, hours=1)
    lonely = open_episode()
    closed = open_episode(coach=coach)  # closing cancels its late task: it leaves the load
    coach.post(f"/api/v1/episodes/{closed['id']}/tasks", json={"title": "late", "due_at": ago(hours=3)})
    coach.post(f"/api/v1/episodes/{closed['id']}/close", json={"reason": "moved_away"})
    review = clinic.get("/api/v1/caseloads").get_json()
    row = next(r for r in review["coaches"] if r["coach_id"] == str(coach.user.id))
    assert (row["active"], row["overdue_tasks"], row["not_contacted_7d"]) == (2, 1, 1)
    assert lonely["id"] in [e["episode_id"] for e in review["unassigned"]["items"]]
    at_risk = review["at_risk"]
    assert [e["episode_id"] for e in at_risk["not_contacted_24h_after_discharge"]["items"]] == [due["id"]]
    assert [e["episode_id"] for e in at_risk["no_clinic_visit_72h"]["items"]] == [due["id"]]
    assert coach.get("/api/v1/caseloads").status_code == 403


def _seed(app, coach_id, n):
    """n episodes for the coach and n unassigned ones, all discharged days ago and never
    reached, so every list of the review has rows to render."""
    from backend import unit_of_work
    from backend.auth.models import User
    from backend.cases import activities, service
    from backend.database import utcnow

    with app.app_context():
        nurse = db.session.scalar(sa.select(User).where(User.role == Role.ED_NURSE))
        arrived = utcnow() - dt.timedelta(days=5)
        for i in range(2 * n):
            patient = service.register_patient(fields={"given_name": "P", "family_name": f"N{i}",
                                                       "birth_date": dt.date(1980, 1, 1)}, actor=nurse)
            episode = service.open_episode(patient=patient, level="inpatient", presenting_reason="other",
                                           arrived_at=arrived, coach_id=coach_id if i < n else None, flags={},
                                           actor=nurse)
            service.discharge(episode=episode, discharged_at=arrived + dt.timedelta(hours=4), actor=nurse)
            activities.log_encounter(episode=episode, actor=nurse, fields={"kind": "attempt", "outcome": "no_answer",
                                                                           "occurred_at": utcnow()})
            if i < n:
                activities.create_task(episode=episode, actor=nurse, fields={"title": "t", "due_at": utcnow()})
        unit_of_work.commit()


def test_caseload_and_review_use_as_many_statements_for_100_episodes_as_for_5(app, make_client, nurse):
    small, large = make_client(Role.COACH), make_client(Role.COACH)
    clinic = make_client(Role.CLINIC_STAFF)
    with app.app_context():
        engine = db.engine
    sent = {}
    for label, coach, n in (("5", small, 5), ("100", large, 100)):
        _seed(app, coach.user.id, n)
        # An uncounted request first: a session unused for 30 s gets its last-seen time written
        # after the next request (once, not per row), which must not count against either size.
        caseload(coach)
        with counted_statements(engine) as statements:
            assert len(caseload(coach)) == n
        sent[f"caseload {label}"] = statements
        clinic.get("/api/v1/caseloads")
        with counted_statements(engine) as statements:
            review = clinic.get("/api/v1/caseloads").get_json()
        assert review["unassigned"]["count"] >= n and review["at_risk"]["no_clinic_visit_72h"]["count"] >= n
        sent[f"review {label}"] = statements
    assert len(sent["caseload 5"]) == len(sent["caseload 100"]), sent
    assert len(sent["review 5"]) == len(sent["review 100"]), sent
    assert len(sent["caseload 100"]) <= 12, sent


def test_the_review_counts_automatic_texts_that_went_in_english_for_want_of_the_patients_language(
        app, clinic, open_episode):
    episode = open_episode()
    with app.app_context():
        patient_id = db.session.scalar(sa.select(Episode.patient_id).where(Episode.id == uuid.UUID(episode["id"])))
        now = utcnow()
        for fell_back, claimed in ((True, now - dt.timedelta(days=2)), (True, now - dt.timedelta(days=40)),
                                   (False, now - dt.timedelta(days=1))):
            db.session.add(Message(patient_id=patient_id, direction=MessageDirection.OUTBOUND,
                                   kind=MessageKind.CHECK_IN, body="Hi", status=MessageStatus.SENT, language="en",
                                   fell_back=fell_back, claimed_at=claimed, sent_at=claimed, send_at=claimed,
                                   status_at=claimed))
        unit_of_work.commit()
    assert clinic.get("/api/v1/caseloads").get_json()["texts"] == {"fell_back_to_english_30d": 1}


def test_the_caseload_is_one_page_and_takes_back_the_cursor_it_gives(coach, open_episode):
    """Its order is urgency, which moves by the minute: it comes whole, `next_cursor` null, and a
    generic list client that sends back what it got (nothing, or an empty cursor) is served."""
    episode = open_episode(coach=coach)
    whole = coach.get("/api/v1/caseload")
    assert whole.status_code == 200 and whole.get_json()["next_cursor"] is None
    again = coach.get("/api/v1/caseload?cursor=")
    assert again.status_code == 200 and [e["episode_id"] for e in again.get_json()["items"]] == [episode["id"]]
    made_up = coach.get("/api/v1/caseload?cursor=abc")
    assert made_up.status_code == 422 and "cursor" in made_up.get_json()["errors"]
