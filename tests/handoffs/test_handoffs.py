"""Sending handoffs, who answers them, and continuity of the episode's level."""

from __future__ import annotations

from backend.auth.models import Role
from tests.cases.conftest import ago, ahead
from tests.handoffs.conftest import SUMMARY


def test_a_handoff_to_the_clinic_is_sent_with_default_deadlines(nurse, open_episode, send):
    response = send(open_episode())
    assert response.status_code == 201
    body = response.get_json()
    assert body["status"] == "sent" and body["from_level"] == "emergency_department" and body["overdue"] is False
    import datetime as dt

    accept_by = dt.datetime.fromisoformat(body["accept_by"]) - dt.datetime.fromisoformat(body["created_at"])
    arrive_by = dt.datetime.fromisoformat(body["arrive_by"]) - dt.datetime.fromisoformat(body["created_at"])
    assert round(accept_by.total_seconds() / 3600) == 24 and round(arrive_by.total_seconds() / 3600) == 72


def test_one_open_handoff_per_destination(open_episode, send):
    episode = open_episode()
    first = send(episode).get_json()
    again = send(episode)
    assert again.status_code == 409 and again.get_json()["existing_id"] == first["id"]


def test_only_clinic_staff_answer_for_the_clinic(make_client, coach, open_episode, send):
    handoff = send(open_episode(coach=coach)).get_json()
    assert coach.post(f"/api/v1/handoffs/{handoff['id']}/accept", json={}).status_code == 403
    nurse = make_client(Role.ED_NURSE)
    assert nurse.post(f"/api/v1/handoffs/{handoff['id']}/accept", json={}).status_code == 403


def test_completing_moves_the_episode_to_the_new_level(clinic, coach, open_episode, send):
    episode = open_episode(coach=coach)
    handoff = send(episode).get_json()
    clinic.post(f"/api/v1/handoffs/{handoff['id']}/accept", json={})
    arrived = ago(hours=1)
    clinic.post(f"/api/v1/handoffs/{handoff['id']}/complete", json={"arrived_at": arrived})
    moved = clinic.get(f"/api/v1/episodes/{episode['id']}").get_json()
    assert moved["level"] == "transition_clinic"
    assert [(p["level"], p["ended_at"] is None) for p in moved["level_history"]] == [
        ("emergency_department", False), ("transition_clinic", True)]


def test_the_first_clinic_visit_attended_completes_the_handoff(clinic, coach, nurse, open_episode, send):
    episode = open_episode(coach=coach)
    handoff = send(episode).get_json()
    visit = nurse.post(f"/api/v1/episodes/{episode['id']}/appointments",
                       json={"kind": "transition_clinic", "starts_at": ago(hours=2)})
    coach.patch(f"/api/v1/appointments/{visit.get_json()['id']}", json={"status": "attended"},
                headers={"If-Match": visit.headers["ETag"]})
    done = clinic.get(f"/api/v1/handoffs/{handoff['id']}").get_json()
    assert done["status"] == "completed" and [e["status"] for e in done["events"]] == ["sent", "accepted", "completed"]
    assert clinic.get(f"/api/v1/episodes/{episode['id']}").get_json()["level"] == "transition_clinic"


def test_closing_the_episode_cancels_its_open_handoffs(clinic, coach, open_episode, send):
    episode = open_episode(coach=coach)
    handoff = send(episode).get_json()
    coach.post(f"/api/v1/episodes/{episode['id']}/close", json={"reason": "declined_services"})
    body = clinic.get(f"/api/v1/handoffs/{handoff['id']}").get_json()
    assert body["status"] == "cancelled" and body["events"][-1]["by"] is None
    assert "declined_services" in body["events"][-1]["note"]


def test_an_external_program_needs_part_2_consent(program, open_episode, send, clinic):
    episode = open_episode()
    external = program(external=True)
    response = send(episode, client=clinic, to_level="community_program", to_program_id=external["id"])
    assert response.status_code == 409 and response.get_json()["type"] == "consent-required"
    internal = program(name="Hospital IOP", service="iop", external=False)
    assert send(episode, client=clinic, to_level="community_program",
                to_program_id=internal["id"]).status_code == 201


def test_a_coach_records_a_community_programs_answer_on_their_episode(program, coach, make_client, open_episode, send,
                                                                        clinic):
    episode = open_episode(coach=coach)
    internal = program(name="Hospital IOP", service="iop", external=False)
    handoff = send(episode, client=clinic, to_level="community_program", to_program_id=internal["id"]).get_json()
    other_coach = make_client(Role.COACH)
    assert other_coach.post(f"/api/v1/handoffs/{handoff['id']}/accept", json={}).status_code == 404
    assert coach.post(f"/api/v1/handoffs/{handoff['id']}/accept", json={}).status_code == 200


def test_handoffs_list_filters_overdue(clinic, open_episode, send):
    late = send(open_episode(), accept_by=ago(hours=1), arrive_by=ahead(hours=40)).get_json()
    on_time = send(open_episode()).get_json()
    overdue = [h["id"] for h in clinic.get("/api/v1/handoffs?overdue=true").get_json()["items"]]
    assert late["id"] in overdue and on_time["id"] not in overdue
    assert SUMMARY["moud"] == clinic.get(f"/api/v1/handoffs/{late['id']}").get_json()["summary"]["moud"]


def test_an_overdue_handoff_tops_the_caseload_and_shows_in_the_review(clinic, coach, open_episode, send):
    urgent = open_episode(coach=coach)
    late = send(urgent, accept_by=ago(minutes=30), arrive_by=ahead(hours=40)).get_json()
    calm = open_episode(coach=coach)
    coach.post(f"/api/v1/episodes/{calm['id']}/tasks", json={"title": "late", "due_at": ago(hours=1)})
    entries = coach.get("/api/v1/caseload").get_json()["items"]
    assert [e["episode_id"] for e in entries][:2] == [urgent["id"], calm["id"]]
    assert entries[0]["priority_reasons"][0] == "handoff_overdue"
    assert entries[0]["open_handoff"]["id"] == late["id"] and entries[0]["open_handoff"]["overdue"] is True
    row = next(r for r in clinic.get("/api/v1/caseloads").get_json()["coaches"] if r["coach_id"] == str(coach.user.id))
    assert row["handoffs_overdue"] == 1


def test_the_caseload_shows_each_episodes_newest_open_handoff_and_none_once_it_is_done(
        program, clinic, coach, open_episode, send):
    two, one, none = (open_episode(coach=coach) for _ in range(3))
    older = send(two).get_json()
    iop = program(name="Hospital IOP", service="iop", external=False)
    newer = send(two, client=clinic, to_level="community_program", to_program_id=iop["id"]).get_json()
    done = send(one).get_json()
    shown = {e["episode_id"]: e["open_handoff"] for e in coach.get("/api/v1/caseload").get_json()["items"]}
    assert shown[two["id"]] == {"id": newer["id"], "to_level": "community_program", "status": "sent",
                                "accept_by": newer["accept_by"], "arrive_by": newer["arrive_by"], "overdue": False}
    assert older["id"] != newer["id"] and shown[one["id"]]["id"] == done["id"] and shown[none["id"]] is None
    clinic.post(f"/api/v1/handoffs/{done['id']}/accept", json={})
    assert {e["episode_id"]: e["open_handoff"] for e in coach.get("/api/v1/caseload").get_json()["items"]}[
        one["id"]]["status"] == "accepted"  # still open
    clinic.post(f"/api/v1/handoffs/{done['id']}/complete", json={"arrived_at": ago(hours=1)})
    shown = {e["episode_id"]: e["open_handoff"] for e in coach.get("/api/v1/caseload").get_json()["items"]}
    assert shown[one["id"]] is None and shown[two["id"]]["id"] == newer["id"]


def test_handoff_events_are_on_the_timeline(clinic, open_episode, send):
    episode = open_episode()
    handoff = send(episode).get_json()
    clinic.post(f"/api/v1/handoffs/{handoff['id']}/accept", json={})
    kinds = [i["kind"] for i in clinic.get(f"/api/v1/episodes/{episode['id']}/timeline").get_json()["items"]]
    assert "handoff_sent" in kinds and "handoff_accepted" in kinds
    assert kinds.index("handoff_sent") < kinds.index("handoff_accepted")


def test_a_handoff_never_moves_the_episode_backwards(clinic, program, open_episode, send):
    episode = open_episode()
    to_clinic = send(episode).get_json()
    iop = program(name="Hospital IOP", service="iop", external=False)
    to_iop = send(episode, client=clinic, to_level="community_program", to_program_id=iop["id"]).get_json()
    for handoff in (to_clinic, to_iop):
        clinic.post(f"/api/v1/handoffs/{handoff['id']}/accept", json={})
    assert clinic.post(f"/api/v1/handoffs/{to_iop['id']}/complete", json={}).status_code == 200
    late = clinic.post(f"/api/v1/handoffs/{to_clinic['id']}/complete", json={})
    assert late.status_code == 409
    assert clinic.get(f"/api/v1/episodes/{episode['id']}").get_json()["level"] == "community_program"


def test_an_arrival_before_the_current_level_began_is_422(clinic, open_episode, send):
    episode = open_episode(arrived_at=ago(hours=3))
    handoff = send(episode).get_json()
    clinic.post(f"/api/v1/handoffs/{handoff['id']}/accept", json={})
    response = clinic.post(f"/api/v1/handoffs/{handoff['id']}/complete", json={"arrived_at": ago(hours=5)})
    assert response.status_code == 422 and "arrived_at" in response.get_json()["errors"]


def test_the_receiving_person_must_be_clinic_staff_or_a_coach(admin, open_episode, send):
    response = send(open_episode(), to_user_id=str(admin.user.id))
    assert response.status_code == 422 and "to_user_id" in response.get_json()["errors"]


def test_senders_may_cancel_but_only_receivers_answer(nurse, coach, open_episode, send):
    handoff = send(open_episode(coach=coach)).get_json()
    assert coach.post(f"/api/v1/handoffs/{handoff['id']}/complete", json={}).status_code == 403
    cancelled = nurse.post(f"/api/v1/handoffs/{handoff['id']}/cancel", json={"reason": "Sent in error"})
    assert cancelled.status_code == 200 and cancelled.get_json()["status"] == "cancelled"


def test_a_handoff_retried_with_its_client_id_is_sent_once(nurse, open_episode, send):
    import uuid

    episode, handoff_id = open_episode(), str(uuid.uuid4())
    first = send(episode, id=handoff_id)
    assert first.status_code == 201 and first.get_json()["id"] == handoff_id
    again = send(episode, id=handoff_id)
    assert again.status_code == 200 and again.get_json() == first.get_json()
    assert [h["id"] for h in nurse.get(f"/api/v1/handoffs?episode_id={episode['id']}").get_json()["items"]] \
        == [handoff_id]
    other = send(episode, id=handoff_id, method="referral")
    assert other.status_code == 409 and "id" in other.get_json()["errors"]
