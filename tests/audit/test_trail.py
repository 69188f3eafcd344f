"""The audit trail (privacy.md "Audit trail"): what is recorded, who may read it, and that it
is append-only and tamper-evident."""

from __future__ import annotations

import uuid

import pytest
import sqlalchemy as sa

from backend import unit_of_work
from backend.audit import service as audit_service
from backend.audit.jobs import seal_batches_and_commit
from backend.audit.models import AuditEvent
from backend.auth.models import Role
from backend.extensions import db
from tests.support import make_user


def events(admin, **params):
    query = "&".join(f"{k}={v}" for k, v in params.items())
    response = admin.get(f"/api/v1/audit-events?limit=200&{query}")
    assert response.status_code == 200, response.get_json()
    return response.get_json()["items"]


def test_sign_ins_failures_and_revocations_are_recorded(app, admin, anonymous):
    user = make_user(app, role=Role.COACH)
    anonymous.post("/api/v1/auth/tokens", json={"username": user.username, "password": "wrong"})
    anonymous.sign_in(user.username, user.password, device_name="pixel")
    anonymous.delete("/api/v1/auth/tokens/current")
    mine = [e for e in events(admin)
            if e["action"].startswith("auth.") and str(user.id) in (e["actor_id"], e["resource_id"])]
    actions = [e["action"] for e in reversed(mine)]
    assert actions == ["auth.sign_in_failed", "auth.sign_in", "auth.session_revoked"]
    failed, signed_in, revoked = reversed(mine)
    assert failed["status_code"] == 401 and failed["client_ip"] == "127.0.0.1"
    # What was typed as the username stays out of the trail (it is sometimes a password).
    assert user.username not in str(failed) and len(failed["details"]["username_hash"]) == 16
    assert signed_in["status_code"] == 201 and signed_in["actor_role"] == "coach"
    assert revoked["device_session_id"] == signed_in["resource_id"] == signed_in["device_session_id"]
    assert all(e["request_id"] for e in mine)


def test_a_throttled_sign_in_is_recorded(app, admin, anonymous):
    for _ in range(6):
        anonymous.post("/api/v1/auth/tokens", json={"username": "mallory", "password": "guess"})
    throttled = events(admin, action="auth.sign_in_throttled")
    assert len(throttled) == 1 and throttled[0]["status_code"] == 429


def test_a_refused_attempt_survives_the_rollback_of_its_request(admin, make_client):
    alice, bob = make_client(Role.COACH), make_client(Role.COACH)
    bobs_device = bob.get("/api/v1/me/devices").get_json()["items"][0]["id"]
    assert alice.delete(f"/api/v1/me/devices/{bobs_device}").status_code == 404
    denied = events(admin, action="access.denied", actor_id=alice.user.id)
    assert [(e["resource_type"], e["resource_id"], e["status_code"]) for e in denied] == [
        ("device_session", bobs_device, 404)]


def test_audit_events_filter_by_patient_time_and_actor(app, admin, ctx):
    patient = uuid.uuid4()
    audit_service.record("patient.read", resource_type="patient", resource_id=patient, patient_ids=[patient])
    audit_service.record("patient.read", resource_type="patient", resource_id=uuid.uuid4(),
                         patient_ids=[uuid.uuid4()])
    unit_of_work.commit()
    found = events(admin, patient_id=patient)
    assert [e["patient_ids"] for e in found] == [[str(patient)]]
    assert events(admin, since="2999-01-01T00:00:00Z") == []
    assert len(events(admin, until="2999-01-01T00:00:00%2B00:00")) >= 2
    assert all(e["actor_id"] == str(admin.user.id) for e in events(admin, actor_id=admin.user.id))


def test_events_written_together_keep_each_its_own_patients(app, admin, ctx):
    """A list's event names every patient it showed, and two events of one unit of work keep
    their patients apart (one statement writes them all: on PostgreSQL two arrays unnested)."""
    shown = sorted((uuid.uuid4() for _ in range(60)), key=str)
    other = uuid.uuid4()
    audit_service.record("caseload.read", patient_ids=shown)
    audit_service.record("patient.read", resource_type="patient", resource_id=other, patient_ids=[other])
    unit_of_work.commit()
    [listed] = events(admin, action="caseload.read", patient_id=shown[17])
    assert listed["patient_ids"] == [str(p) for p in shown]
    [single] = events(admin, action="patient.read", patient_id=other)
    assert single["patient_ids"] == [str(other)]
    assert events(admin, action="caseload.read", patient_id=other) == []


def test_reading_the_trail_is_itself_audited(admin):
    patient = uuid.uuid4()
    events(admin, patient_id=patient)
    reads = events(admin, action="audit.read", patient_id=patient)
    assert len(reads) == 1 and reads[0]["actor_id"] == str(admin.user.id)


def test_events_page_newest_first_without_repeats(admin, ctx):
    for _ in range(7):
        audit_service.record("test.event")
    unit_of_work.commit()
    seal_batches_and_commit()
    seqs, cursor = [], None
    while True:
        page = admin.get("/api/v1/audit-events?limit=3&action=test.event"
                         + (f"&cursor={cursor}" if cursor else "")).get_json()
        seqs += [e["seq"] for e in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert len(seqs) == 7 and seqs == sorted(seqs, reverse=True)


def test_the_chain_verifies_when_untouched(app, admin, ctx):
    admin.get("/api/v1/me/devices")
    seal_batches_and_commit()
    check = audit_service.verify_chain(batch_size=2)
    assert check.problem is None and check.checked >= 2 and check.checked == check.head_seq


def test_the_database_refuses_to_change_or_delete_audit_events(admin, ctx):
    with pytest.raises(sa.exc.DatabaseError):
        with db.session.begin_nested():
            db.session.execute(sa.update(AuditEvent).values(action="nothing.to.see"))
    with pytest.raises(sa.exc.DatabaseError):
        with db.session.begin_nested():
            db.session.execute(sa.delete(AuditEvent))


def test_an_address_that_is_not_an_ip_is_not_stored(app):
    from backend.audit.service import _client_ip

    with app.test_request_context(environ_base={"REMOTE_ADDR": "x" * 60}):
        assert _client_ip() is None
    with app.test_request_context(environ_base={"REMOTE_ADDR": "2001:db8::1"}):
        assert _client_ip() == "2001:db8::1"


def test_details_that_are_not_plain_json_are_refused_at_once(ctx):
    with pytest.raises(TypeError):
        audit_service.record("test.event", details={"id": uuid.uuid4()})
