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


def test_two_admins_cannot_demote_each_other_at_once(live_app):
    from backend.auth.models import Role

    first, second = make_user(live_app, role=Role.ADMIN), make_user(live_app, role=Role.ADMIN)
    tokens = {u.id: live_app.test_client().post("/api/v1/auth/tokens", json={
        "username": u.username, "password": u.password}).get_json()["token"] for u in (first, second)}

    def demote(pair):
        actor, target = pair
        return live_app.test_client().patch(f"/api/v1/users/{target.id}", json={"active": False},
                                            headers={"Authorization": f"Bearer {tokens[actor.id]}"}).status_code

    barrier = threading.Barrier(2)

    def run(pair):
        barrier.wait()
        return demote(pair)

    with ThreadPoolExecutor(2) as pool:
        statuses = sorted(pool.map(run, [(first, second), (second, first)]))
    assert 200 in statuses and statuses != [200, 200]
