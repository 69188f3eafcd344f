"""`Idempotency-Key` (api.md "Conventions"): a phone's retried POST replays, never re-runs."""

from __future__ import annotations

import datetime as dt
import threading
from concurrent.futures import ThreadPoolExecutor

from backend import idempotency
from backend.auth.models import Role
from tests.support import make_user


def new_user(username="retry.me"):
    return {"username": username, "display_name": "Retry Me", "role": "coach", "password": "a long passphrase"}


def usernames(admin):
    return [u["username"] for u in admin.get("/api/v1/users?limit=200").get_json()["items"]]


def test_a_retry_with_the_same_key_replays_the_first_response_and_creates_nothing(admin):
    first = admin.post("/api/v1/users", json=new_user(), headers={"Idempotency-Key": "k-1"})
    again = admin.post("/api/v1/users", json=new_user(), headers={"Idempotency-Key": "k-1"})
    assert first.status_code == again.status_code == 201
    assert again.get_json() == first.get_json()
    assert again.headers["Idempotent-Replayed"] == "true" and "Idempotent-Replayed" not in first.headers
    assert usernames(admin).count("retry.me") == 1


def test_the_same_key_with_another_body_is_422(admin):
    admin.post("/api/v1/users", json=new_user(), headers={"Idempotency-Key": "k-2"})
    response = admin.post("/api/v1/users", json=new_user("someone.else"), headers={"Idempotency-Key": "k-2"})
    assert response.status_code == 422 and "Idempotency-Key" in response.get_json()["errors"]
    assert "someone.else" not in usernames(admin)


def test_key_order_in_the_body_does_not_make_another_request(admin):
    body = new_user()
    admin.post("/api/v1/users", json=body, headers={"Idempotency-Key": "k-3"})
    reordered = dict(reversed(list(body.items())))
    assert admin.post("/api/v1/users", json=reordered, headers={"Idempotency-Key": "k-3"}).status_code == 201


def test_keys_belong_to_their_user(make_client):
    first, second = make_client(Role.ADMIN), make_client(Role.ADMIN)
    assert first.post("/api/v1/users", json=new_user("one"), headers={"Idempotency-Key": "same"}).status_code == 201
    response = second.post("/api/v1/users", json=new_user("two"), headers={"Idempotency-Key": "same"})
    assert response.status_code == 201 and "Idempotent-Replayed" not in response.headers


def test_a_refused_request_is_not_remembered(admin):
    admin.post("/api/v1/users", json=new_user("taken"))
    refused = admin.post("/api/v1/users", json=new_user("taken"), headers={"Idempotency-Key": "k-4"})
    assert refused.status_code == 409
    again = admin.post("/api/v1/users", json=new_user("taken"), headers={"Idempotency-Key": "k-4"})
    assert again.status_code == 409 and "Idempotent-Replayed" not in again.headers


def test_a_key_longer_than_255_characters_is_422(admin):
    response = admin.post("/api/v1/users", json=new_user(), headers={"Idempotency-Key": "k" * 256})
    assert response.status_code == 422 and "retry.me" not in usernames(admin)


def test_keys_are_kept_a_week_for_phones_offline_then_purged(admin, ctx):
    admin.post("/api/v1/users", json=new_user(), headers={"Idempotency-Key": "k-5"})
    now = dt.datetime.now(dt.timezone.utc)
    assert idempotency.purge_expired(now=now + dt.timedelta(days=6, hours=23)) == 0
    again = admin.post("/api/v1/users", json=new_user(), headers={"Idempotency-Key": "k-5"})
    assert again.headers["Idempotent-Replayed"] == "true"
    assert idempotency.purge_expired(now=now + dt.timedelta(days=7, minutes=1)) >= 1


def test_a_deployment_may_keep_keys_longer_but_not_less_than_a_week(monkeypatch):
    import pytest

    from backend.config import Config

    monkeypatch.setenv("IDEMPOTENCY_RETENTION_DAYS", "30")
    assert Config().IDEMPOTENCY_RETENTION_DAYS == 30
    monkeypatch.setenv("IDEMPOTENCY_RETENTION_DAYS", "2")
    with pytest.raises(RuntimeError, match="IDEMPOTENCY_RETENTION_DAYS"):
        Config().validate()


def test_two_requests_with_one_key_at_once_never_both_run(live_app):
    admin = make_user(live_app, role=Role.ADMIN)
    token = live_app.test_client().post("/api/v1/auth/tokens", json={
        "username": admin.username, "password": admin.password}).get_json()["token"]
    barrier = threading.Barrier(2)

    def create(_):
        barrier.wait()
        return live_app.test_client().post("/api/v1/users", json=new_user("twice"), headers={
            "Authorization": f"Bearer {token}", "Idempotency-Key": "tap-tap"})

    with ThreadPoolExecutor(2) as pool:
        responses = list(pool.map(create, range(2)))
    assert [r.status_code for r in responses] == [201, 201]
    assert sorted(r.headers.get("Idempotent-Replayed", "no") for r in responses) == ["no", "true"]
    assert responses[0].get_json()["id"] == responses[1].get_json()["id"]


def test_a_key_with_control_characters_is_422(admin):
    response = admin.post("/api/v1/users", json=new_user(), headers={"Idempotency-Key": "tab\there"})
    assert response.status_code == 422


def test_the_query_string_is_part_of_the_request(coach):
    assert coach.post("/_test/patient-read?a=1", headers={"Idempotency-Key": "q"}).status_code == 201
    assert coach.post("/_test/patient-read?a=2", headers={"Idempotency-Key": "q"}).status_code == 422


def test_a_replay_is_audited_as_a_read_of_the_same_patients(coach, admin):
    from tests.conftest import TEST_PATIENT

    first = coach.post("/_test/patient-read", headers={"Idempotency-Key": "read-1"})
    again = coach.post("/_test/patient-read", headers={"Idempotency-Key": "read-1"})
    assert again.headers["Idempotent-Replayed"] == "true" and again.get_json() == first.get_json()
    replays = admin.get(f"/api/v1/audit-events?action=request.replayed&patient_id={TEST_PATIENT}").get_json()
    assert [e["actor_id"] for e in replays["items"]] == [str(coach.user.id)]
