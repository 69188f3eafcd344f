"""Sign-in under concurrent load: the limit holds however many guesses arrive at once."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

from tests.support import make_user


def parallel(n: int, action):
    barrier = threading.Barrier(n)

    def run(_):
        barrier.wait()
        return action()

    with ThreadPoolExecutor(n) as pool:
        return list(pool.map(run, range(n)))


def test_parallel_wrong_passwords_get_at_most_five_checks(live_app):
    user = make_user(live_app)

    def guess():
        return live_app.test_client().post("/api/v1/auth/tokens", json={
            "username": user.username, "password": "a wrong guess"}).status_code

    statuses = parallel(12, guess)
    assert sorted(statuses) == [401] * 5 + [429] * 7


def test_parallel_sign_ins_all_succeed_and_the_audit_chain_holds(live_app):
    user = make_user(live_app)

    def sign_in():
        return live_app.test_client().post("/api/v1/auth/tokens", json={
            "username": user.username, "password": user.password}).status_code

    assert parallel(8, sign_in) == [201] * 8
    result = live_app.test_cli_runner().invoke(args=["audit", "verify"])
    assert result.exit_code == 0, result.output


def test_two_creates_of_one_username_give_one_user_and_one_409(live_app):
    from backend.auth.models import Role

    admin = make_user(live_app, role=Role.ADMIN)
    token = live_app.test_client().post("/api/v1/auth/tokens", json={
        "username": admin.username, "password": admin.password}).get_json()["token"]

    def create():
        return live_app.test_client().post("/api/v1/users", headers={"Authorization": f"Bearer {token}"}, json={
            "username": "twin", "display_name": "Twin", "role": "coach", "password": "a long passphrase"}).status_code

    assert sorted(parallel(2, create)) == [201, 409]


def _tokens(live_app, *users):
    return {u.id: live_app.test_client().post("/api/v1/auth/tokens", json={
        "username": u.username, "password": u.password}).get_json()["token"] for u in users}


def _crosswise(live_app, tokens, first, second, path, method, body=None):
    """`first` acts on `second` and `second` on `first`, at the same moment."""
    def act(pair):
        actor, target = pair
        return live_app.test_client().open(path.format(target=target), method=method, json=body,
                                           headers={"Authorization": f"Bearer {tokens[actor.id]}"}).status_code

    return parallel_pairs(act, [(first, second), (second, first)])


def parallel_pairs(action, pairs):
    barrier = threading.Barrier(len(pairs))

    def run(pair):
        barrier.wait()
        return action(pair)

    with ThreadPoolExecutor(len(pairs)) as pool:
        return sorted(pool.map(run, pairs))


def test_two_admins_cannot_demote_each_other_at_once(live_app):
    from backend.auth.models import Role

    first, second = make_user(live_app, role=Role.ADMIN), make_user(live_app, role=Role.ADMIN)
    tokens = _tokens(live_app, first, second)
    statuses = _crosswise(live_app, tokens, first, second, "/api/v1/users/{target.id}", "PATCH", {"active": False})
    # The loser is refused as the last admin (409) or, if it came second, as already signed out.
    assert statuses in ([200, 401], [200, 409])
    with live_app.app_context():
        import sqlalchemy as sa

        from backend.auth.models import User
        from backend.extensions import db

        active = db.session.scalars(sa.select(User.id).where(User.role == Role.ADMIN, User.active.is_(True))).all()
    assert len(active) == 1


def test_admins_changing_each_other_at_once_never_deadlock(live_app):
    from backend.auth.models import Role

    make_user(live_app, role=Role.ADMIN)  # a third admin, so both changes may succeed
    for body in ({"password": "a new long passphrase", "active": False},
                 {"display_name": "Renamed", "role": "coach"}):
        first, second = make_user(live_app, role=Role.ADMIN), make_user(live_app, role=Role.ADMIN)
        tokens = _tokens(live_app, first, second)
        for _ in range(3):
            statuses = _crosswise(live_app, tokens, first, second, "/api/v1/users/{target.id}", "PATCH", body)
            assert 500 not in statuses and 503 not in statuses, statuses


def test_two_devices_revoking_each_other_never_deadlock(live_app):
    import datetime as dt

    import sqlalchemy as sa

    from backend.auth.models import DeviceSession
    from backend.extensions import db

    user = make_user(live_app)
    for _ in range(4):
        phone, tablet = (live_app.test_client().post("/api/v1/auth/tokens", json={
            "username": user.username, "password": user.password, "device_name": name}).get_json()["token"]
            for name in ("phone", "tablet"))
        with live_app.app_context():  # both sessions due for a last-seen update
            db.session.execute(sa.update(DeviceSession).values(
                last_seen_at=dt.datetime.now(dt.timezone.utc) - dt.timedelta(minutes=5)))
            db.session.commit()
        devices = {d["device_name"]: d["id"] for d in live_app.test_client().get(
            "/api/v1/me/devices", headers={"Authorization": f"Bearer {phone}"}).get_json()["items"]}

        def revoke(pair):
            token, other = pair
            return live_app.test_client().delete(f"/api/v1/me/devices/{other}",
                                                 headers={"Authorization": f"Bearer {token}"}).status_code

        statuses = parallel_pairs(revoke, [(phone, devices["tablet"]), (tablet, devices["phone"])])
        assert set(statuses) <= {204, 401}, statuses


def test_authenticating_holds_no_lock_on_the_session_row(live_app):
    """The last-seen update waits until the request is over: held for the whole request, that
    row lock deadlocked two devices of one user revoking each other (PostgreSQL)."""
    import datetime as dt

    import pytest
    import sqlalchemy as sa

    from backend.auth import service as auth_service
    from backend.auth.models import DeviceSession
    from backend.extensions import db

    user = make_user(live_app)
    token = _tokens(live_app, user)[user.id]
    with live_app.app_context():
        if db.engine.dialect.name != "postgresql":
            pytest.skip("SQLite transactions take the database write lock; row locks are PostgreSQL's")
        db.session.execute(sa.update(DeviceSession).values(
            last_seen_at=dt.datetime.now(dt.timezone.utc) - dt.timedelta(minutes=5)))
        db.session.commit()
        session = auth_service.session_for_token(token)  # inside this request-like transaction
        with db.engine.connect() as other:
            other.execute(sa.text("SELECT id FROM device_sessions WHERE id = :id FOR UPDATE NOWAIT"),
                          {"id": session.id})  # raises LockNotAvailable if the row were locked
        db.session.rollback()
