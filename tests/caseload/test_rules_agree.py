"""Each rule the read models apply is written once, as a hybrid of its domain's model: read on a
record (Python) and in a query (SQL), it gives the same answer."""

from __future__ import annotations

import datetime as dt
import uuid

import sqlalchemy as sa

from backend.cases.models import Encounter, Episode, EpisodeContact, Patient, Task
from backend.database import utcnow
from backend.extensions import db
from backend.handoffs.models import Handoff
from backend.outreach.models import (
    Message,
    MessageDirection,
    MessageKind,
    MessageStatus,
)
from tests.cases.conftest import ago, ahead


def both_ways(model, rule):
    """The ids `rule` picks among every `model` row: on the loaded records, and in SQL."""
    in_python = {record.id for record in db.session.scalars(sa.select(model)) if rule(record)}
    in_sql = set(db.session.scalars(sa.select(model.id).where(rule(model))))
    return in_python, in_sql


def test_overdue_tasks_and_handoffs_and_open_episodes_agree_in_python_and_sql(app, coach, clinic, open_episode,
                                                                              send):
    episode = open_episode(coach=coach)
    for due in (ago(hours=2), ahead(hours=2)):
        coach.post(f"/api/v1/episodes/{episode['id']}/tasks", json={"title": "Call", "due_at": due})
    done = coach.post(f"/api/v1/episodes/{episode['id']}/tasks", json={"title": "Done", "due_at": ago(hours=1)})
    coach.patch(f"/api/v1/tasks/{done.get_json()['id']}", json={"status": "done"},
                headers={"If-Match": done.headers["ETag"]})
    send(open_episode(), accept_by=ago(minutes=5), arrive_by=ahead(hours=40))  # missed accept-by
    send(open_episode())  # on time
    accepted = send(open_episode(), accept_by=ahead(hours=1), arrive_by=ahead(hours=2)).get_json()
    clinic.post(f"/api/v1/handoffs/{accepted['id']}/accept", json={})
    closed = open_episode()
    clinic.post(f"/api/v1/episodes/{closed['id']}/close", json={"reason": "declined_services"})
    later = utcnow() + dt.timedelta(hours=3)  # past the accepted handoff's arrive-by

    with app.app_context():
        for now in (utcnow(), later):
            overdue_tasks = both_ways(Task, lambda t, now=now: t.overdue(now))
            assert overdue_tasks[0] == overdue_tasks[1] and overdue_tasks[0]
            overdue_handoffs = both_ways(Handoff, lambda h, now=now: h.overdue(now))
            assert overdue_handoffs[0] == overdue_handoffs[1]
            for deadline in ("accept_by", "arrive_by"):
                missed = both_ways(Handoff, lambda h, now=now, deadline=deadline: h.missed(deadline, now))
                assert missed[0] == missed[1]
        assert len(both_ways(Handoff, lambda h: h.overdue(utcnow()))[0]) == 1
        assert len(both_ways(Handoff, lambda h: h.overdue(later))[0]) == 2
        open_in_python, open_in_sql = both_ways(Episode, lambda e: e.is_open)
        assert open_in_python == open_in_sql and closed["id"] not in {str(i) for i in open_in_sql}


def test_contacts_unread_replies_and_display_names_agree_in_python_and_sql(app, coach, register, open_episode):
    episode = open_episode(coach=coach, patient=register(preferred_name="Lupe", given_name="Guadalupe"))
    register(given_name="Sam", family_name="Ortiz")
    for outcome in ("reached", "no_answer"):
        coach.post(f"/api/v1/episodes/{episode['id']}/encounters",
                   json={"kind": "phone" if outcome == "reached" else "attempt", "outcome": outcome,
                         "occurred_at": ago(hours=1)})

    with app.app_context():
        patient_id = db.session.scalar(sa.select(Episode.patient_id).where(Episode.id == uuid.UUID(episode["id"])))
        now = utcnow()
        for direction, read_at in ((MessageDirection.INBOUND, None), (MessageDirection.INBOUND, now),
                                   (MessageDirection.OUTBOUND, None)):
            db.session.add(Message(patient_id=patient_id, direction=direction, kind=MessageKind.REPLY, body="hola",
                                   status=MessageStatus.RECEIVED, read_at=read_at, send_at=now, status_at=now))
        db.session.flush()

        reached = both_ways(Encounter, lambda e: e.reached)
        assert reached[0] == reached[1] and len(reached[0]) == 1
        unread = both_ways(Message, lambda m: m.unread_reply)
        assert unread[0] == unread[1] and len(unread[0]) == 1
        names = {patient.id: patient.display_name for patient in db.session.scalars(sa.select(Patient))}
        assert dict(db.session.execute(sa.select(Patient.id, Patient.display_name)).all()) == names
        assert {"Lupe Rivera", "Sam Ortiz"} <= set(names.values())


def test_the_last_time_reached_kept_by_the_database_agrees_with_the_encounters(app, coach, open_episode):
    """`EpisodeContact` is written by triggers: an earlier contact logged late, an attempt, and
    an encounter inserted without the service all leave it equal to the newest contact; an
    episode that closes leaves no row (the caseload and the review read open episodes only)."""
    first, second, never = open_episode(coach=coach), open_episode(coach=coach), open_episode(coach=coach)
    closed = open_episode(coach=coach)
    for episode, outcome, hours in ((first, "reached", 5), (first, "reached", 1), (first, "reached", 3),
                                    (first, "no_answer", 0), (second, "no_answer", 2), (never, "no_answer", 1),
                                    (closed, "reached", 1)):
        coach.post(f"/api/v1/episodes/{episode['id']}/encounters",
                   json={"kind": "phone" if outcome == "reached" else "attempt", "outcome": outcome,
                         "occurred_at": ago(hours=hours)})
    assert coach.post(f"/api/v1/episodes/{closed['id']}/close", json={"reason": "engaged_in_care"}).status_code == 200
    with app.app_context():
        db.session.execute(sa.insert(Encounter), [{
            "id": uuid.uuid4(), "episode_id": uuid.UUID(second["id"]), "author_id": coach.user.id, "kind": "phone",
            "outcome": "reached", "occurred_at": utcnow() - dt.timedelta(hours=4), "created_at": utcnow()}])
        db.session.commit()
        newest = dict(db.session.execute(sa.select(Encounter.episode_id, sa.func.max(Encounter.occurred_at))
                                         .join(Episode).where(Encounter.reached, Episode.is_open)
                                         .group_by(Encounter.episode_id)).all())
        kept = dict(db.session.execute(sa.select(EpisodeContact.episode_id, EpisodeContact.last_reached_at)).all())
    assert kept == newest and set(kept) == {uuid.UUID(first["id"]), uuid.UUID(second["id"])}
