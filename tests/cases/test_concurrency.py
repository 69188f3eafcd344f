"""Cases under concurrent writes: no lost update, one open episode per patient."""

from __future__ import annotations

import datetime as dt
import threading
from concurrent.futures import ThreadPoolExecutor

from backend.auth.models import Role
from tests.support import make_user


def signed_in(app, role):
    user = make_user(app, role=role)
    token = app.test_client().post("/api/v1/auth/tokens", json={
        "username": user.username, "password": user.password}).get_json()["token"]
    return {"Authorization": f"Bearer {token}"}


def at_once(*actions):
    barrier = threading.Barrier(len(actions))

    def run(action):
        barrier.wait()
        return action()

    with ThreadPoolExecutor(len(actions)) as pool:
        return list(pool.map(run, actions))


def register(app, headers):
    return app.test_client().post("/api/v1/patients", headers=headers, json={
        "given_name": "Alex", "family_name": "Rivera", "birth_date": "1990-04-02"}).get_json()


def test_two_episode_opens_for_one_patient_give_one_201_and_one_409(live_app):
    nurse = signed_in(live_app, Role.ED_NURSE)
    patient = register(live_app, nurse)
    arrived = (dt.datetime.now(dt.timezone.utc) - dt.timedelta(hours=1)).isoformat()

    def open_one():
        return live_app.test_client().post("/api/v1/episodes", headers=nurse, json={
            "patient_id": patient["id"], "level": "emergency_department", "presenting_reason": "overdose",
            "arrived_at": arrived})

    responses = at_once(open_one, open_one)
    assert sorted(r.status_code for r in responses) == [201, 409]
    created = next(r for r in responses if r.status_code == 201).get_json()
    refused = next(r for r in responses if r.status_code == 409).get_json()
    assert refused["existing_id"] == created["id"]


def test_two_patches_with_one_etag_one_wins_the_other_412_and_nothing_is_lost(live_app):
    nurse, clinic = signed_in(live_app, Role.ED_NURSE), signed_in(live_app, Role.CLINIC_STAFF)
    patient = register(live_app, nurse)
    url = f"/api/v1/patients/{patient['id']}"
    etag = live_app.test_client().get(url, headers=clinic).headers["ETag"]

    def patch(**fields):
        return lambda: live_app.test_client().patch(url, json=fields, headers={**clinic, "If-Match": etag})

    responses = at_once(patch(preferred_name="Lex"), patch(language="es"))
    assert sorted(r.status_code for r in responses) == [200, 412]
    winner = next(r for r in responses if r.status_code == 200).get_json()
    loser = next(r for r in responses if r.status_code == 412).get_json()
    assert loser["current"] == winner  # the loser sees what won, to merge and retry
    stored = live_app.test_client().get(url, headers=clinic).get_json()
    assert (stored["preferred_name"], stored["language"]) == (winner["preferred_name"], winner["language"])
    assert stored["version"] == patient["version"] + 1


def _episode(app, nurse, coach_headers=None):
    patient = register(app, nurse)
    arrived = (dt.datetime.now(dt.timezone.utc) - dt.timedelta(hours=3)).isoformat()
    return app.test_client().post("/api/v1/episodes", headers=nurse, json={
        "patient_id": patient["id"], "level": "emergency_department", "presenting_reason": "overdose",
        "arrived_at": arrived}).get_json()


def test_two_discharges_at_once_record_one_and_refuse_the_other(live_app):
    nurse = signed_in(live_app, Role.ED_NURSE)
    for _ in range(3):
        episode = _episode(live_app, nurse)
        when = (dt.datetime.now(dt.timezone.utc) - dt.timedelta(hours=1)).isoformat()

        def discharge(episode=episode, when=when):
            return live_app.test_client().post(f"/api/v1/episodes/{episode['id']}/discharge", headers=nurse,
                                               json={"discharged_at": when}).status_code

        assert sorted(at_once(discharge, discharge)) == [200, 409]


def test_closing_while_the_coach_changes_never_fails(live_app):
    nurse, clinic = signed_in(live_app, Role.ED_NURSE), signed_in(live_app, Role.CLINIC_STAFF)
    coach = make_user(live_app, role=Role.COACH)
    for _ in range(3):
        episode = _episode(live_app, nurse)

        def reassign(episode=episode):
            return live_app.test_client().put(f"/api/v1/episodes/{episode['id']}/coach", headers=clinic,
                                              json={"coach_id": str(coach.id)}).status_code

        def close(episode=episode):
            return live_app.test_client().post(f"/api/v1/episodes/{episode['id']}/close", headers=clinic,
                                               json={"reason": "other"}).status_code

        statuses = at_once(reassign, close)
        assert statuses[1] == 200 and statuses[0] in (200, 409), statuses


def test_a_retry_racing_its_first_attempt_creates_one_encounter(live_app):
    import uuid

    nurse, clinic = signed_in(live_app, Role.ED_NURSE), signed_in(live_app, Role.CLINIC_STAFF)
    episode = _episode(live_app, nurse)
    body = {"id": str(uuid.uuid4()), "kind": "phone",
            "occurred_at": (dt.datetime.now(dt.timezone.utc) - dt.timedelta(minutes=3)).isoformat()}

    def post():
        return live_app.test_client().post(f"/api/v1/episodes/{episode['id']}/encounters", headers=clinic,
                                           json=body).status_code

    assert sorted(at_once(post, post)) == [200, 201]
    listed = live_app.test_client().get(f"/api/v1/episodes/{episode['id']}/encounters", headers=clinic)
    assert len(listed.get_json()["items"]) == 1
