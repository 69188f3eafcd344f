"""An episode's lifecycle: open, discharge, coach, flags, close (product.md "The care pathway")."""

from __future__ import annotations

import pytest

from backend import signals
from backend.auth.models import Role
from tests.cases.conftest import ago, ahead


def test_an_episode_opens_at_the_ed_with_its_level_history(nurse, register, coach):
    patient = register()
    response = nurse.post("/api/v1/episodes", json={
        "patient_id": patient["id"], "level": "emergency_department", "presenting_reason": "overdose",
        "arrived_at": ago(hours=3), "coach_id": str(coach.user.id), "flags": {"recent_overdose": True}})
    assert response.status_code == 201
    episode = response.get_json()
    assert episode["status"] == "open" and episode["level"] == "emergency_department"
    assert [(p["level"], p["ended_at"]) for p in episode["level_history"]] == [("emergency_department", None)]
    assert episode["flags"] == {"naloxone_given": False, "moud": "none", "recent_overdose": True}
    assert episode["coach_id"] == str(coach.user.id)


def test_a_patient_has_one_open_episode_at_a_time(nurse, open_episode):
    first = open_episode()
    again = nurse.post("/api/v1/episodes", json={"patient_id": first["patient_id"], "level": "inpatient",
                                                 "presenting_reason": "withdrawal", "arrived_at": ago(hours=1)})
    assert again.status_code == 409 and again.get_json()["existing_id"] == first["id"]


@pytest.mark.parametrize("role", [Role.ED_NURSE, Role.CLINIC_STAFF, Role.ADMIN])
def test_only_an_active_coach_can_be_the_coach(make_client, nurse, register, role):
    not_a_coach = make_client(role)
    response = nurse.post("/api/v1/episodes", json={
        "patient_id": register()["id"], "level": "inpatient", "presenting_reason": "other",
        "arrived_at": ago(hours=1), "coach_id": str(not_a_coach.user.id)})
    assert response.status_code == 422 and "coach_id" in response.get_json()["errors"]


def test_arrival_in_the_future_is_422(nurse, register):
    response = nurse.post("/api/v1/episodes", json={"patient_id": register()["id"], "level": "inpatient",
                                                    "presenting_reason": "other", "arrived_at": ahead(hours=1)})
    assert response.status_code == 422 and "arrived_at" in response.get_json()["errors"]


def test_discharge_is_recorded_once_and_announced(nurse, open_episode):
    episode = open_episode()
    heard = []
    with signals.episode_discharged.connected_to(lambda sender: heard.append(sender.id)):
        response = nurse.post(f"/api/v1/episodes/{episode['id']}/discharge", json={"discharged_at": ago(hours=1)})
    assert response.status_code == 200 and response.get_json()["discharged_at"]
    assert [str(i) for i in heard] == [episode["id"]]
    again = nurse.post(f"/api/v1/episodes/{episode['id']}/discharge", json={"discharged_at": ago(minutes=5)})
    assert again.status_code == 409


def test_discharge_cannot_precede_arrival(nurse, open_episode):
    episode = open_episode(arrived_at=ago(hours=2))
    response = nurse.post(f"/api/v1/episodes/{episode['id']}/discharge", json={"discharged_at": ago(hours=5)})
    assert response.status_code == 422


def test_discharge_records_where_the_patient_went(nurse, open_episode):
    episode = open_episode()
    assert episode["disposition"] is None  # not discharged yet
    response = nurse.post(f"/api/v1/episodes/{episode['id']}/discharge",
                          json={"discharged_at": ago(hours=1), "disposition": "against_medical_advice"})
    assert response.status_code == 200
    assert response.get_json()["disposition"] == "against_medical_advice"
    assert nurse.get(f"/api/v1/episodes/{episode['id']}").get_json()["disposition"] == "against_medical_advice"


def test_a_discharge_that_does_not_say_where_is_unknown(nurse, open_episode):
    episode = open_episode()
    response = nurse.post(f"/api/v1/episodes/{episode['id']}/discharge", json={"discharged_at": ago(hours=1)})
    assert response.get_json()["disposition"] == "unknown"


@pytest.mark.parametrize("disposition", ["unknown", "home_alone", ""])
def test_a_disposition_outside_the_list_is_422(nurse, open_episode, disposition):
    episode = open_episode()
    response = nurse.post(f"/api/v1/episodes/{episode['id']}/discharge",
                          json={"discharged_at": ago(hours=1), "disposition": disposition})
    assert response.status_code == 422 and "disposition" in response.get_json()["errors"]
    assert nurse.get(f"/api/v1/episodes/{episode['id']}").get_json()["discharged_at"] is None


def test_reassigning_the_coach_moves_their_open_tasks(make_client, clinic, open_episode):
    first, second = make_client(Role.COACH), make_client(Role.COACH)
    episode = open_episode(coach=first)
    task = first.post(f"/api/v1/episodes/{episode['id']}/tasks", json={"title": "Call", "due_at": ahead(days=1)})
    assert task.get_json()["assignee_id"] == str(first.user.id)
    response = clinic.put(f"/api/v1/episodes/{episode['id']}/coach", json={"coach_id": str(second.user.id)})
    assert response.status_code == 200 and response.get_json()["coach_id"] == str(second.user.id)
    moved = second.get(f"/api/v1/tasks/{task.get_json()['id']}").get_json()
    assert moved["assignee_id"] == str(second.user.id)
    assert first.get(f"/api/v1/episodes/{episode['id']}").status_code == 404


def test_closing_cancels_open_tasks_ends_the_level_and_is_announced(coach, open_episode):
    episode = open_episode(coach=coach)
    task = coach.post(f"/api/v1/episodes/{episode['id']}/tasks", json={"title": "Visit", "due_at": ahead(days=2)})
    heard = []
    with signals.episode_closed.connected_to(lambda sender: heard.append(sender.close_reason)):
        closed = coach.post(f"/api/v1/episodes/{episode['id']}/close",
                            json={"reason": "engaged_in_care", "note": "Started at an OTP."})
    body = closed.get_json()
    assert closed.status_code == 200 and body["status"] == "closed" and body["close_reason"] == "engaged_in_care"
    assert body["level_history"][-1]["ended_at"] is not None
    assert heard == ["engaged_in_care"]
    assert coach.get(f"/api/v1/tasks/{task.get_json()['id']}").get_json()["status"] == "cancelled"
    assert coach.post(f"/api/v1/episodes/{episode['id']}/close", json={"reason": "other"}).status_code == 409
    assert coach.post(f"/api/v1/episodes/{episode['id']}/encounters", json={
        "kind": "phone", "occurred_at": ago(minutes=1)}).status_code == 409


def test_flags_change_with_the_etag(clinic, open_episode):
    episode = open_episode()
    url = f"/api/v1/episodes/{episode['id']}"
    etag = clinic.get(url).headers["ETag"]
    response = clinic.patch(url, json={"flags": {"moud": "none", "recent_overdose": True}},
                            headers={"If-Match": etag})
    assert response.status_code == 200
    assert response.get_json()["flags"] == {"naloxone_given": False, "moud": "none", "recent_overdose": True}
    assert clinic.patch(url, json={"flags": {"moud": "heroin"}}, headers={"If-Match": response.headers["ETag"]}
                        ).status_code == 422


def test_episodes_list_filters(clinic, coach, open_episode):
    assigned = open_episode(coach=coach)
    unassigned = open_episode()
    ids = lambda q: [e["id"] for e in clinic.get(f"/api/v1/episodes?{q}").get_json()["items"]]  # noqa: E731
    assert unassigned["id"] in ids("unassigned=true") and assigned["id"] not in ids("unassigned=true")
    assert ids(f"coach_id={coach.user.id}") == [assigned["id"]]
    assert set(ids("level=emergency_department")) >= {assigned["id"], unassigned["id"]}
