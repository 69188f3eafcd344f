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


def test_kits_uses_and_supplies_are_on_the_timeline_as_codes(clinic, coach, nurse, open_episode):
    episode = open_episode(coach=coach, arrived_at=ago(hours=10))
    nurse.post(f"/api/v1/episodes/{episode['id']}/naloxone", json={
        "distributed_at": ago(hours=9), "recipient": "patient", "product": "nasal_4mg", "doses": 2,
        "training_given": True, "setting": "emergency_department"})
    coach.post(f"/api/v1/episodes/{episode['id']}/naloxone", json={
        "used_at": ago(hours=1), "reported_by": "support_person", "note": "Used on her brother Luis"})
    supply = nurse.post(f"/api/v1/episodes/{episode['id']}/medications", json={
        "medication": "buprenorphine", "kind": "bridge_prescription", "source": "emergency_department",
        "started_on": episode["arrived_at"][:10], "days_supplied": 7}).get_json()
    coach.post(f"/api/v1/medications/{supply['id']}/fill", json={"status": "filled"})
    items = nurse.get(f"/api/v1/episodes/{episode['id']}/timeline").get_json()["items"]
    by_kind = {item["kind"]: item for item in items}
    assert by_kind["naloxone_given"]["detail"]["training_given"] is True
    assert by_kind["naloxone_used"]["detail"] == {"reported_by": "support_person",
                                                  "replacement_task_id": by_kind["naloxone_used"]["detail"][
                                                      "replacement_task_id"]}
    assert by_kind["medication_started"]["detail"]["covered_until"] == supply["covered_until"]
    assert "medication_filled" in by_kind
    assert "Luis" not in str(items)  # the use's note is free text: never on the timeline
    flag_changes = [item["detail"] for item in items if item["kind"] == "flags_changed"]
    assert {"naloxone_given": True} in flag_changes and {"moud": "buprenorphine"} in flag_changes
