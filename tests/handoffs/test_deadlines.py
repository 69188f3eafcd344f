"""Missed handoff deadlines escalate exactly once, however often the job runs."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import sqlalchemy as sa

from backend import unit_of_work
from backend.auth.models import Role
from backend.cases.models import Task
from backend.extensions import db
from backend.handoffs.deadlines import check_deadlines
from tests.cases.conftest import ago, ahead
from tests.support import make_user


def tasks_of(coach, episode):
    return coach.get(f"/api/v1/episodes/{episode['id']}/tasks").get_json()["items"]


def test_a_missed_accept_deadline_makes_one_task_for_the_coach(app, clinic, coach, open_episode, send):
    episode = open_episode(coach=coach)
    handoff = send(episode, accept_by=ago(minutes=5), arrive_by=ahead(hours=60)).get_json()
    runner = app.test_cli_runner()
    assert "1 missed deadlines escalated" in runner.invoke(args=["handoffs", "check-deadlines"]).output
    assert "0 missed deadlines escalated" in runner.invoke(args=["handoffs", "check-deadlines"]).output
    tasks = tasks_of(coach, episode)
    assert len(tasks) == 1 and tasks[0]["assignee_id"] == str(coach.user.id) and "not accepted" in tasks[0]["title"]
    body = clinic.get(f"/api/v1/handoffs/{handoff['id']}").get_json()
    assert [e["status"] for e in body["events"]] == ["sent"]
    assert [e["kind"] for e in body["escalations"]] == ["overdue_accept"]


def test_an_unassigned_episodes_escalation_goes_to_clinic_staff(app, clinic, open_episode, send):
    episode = open_episode()
    send(episode, accept_by=ago(minutes=5), arrive_by=ago(minutes=1))
    with app.app_context():
        assert check_deadlines() == 2  # both deadlines missed
        unit_of_work.commit()
    tasks = clinic.get(f"/api/v1/episodes/{episode['id']}/tasks").get_json()["items"]
    assert len(tasks) == 2 and {t["assignee_id"] for t in tasks} == {None}


def test_two_clock_processes_at_once_escalate_each_deadline_once(live_app):
    nurse, coach = make_user(live_app, role=Role.ED_NURSE), make_user(live_app, role=Role.COACH)
    client = live_app.test_client()
    token = client.post("/api/v1/auth/tokens", json={"username": nurse.username,
                                                     "password": nurse.password}).get_json()["token"]
    headers = {"Authorization": f"Bearer {token}"}
    for i in range(5):
        patient = client.post("/api/v1/patients", headers=headers, json={
            "given_name": "A", "family_name": f"R{i}", "birth_date": "1990-01-01"}).get_json()
        episode = client.post("/api/v1/episodes", headers=headers, json={
            "patient_id": patient["id"], "level": "emergency_department", "presenting_reason": "overdose",
            "arrived_at": ago(hours=3), "coach_id": str(coach.id)}).get_json()
        assert client.post("/api/v1/handoffs", headers=headers, json={
            "episode_id": episode["id"], "to_level": "transition_clinic", "method": "referral",
            "summary": {"moud": "none", "naloxone_given": False}, "accept_by": ago(minutes=10),
            "arrive_by": ahead(hours=50)}).status_code == 201
    barrier = threading.Barrier(2)

    def clock_run(_):
        with live_app.app_context():
            barrier.wait()
            try:
                escalated = check_deadlines()
                unit_of_work.commit()
                return escalated
            except Exception:
                unit_of_work.roll_back(None)
                raise

    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(clock_run, range(2)))
    assert sum(results) == 5
    with live_app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Task)) == 5


def bearer(app, user) -> dict:
    """Headers of a fresh sign-in as `user` on `app`."""
    token = app.test_client().post("/api/v1/auth/tokens", json={
        "username": user.username, "password": user.password}).get_json()["token"]
    return {"Authorization": f"Bearer {token}"}


def episode_with_clinic_handoff(app, nurse_headers) -> tuple[dict, dict]:
    """A new patient's ED episode and a handoff to the transition clinic, sent by a nurse."""
    client = app.test_client()
    patient = client.post("/api/v1/patients", headers=nurse_headers, json={
        "given_name": "A", "family_name": "R", "birth_date": "1990-01-01"}).get_json()
    episode = client.post("/api/v1/episodes", headers=nurse_headers, json={
        "patient_id": patient["id"], "level": "emergency_department", "presenting_reason": "overdose",
        "arrived_at": ago(hours=3)}).get_json()
    handoff = client.post("/api/v1/handoffs", headers=nurse_headers, json={
        "episode_id": episode["id"], "to_level": "transition_clinic", "method": "warm_phone",
        "summary": {"moud": "none", "naloxone_given": False}}).get_json()
    return episode, handoff


def test_two_staff_accepting_at_once_exactly_one_succeeds(live_app):
    nurse = make_user(live_app, role=Role.ED_NURSE)
    staff = [make_user(live_app, role=Role.CLINIC_STAFF) for _ in range(2)]
    client = live_app.test_client()
    nurse_h = bearer(live_app, nurse)
    staff_h = [bearer(live_app, user) for user in staff]
    for _ in range(3):
        _episode, handoff = episode_with_clinic_handoff(live_app, nurse_h)
        barrier = threading.Barrier(2)

        def accept(headers, handoff_id=handoff["id"], barrier=barrier):
            barrier.wait()
            return live_app.test_client().post(f"/api/v1/handoffs/{handoff_id}/accept", json={}, headers=headers)

        with ThreadPoolExecutor(2) as pool:
            responses = list(pool.map(accept, staff_h))
        assert sorted(r.status_code for r in responses) == [200, 409]
        refused = next(r for r in responses if r.status_code == 409).get_json()
        assert refused["type"] == "invalid-transition"
        events = client.get(f"/api/v1/handoffs/{handoff['id']}", headers=nurse_h).get_json()["events"]
        assert [e["status"] for e in events] == ["sent", "accepted"]


def test_completing_while_the_episode_closes_never_deadlocks(live_app):
    nurse = make_user(live_app, role=Role.ED_NURSE)
    clinic = make_user(live_app, role=Role.CLINIC_STAFF)
    client = live_app.test_client()
    nurse_h, clinic_h = bearer(live_app, nurse), bearer(live_app, clinic)
    for _ in range(4):
        episode, handoff = episode_with_clinic_handoff(live_app, nurse_h)
        client.post(f"/api/v1/handoffs/{handoff['id']}/accept", headers=clinic_h, json={})
        barrier = threading.Barrier(2)

        def act(path, body, barrier=barrier):
            barrier.wait()
            return live_app.test_client().post(path, headers=clinic_h, json=body).status_code

        with ThreadPoolExecutor(2) as pool:
            statuses = list(pool.map(lambda args: act(*args), [
                (f"/api/v1/handoffs/{handoff['id']}/complete", {}),
                (f"/api/v1/episodes/{episode['id']}/close", {"reason": "other"})]))
        assert statuses[1] == 200 and statuses[0] in (200, 409), statuses
