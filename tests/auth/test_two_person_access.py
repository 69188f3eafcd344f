"""Two people grant clinical access: a clinical role an admin gives waits for a clinic-staff
member other than the grantee; no single admin can reach patient records."""

from __future__ import annotations

import sqlalchemy as sa

from backend.audit.models import AuditEvent
from backend.auth.models import Role
from backend.extensions import db
from tests.support import ApiClient


def new_account(admin, role: str, username: str) -> dict:
    response = admin.post("/api/v1/users", json={"username": username, "display_name": "New Person", "role": role,
                                                 "password": "a long enough password"})
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def signed_in(app, username: str) -> ApiClient:
    api = ApiClient(app.test_client())
    api.sign_in(username, "a long enough password")
    return api


def test_an_admin_cannot_give_themselves_clinical_access(app, admin):
    account = new_account(admin, "clinic_staff", "admins.other.self")
    assert account["access"] == "pending" and account["access_granted_by_id"] == str(admin.user.id)

    herself = signed_in(app, "admins.other.self")  # signing in works
    assert herself.get("/api/v1/me").status_code == 200
    refused = herself.get("/api/v1/patients")
    assert refused.status_code == 403 and refused.get_json()["type"].endswith("access-pending")
    # her own pending account cannot approve itself, nor can a second pending one she makes
    assert herself.post(f"/api/v1/users/{account['id']}/access-approval", json={}).status_code == 403
    new_account(admin, "clinic_staff", "admins.accomplice")
    assert signed_in(app, "admins.accomplice").post(
        f"/api/v1/users/{account['id']}/access-approval", json={}).status_code == 403


def test_a_clinic_staff_member_approves_and_the_access_starts_audited(app, admin, make_client):
    account = new_account(admin, "coach", "coach.awaiting")
    approver = make_client(Role.CLINIC_STAFF)
    review = approver.get("/api/v1/caseloads").get_json()["pending_access"]
    assert [(p["username"], p["role"]) for p in review] == [("coach.awaiting", "coach")]

    approved = approver.post(f"/api/v1/users/{account['id']}/access-approval")
    assert approved.status_code == 200 and approved.get_json()["access"] == "active"
    assert approved.get_json()["access_approved_by_id"] == str(approver.user.id)
    assert signed_in(app, "coach.awaiting").get("/api/v1/caseload").status_code == 200
    assert approver.post(f"/api/v1/users/{account['id']}/access-approval", json={}).status_code == 409
    assert approver.get("/api/v1/caseloads").get_json()["pending_access"] == []
    with app.app_context():
        actions = set(db.session.scalars(sa.select(AuditEvent.action).where(
            AuditEvent.resource_id == account["id"])))
    assert {"user.access_granted", "user.access_approved"} <= actions


def test_a_role_change_to_a_clinical_role_waits_too_and_admins_and_the_shell_need_no_second_person(
        app, admin, make_client):
    other_admin = new_account(admin, "admin", "admin.second")
    assert other_admin["access"] == "active"
    nurse = make_client(Role.ED_NURSE)  # made at the shell (the bootstrap): active
    assert nurse.get("/api/v1/patients?mrn=X1").status_code == 200
    current = admin.get(f"/api/v1/users/{other_admin['id']}").get_json()
    assert current["access"] == "active"
    changed = admin.patch(f"/api/v1/users/{other_admin['id']}", json={"role": "clinic_staff"})
    assert changed.status_code == 200 and changed.get_json()["access"] == "pending"
    assert signed_in(app, "admin.second").get("/api/v1/episodes").get_json()["type"].endswith("access-pending")


def test_pending_access_reaches_no_patient_data_not_even_through_sync(app, admin):
    new_account(admin, "clinic_staff", "pending.syncer")
    pending = signed_in(app, "pending.syncer")
    refused = pending.get("/api/v1/sync")
    assert refused.status_code == 403 and refused.get_json()["type"].endswith("access-pending")
    assert pending.get("/api/v1/programs").status_code == 200  # no patient data: open while pending


def test_a_password_an_admin_sets_or_an_account_brought_back_waits_for_a_second_person(app, admin, make_client):
    approver = make_client(Role.CLINIC_STAFF)
    account = new_account(admin, "ed_nurse", "nurse.reset")
    approver.post(f"/api/v1/users/{account['id']}/access-approval", json={})
    reset = admin.patch(f"/api/v1/users/{account['id']}", json={"password": "another long password"})
    assert reset.get_json()["access"] == "pending"  # the admin could sign in with it
    approver.post(f"/api/v1/users/{account['id']}/access-approval", json={})
    admin.patch(f"/api/v1/users/{account['id']}", json={"active": False})
    back = admin.patch(f"/api/v1/users/{account['id']}", json={"active": True})
    assert back.get_json()["access"] == "pending"


def test_an_approval_covers_only_the_role_seen_and_never_a_deactivated_account(admin, make_client):
    approver = make_client(Role.CLINIC_STAFF)
    account = new_account(admin, "coach", "coach.switched")
    admin.patch(f"/api/v1/users/{account['id']}", json={"role": "clinic_staff"})
    mismatch = approver.post(f"/api/v1/users/{account['id']}/access-approval", json={"role": "coach"})
    assert mismatch.status_code == 409 and mismatch.get_json()["role"] == "clinic_staff"
    admin.patch(f"/api/v1/users/{account['id']}", json={"active": False})
    assert approver.post(f"/api/v1/users/{account['id']}/access-approval", json={}).status_code == 409
