"""Every read and write of patient data is on the audit trail, lists with every patient they
return (privacy.md "Audit trail")."""

from __future__ import annotations

import pytest

from tests.cases.conftest import ago


def events_for(admin, patient_id, action):
    return admin.get(f"/api/v1/audit-events?patient_id={patient_id}&action={action}").get_json()["items"]


@pytest.mark.parametrize("path, action", [
    ("/api/v1/patients/{patient}", "patient.read"),
    ("/api/v1/patients", "patient.list"),
    ("/api/v1/episodes/{episode}", "episode.read"),
    ("/api/v1/episodes", "episode.list"),
    ("/api/v1/episodes/{episode}/timeline", "episode.timeline"),
    ("/api/v1/episodes/{episode}/encounters", "encounter.list"),
    ("/api/v1/episodes/{episode}/tasks", "task.list"),
    ("/api/v1/tasks?assignee=me", "task.list"),
    ("/api/v1/caseload", "caseload.read"),
])
def test_reads_record_the_patients_they_show(admin, coach, open_episode, path, action):
    episode = open_episode(coach=coach)
    coach.post(f"/api/v1/episodes/{episode['id']}/tasks", json={"title": "t", "due_at": ago(hours=-5)})
    response = coach.get(path.format(patient=episode["patient_id"], episode=episode["id"]))
    assert response.status_code == 200
    recorded = events_for(admin, episode["patient_id"], action)
    assert [e["actor_id"] for e in recorded] == [str(coach.user.id)]


def test_writes_are_recorded_with_the_patient(admin, nurse, coach, open_episode):
    episode = open_episode(coach=coach)
    nurse.post(f"/api/v1/episodes/{episode['id']}/discharge", json={"discharged_at": ago(minutes=10)})
    coach.post(f"/api/v1/episodes/{episode['id']}/encounters", json={"kind": "phone", "occurred_at": ago(minutes=5)})
    for action in ("patient.create", "episode.create", "episode.discharge", "encounter.create"):
        assert len(events_for(admin, episode["patient_id"], action)) == 1, action


def test_a_look_outside_ones_scope_is_recorded_with_the_patient(admin, make_client, coach, open_episode):
    from backend.auth.models import Role

    episode = open_episode(coach=make_client(Role.COACH))
    assert coach.get(f"/api/v1/episodes/{episode['id']}").status_code == 404
    denied = events_for(admin, episode["patient_id"], "access.denied")
    assert [(e["actor_id"], e["status_code"]) for e in denied] == [(str(coach.user.id), 404)]
