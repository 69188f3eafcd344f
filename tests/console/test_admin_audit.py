"""The audit trail in the console (privacy.md "Audit trail"): the API's events and filters, a
page at a time, by ids only in the URL, the look itself on the trail, and the chain check of
`flask audit verify`."""

from __future__ import annotations

import re
import uuid
from urllib.parse import parse_qs, urlsplit

import sqlalchemy as sa

from backend.audit.jobs import seal_batches_and_commit
from backend.audit.models import AuditEvent
from backend.auth.models import Role
from backend.extensions import db
from tests.audit.test_verify import _without_triggers
from tests.support import counted_statements

PATIENT = {"given_name": "Rosalind", "family_name": "Achterberg", "birth_date": "1990-02-03", "mrn": "MRN-AUD-1"}


def rows(page: str) -> list[str]:
    body = page.split("<tbody>", 1)[1].split("</tbody>", 1)[0] if "<tbody>" in page else ""
    return re.findall(r"<tr>(.*?)</tr>", body, re.S)


def sealed(app) -> None:
    """The clock's sequencer chains what was written so far."""
    with app.app_context():
        seal_batches_and_commit()


def a_patient_seen_by(staff) -> str:
    patient = staff.post("/api/v1/patients", json=PATIENT).get_json()
    assert staff.get(f"/api/v1/patients/{patient['id']}").status_code == 200
    return patient["id"]


def test_the_trail_filtered_by_patient_shows_only_their_events_and_the_look_is_on_record(app, console, make_client):
    staff = make_client(Role.CLINIC_STAFF)
    patient_id = a_patient_seen_by(staff)
    admin = console(Role.ADMIN)
    response = admin.get(f"/console/audit?patient_id={patient_id}")
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    found = rows(page)
    assert len(found) >= 2 and all(patient_id in row for row in found)
    assert any("patient.create" in row for row in found) and any("patient.read" in row for row in found)
    assert "Rosalind" not in page and "Achterberg" not in page  # an admin sees ids, never the record
    with app.app_context():
        look = db.session.scalars(sa.select(AuditEvent).where(AuditEvent.action == "audit.read",
                                                              AuditEvent.actor_id == admin.user.id)).all()
        assert [[str(p) for p in e.patient_ids] for e in look] == [[patient_id]]


def test_the_user_filter_is_chosen_by_name_and_sent_by_id(app, console, make_client):
    staff = make_client(Role.CLINIC_STAFF, display_name="Quentin Staffer")
    a_patient_seen_by(staff)
    admin = console(Role.ADMIN)
    page = admin.get("/console/audit").get_data(as_text=True)
    assert re.search(rf'<option value="{staff.user.id}">Quentin Staffer \({staff.user.username}\)</option>', page)
    filtered = admin.get(f"/console/audit?actor_id={staff.user.id}").get_data(as_text=True)
    found = rows(filtered)
    assert found and all(staff.user.username in row for row in found)
    assert re.search(rf'<option value="{staff.user.id}" selected>', filtered)


def test_a_time_range_in_the_hospitals_zone_bounds_the_events(console, make_client):
    staff = make_client(Role.CLINIC_STAFF)
    a_patient_seen_by(staff)
    admin = console(Role.ADMIN)
    assert rows(admin.get("/console/audit?since=2000-01-01T00:00").get_data(as_text=True))
    page = admin.get("/console/audit?until=2000-01-01T00:00").get_data(as_text=True)
    assert rows(page) == [] and "No events match the filter." in page
    assert 'value="2000-01-01T00:00"' in page  # the filter kept


def test_a_bad_filter_comes_back_by_its_field(console):
    admin = console(Role.ADMIN)
    response = admin.get("/console/audit?patient_id=Rosalind&since=yesterday")
    page = response.get_data(as_text=True)
    assert response.status_code == 422
    assert re.search(r'id="patient_id-error">[^<]+', page) and re.search(r'id="since-error">[^<]+', page)
    forged = admin.get("/console/audit?cursor=made-up")
    assert forged.status_code == 422 and "cursor is not one this server issued" in forged.get_data(as_text=True)


def test_older_events_come_a_page_at_a_time_with_the_filter_and_ids_only_in_the_link(app, console, make_client):
    staff = make_client(Role.CLINIC_STAFF)
    for _ in range(55):  # over one page of 50 events by this person
        staff.post("/api/v1/patients", json={**PATIENT, "mrn": f"MRN-{uuid.uuid4().hex[:8]}"})
    sealed(app)
    admin = console(Role.ADMIN)
    first = admin.get(f"/console/audit?actor_id={staff.user.id}").get_data(as_text=True)
    link = re.search(r'href="([^"]+)">Older events', first).group(1).replace("&amp;", "&")
    query = parse_qs(urlsplit(link).query)
    assert set(query) == {"actor_id", "cursor"} and query["actor_id"] == [str(staff.user.id)]
    second = admin.get(link).get_data(as_text=True)
    seqs = [int(re.search(r"<td>(\d+)</td>", row).group(1)) for row in rows(first) + rows(second)]
    assert len(rows(first)) == 50 and rows(second)
    assert seqs == sorted(seqs, reverse=True) and len(set(seqs)) == len(seqs)  # newest first, none twice
    assert "Newest events" in second


def test_the_chain_check_says_intact_then_names_the_event_someone_altered(app, console, make_client):
    a_patient_seen_by(make_client(Role.CLINIC_STAFF))
    admin = console(Role.ADMIN)
    admin.get("/console/audit")
    sealed(app)
    intact = admin.post("/console/audit/chain-check")
    page = intact.get_data(as_text=True)
    assert intact.status_code == 200 and re.search(r"Audit trail intact:</strong> \d+ events verified", page)
    with app.app_context():
        seq = db.session.scalar(sa.select(AuditEvent.chain_seq).where(AuditEvent.action == "patient.create"))
        _without_triggers("UPDATE audit_events SET client_ip = '10.6.6.6' WHERE chain_seq = :seq", seq=seq)
    broken = admin.post("/console/audit/chain-check").get_data(as_text=True)
    assert f"Audit trail BROKEN at event {seq}" in broken and "contents do not match its hash" in broken
    with app.app_context():
        checks = db.session.scalars(sa.select(AuditEvent).where(AuditEvent.action == "audit.verify")
                                    .order_by(AuditEvent.seq)).all()
        assert [e.details["intact"] for e in checks] == [True, False]
        assert {e.actor_id for e in checks} == {admin.user.id}


def test_the_chain_check_is_a_post_with_the_csrf_token(console):
    admin = console(Role.ADMIN)
    assert admin.post("/console/audit/chain-check", csrf=False).status_code == 400
    assert admin.get("/console/audit/chain-check").status_code == 405


def test_a_page_of_the_trail_takes_as_many_queries_for_thirty_events_as_for_two(app, console, make_client):
    staff = make_client(Role.CLINIC_STAFF)
    admin = console(Role.ADMIN)
    with app.app_context():
        engine = db.engine

    def statements() -> int:
        with counted_statements(engine) as sent:
            assert admin.get(f"/console/audit?actor_id={staff.user.id}").status_code == 200
        return len(sent)

    a_patient_seen_by(staff)
    few = statements()
    for _ in range(30):  # each event names its patient: their ids come in one query, not one each
        staff.post("/api/v1/patients", json={**PATIENT, "mrn": f"MRN-{uuid.uuid4().hex[:8]}"})
    assert statements() == few
