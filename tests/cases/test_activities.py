"""Encounters, tasks and appointments; client ids make retried creates harmless."""

from __future__ import annotations

import uuid

from backend import signals
from tests.cases.conftest import ago, ahead


def test_a_contact_defaults_to_reached_and_an_attempt_needs_an_outcome(coach, open_episode):
    episode = open_episode(coach=coach)
    url = f"/api/v1/episodes/{episode['id']}/encounters"
    contact = coach.post(url, json={"kind": "in_person", "occurred_at": ago(hours=1), "location": "Shelter"})
    assert contact.status_code == 201 and contact.get_json()["outcome"] == "reached"
    assert coach.post(url, json={"kind": "attempt", "occurred_at": ago(hours=1)}).status_code == 422
    assert coach.post(url, json={"kind": "attempt", "outcome": "reached", "occurred_at": ago(hours=1)}
                      ).status_code == 422
    attempt = coach.post(url, json={"kind": "attempt", "outcome": "no_answer", "occurred_at": ago(minutes=30)})
    assert attempt.status_code == 201
    assert [e["kind"] for e in coach.get(url).get_json()["items"]] == ["attempt", "in_person"]


def test_a_list_ordered_by_time_hands_out_a_cursor_it_accepts_page_after_page(coach, open_episode):
    episode = open_episode(coach=coach)
    url = f"/api/v1/episodes/{episode['id']}/encounters"
    logged = [coach.post(url, json={"kind": "phone", "occurred_at": ago(hours=hours)}).get_json()["id"]
              for hours in (5, 4, 3, 2, 1)]
    seen, cursor = [], None
    while True:
        page = coach.get(url, query_string={"limit": 2, **({"cursor": cursor} if cursor else {})})
        assert page.status_code == 200, page.get_json()
        seen += [item["id"] for item in page.get_json()["items"]]
        cursor = page.get_json()["next_cursor"]
        if not cursor:
            break
    assert seen == logged[::-1]  # newest first, each once


def test_an_encounter_in_the_future_is_422(coach, open_episode):
    episode = open_episode(coach=coach)
    response = coach.post(f"/api/v1/episodes/{episode['id']}/encounters",
                          json={"kind": "phone", "occurred_at": ahead(hours=1)})
    assert response.status_code == 422 and "occurred_at" in response.get_json()["errors"]


def test_retrying_a_create_with_its_client_id_creates_nothing_twice(coach, open_episode):
    episode = open_episode(coach=coach)
    url = f"/api/v1/episodes/{episode['id']}/encounters"
    body = {"id": str(uuid.uuid4()), "kind": "phone", "occurred_at": ago(minutes=10), "note": "Doing ok"}
    first, again = coach.post(url, json=body), coach.post(url, json=body)
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.get_json() == first.get_json()
    assert len(coach.get(url).get_json()["items"]) == 1
    changed = coach.post(url, json={**body, "note": "Something else"})
    assert changed.status_code == 409


def test_tasks_with_a_window_may_be_done_early(coach, open_episode):
    episode = open_episode(coach=coach)
    created = coach.post(f"/api/v1/episodes/{episode['id']}/tasks", json={
        "title": "Check in after first dose", "window_start": ahead(days=1), "due_at": ahead(days=2)})
    task = created.get_json()
    assert task["status"] == "open" and task["assignee_id"] == str(coach.user.id) and task["overdue"] is False
    done = coach.patch(f"/api/v1/tasks/{task['id']}", json={"status": "done"},
                       headers={"If-Match": created.headers["ETag"]})
    assert done.status_code == 200 and done.get_json()["status"] == "done" and done.get_json()["completed_at"]


def test_a_window_after_the_due_time_is_422(coach, open_episode):
    episode = open_episode(coach=coach)
    response = coach.post(f"/api/v1/episodes/{episode['id']}/tasks", json={
        "title": "Odd", "window_start": ahead(days=3), "due_at": ahead(days=2)})
    assert response.status_code == 422 and "window_start" in response.get_json()["errors"]


def test_my_open_tasks_soonest_first(coach, open_episode):
    first, second = open_episode(coach=coach), open_episode(coach=coach)
    coach.post(f"/api/v1/episodes/{first['id']}/tasks", json={"title": "Later", "due_at": ahead(days=3)})
    coach.post(f"/api/v1/episodes/{second['id']}/tasks", json={"title": "Sooner", "due_at": ahead(hours=3)})
    titles = [t["title"] for t in coach.get("/api/v1/tasks?assignee=me&status=open").get_json()["items"]]
    assert titles == ["Sooner", "Later"]


def test_appointments_are_booked_moved_and_attended_with_signals(nurse, coach, open_episode):
    episode = open_episode(coach=coach)
    heard = []
    with signals.appointment_changed.connected_to(lambda sender, change: heard.append(change)):
        booked = nurse.post(f"/api/v1/episodes/{episode['id']}/appointments",
                            json={"kind": "transition_clinic", "starts_at": ahead(days=1), "location": "Bridge"})
        assert booked.status_code == 201
        url = f"/api/v1/appointments/{booked.get_json()['id']}"
        moved = coach.patch(url, json={"starts_at": ago(minutes=30)}, headers={"If-Match": booked.headers["ETag"]})
        attended = coach.patch(url, json={"status": "attended"}, headers={"If-Match": moved.headers["ETag"]})
    assert attended.get_json()["status"] == "attended" and attended.get_json()["status_changed_at"]
    assert heard == ["booked", "rescheduled", "attended"]


def test_an_appointment_is_attended_or_missed_only_once_it_has_started(coach, open_episode):
    episode = open_episode(coach=coach)

    def book(starts_at):
        booked = coach.post(f"/api/v1/episodes/{episode['id']}/appointments",
                            json={"kind": "transition_clinic", "starts_at": starts_at})
        return f"/api/v1/appointments/{booked.get_json()['id']}", booked.headers["ETag"]

    url, etag = book(ahead(days=2))
    for status in ("attended", "missed"):
        early = coach.patch(url, json={"status": status}, headers={"If-Match": etag})
        assert early.status_code == 422 and "status" in early.get_json()["errors"]
    assert coach.get(url).get_json()["status"] == "scheduled"
    # Seen early: the same change moves the visit to when the patient came.
    seen = coach.patch(url, json={"status": "attended", "starts_at": ago(minutes=5)}, headers={"If-Match": etag})
    assert seen.status_code == 200 and seen.get_json()["status"] == "attended"
    # A few minutes early is a drifting clock or a prompt patient, not a mistake.
    url, etag = book(ahead(minutes=10))
    assert coach.patch(url, json={"status": "attended"}, headers={"If-Match": etag}).status_code == 200
    # Cancelling a future visit is of course fine; a visit is missed only once it has started.
    url, etag = book(ahead(minutes=10))
    assert coach.patch(url, json={"status": "missed"}, headers={"If-Match": etag}).status_code == 422
    assert coach.patch(url, json={"status": "cancelled"}, headers={"If-Match": etag}).status_code == 200


def test_an_attended_or_missed_appointment_cannot_move_into_the_future(coach, open_episode):
    episode = open_episode(coach=coach)
    for status in ("attended", "missed"):
        booked = coach.post(f"/api/v1/episodes/{episode['id']}/appointments",
                            json={"kind": "transition_clinic", "starts_at": ago(hours=1)})
        url = f"/api/v1/appointments/{booked.get_json()['id']}"
        done = coach.patch(url, json={"status": status}, headers={"If-Match": booked.headers["ETag"]})
        etag = done.headers["ETag"]
        for change in ({"starts_at": ahead(days=3)}, {"status": status, "starts_at": ahead(days=5)}):
            moved = coach.patch(url, json=change, headers={"If-Match": etag})
            assert moved.status_code == 422 and "starts_at" in moved.get_json()["errors"], (status, change)
        assert coach.get(url).get_json()["starts_at"] == done.get_json()["starts_at"]
        # Rebooking it is a move back to scheduled.
        rebooked = coach.patch(url, json={"status": "scheduled", "starts_at": ahead(days=3)},
                               headers={"If-Match": etag})
        assert rebooked.status_code == 200 and rebooked.get_json()["status"] == "scheduled"


def test_appointments_name_only_programs_in_the_directory(coach, admin, open_episode):
    episode = open_episode(coach=coach)
    unknown = coach.post(f"/api/v1/episodes/{episode['id']}/appointments",
                         json={"kind": "program_intake", "starts_at": ahead(days=1), "program_id": str(uuid.uuid4())})
    assert unknown.status_code == 422 and unknown.get_json()["errors"] == {"program_id": ["No such program."]}
    assert coach.get(f"/api/v1/episodes/{episode['id']}/appointments").get_json()["items"] == []
    program = admin.post("/api/v1/programs", json={"name": "Harbor OTP", "service": "otp",
                                                   "accepting_patients": True, "external": True}).get_json()
    booked = coach.post(f"/api/v1/episodes/{episode['id']}/appointments",
                        json={"kind": "program_intake", "starts_at": ahead(days=1), "program_id": program["id"]})
    assert booked.status_code == 201
    moved = coach.patch(f"/api/v1/appointments/{booked.get_json()['id']}", json={"program_id": str(uuid.uuid4())},
                        headers={"If-Match": booked.headers["ETag"]})
    assert moved.status_code == 422 and moved.get_json()["errors"] == {"program_id": ["No such program."]}
