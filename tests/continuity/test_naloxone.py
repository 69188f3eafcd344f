"""The naloxone log (product.md "Naloxone in hand"): kits given, uses reported, and the episode's
`naloxone_given` flag derived from it."""

from __future__ import annotations

import uuid

import pytest
import sqlalchemy as sa

from backend.audit.models import AuditEvent
from backend.auth.models import Role
from backend.extensions import db
from tests.cases.conftest import ago, ahead
from tests.continuity.conftest import KIT


def test_a_kit_given_to_the_patient_sets_naloxone_given(nurse, open_episode, give_kit):
    episode = open_episode()
    assert episode["flags"]["naloxone_given"] is False
    kit = give_kit(episode)
    assert kit["kind"] == "given" and kit["recipient"] == "patient" and kit["training_given"] is True
    assert kit["used_at"] is None and kit["replacement_task_id"] is None
    assert nurse.get(f"/api/v1/episodes/{episode['id']}").get_json()["flags"]["naloxone_given"] is True


def test_a_kit_given_to_a_support_person_leaves_the_patients_flag(nurse, open_episode, give_kit):
    episode = open_episode()
    give_kit(episode, recipient="support_person")
    assert nurse.get(f"/api/v1/episodes/{episode['id']}").get_json()["flags"]["naloxone_given"] is False


def test_a_reported_use_makes_a_replace_kit_task_for_the_coach(coach, open_episode, give_kit):
    episode = open_episode(coach=coach)
    give_kit(episode)
    response = coach.post(f"/api/v1/episodes/{episode['id']}/naloxone",
                          json={"used_at": ago(hours=3), "reported_by": "support_person", "note": "Used on a friend"})
    assert response.status_code == 201, response.get_json()
    use = response.get_json()
    assert use["kind"] == "used" and use["distributed_at"] is None and use["reported_by"] == "support_person"
    task = coach.get(f"/api/v1/tasks/{use['replacement_task_id']}").get_json()
    assert task["assignee_id"] == str(coach.user.id) and task["status"] == "open"
    assert "replacement" in task["title"]


def test_an_unassigned_episodes_replace_kit_task_goes_to_clinic_staff(clinic, open_episode):
    episode = open_episode()
    use = clinic.post(f"/api/v1/episodes/{episode['id']}/naloxone",
                      json={"kind": "used", "used_at": ago(hours=1), "reported_by": "patient"}).get_json()
    assert clinic.get(f"/api/v1/tasks/{use['replacement_task_id']}").get_json()["assignee_id"] is None


def test_a_retried_kit_with_the_same_id_is_logged_once(nurse, open_episode):
    episode = open_episode()
    body = {"id": str(uuid.uuid4()), **KIT, "distributed_at": ago(minutes=10)}
    first = nurse.post(f"/api/v1/episodes/{episode['id']}/naloxone", json=body)
    again = nurse.post(f"/api/v1/episodes/{episode['id']}/naloxone", json=body)
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.get_json() == first.get_json()
    assert len(nurse.get(f"/api/v1/episodes/{episode['id']}/naloxone").get_json()["items"]) == 1
    other = nurse.post(f"/api/v1/episodes/{episode['id']}/naloxone", json={**body, "doses": 1})
    assert other.status_code == 409


def test_a_retried_use_makes_one_replace_kit_task(coach, open_episode):
    episode = open_episode(coach=coach)
    body = {"id": str(uuid.uuid4()), "used_at": ago(hours=1), "reported_by": "patient"}
    first = coach.post(f"/api/v1/episodes/{episode['id']}/naloxone", json=body).get_json()
    again = coach.post(f"/api/v1/episodes/{episode['id']}/naloxone", json=body).get_json()
    assert again["replacement_task_id"] == first["replacement_task_id"]
    assert len(coach.get(f"/api/v1/episodes/{episode['id']}/tasks").get_json()["items"]) == 1


@pytest.mark.parametrize("body, field", [
    ({**KIT, "distributed_at": ahead(hours=2)}, "distributed_at"),
    ({**KIT, "distributed_at": ago(hours=1), "doses": 0}, "doses"),
    ({**KIT, "distributed_at": ago(hours=1), "product": "pills"}, "product"),
    ({"distributed_at": ago(hours=1), "recipient": "patient"}, "setting"),
    ({**KIT, "distributed_at": ago(hours=1), "reported_by": "patient"}, "reported_by"),
    ({"used_at": ago(hours=1)}, "reported_by"),
    ({"used_at": ago(hours=1), "reported_by": "patient", "doses": 1}, "doses"),
    ({"kind": "used", **KIT, "distributed_at": ago(hours=1)}, "used_at"),
    ({"used_at": ahead(hours=1), "reported_by": "patient"}, "used_at"),
])
def test_impossible_entries_are_422_and_nothing_is_written(nurse, open_episode, body, field):
    episode = open_episode()
    response = nurse.post(f"/api/v1/episodes/{episode['id']}/naloxone", json=body)
    assert response.status_code == 422 and field in response.get_json()["errors"], response.get_json()
    assert nurse.get(f"/api/v1/episodes/{episode['id']}/naloxone").get_json()["items"] == []


def test_the_log_is_listed_newest_first(nurse, open_episode, give_kit):
    episode = open_episode()
    older, newer = give_kit(episode, distributed_at=ago(hours=3)), give_kit(episode, distributed_at=ago(hours=1))
    items = nurse.get(f"/api/v1/episodes/{episode['id']}/naloxone").get_json()["items"]
    assert [item["id"] for item in items] == [newer["id"], older["id"]]


def test_a_closed_episodes_log_takes_no_more_kits(clinic, open_episode, give_kit):
    episode = open_episode()
    clinic.post(f"/api/v1/episodes/{episode['id']}/close", json={"reason": "other"})
    response = clinic.post(f"/api/v1/episodes/{episode['id']}/naloxone", json={**KIT, "distributed_at": ago(hours=1)})
    assert response.status_code == 409


def test_setting_naloxone_given_against_the_log_is_422(clinic, open_episode, give_kit):
    episode = open_episode()
    url = f"/api/v1/episodes/{episode['id']}"
    etag = clinic.get(url).headers["ETag"]
    refused = clinic.patch(url, json={"flags": {"naloxone_given": True}}, headers={"If-Match": etag})
    assert refused.status_code == 422 and "flags.naloxone_given" in refused.get_json()["errors"]
    assert "/naloxone" in refused.get_json()["errors"]["flags.naloxone_given"][0]
    give_kit(episode)
    etag = clinic.get(url).headers["ETag"]
    agreeing = clinic.patch(url, json={"flags": {"naloxone_given": True, "recent_overdose": True}},
                            headers={"If-Match": etag})
    assert agreeing.status_code == 200
    assert agreeing.get_json()["flags"] == {"naloxone_given": True, "moud": "none", "recent_overdose": True}


def test_opening_an_episode_with_naloxone_given_and_no_kit_is_422(nurse, register):
    patient = register()
    response = nurse.post("/api/v1/episodes", json={
        "patient_id": patient["id"], "level": "emergency_department", "presenting_reason": "overdose",
        "arrived_at": ago(hours=1), "flags": {"naloxone_given": True}})
    assert response.status_code == 422 and "flags.naloxone_given" in response.get_json()["errors"]


def test_a_handoff_summary_carries_the_logs_naloxone_given_not_the_senders(nurse, open_episode, give_kit, send):
    without_kit = open_episode()
    handoff = send(without_kit, summary={"moud": "none", "naloxone_given": True}).get_json()
    assert handoff["summary"]["naloxone_given"] is False
    with_kit = open_episode()
    give_kit(with_kit)
    handoff = send(with_kit, summary={"moud": "none"}).get_json()
    assert handoff["summary"]["naloxone_given"] is True
    assert nurse.get(f"/api/v1/episodes/{with_kit['id']}").get_json()["flags"]["naloxone_given"] is True


def test_every_kit_and_use_is_in_the_audit_trail(app, nurse, open_episode, give_kit):
    episode = open_episode()
    kit = give_kit(episode)
    nurse.get(f"/api/v1/episodes/{episode['id']}/naloxone")
    with app.app_context():
        actions = db.session.scalars(sa.select(AuditEvent.action).where(
            AuditEvent.action.like("naloxone.%"))).all()
        created = db.session.scalar(sa.select(AuditEvent).where(AuditEvent.action == "naloxone.create",
                                                                AuditEvent.resource_id == kit["id"]))
    assert "naloxone.create" in actions and "naloxone.list" in actions
    assert created is not None and created.actor_role == Role.ED_NURSE
