"""Sign-in, throttling and device sessions (privacy.md "Access", api.md "Operations and identity")."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa

from backend.auth.models import DeviceSession, LoginThrottle, Role
from backend.extensions import db
from tests.support import ApiClient, make_user


def sign_in(client, username, password, device_name="phone"):
    return client.post("/api/v1/auth/tokens", json={"username": username, "password": password,
                                                    "device_name": device_name})


def test_sign_in_returns_a_bearer_token_for_the_device(app, anonymous):
    user = make_user(app, role=Role.COACH)
    response = sign_in(anonymous, user.username, user.password)
    assert response.status_code == 201
    body = response.get_json()
    assert body["token_type"] == "Bearer" and len(body["token"]) >= 40
    assert body["user"] == {"id": str(user.id), "username": user.username,
                            "display_name": "Test Person", "role": "coach"}
    assert body["idle_timeout_seconds"] == 12 * 3600  # coaches' phones
    expires = dt.datetime.fromisoformat(body["expires_at"])
    assert dt.timedelta(days=29) < expires - dt.datetime.now(dt.timezone.utc) <= dt.timedelta(days=30)
    me = ApiClient(anonymous.client, body["token"]).get("/api/v1/me")
    assert me.status_code == 200 and me.get_json()["username"] == user.username


def test_staff_sessions_idle_out_after_30_minutes(app, anonymous):
    user = make_user(app, role=Role.ED_NURSE)
    assert sign_in(anonymous, user.username, user.password).get_json()["idle_timeout_seconds"] == 1800


def test_the_username_is_not_case_sensitive(app, anonymous):
    user = make_user(app, role=Role.COACH)
    assert sign_in(anonymous, user.username.upper(), user.password).status_code == 201


def test_the_token_is_stored_only_as_a_hash(app, anonymous):
    user = make_user(app)
    token = sign_in(anonymous, user.username, user.password).get_json()["token"]
    with app.app_context():
        stored = db.session.scalars(sa.select(DeviceSession.token_hash)).all()
    assert token not in stored and len(stored) == 1 and len(stored[0]) == 64


def test_unknown_user_and_wrong_password_get_the_same_401(app, anonymous):
    user = make_user(app)
    wrong_password = sign_in(anonymous, user.username, "not the password")
    unknown_user = sign_in(anonymous, "nobody.here", "not the password")
    assert wrong_password.status_code == unknown_user.status_code == 401
    strip = lambda r: {k: v for k, v in r.get_json().items() if k != "request_id"}  # noqa: E731
    assert strip(wrong_password) == strip(unknown_user)
    assert wrong_password.mimetype == "application/problem+json"


def test_an_inactive_user_cannot_sign_in(app, admin, anonymous):
    user = make_user(app)
    admin.patch(f"/api/v1/users/{user.id}", json={"active": False})
    assert sign_in(anonymous, user.username, user.password).status_code == 401


def test_five_wrong_passwords_in_a_row_give_429_with_retry_after(app, anonymous):
    user = make_user(app)
    statuses = [sign_in(anonymous, user.username, "wrong").status_code for _ in range(5)]
    assert statuses == [401] * 5
    throttled = sign_in(anonymous, user.username, user.password)  # even the right password
    assert throttled.status_code == 429
    assert throttled.get_json()["type"] == "rate-limited"
    assert 0 < int(throttled.headers["Retry-After"]) <= 15 * 60


def test_unknown_usernames_are_throttled_like_real_ones(anonymous):
    for _ in range(5):
        assert sign_in(anonymous, "ghost", "wrong").status_code == 401
    assert sign_in(anonymous, "ghost", "wrong").status_code == 429


def test_a_successful_sign_in_resets_the_failure_count(app, anonymous):
    user = make_user(app)
    for _ in range(4):
        sign_in(anonymous, user.username, "wrong")
    assert sign_in(anonymous, user.username, user.password).status_code == 201
    for _ in range(4):
        assert sign_in(anonymous, user.username, "wrong").status_code == 401
    assert sign_in(anonymous, user.username, user.password).status_code == 201


def test_sign_in_works_again_after_the_lockout(app, anonymous):
    user = make_user(app)
    for _ in range(5):
        sign_in(anonymous, user.username, "wrong")
    with app.app_context():
        db.session.execute(sa.update(LoginThrottle).values(
            locked_until=dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=1)))
        db.session.commit()
    assert sign_in(anonymous, user.username, user.password).status_code == 201


def _age_session(app, token_owner_id, **changes):
    with app.app_context():
        db.session.execute(sa.update(DeviceSession).where(DeviceSession.user_id == token_owner_id).values(**changes))
        db.session.commit()


def test_an_idle_staff_token_stops_working_after_its_timeout(app, make_client):
    nurse = make_client(Role.ED_NURSE)
    _age_session(app, nurse.user.id, last_seen_at=dt.datetime.now(dt.timezone.utc) - dt.timedelta(minutes=31))
    response = nurse.get("/api/v1/me")
    assert response.status_code == 401 and response.get_json()["type"] == "unauthorized"


def test_a_coachs_phone_stays_signed_in_through_a_long_shift(app, make_client):
    coach = make_client(Role.COACH)
    _age_session(app, coach.user.id, last_seen_at=dt.datetime.now(dt.timezone.utc) - dt.timedelta(hours=11))
    assert coach.get("/api/v1/me").status_code == 200
    _age_session(app, coach.user.id, last_seen_at=dt.datetime.now(dt.timezone.utc) - dt.timedelta(hours=13))
    assert coach.get("/api/v1/me").status_code == 401


def test_activity_keeps_a_session_alive(app, make_client):
    nurse = make_client(Role.ED_NURSE)
    _age_session(app, nurse.user.id, last_seen_at=dt.datetime.now(dt.timezone.utc) - dt.timedelta(minutes=29))
    assert nurse.get("/api/v1/me").status_code == 200  # touches last_seen_at
    with app.app_context():
        seen = db.session.scalar(sa.select(DeviceSession.last_seen_at).where(DeviceSession.user_id == nurse.user.id))
    assert dt.datetime.now(dt.timezone.utc) - seen < dt.timedelta(minutes=1)


def test_a_token_past_its_absolute_lifetime_stops_working(app, make_client):
    coach = make_client(Role.COACH)
    _age_session(app, coach.user.id, expires_at=dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=1))
    assert coach.get("/api/v1/me").status_code == 401


def test_a_garbage_or_missing_token_is_401(anonymous):
    assert ApiClient(anonymous.client, "not-a-token").get("/api/v1/me").status_code == 401
    assert anonymous.get("/api/v1/me", headers={"Authorization": "Basic abc"}).status_code == 401


def test_signing_out_ends_the_token_at_once(coach):
    assert coach.delete("/api/v1/auth/tokens/current").status_code == 204
    assert coach.get("/api/v1/me").status_code == 401


def test_stale_failure_counters_are_purged_but_live_lockouts_kept(app, anonymous, ctx):
    from backend.audit.service import username_fingerprint
    from backend.auth.service import purge_stale_sign_in_counters

    for _ in range(5):
        sign_in(anonymous, "locked.out", "wrong")
    sign_in(anonymous, "typo.once", "wrong")
    now = dt.datetime.now(dt.timezone.utc)
    account = f"account:{username_fingerprint('locked.out')}"  # rows are keyed by fingerprints
    db.session.execute(sa.update(LoginThrottle).where(LoginThrottle.username_key == account)
                       .values(locked_until=now + dt.timedelta(hours=1)))
    # typo.once's counters (the account's and its address's) and locked.out's address lock, over
    assert purge_stale_sign_in_counters(now=now + dt.timedelta(minutes=16)) == 3
    assert {t.username_key for t in db.session.scalars(sa.select(LoginThrottle))} == {account}
    assert purge_stale_sign_in_counters(now=now + dt.timedelta(minutes=61)) == 1


def from_address(app, address: str):
    """A client whose requests come from `address` (as the WSGI server reports the peer)."""
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = address
    return client


def test_a_strangers_wrong_passwords_never_lock_the_person_out_from_their_own_address(app):
    user = make_user(app)
    stranger, nurse_desk = from_address(app, "198.51.100.7"), from_address(app, "10.20.0.15")
    for _ in range(5):
        assert sign_in(stranger, f"  {user.username.upper()} ", "wrong").status_code == 401  # normalised
    assert sign_in(stranger, user.username, user.password).status_code == 429  # that address is locked
    assert sign_in(nurse_desk, user.username, user.password).status_code == 201  # theirs is not


def test_a_campaign_from_many_addresses_locks_the_account_but_a_known_device_gets_through(app, monkeypatch):
    monkeypatch.setitem(app.config, "LOGIN_ACCOUNT_MAX_FAILURES", 6)
    user = make_user(app)
    phone = from_address(app, "10.20.0.16")
    first = sign_in(phone, user.username, user.password)
    assert first.status_code == 201
    cookie = first.get_json()["device_cookie"]
    for n in range(6):  # three addresses, two guesses each: no address reaches its own limit
        assert sign_in(from_address(app, f"203.0.113.{n // 2}"), user.username, "wrong").status_code == 401

    assert sign_in(from_address(app, "10.20.0.99"), user.username, user.password).status_code == 429
    assert sign_in(phone, user.username, user.password).status_code == 429  # without its cookie
    back = phone.post("/api/v1/auth/tokens", json={"username": user.username, "password": user.password,
                                                   "device_name": "phone", "device_cookie": cookie})
    assert back.status_code == 201
    forged = phone.post("/api/v1/auth/tokens", json={"username": user.username, "password": user.password,
                                                     "device_name": "phone", "device_cookie": cookie[:-4] + "0000"})
    assert forged.status_code == 429


def test_a_username_shaped_like_another_counter_cannot_lock_the_person_out(app, monkeypatch):
    monkeypatch.setitem(app.config, "LOGIN_ACCOUNT_MAX_FAILURES", 10)
    user = make_user(app)
    home = from_address(app, "10.9.9.9")
    for n in range(10):
        sign_in(from_address(app, f"203.0.113.{n % 2}"), f"{user.username} from 10.9.9.9", "wrong")
    assert sign_in(home, user.username, user.password).status_code == 201


def test_a_device_cookie_ends_with_the_password_and_a_garbled_one_is_refused_cleanly(app, admin, monkeypatch):
    monkeypatch.setitem(app.config, "LOGIN_ACCOUNT_MAX_FAILURES", 2)
    user = make_user(app, role=Role.ADMIN)
    phone = from_address(app, "10.20.0.17")
    cookie = sign_in(phone, user.username, user.password).get_json()["device_cookie"]
    for n in range(2):
        sign_in(from_address(app, f"203.0.113.{n}"), user.username, "wrong")
    body = {"username": user.username, "password": user.password, "device_name": "phone"}
    assert phone.post("/api/v1/auth/tokens", json={**body, "device_cookie": "a.é"}).status_code == 429
    admin.patch(f"/api/v1/users/{user.id}", json={"password": "a new long password"})
    again = phone.post("/api/v1/auth/tokens", json={**body, "password": "a new long password",
                                                    "device_cookie": cookie})
    assert again.status_code == 429  # the old cookie went with the old password
