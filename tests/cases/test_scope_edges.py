"""Edges of who-sees-what and of what a closed episode still accepts."""

from __future__ import annotations

from backend.auth.models import Role
from tests.cases.conftest import ago, ahead


def test_a_coach_looking_up_an_mrn_finds_only_their_own_patients(coach, make_client, register, open_episode):
    theirs = open_episode(coach=make_client(Role.COACH), patient=register(mrn="THEIRS-1"))
    mine = open_episode(coach=coach, patient=register(mrn="MINE-1"))
    assert coach.get("/api/v1/patients?mrn=THEIRS-1").get_json()["items"] == []
    assert [p["id"] for p in coach.get("/api/v1/patients?mrn=MINE-1").get_json()["items"]] == [mine["patient_id"]]
    assert theirs


def test_a_returning_patient_gets_a_new_episode_not_a_duplicate_record(clinic, nurse, register):
    patient = register(client=clinic, mrn="RET-1")
    again = nurse.post("/api/v1/patients", json={"mrn": "RET-1", "given_name": "A", "family_name": "R",
                                                 "birth_date": "1990-04-02"})
    assert again.status_code == 409 and again.get_json()["existing_id"] == patient["id"]
    found = nurse.get("/api/v1/patients?mrn=RET-1").get_json()["items"]
    episode = nurse.post("/api/v1/episodes", json={"patient_id": found[0]["id"], "level": "emergency_department",
                                                   "presenting_reason": "overdose", "arrived_at": ago(hours=1)})
    assert episode.status_code == 201
    assert nurse.get(f"/api/v1/patients/{patient['id']}").status_code == 200  # now in her scope


def test_a_nurse_sees_ed_episodes_opened_by_colleagues(make_client, open_episode):
    colleague = make_client(Role.ED_NURSE)
    episode = open_episode(client=colleague)
    nurse = make_client(Role.ED_NURSE)
    assert nurse.get(f"/api/v1/episodes/{episode['id']}").status_code == 200


def test_a_nurses_timeline_shows_the_path_not_the_coachs_work(nurse, coach, open_episode):
    episode = open_episode(coach=coach)
    coach.post(f"/api/v1/episodes/{episode['id']}/encounters", json={"kind": "phone", "occurred_at": ago(minutes=5)})
    coach.post(f"/api/v1/episodes/{episode['id']}/tasks", json={"title": "Refill", "due_at": ahead(days=1)})
    kinds = {i["kind"] for i in nurse.get(f"/api/v1/episodes/{episode['id']}/timeline").get_json()["items"]}
    assert "opened" in kinds and not {k for k in kinds if k == "encounter" or k.startswith("task_")}
    coach_kinds = {i["kind"] for i in coach.get(f"/api/v1/episodes/{episode['id']}/timeline").get_json()["items"]}
    assert {"encounter", "task_created"} <= coach_kinds


def test_a_closed_episodes_tasks_and_appointments_are_frozen(coach, open_episode):
    episode = open_episode(coach=coach)
    task = coach.post(f"/api/v1/episodes/{episode['id']}/tasks", json={"title": "t", "due_at": ahead(days=1)})
    visit = coach.post(f"/api/v1/episodes/{episode['id']}/appointments",
                       json={"kind": "other", "starts_at": ahead(days=1)})
    coach.post(f"/api/v1/episodes/{episode['id']}/close", json={"reason": "moved_away"})
    task_etag = coach.get(f"/api/v1/tasks/{task.get_json()['id']}").headers["ETag"]
    reopened = coach.patch(f"/api/v1/tasks/{task.get_json()['id']}", json={"status": "open"},
                           headers={"If-Match": task_etag})
    attended = coach.patch(f"/api/v1/appointments/{visit.get_json()['id']}", json={"status": "attended"},
                           headers={"If-Match": visit.headers["ETag"]})
    assert (reopened.status_code, attended.status_code) == (409, 409)


def test_a_departed_coachs_episodes_show_as_unassigned(admin, clinic, coach, open_episode):
    episode = open_episode(coach=coach)
    admin.patch(f"/api/v1/users/{coach.user.id}", json={"active": False})
    review = clinic.get("/api/v1/caseloads").get_json()
    assert episode["id"] in [e["episode_id"] for e in review["unassigned"]["items"]]
    assert str(coach.user.id) not in [r["coach_id"] for r in review["coaches"]]


def test_if_match_star_or_weak_does_not_skip_the_check(clinic, register):
    patient = register()
    url = f"/api/v1/patients/{patient['id']}"
    etag = clinic.get(url).headers["ETag"]
    assert clinic.patch(url, json={"language": "es"}, headers={"If-Match": f"W/{etag}"}).status_code == 412
    for star in ("*", f"{etag}, *"):
        # `*` is "any version": no condition failed (not 412), a specific one is missing (428).
        response = clinic.patch(url, json={"language": "es"}, headers={"If-Match": star})
        assert response.status_code == 428 and "specific version" in response.get_json()["detail"]
    assert clinic.get(url).get_json()["language"] != "es"


def test_a_refused_patch_is_audited_as_the_read_it_is(admin, clinic, register):
    patient = register()
    clinic.patch(f"/api/v1/patients/{patient['id']}", json={"language": "es"}, headers={"If-Match": '"999"'})
    reads = admin.get(f"/api/v1/audit-events?patient_id={patient['id']}&action=patient.read").get_json()["items"]
    assert [(e["actor_id"], e["status_code"]) for e in reads] == [(str(clinic.user.id), 412)]


def test_odd_inputs_are_422_not_500(nurse, clinic, coach, register, open_episode):
    for tz in ("America", "America/" + "A" * 300, "../../etc/passwd"):
        response = nurse.post("/api/v1/patients", json={"given_name": "A", "family_name": "B",
                                                        "birth_date": "1990-01-01", "timezone": tz})
        assert response.status_code == 422, tz
    assert nurse.post("/api/v1/patients", json={"given_name": "   ", "family_name": "B",
                                                "birth_date": "1990-01-01"}).status_code == 422
    episode = open_episode(coach=coach)
    url = f"/api/v1/episodes/{episode['id']}/encounters"
    assert coach.post(url, json={"kind": "phone", "occurred_at": ago(minutes=1), "duration_minutes": 5.7}
                      ).status_code == 422
    assert coach.post(url, json={"kind": "phone", "occurred_at": "0001-01-01T00:00:00Z"}).status_code == 422
    register(given_name="Percy", family_name="100%")
    assert [p["family_name"] for p in clinic.get("/api/v1/patients?q=0%25").get_json()["items"]] == ["100%"]
    assert clinic.get("/api/v1/patients?q=__").get_json()["items"] == []
