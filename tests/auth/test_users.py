"""User administration is for admins only; admins are not clinicians (privacy.md)."""

from __future__ import annotations

import pytest

from backend.auth.models import Role


def new_user(**overrides):
    return {"username": "coach.new", "display_name": "New Coach", "role": "coach",
            "password": "a long passphrase", **overrides}


def test_an_admin_creates_a_user_who_can_then_sign_in(admin, anonymous):
    response = admin.post("/api/v1/users", json=new_user(username="Coach.New"))
    assert response.status_code == 201
    body = response.get_json()
    assert body["username"] == "coach.new" and body["role"] == "coach" and body["active"] is True
    assert "password" not in body and "password_hash" not in body
    signed_in = anonymous.post("/api/v1/auth/tokens", json={"username": "coach.new", "password": "a long passphrase"})
    assert signed_in.status_code == 201


def test_a_taken_username_is_409(admin):
    admin.post("/api/v1/users", json=new_user())
    response = admin.post("/api/v1/users", json=new_user(username="COACH.NEW"))
    assert response.status_code == 409 and response.get_json()["type"] == "conflict"


def test_a_short_password_is_refused(admin):
    response = admin.post("/api/v1/users", json=new_user(password="short"))
    assert response.status_code == 422 and "password" in response.get_json()["errors"]


@pytest.mark.parametrize("role", [Role.COACH, Role.ED_NURSE, Role.CLINIC_STAFF])
def test_only_admins_manage_users(make_client, role):
    caller = make_client(role)
    assert caller.get("/api/v1/users").status_code == 403
    assert caller.post("/api/v1/users", json=new_user()).status_code == 403
    assert caller.get(f"/api/v1/users/{caller.user.id}").status_code == 403
    assert caller.delete(f"/api/v1/users/{caller.user.id}/devices").status_code == 403
    assert caller.get("/api/v1/audit-events").status_code == 403


def test_users_are_listed_in_pages_with_a_cursor(admin):
    for n in range(5):
        admin.post("/api/v1/users", json=new_user(username=f"page.{n}"))
    first = admin.get("/api/v1/users?limit=2").get_json()
    assert len(first["items"]) == 2 and first["next_cursor"]
    seen, cursor = [u["username"] for u in first["items"]], first["next_cursor"]
    while cursor:
        page = admin.get(f"/api/v1/users?limit=2&cursor={cursor}").get_json()
        seen += [u["username"] for u in page["items"]]
        cursor = page["next_cursor"]
    assert seen == sorted(seen) and len(seen) == len(set(seen)) >= 6


def test_users_can_be_filtered_by_role(admin, make_client):
    make_client(Role.ED_NURSE)
    items = admin.get("/api/v1/users?role=ed_nurse").get_json()["items"]
    assert items and {u["role"] for u in items} == {"ed_nurse"}


def test_an_unknown_user_is_404(admin):
    response = admin.get("/api/v1/users/00000000-0000-0000-0000-000000000000")
    assert response.status_code == 404


def test_the_last_active_admin_cannot_be_deactivated_or_demoted(admin):
    me = admin.user.id
    existing_admins = [u for u in admin.get("/api/v1/users?role=admin&active=true").get_json()["items"]
                       if u["id"] != str(me)]
    for other in existing_admins:
        admin.patch(f"/api/v1/users/{other['id']}", json={"active": False})
    assert admin.patch(f"/api/v1/users/{me}", json={"active": False}).status_code == 409
    assert admin.patch(f"/api/v1/users/{me}", json={"role": "coach"}).status_code == 409
    assert admin.get("/api/v1/me").status_code == 200
