"""Registering and finding patients (api.md "Cases", privacy.md "minimum necessary")."""

from __future__ import annotations

import base64
import datetime as dt

import pytest

from backend.auth.models import Role


def test_a_nurse_registers_a_patient_with_a_normalised_phone(nurse):
    response = nurse.post("/api/v1/patients", json={
        "mrn": "A-1", "given_name": "Alex", "family_name": "Rivera", "preferred_name": "Lex",
        "birth_date": "1990-04-02", "phone": "(617) 555-0134", "timezone": "America/Chicago", "language": "es"})
    assert response.status_code == 201
    body = response.get_json()
    assert body["phone"] == "+16175550134" and body["display_name"] == "Lex Rivera"
    assert body["sms_status"] == "unknown" and body["timezone"] == "America/Chicago"
    assert response.headers["ETag"] == f'"{body["version"]}"'


def test_the_time_zone_defaults_to_the_programs(register):
    assert register()["timezone"] == "America/New_York"


@pytest.mark.parametrize("field, value", [("phone", "555-01"), ("phone", "+1 555 555 5555"),
                                          ("timezone", "Mars/Olympus"), ("birth_date", "2999-01-01"),
                                          ("language", "english please")])
def test_bad_patient_fields_are_422_naming_the_field(nurse, field, value):
    body = {"given_name": "A", "family_name": "B", "birth_date": "1990-01-01", field: value}
    response = nurse.post("/api/v1/patients", json=body)
    assert response.status_code == 422 and list(response.get_json()["errors"]) == [field]


def test_a_duplicate_mrn_is_409_naming_the_existing_patient(nurse, register):
    first = register(mrn="DUP-1")
    response = nurse.post("/api/v1/patients", json={"mrn": "DUP-1", "given_name": "Al", "family_name": "R",
                                                    "birth_date": "1990-04-02"})
    assert response.status_code == 409 and response.get_json()["existing_id"] == first["id"]


def test_any_nurse_finds_a_patient_by_exact_mrn_but_cannot_browse(make_client, register):
    patient = register(mrn="FIND-ME")
    other_nurse = make_client(Role.ED_NURSE)
    found = other_nurse.get("/api/v1/patients?mrn=FIND-ME").get_json()["items"]
    assert [p["id"] for p in found] == [patient["id"]]
    assert other_nurse.get("/api/v1/patients?mrn=FIND").get_json()["items"] == []
    assert other_nurse.get("/api/v1/patients?q=Rivera").status_code == 403
    assert other_nurse.get(f"/api/v1/patients/{patient['id']}").status_code == 404


def test_clinic_staff_search_by_name(clinic, register):
    register(given_name="Jordan", family_name="Okafor")
    register(given_name="Sam", family_name="Lee")
    names = [p["family_name"] for p in clinic.get("/api/v1/patients?q=okaf").get_json()["items"]]
    assert names == ["Okafor"]


def test_a_coach_sees_only_the_patients_they_coach(coach, make_client, open_episode):
    mine = open_episode(coach=coach)
    theirs = open_episode(coach=make_client(Role.COACH))
    listed = [p["id"] for p in coach.get("/api/v1/patients").get_json()["items"]]
    assert listed == [mine["patient_id"]]
    assert coach.get(f"/api/v1/patients/{theirs['patient_id']}").status_code == 404


def test_editing_a_patient_needs_the_current_etag(clinic, register):
    patient = register()
    url = f"/api/v1/patients/{patient['id']}"
    assert clinic.patch(url, json={"preferred_name": "Lex"}).status_code == 428
    etag = clinic.get(url).headers["ETag"]
    changed = clinic.patch(url, json={"preferred_name": "Lex"}, headers={"If-Match": etag})
    assert changed.status_code == 200 and changed.headers["ETag"] != etag
    stale = clinic.patch(url, json={"preferred_name": "Al"}, headers={"If-Match": etag})
    assert stale.status_code == 412 and stale.get_json()["type"] == "precondition-failed"
    assert stale.get_json()["current"]["preferred_name"] == "Lex"
    assert clinic.get(url).get_json()["preferred_name"] == "Lex"


def test_sms_consent_records_how_and_when(clinic, register):
    patient = register()
    response = clinic.put(f"/api/v1/patients/{patient['id']}/sms-consent",
                          json={"status": "opted_in", "method": "verbal"})
    body = response.get_json()
    assert body["sms_status"] == "opted_in" and body["sms_status_method"] == "verbal"
    at = dt.datetime.fromisoformat(body["sms_status_at"])
    assert dt.datetime.now(dt.timezone.utc) - at < dt.timedelta(minutes=1)


def test_a_cursor_through_the_patients_names_no_patient_and_pages_through_all_of_them(clinic, register):
    """Cursors travel in URLs (and so in proxies' logs): one carries a row's id, never its name."""
    registered = {register(given_name=given, family_name="Quintanilla")["id"] for given in ("Ana", "Bea", "Cruz")}
    seen, cursor = [], None
    while True:
        page = clinic.get("/api/v1/patients", query_string={"limit": 1, **({"cursor": cursor} if cursor else {})})
        assert page.status_code == 200, page.get_json()
        seen += [patient["id"] for patient in page.get_json()["items"]]
        cursor = page.get_json()["next_cursor"]
        if not cursor:
            break
        payload = cursor.split(".")[0]
        readable = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)).decode()
        assert "Quintanilla" not in readable and "Ana" not in readable and "1990" not in readable
    assert registered <= set(seen) and len(seen) == len(set(seen))
