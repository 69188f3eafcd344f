"""The complete care pathway through the API, as the people who run it would walk it."""

from __future__ import annotations

from backend.auth.models import Role
from tests.cases.conftest import ago, ahead


def test_ed_to_clinic_to_community_program_to_closed(make_client, admin):
    nurse, clinic, coach = make_client(Role.ED_NURSE), make_client(Role.CLINIC_STAFF), make_client(Role.COACH)
    otp = admin.post("/api/v1/programs", json={"name": "Harbor OTP", "service": "otp", "asam_level": "1",
                                               "asam_edition": "4th", "accepting_patients": True,
                                               "external": True}).get_json()

    # The ED nurse registers the patient and opens the episode.
    patient = nurse.post("/api/v1/patients", json={"mrn": "PATH-1", "given_name": "Jordan", "family_name": "Okafor",
                                                   "birth_date": "1991-06-15", "phone": "617-555-0199"}).get_json()
    episode = nurse.post("/api/v1/episodes", json={
        "patient_id": patient["id"], "level": "emergency_department", "presenting_reason": "overdose",
        "arrived_at": ago(hours=8), "flags": {"recent_overdose": True}}).get_json()
    # The ED gives a naloxone kit with training and starts a buprenorphine bridge (the flags follow).
    assert nurse.post(f"/api/v1/episodes/{episode['id']}/naloxone", json={
        "distributed_at": ago(hours=3), "recipient": "patient", "product": "nasal_4mg", "doses": 2,
        "training_given": True, "setting": "emergency_department"}).status_code == 201
    assert nurse.post(f"/api/v1/episodes/{episode['id']}/medications", json={
        "medication": "buprenorphine", "kind": "bridge_prescription", "source": "emergency_department",
        "started_on": episode["arrived_at"][:10], "days_supplied": 7}).status_code == 201
    assert nurse.put(f"/api/v1/episodes/{episode['id']}/coach",
                     json={"coach_id": str(coach.user.id)}).status_code == 200
    assert nurse.post(f"/api/v1/episodes/{episode['id']}/discharge",
                      json={"discharged_at": ago(hours=2)}).status_code == 200

    # A warm handoff to the transition clinic, accepted; the first visit is attended.
    to_clinic = nurse.post("/api/v1/handoffs", json={
        "episode_id": episode["id"], "to_level": "transition_clinic", "method": "warm_in_person",
        "summary": {"moud": "buprenorphine", "last_dose_at": ago(hours=9), "naloxone_given": True,
                    "plan": "Bup 16 mg; clinic tomorrow"}}).get_json()
    assert clinic.post(f"/api/v1/handoffs/{to_clinic['id']}/accept", json={}).status_code == 200
    visit = clinic.post(f"/api/v1/episodes/{episode['id']}/appointments",
                        json={"kind": "transition_clinic", "starts_at": ago(hours=1)})
    assert clinic.patch(f"/api/v1/appointments/{visit.get_json()['id']}", json={"status": "attended"},
                        headers={"If-Match": visit.headers["ETag"]}).status_code == 200
    assert clinic.get(f"/api/v1/episodes/{episode['id']}").get_json()["level"] == "transition_clinic"
    assert clinic.get(f"/api/v1/handoffs/{to_clinic['id']}").get_json()["status"] == "completed"

    # Consent, then a handoff to the external OTP, accepted and completed.
    assert coach.post(f"/api/v1/patients/{patient['id']}/consents", json={
        "recipient_program_id": otp["id"], "purpose": "Ongoing medication treatment",
        "information": ["handoff_summary"], "signed_at": ago(minutes=30), "signature_method": "electronic",
        "expires_on_end_of_treatment": True}).status_code == 201
    to_otp = coach.post("/api/v1/handoffs", json={
        "episode_id": episode["id"], "to_level": "community_program", "to_program_id": otp["id"],
        "method": "warm_phone", "summary": {"moud": "buprenorphine", "naloxone_given": True},
        "arrive_by": ahead(days=7)})
    assert to_otp.status_code == 201, to_otp.get_json()
    handoff_id = to_otp.get_json()["id"]
    assert coach.post(f"/api/v1/handoffs/{handoff_id}/accept", json={"note": "Intake Monday"}).status_code == 200
    assert coach.post(f"/api/v1/handoffs/{handoff_id}/complete",
                      json={"arrived_at": ago(minutes=5)}).status_code == 200
    after = clinic.get(f"/api/v1/episodes/{episode['id']}").get_json()
    assert after["level"] == "community_program"
    assert [p["level"] for p in after["level_history"]] == ["emergency_department", "transition_clinic",
                                                            "community_program"]

    # The episode closes, engaged in care; the disclosure is on the accounting.
    closed = coach.post(f"/api/v1/episodes/{episode['id']}/close", json={"reason": "engaged_in_care"})
    assert closed.status_code == 200 and closed.get_json()["status"] == "closed"
    disclosures = clinic.get(f"/api/v1/patients/{patient['id']}/disclosures").get_json()["items"]
    assert [d["handoff_id"] for d in disclosures] == [handoff_id]
    kinds = [i["kind"] for i in clinic.get(f"/api/v1/episodes/{episode['id']}/timeline").get_json()["items"]]
    assert "handoff_completed" in kinds and kinds[-1] == "closed"
    assert sum(kind.startswith("level_") for kind in kinds) == 3, "one entry per level of care"
