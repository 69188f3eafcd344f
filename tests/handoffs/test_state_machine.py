"""The handoff state machine: every (status, step) pair, allowed or refused."""

from __future__ import annotations

import pytest

from tests.cases.conftest import ago

STEPS = {"accept": {}, "decline": {"reason": "No capacity"}, "complete": {"arrived_at": ago(minutes=5)},
         "no-show": {}, "cancel": {"reason": "Patient declined"}}
#: status → the steps allowed from it, and where each leads
ALLOWED = {
    "sent": {"accept": "accepted", "decline": "declined", "cancel": "cancelled"},
    "accepted": {"complete": "completed", "no-show": "no_show", "cancel": "cancelled"},
    "declined": {}, "completed": {}, "no_show": {}, "cancelled": {},
}
#: how to bring a new handoff to each status
PATHS = {"sent": [], "accepted": ["accept"], "declined": ["decline"], "completed": ["accept", "complete"],
         "no_show": ["accept", "no-show"], "cancelled": ["cancel"]}


def step(client, handoff_id, action):
    return client.post(f"/api/v1/handoffs/{handoff_id}/{action}", json=STEPS[action])


@pytest.mark.parametrize("status", list(ALLOWED))
@pytest.mark.parametrize("action", list(STEPS))
def test_every_step_from_every_status(clinic, open_episode, send, status, action):
    handoff = send(open_episode()).get_json()
    for earlier in PATHS[status]:
        assert step(clinic, handoff["id"], earlier).status_code == 200
    response = step(clinic, handoff["id"], action)
    if action in ALLOWED[status]:
        assert response.status_code == 200, response.get_json()
        body = response.get_json()
        assert body["status"] == ALLOWED[status][action]
        assert body["events"][-1]["status"] == ALLOWED[status][action]
        assert body["events"][-1]["by"] == str(clinic.user.id)
    else:
        assert response.status_code == 409 and response.get_json()["type"] == "invalid-transition"
        said = {"no_show": "no-show"}.get(status, status)
        done = {"accept": "accepted", "decline": "declined", "complete": "completed",
                "no-show": "recorded as a no-show", "cancel": "cancelled"}[action]
        article = "An" if status == "accepted" else "A"
        assert response.get_json()["detail"] == f"{article} {said} handoff cannot be {done}."
        assert clinic.get(f"/api/v1/handoffs/{handoff['id']}").get_json()["status"] == status


def test_decline_and_cancel_need_a_reason(clinic, open_episode, send):
    handoff = send(open_episode()).get_json()
    for action in ("decline", "cancel"):
        response = clinic.post(f"/api/v1/handoffs/{handoff['id']}/{action}", json={})
        assert response.status_code == 422 and "reason" in response.get_json()["errors"]


def test_the_event_log_keeps_every_step_with_who_and_why(clinic, nurse, open_episode, send):
    handoff = send(open_episode()).get_json()
    clinic.post(f"/api/v1/handoffs/{handoff['id']}/accept", json={"note": "Slot Tuesday 9:00"})
    body = clinic.post(f"/api/v1/handoffs/{handoff['id']}/cancel", json={"reason": "Admitted upstairs"}).get_json()
    assert [(e["status"], e["by"], e["note"]) for e in body["events"]] == [
        ("sent", str(nurse.user.id), None), ("accepted", str(clinic.user.id), "Slot Tuesday 9:00"),
        ("cancelled", str(clinic.user.id), "Admitted upstairs")]
