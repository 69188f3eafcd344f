"""An episode's timeline: everything in one chronological list, codes and times only."""

from __future__ import annotations

from tests.cases.conftest import ago, ahead


def test_the_timeline_lists_everything_in_order(clinic, coach, nurse, open_episode):
    episode = open_episode(coach=coach, arrived_at=ago(hours=10))
    nurse.post(f"/api/v1/episodes/{episode['id']}/discharge", json={"discharged_at": ago(hours=8)})
    coach.post(f"/api/v1/episodes/{episode['id']}/encounters",
               json={"kind": "attempt", "outcome": "no_answer", "occurred_at": ago(hours=2)})
    coach.post(f"/api/v1/episodes/{episode['id']}/encounters", json={"kind": "phone", "occurred_at": ago(hours=1)})
    coach.post(f"/api/v1/episodes/{episode['id']}/tasks", json={"title": "Visit", "due_at": ahead(days=1)})
    items = clinic.get(f"/api/v1/episodes/{episode['id']}/timeline").get_json()["items"]
    kinds = [i["kind"] for i in items]
    assert kinds[:2] == ["level_change", "discharged"]
    assert kinds.count("encounter") == 2 and {"opened", "coach_assigned", "task_created"} <= set(kinds)
    assert [i["at"] for i in items] == sorted(i["at"] for i in items)
    assert all("note" not in i["detail"] for i in items)
