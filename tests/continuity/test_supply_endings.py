"""Medication that never runs out (product.md): the caseload shows a supply ending within 48 h
with nothing booked to continue it, clinic staff's review lists it, and the clock escalates it
exactly once 24 h before the end, however many clocks run."""

from __future__ import annotations

import datetime as dt
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor

import sqlalchemy as sa

from backend import unit_of_work
from backend.auth.models import Role
from backend.caseload import service as caseload
from backend.cases.models import Task
from backend.continuity.supply_endings import check_supply_endings
from backend.extensions import db
from tests.cases.conftest import ago
from tests.continuity.conftest import KIT, today
from tests.support import ApiClient, make_user


def ends_at(supply: dict) -> dt.datetime:
    return dt.datetime.fromisoformat(supply["ends_at"])


def entry_of(app, coach, episode, now):
    with app.app_context():
        entries = caseload.caseload(coach_id=coach.user.id, now=now)
    return next(e for e in entries if str(e["episode_id"]) == episode["id"])


def test_a_supply_ending_within_48_hours_with_nothing_booked_is_a_caseload_reason(app, coach, open_episode, supply):
    episode = open_episode(coach=coach)
    bridge = supply(episode, days_supplied=7)
    quiet = entry_of(app, coach, episode, ends_at(bridge) - dt.timedelta(hours=49))
    assert "moud_supply_ending" not in quiet["priority_reasons"]
    assert quiet["moud_covered_until"].isoformat() == bridge["covered_until"]
    for hours in (47, 1, -30):  # within 48 h, about to end, ended
        entry = entry_of(app, coach, episode, ends_at(bridge) - dt.timedelta(hours=hours))
        assert entry["priority_reasons"][0] == "moud_supply_ending" or \
            entry["priority_reasons"][:2] == ["handoff_overdue", "moud_supply_ending"]
        assert "moud_supply_ending" in entry["priority_reasons"]


def test_moud_supply_ending_ranks_just_below_handoff_overdue():
    # (back_in_ed, from the hospital's ADT feed, ranks above them all since API 1.14)
    assert caseload.RULES[:4] == ("back_in_ed", "handoff_overdue", "moud_supply_ending", "overdue_task")


def test_a_clinic_visit_or_an_otp_intake_before_the_end_clears_it_other_visits_do_not(
        app, coach, clinic, open_episode, supply, program):
    residential, otp = program(service="residential"), program(service="otp")
    cases = {}
    for name, visit in (("clinic", {"kind": "transition_clinic"}),
                        ("otp", {"kind": "program_intake", "program_id": otp["id"]}),
                        ("residential", {"kind": "program_intake", "program_id": residential["id"]}),
                        ("after_the_end", {"kind": "transition_clinic", "after": True}),
                        ("cancelled", {"kind": "transition_clinic", "cancel": True})):
        episode = open_episode(coach=coach)
        bridge = supply(episode, days_supplied=3)
        after, cancel = visit.pop("after", False), visit.pop("cancel", False)
        starts = ends_at(bridge) + (dt.timedelta(hours=10) if after else -dt.timedelta(hours=10))
        booked = clinic.post(f"/api/v1/episodes/{episode['id']}/appointments",
                             json={**visit, "starts_at": starts.isoformat()})
        assert booked.status_code == 201, booked.get_json()
        if cancel:
            clinic.patch(f"/api/v1/appointments/{booked.get_json()['id']}", json={"status": "cancelled"},
                         headers={"If-Match": booked.headers["ETag"]})
        cases[name] = (episode, bridge)
    flagged = {name for name, (episode, bridge) in cases.items() if "moud_supply_ending" in entry_of(
        app, coach, episode, ends_at(bridge) - dt.timedelta(hours=20))["priority_reasons"]}
    assert flagged == {"residential", "after_the_end", "cancelled"}


def test_a_later_supply_replaces_the_ending_one(app, coach, open_episode, supply):
    episode = open_episode(coach=coach, arrived_at=ago(days=2))
    first = supply(episode, started_on=today(days=-1), days_supplied=3)
    supply(episode, started_on=today(days=1), days_supplied=28, kind="dispensed", source="transition_clinic")
    entry = entry_of(app, coach, episode, ends_at(first) - dt.timedelta(hours=5))
    assert "moud_supply_ending" not in entry["priority_reasons"]
    assert entry["moud_covered_until"].isoformat() == today(days=28)


def test_clinic_staffs_review_lists_the_supplies_ending(app, coach, open_episode, supply):
    ending, fine = open_episode(coach=coach), open_episode(coach=coach)
    bridge = supply(ending, days_supplied=2)
    supply(fine, days_supplied=30)
    with app.app_context():
        listed = caseload.review(now=ends_at(bridge) - dt.timedelta(hours=30))["at_risk"]["moud_supply_ending"]
    ids = {str(item["episode_id"]) for item in listed["items"]}
    assert ending["id"] in ids and fine["id"] not in ids


def test_the_reviews_count_of_supplies_ending_is_the_caseloads_rule_counted_from_the_supplies(
        app, coach, clinic, open_episode, supply):
    ending, unassigned = open_episode(coach=coach), open_episode()
    replaced, continued, closed = (open_episode(coach=coach, arrived_at=ago(days=2)) for _ in range(3))
    bridge = supply(ending, days_supplied=2)
    supply(unassigned, days_supplied=2)
    supply(replaced, started_on=today(days=-1), days_supplied=2)
    supply(replaced, started_on=today(days=1), days_supplied=28, kind="dispensed", source="transition_clinic")
    supply(continued, days_supplied=2)
    clinic.post(f"/api/v1/episodes/{continued['id']}/appointments", json={
        "kind": "transition_clinic", "starts_at": (ends_at(bridge) - dt.timedelta(hours=6)).isoformat()})
    supply(closed, days_supplied=2)
    clinic.post(f"/api/v1/episodes/{closed['id']}/close", json={"reason": "transferred"})
    now = ends_at(bridge) - dt.timedelta(hours=30)
    with app.app_context():
        listed = caseload.review(now=now)["at_risk"]["moud_supply_ending"]
        flagged = {str(e["episode_id"]) for e in caseload.caseload(coach_id=coach.user.id, now=now)
                   if "moud_supply_ending" in e["priority_reasons"]}
    assert flagged == {ending["id"]}
    assert listed["count"] == 2 == len(listed["items"])
    assert {str(item["episode_id"]) for item in listed["items"]} == {ending["id"], unassigned["id"]}


def test_the_review_endpoint_answers_the_list(clinic, coach, open_episode, supply):
    episode = open_episode(coach=coach, arrived_at=ago(days=3))
    supply(episode, started_on=today(days=-2), days_supplied=2)  # ended at midnight
    at_risk = clinic.get("/api/v1/caseloads").get_json()["at_risk"]
    assert episode["id"] in {item["episode_id"] for item in at_risk["moud_supply_ending"]["items"]}


def test_at_24_hours_the_clock_makes_one_task_for_the_coach(app, coach, open_episode, supply):
    episode = open_episode(coach=coach)
    bridge = supply(episode, days_supplied=7)
    with app.app_context():
        assert check_supply_endings(now=ends_at(bridge) - dt.timedelta(hours=25)) == 0
        assert check_supply_endings(now=ends_at(bridge) - dt.timedelta(hours=23)) == 1
        assert check_supply_endings(now=ends_at(bridge) - dt.timedelta(hours=22)) == 0
        unit_of_work.commit()
    tasks = coach.get(f"/api/v1/episodes/{episode['id']}/tasks").get_json()["items"]
    assert len(tasks) == 1 and tasks[0]["assignee_id"] == str(coach.user.id)
    assert "prescriber visit" in tasks[0]["title"]


def test_an_unassigned_episodes_escalation_goes_to_clinic_staff(app, clinic, open_episode, supply):
    episode = open_episode()
    bridge = supply(episode, days_supplied=2)
    with app.app_context():
        assert check_supply_endings(now=ends_at(bridge) - dt.timedelta(hours=12)) == 1
        unit_of_work.commit()
    tasks = clinic.get(f"/api/v1/episodes/{episode['id']}/tasks").get_json()["items"]
    assert [t["assignee_id"] for t in tasks] == [None]


def test_nothing_is_escalated_when_a_visit_is_booked_or_the_episode_closed(app, coach, clinic, open_episode, supply):
    booked, closed = open_episode(coach=coach), open_episode(coach=coach)
    bridge = supply(booked, days_supplied=3)
    supply(closed, days_supplied=3)
    clinic.post(f"/api/v1/episodes/{booked['id']}/appointments", json={
        "kind": "transition_clinic", "starts_at": (ends_at(bridge) - dt.timedelta(hours=6)).isoformat()})
    clinic.post(f"/api/v1/episodes/{closed['id']}/close", json={"reason": "transferred"})
    with app.app_context():
        assert check_supply_endings(now=ends_at(bridge) - dt.timedelta(hours=12)) == 0


def _client(app, user) -> ApiClient:
    api = ApiClient(app.test_client())
    api.sign_in(user.username, user.password)
    return api


def test_the_whole_path_from_the_ed_kit_and_bridge_to_one_escalation_under_two_clocks(live_app):
    """An overdose patient gets a kit with training and a 7-day bridge in the ED and goes home;
    48 h before the bridge ends with nothing booked the caseload shows it; at 24 h two clock runs
    at once make exactly one task; booking a clinic visit before the end clears the reason."""
    nurse_user, coach_user = make_user(live_app, role=Role.ED_NURSE), make_user(live_app, role=Role.COACH)
    nurse, coach = _client(live_app, nurse_user), _client(live_app, coach_user)
    patient = nurse.post("/api/v1/patients", json={"given_name": "A", "family_name": "R",
                                                   "birth_date": "1990-01-01"}).get_json()
    episode = nurse.post("/api/v1/episodes", json={
        "patient_id": patient["id"], "level": "emergency_department", "presenting_reason": "overdose",
        "arrived_at": ago(hours=5), "coach_id": str(coach_user.id)}).get_json()
    assert nurse.post(f"/api/v1/episodes/{episode['id']}/naloxone",
                      json={**KIT, "distributed_at": ago(hours=2)}).status_code == 201
    bridge = nurse.post(f"/api/v1/episodes/{episode['id']}/medications", json={
        "id": str(uuid.uuid4()), "medication": "buprenorphine", "kind": "bridge_prescription",
        "source": "emergency_department", "started_on": today(), "days_supplied": 7}).get_json()
    discharged = nurse.post(f"/api/v1/episodes/{episode['id']}/discharge",
                            json={"discharged_at": ago(hours=1), "disposition": "home"}).get_json()
    assert discharged["flags"]["naloxone_given"] is True and discharged["flags"]["moud"] == "buprenorphine"

    with live_app.app_context():
        entry = next(e for e in caseload.caseload(coach_id=coach_user.id, now=ends_at(bridge) - dt.timedelta(hours=48))
                     if str(e["episode_id"]) == episode["id"])
        unit_of_work.commit()
    assert "moud_supply_ending" in entry["priority_reasons"]

    barrier = threading.Barrier(2)

    def clock_run(_):
        with live_app.app_context():
            barrier.wait()
            try:
                escalated = check_supply_endings(now=ends_at(bridge) - dt.timedelta(hours=24))
                unit_of_work.commit()
                return escalated
            except Exception:
                unit_of_work.roll_back(None)
                raise

    with ThreadPoolExecutor(2) as pool:
        assert sorted(pool.map(clock_run, range(2))) == [0, 1]
    with live_app.app_context():
        tasks = db.session.scalars(sa.select(Task).where(Task.episode_id == uuid.UUID(episode["id"]))).all()
        assert len(tasks) == 1 and tasks[0].assignee_id == coach_user.id

    assert coach.post(f"/api/v1/episodes/{episode['id']}/appointments", json={
        "kind": "transition_clinic", "starts_at": (ends_at(bridge) - dt.timedelta(hours=8)).isoformat()}
    ).status_code == 201
    with live_app.app_context():
        entry = next(e for e in caseload.caseload(coach_id=coach_user.id, now=ends_at(bridge) - dt.timedelta(hours=20))
                     if str(e["episode_id"]) == episode["id"])
        unit_of_work.commit()
    assert "moud_supply_ending" not in entry["priority_reasons"]
