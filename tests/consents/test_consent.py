"""42 CFR Part 2: no disclosure to an external program without an active consent covering it,
and every disclosure on the accounting exactly once."""

from __future__ import annotations

import pytest

from backend.consents.service import NOTICE_2_32
from tests.cases.conftest import ago, ahead
from tests.handoffs.conftest import SUMMARY


@pytest.fixture
def consent_body():
    def factory(program, **fields):
        return {"recipient_program_id": program["id"], "purpose": "Continuity of treatment at the OTP",
                "information": ["handoff_summary", "medications"], "signed_at": ago(minutes=10),
                "signature_method": "written", "expires_at": ahead(days=180), **fields}
    return factory


def consent(client, episode, body):
    response = client.post(f"/api/v1/patients/{episode['patient_id']}/consents", json=body)
    assert response.status_code == 201, response.get_json()
    return response.get_json()


@pytest.mark.parametrize("missing", ["purpose", "information", "signed_at", "signature_method"])
def test_a_consent_missing_a_required_element_is_422(clinic, open_episode, program, consent_body, missing):
    episode, otp = open_episode(), program()
    body = consent_body(otp)
    del body[missing]
    response = clinic.post(f"/api/v1/patients/{episode['patient_id']}/consents", json=body)
    assert response.status_code == 422 and missing in response.get_json()["errors"]


def test_a_consent_needs_a_recipient_and_an_expiry(clinic, open_episode, program, consent_body):
    episode, otp = open_episode(), program()
    url = f"/api/v1/patients/{episode['patient_id']}/consents"
    no_recipient = consent_body(otp)
    del no_recipient["recipient_program_id"]
    assert clinic.post(url, json=no_recipient).status_code == 422
    no_expiry = consent_body(otp)
    del no_expiry["expires_at"]
    assert clinic.post(url, json=no_expiry).status_code == 422
    assert clinic.post(url, json={**no_expiry, "expires_on_end_of_treatment": True}).status_code == 201


def test_an_external_handoff_is_disclosed_once_under_consent_and_accounted_for(
        clinic, open_episode, program, consent_body, send):
    episode, otp = open_episode(), program()
    refused = send(episode, client=clinic, to_level="community_program", to_program_id=otp["id"])
    assert refused.status_code == 409 and refused.get_json()["type"] == "consent-required"
    signed = consent(clinic, episode, consent_body(otp))
    sent = send(episode, client=clinic, to_level="community_program", to_program_id=otp["id"])
    assert sent.status_code == 201
    accounting = clinic.get(f"/api/v1/patients/{episode['patient_id']}/disclosures").get_json()["items"]
    assert len(accounting) == 1
    disclosure = accounting[0]
    assert disclosure["consent_id"] == signed["id"] and disclosure["handoff_id"] == sent.get_json()["id"]
    # The summary disclosed is the one stored: its naloxone_given is the log's (no kit here).
    assert disclosure["content"] == {**SUMMARY, "naloxone_given": False} and disclosure["notice"] == NOTICE_2_32
    assert disclosure["recipient_program_id"] == otp["id"] and disclosure["disclosed_by"] == str(clinic.user.id)


def test_revocation_blocks_every_later_disclosure_but_keeps_the_record(clinic, open_episode, program, consent_body,
                                                                         send):
    episode, otp = open_episode(), program()
    signed = consent(clinic, episode, consent_body(otp))
    first = send(episode, client=clinic, to_level="community_program", to_program_id=otp["id"]).get_json()
    clinic.post(f"/api/v1/handoffs/{first['id']}/cancel", json={"reason": "Wrong date"})
    revoked = clinic.post(f"/api/v1/consents/{signed['id']}/revoke", json={"method": "written"})
    assert revoked.status_code == 200 and revoked.get_json()["active"] is False
    again = send(episode, client=clinic, to_level="community_program", to_program_id=otp["id"])
    assert again.status_code == 409 and again.get_json()["type"] == "consent-required"
    history = clinic.get(f"/api/v1/patients/{episode['patient_id']}/consents").get_json()["items"]
    assert [(c["id"], c["revocation"]["method"]) for c in history] == [(signed["id"], "written")]
    assert len(clinic.get(f"/api/v1/patients/{episode['patient_id']}/disclosures").get_json()["items"]) == 1
    assert clinic.post(f"/api/v1/consents/{signed['id']}/revoke", json={"method": "written"}).status_code == 409


def test_a_consent_covers_until_it_expires(app, clinic, open_episode, program, consent_body, send):
    import uuid

    import sqlalchemy as sa

    from backend.consents.models import Consent
    from backend.extensions import db

    episode, otp = open_episode(), program()
    signed = consent(clinic, episode, consent_body(otp, expires_at=ahead(days=1)))
    first = send(episode, client=clinic, to_level="community_program", to_program_id=otp["id"])
    assert first.status_code == 201
    clinic.post(f"/api/v1/handoffs/{first.get_json()['id']}/cancel", json={"reason": "Rebooking"})
    with app.app_context():  # a day passes
        db.session.execute(sa.update(Consent).where(Consent.id == uuid.UUID(signed["id"]))
                           .values(expires_at=dt_ago_one_second()))
        db.session.commit()
    again = send(episode, client=clinic, to_level="community_program", to_program_id=otp["id"])
    assert again.status_code == 409 and again.get_json()["type"] == "consent-required"


def dt_ago_one_second():
    import datetime as dt

    return dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=1)


def test_an_already_expired_consent_is_refused_and_other_information_does_not_cover(
        clinic, open_episode, program, consent_body, send):
    episode, otp = open_episode(), program()
    expired = clinic.post(f"/api/v1/patients/{episode['patient_id']}/consents",
                          json=consent_body(otp, signed_at=ago(days=30), expires_at=ago(days=1)))
    assert expired.status_code == 422
    consent(clinic, episode, consent_body(otp, information=["appointments"]))
    response = send(episode, client=clinic, to_level="community_program", to_program_id=otp["id"])
    assert response.status_code == 409 and response.get_json()["type"] == "consent-required"


def test_an_end_of_treatment_consent_ends_with_the_episode(clinic, nurse, open_episode, program, consent_body, send):
    episode, otp = open_episode(), program()
    body = consent_body(otp)
    del body["expires_at"]
    signed = consent(clinic, episode, {**body, "expires_on_end_of_treatment": True})
    assert signed["active"] is True
    clinic.post(f"/api/v1/episodes/{episode['id']}/close", json={"reason": "transferred"})
    history = clinic.get(f"/api/v1/patients/{episode['patient_id']}/consents").get_json()["items"]
    assert history[0]["active"] is False
    patient = {"id": episode["patient_id"]}
    next_episode = open_episode(patient=patient)
    response = send(next_episode, client=clinic, to_level="community_program", to_program_id=otp["id"])
    assert response.status_code == 409 and response.get_json()["type"] == "consent-required"


def test_a_revocation_dated_later_still_blocks_at_once(clinic, open_episode, program, consent_body, send):
    episode, otp = open_episode(), program()
    signed = consent(clinic, episode, consent_body(otp))
    revoked = clinic.post(f"/api/v1/consents/{signed['id']}/revoke",
                          json={"method": "electronic", "revoked_at": ahead(minutes=4)})
    assert revoked.status_code == 200 and revoked.get_json()["active"] is False
    response = send(episode, client=clinic, to_level="community_program", to_program_id=otp["id"])
    assert response.status_code == 409


def test_a_consent_for_another_program_does_not_cover(clinic, open_episode, program, consent_body, send):
    episode, otp, other = open_episode(), program(), program(name="Other OTP")
    consent(clinic, episode, consent_body(other))
    assert send(episode, client=clinic, to_level="community_program", to_program_id=otp["id"]).status_code == 409


def test_an_internal_handoff_needs_no_consent_and_discloses_nothing(clinic, open_episode, send):
    episode = open_episode()
    assert send(episode).status_code == 201
    assert clinic.get(f"/api/v1/patients/{episode['patient_id']}/disclosures").get_json()["items"] == []


def test_only_clinic_staff_read_the_accounting(coach, open_episode):
    episode = open_episode(coach=coach)
    assert coach.get(f"/api/v1/patients/{episode['patient_id']}/disclosures").status_code == 403


def test_a_consent_retried_with_its_client_id_is_recorded_once(clinic, open_episode, program, consent_body):
    import uuid

    episode, otp, consent_id = open_episode(), program(), str(uuid.uuid4())
    url, body = f"/api/v1/patients/{episode['patient_id']}/consents", consent_body(otp, id=consent_id)
    first = clinic.post(url, json=body)
    assert first.status_code == 201 and first.get_json()["id"] == consent_id
    again = clinic.post(url, json=body)
    assert again.status_code == 200 and again.get_json()["id"] == consent_id
    assert [c["id"] for c in clinic.get(url).get_json()["items"]] == [consent_id]
    other = clinic.post(url, json={**body, "purpose": "Something else"})
    assert other.status_code == 409 and "id" in other.get_json()["errors"]
