"""The episode as FHIR: every Bundle parses back with the library (R4B models) at every stage of
an episode, every resource carries the SUD security labels, the handoff status maps to the
referral Task row by row; the external export passes the Part 2 gate, carries only the covered
information and the §2.32 notice, and is in the accounting of disclosures."""

from __future__ import annotations

import pytest
from fhir.resources.R4B.bundle import Bundle

from backend.consents.service import NOTICE_2_32
from tests.cases.conftest import ago, ahead

FHIR_JSON = "application/fhir+json"
LABELS = {("http://terminology.hl7.org/CodeSystem/v3-Confidentiality", "R"),
          ("http://terminology.hl7.org/CodeSystem/v3-ActCode", "42CFRPart2"),
          ("http://terminology.hl7.org/CodeSystem/v3-ActCode", "ETH")}


def parse(response) -> Bundle:
    """The answer as the library reads it (construction validates every resource)."""
    assert response.mimetype == FHIR_JSON, response.get_data(as_text=True)[:300]
    bundle = Bundle.model_validate_json(response.get_data())
    assert {(c.system, c.code) for c in bundle.meta.security} >= LABELS
    for entry in bundle.entry:
        assert entry.fullUrl == f"urn:uuid:{entry.resource.id}"
        assert {(c.system, c.code) for c in entry.resource.meta.security} >= LABELS, entry.resource.get_resource_type()
    return bundle


def resources(bundle: Bundle, kind: str) -> list:
    return [e.resource for e in bundle.entry if e.resource.get_resource_type() == kind]


def consent_body(program, **fields):
    return {"recipient_program_id": program["id"], "purpose": "Continuity of treatment at the OTP",
            "information": ["handoff_summary", "medications"], "signed_at": ago(minutes=10),
            "signature_method": "written", "expires_at": ahead(days=180), **fields}


def step(client, handoff, action, **body):
    response = client.post(f"/api/v1/handoffs/{handoff['id']}/{action}", json=body)
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def sent(send, episode, client=None, **fields):
    response = send(episode, client=client, **fields)
    assert response.status_code == 201, response.get_json()
    return response.get_json()


@pytest.fixture
def coach(make_client):
    return make_client("coach")


def test_every_stage_of_an_episode_exports_a_valid_labelled_bundle(clinic, nurse, coach, open_episode, send, program,
                                                                    make_client):
    episode = open_episode(coach=coach, arrived_at=ago(hours=10))
    url = f"/api/v1/episodes/{episode['id']}/fhir"
    stages = [parse(clinic.get(url))]  # just opened: the patient and the episode of care
    assert {"Patient", "EpisodeOfCare", "Condition"} <= {e.resource.get_resource_type() for e in stages[0].entry}

    # The ED: a kit, a bridge prescription, a discharge, contacts of every kind.
    assert nurse.post(f"/api/v1/episodes/{episode['id']}/naloxone", json={
        "distributed_at": ago(hours=3), "recipient": "patient", "product": "nasal_4mg", "doses": 2,
        "training_given": True, "setting": "emergency_department"}).status_code == 201
    import datetime as dt
    from zoneinfo import ZoneInfo
    today = dt.datetime.now(ZoneInfo("America/New_York")).date().isoformat()
    for kind in ("bridge_prescription", "dispensed"):
        assert nurse.post(f"/api/v1/episodes/{episode['id']}/medications", json={
            "medication": "buprenorphine", "kind": kind, "source": "emergency_department",
            "started_on": today, "days_supplied": 7}).status_code == 201
    assert nurse.post(f"/api/v1/episodes/{episode['id']}/discharge",
                      json={"discharged_at": ago(hours=2), "disposition": "home"}).status_code == 200
    for kind, outcome in (("phone", "reached"), ("sms", "reached"), ("attempt", "no_answer"),
                          ("in_person", "reached"), ("video", "reached")):
        assert coach.post(f"/api/v1/episodes/{episode['id']}/encounters",
                          json={"kind": kind, "outcome": outcome, "occurred_at": ago(hours=1)}).status_code == 201
    stages.append(parse(coach.get(url)))

    # Handoffs in every status; appointments; consents active and revoked.
    h = sent(send, episode)
    step(clinic, h, "decline", reason="Full")
    h = sent(send, episode)
    step(nurse, h, "cancel", reason="Changed plan")
    h = sent(send, episode)
    step(clinic, h, "accept")
    step(clinic, h, "no-show")
    stages.append(parse(clinic.get(url)))
    h = sent(send, episode)
    step(clinic, h, "accept")
    visit = clinic.post(f"/api/v1/episodes/{episode['id']}/appointments",
                        json={"kind": "transition_clinic", "starts_at": ago(minutes=10)})
    assert visit.status_code == 201
    assert clinic.request("PATCH", f"/api/v1/appointments/{visit.get_json()['id']}", json={"status": "attended"},
                          headers={"If-Match": visit.headers["ETag"]}).status_code == 200
    if clinic.get(f"/api/v1/handoffs/{h['id']}").get_json()["status"] != "completed":
        step(clinic, h, "complete")
    otp, inside = program(name="Harbor OTP"), program(name="Bridge Clinic Annex", external=False)
    active = clinic.post(f"/api/v1/patients/{episode['patient_id']}/consents", json=consent_body(otp)).get_json()
    revoked = clinic.post(f"/api/v1/patients/{episode['patient_id']}/consents", json=consent_body(otp)).get_json()
    assert clinic.post(f"/api/v1/consents/{revoked['id']}/revoke", json={"method": "written"}).status_code == 200
    sent(send, episode, client=clinic, to_level="community_program", to_program_id=otp["id"])
    accepted = sent(send, episode, client=clinic, to_level="community_program", to_program_id=inside["id"])
    step(clinic, accepted, "accept")
    assert clinic.post(f"/api/v1/episodes/{episode['id']}/appointments",
                       json={"kind": "program_intake", "starts_at": ahead(days=2), "program_id": otp["id"]}
                       ).status_code == 201
    stages.append(parse(clinic.get(url)))
    last = stages[-1]
    statuses = sorted(t.status for t in resources(last, "Task"))
    assert statuses == sorted(["rejected", "cancelled", "failed", "completed", "requested", "accepted"])
    assert len(resources(last, "ServiceRequest")) == 6
    consents = {c.id: c for c in resources(last, "Consent")}
    assert consents[active["id"]].status == "active" and consents[revoked["id"]].status == "inactive"
    assert consents[active["id"]].policyRule.coding[0].code == "42CFRPart2"
    assert consents[active["id"]].provision.actor[0].reference.display == "Harbor OTP"
    assert {c.code for c in consents[active["id"]].provision.class_fhir} == {"handoff_summary", "medications"}
    assert sorted(a.status for a in resources(last, "Appointment")) == ["booked", "fulfilled"]
    assert len(resources(last, "MedicationRequest")) == 1 and len(resources(last, "MedicationDispense")) == 2
    assert sorted(c.status for c in resources(last, "Communication")) == ["completed", "completed", "not-done"]
    assert len(resources(last, "Encounter")) == 2
    [care] = resources(last, "EpisodeOfCare")
    assert [h.extension[0].valueCode for h in care.statusHistory] == ["emergency_department", "transition_clinic"]
    assert care.careManager.display == "Test Person"
    [patient] = resources(last, "Patient")
    assert patient.identifier[0].value == episode["patient"]["mrn"] if "patient" in episode else True
    # Closed: the episode of care is finished.
    assert clinic.post(f"/api/v1/episodes/{episode['id']}/close", json={"reason": "other"}).status_code == 200
    closed = parse(clinic.get(url))
    assert resources(closed, "EpisodeOfCare")[0].status == "finished"


@pytest.mark.parametrize("path, task_status, business, request_status", [
    ([], "requested", "sent", "active"),
    (["accept"], "accepted", "accepted", "active"),
    (["decline"], "rejected", "declined", "revoked"),
    (["cancel"], "cancelled", "cancelled", "revoked"),
    (["accept", "complete"], "completed", "arrived", "completed"),
    (["accept", "no-show"], "failed", "no-show", "revoked"),
])
def test_a_handoff_status_maps_to_the_referral_task(clinic, open_episode, send, path, task_status, business,
                                                    request_status):
    episode = open_episode()
    handoff = sent(send, episode)
    for action in path:
        step(clinic, handoff, action, **({"reason": "r"} if action in ("decline", "cancel") else {}))
    bundle = parse(clinic.get(f"/api/v1/episodes/{episode['id']}/fhir"))
    [task] = resources(bundle, "Task")
    [request] = resources(bundle, "ServiceRequest")
    assert (task.status, task.businessStatus.coding[0].code, request.status) == (task_status, business, request_status)
    assert task.focus.reference == f"urn:uuid:{request.id}"
    assert task.for_fhir.reference == f"urn:uuid:{episode['patient_id']}"


def test_who_may_read_the_bundle(clinic, nurse, coach, make_client, open_episode):
    episode = open_episode(coach=coach)
    url = f"/api/v1/episodes/{episode['id']}/fhir"
    assert coach.get(url).status_code == 200 and clinic.get(url).status_code == 200
    assert make_client("coach").get(url).status_code == 404  # not their episode
    assert nurse.get(url).status_code == 403
    assert make_client("admin").get(url).status_code == 403


def test_an_external_export_needs_a_covering_consent_and_carries_only_what_it_covers(clinic, nurse, open_episode,
                                                                                    program, send):
    episode = open_episode(arrived_at=ago(hours=5))
    assert nurse.post(f"/api/v1/episodes/{episode['id']}/naloxone", json={
        "distributed_at": ago(hours=3), "recipient": "patient", "product": "nasal_4mg", "doses": 2,
        "training_given": True, "setting": "emergency_department"}).status_code == 201
    assert clinic.post(f"/api/v1/episodes/{episode['id']}/appointments",
                       json={"kind": "transition_clinic", "starts_at": ahead(days=1)}).status_code == 201
    otp = program(name="Harbor OTP")
    url = f"/api/v1/episodes/{episode['id']}/fhir-exports"
    body = {"recipient_program_id": otp["id"], "information": ["medications"]}

    refused = clinic.post(url, json=body)
    assert refused.status_code == 409 and refused.get_json()["type"] == "consent-required"
    # A consent covering something else does not cover this.
    clinic.post(f"/api/v1/patients/{episode['patient_id']}/consents",
                json=consent_body(otp, information=["appointments"]))
    assert clinic.post(url, json=body).status_code == 409
    assert clinic.post(f"/api/v1/patients/{episode['patient_id']}/consents",
                       json=consent_body(otp, information=["medications", "handoff_summary"])).status_code == 201
    # Asking for more than the consent covers is still refused.
    assert clinic.post(url, json={**body, "information": ["medications", "contact_information"]}).status_code == 409

    import uuid
    client_id = str(uuid.uuid4())
    response = clinic.post(url, json={**body, "id": client_id})
    assert response.status_code == 201
    bundle = parse(response)
    kinds = sorted(e.resource.get_resource_type() for e in bundle.entry)
    assert kinds == ["Composition", "MedicationDispense", "Patient"]  # no appointment, episode, contacts
    [patient] = resources(bundle, "Patient")
    assert patient.telecom is None  # contact information was not covered
    [composition] = resources(bundle, "Composition")
    assert "42 CFR part 2" in composition.section[0].text.div
    assert ("http://terminology.hl7.org/CodeSystem/v3-ActCode", "NORDSLCD") in {
        (c.system, c.code) for c in bundle.meta.security}
    # A retry with the same id: the same Bundle, no second disclosure.
    again = clinic.post(url, json={**body, "id": client_id})
    assert again.status_code == 200 and again.get_data() == response.get_data()

    accounting = clinic.get(f"/api/v1/patients/{episode['patient_id']}/disclosures").get_json()["items"]
    [disclosure] = accounting
    assert disclosure["information"] == ["medications"] and disclosure["notice"] == NOTICE_2_32
    assert disclosure["recipient_program_id"] == otp["id"] and disclosure["handoff_id"] is None
    assert disclosure["content"]["fhir_bundle"]["id"] == bundle.id
    # The printable accounting shows it without dumping the Bundle.
    page = clinic.get(f"/api/v1/patients/{episode['patient_id']}/disclosures")
    assert page.status_code == 200


def test_a_revoked_consent_stops_the_export(clinic, open_episode, program):
    episode = open_episode()
    otp = program(name="Harbor OTP")
    signed = clinic.post(f"/api/v1/patients/{episode['patient_id']}/consents",
                         json=consent_body(otp, information=["medications"])).get_json()
    url = f"/api/v1/episodes/{episode['id']}/fhir-exports"
    body = {"recipient_program_id": otp["id"], "information": ["medications"]}
    assert clinic.post(url, json=body).status_code == 201
    assert clinic.post(f"/api/v1/consents/{signed['id']}/revoke", json={"method": "written"}).status_code == 200
    assert clinic.post(url, json=body).status_code == 409
    assert len(clinic.get(f"/api/v1/patients/{episode['patient_id']}/disclosures").get_json()["items"]) == 1


def test_an_export_to_a_program_inside_needs_no_consent_and_is_no_disclosure(clinic, open_episode, program):
    episode = open_episode()
    annex = program(name="Bridge Clinic Annex", external=False)
    response = clinic.post(f"/api/v1/episodes/{episode['id']}/fhir-exports",
                           json={"recipient_program_id": annex["id"], "information": ["treatment_plan"]})
    assert response.status_code == 201
    assert {"Patient", "EpisodeOfCare"} == {e.resource.get_resource_type() for e in parse(response).entry}
    assert clinic.get(f"/api/v1/patients/{episode['patient_id']}/disclosures").get_json()["items"] == []


def test_only_clinic_staff_export(coach, nurse, open_episode, program):
    episode = open_episode(coach=coach)
    otp = program()
    for client in (coach, nurse):
        assert client.post(f"/api/v1/episodes/{episode['id']}/fhir-exports",
                           json={"recipient_program_id": otp["id"], "information": ["medications"]}
                           ).status_code == 403


def test_an_export_id_used_for_another_request_is_409_and_a_key_replays_the_bundle(clinic, open_episode, program):
    import uuid
    episode = open_episode()
    otp = program(name="Harbor OTP")
    assert clinic.post(f"/api/v1/patients/{episode['patient_id']}/consents",
                       json=consent_body(otp, information=["medications", "appointments"])).status_code == 201
    url = f"/api/v1/episodes/{episode['id']}/fhir-exports"
    client_id = str(uuid.uuid4())
    assert clinic.post(url, json={"id": client_id, "recipient_program_id": otp["id"],
                                  "information": ["medications"]}).status_code == 201
    other = clinic.post(url, json={"id": client_id, "recipient_program_id": otp["id"],
                                   "information": ["appointments"]})
    assert other.status_code == 409 and "id" in other.get_json()["errors"]
    body = {"recipient_program_id": otp["id"], "information": ["appointments"]}
    first = clinic.post(url, json=body, headers={"Idempotency-Key": "export-1"})
    again = clinic.post(url, json=body, headers={"Idempotency-Key": "export-1"})
    assert first.status_code == again.status_code == 201 and again.headers.get("Idempotent-Replayed") == "true"
    assert again.get_data() == first.get_data() and again.mimetype == FHIR_JSON
    assert len(clinic.get(f"/api/v1/patients/{episode['patient_id']}/disclosures").get_json()["items"]) == 2
