"""Device sessions: list and revoke my own; admin revokes all; deactivation revokes everything."""

from __future__ import annotations

from backend.auth.models import Role
from tests.support import ApiClient


def second_device(client: ApiClient, name="tablet") -> ApiClient:
    other = ApiClient(client.client)
    other.sign_in(client.user.username, client.user.password, device_name=name)
    return other


def test_i_see_my_devices_with_the_current_one_marked(coach):
    tablet = second_device(coach)
    items = coach.get("/api/v1/me/devices").get_json()["items"]
    assert {i["device_name"] for i in items} == {"test device", "tablet"}
    assert [i["current"] for i in items if i["device_name"] == "test device"] == [True]
    assert set(items[0]) == {"id", "device_name", "created_at", "last_seen_at", "expires_at", "current"}
    assert tablet.get("/api/v1/me/devices").get_json()["next_cursor"] is None


def test_revoking_a_lost_phone_ends_only_that_session(coach):
    lost = second_device(coach, "lost phone")
    lost_id = next(i["id"] for i in coach.get("/api/v1/me/devices").get_json()["items"]
                   if i["device_name"] == "lost phone")
    assert coach.delete(f"/api/v1/me/devices/{lost_id}").status_code == 204
    assert lost.get("/api/v1/me").status_code == 401
    assert coach.get("/api/v1/me").status_code == 200
    assert [i["device_name"] for i in coach.get("/api/v1/me/devices").get_json()["items"]] == ["test device"]


def test_i_cannot_revoke_someone_elses_device(make_client):
    alice, bob = make_client(Role.COACH), make_client(Role.COACH)
    bobs_device = bob.get("/api/v1/me/devices").get_json()["items"][0]["id"]
    response = alice.delete(f"/api/v1/me/devices/{bobs_device}")
    assert response.status_code == 404 and response.get_json()["type"] == "not-found"
    assert bob.get("/api/v1/me").status_code == 200


def test_an_admin_revokes_every_device_of_a_user(admin, coach):
    tablet = second_device(coach)
    assert admin.delete(f"/api/v1/users/{coach.user.id}/devices").status_code == 204
    assert coach.get("/api/v1/me").status_code == 401
    assert tablet.get("/api/v1/me").status_code == 401
    assert admin.get("/api/v1/me").status_code == 200


def test_deactivating_a_user_stops_their_tokens_at_once(admin, coach):
    response = admin.patch(f"/api/v1/users/{coach.user.id}", json={"active": False})
    assert response.status_code == 200 and response.get_json()["active"] is False
    assert response.get_json()["deactivated_at"] is not None
    assert coach.get("/api/v1/me").status_code == 401


def test_reactivating_a_user_does_not_revive_old_tokens(admin, coach):
    admin.patch(f"/api/v1/users/{coach.user.id}", json={"active": False})
    admin.patch(f"/api/v1/users/{coach.user.id}", json={"active": True})
    assert coach.get("/api/v1/me").status_code == 401
    coach.sign_in(coach.user.username, coach.user.password)
    assert coach.get("/api/v1/me").status_code == 200


def test_a_role_change_ends_the_users_sessions(admin, coach):
    admin.patch(f"/api/v1/users/{coach.user.id}", json={"role": "clinic_staff"})
    assert coach.get("/api/v1/me").status_code == 401
