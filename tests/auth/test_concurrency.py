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
