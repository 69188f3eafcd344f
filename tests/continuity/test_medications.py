"""Medication supplies (product.md "Medication that never runs out"): coverage in the patient's
local dates, filled or not, and the episode's `moud` flag derived from the latest supply."""

from __future__ import annotations

import datetime as dt
import uuid
from zoneinfo import ZoneInfo

import pytest

from tests.cases.conftest import ago
from tests.continuity.conftest import today


def test_a_7_day_bridge_covers_seven_local_dates_and_sets_moud(nurse, open_episode, supply):
    episode = open_episode()
    bridge = supply(episode, started_on=today(), days_supplied=7)
    assert bridge["covered_until"] == today(days=6)
    assert bridge["timezone"] == "America/New_York" and bridge["fill_status"] == "unknown"
    end = dt.datetime.combine(dt.date.fromisoformat(today(days=7)), dt.time(), ZoneInfo("America/New_York"))
    assert dt.datetime.fromisoformat(bridge["ends_at"]) == end
    assert nurse.get(f"/api/v1/episodes/{episode['id']}").get_json()["flags"]["moud"] == "buprenorphine"


def test_coverage_ends_at_midnight_where_the_patient_lives(nurse, register, open_episode, supply):
    patient = register(timezone="America/Los_Angeles")
    episode = open_episode(patient=patient)
    bridge = supply(episode, started_on=today("America/Los_Angeles"), days_supplied=3)
    assert bridge["timezone"] == "America/Los_Angeles"
    end = dt.datetime.combine(dt.date.fromisoformat(today("America/Los_Angeles", 3)), dt.time(),
                              ZoneInfo("America/Los_Angeles"))
    assert dt.datetime.fromisoformat(bridge["ends_at"]) == end  # 03:00 in Boston


def test_moud_follows_the_latest_supply(nurse, open_episode, supply):
    episode = open_episode(arrived_at=ago(days=3))
    supply(episode, medication="methadone", kind="dispensed", started_on=today(days=-1), days_supplied=1)
    supply(episode, medication="buprenorphine", started_on=today(), days_supplied=7)
    supply(episode, medication="naltrexone", kind="administered", started_on=today(days=-2), days_supplied=1)
    assert nurse.get(f"/api/v1/episodes/{episode['id']}").get_json()["flags"]["moud"] == "buprenorphine"
    items = nurse.get(f"/api/v1/episodes/{episode['id']}/medications").get_json()["items"]
    assert [item["medication"] for item in items] == ["buprenorphine", "methadone", "naltrexone"]


@pytest.mark.parametrize("fields, field", [
    ({"days_supplied": 0}, "days_supplied"),
    ({"days_supplied": -3}, "days_supplied"),
    ({"days_supplied": 91}, "days_supplied"),
    ({"days_supplied": 7.5}, "days_supplied"),
    ({"medication": "heroin"}, "medication"),
    ({"kind": "sample"}, "kind"),
    ({"started_on": "2026-02-30"}, "started_on"),
])
def test_impossible_supplies_are_422_and_nothing_is_written(nurse, open_episode, fields, field):
    episode = open_episode()
    body = {"medication": "buprenorphine", "kind": "bridge_prescription", "source": "emergency_department",
            "started_on": today(), "days_supplied": 7, **fields}
    response = nurse.post(f"/api/v1/episodes/{episode['id']}/medications", json=body)
    assert response.status_code == 422 and field in response.get_json()["errors"], response.get_json()
    assert nurse.get(f"/api/v1/episodes/{episode['id']}/medications").get_json()["items"] == []
    assert nurse.get(f"/api/v1/episodes/{episode['id']}").get_json()["flags"]["moud"] == "none"


def test_a_supply_started_before_the_episode_began_is_422(nurse, open_episode):
    episode = open_episode(arrived_at=ago(hours=2))
    response = nurse.post(f"/api/v1/episodes/{episode['id']}/medications", json={
        "medication": "buprenorphine", "kind": "bridge_prescription", "source": "emergency_department",
        "started_on": today(days=-3), "days_supplied": 7})
    assert response.status_code == 422 and "started_on" in response.get_json()["errors"]


def test_a_retried_supply_with_the_same_id_is_logged_once(nurse, open_episode, supply):
    episode = open_episode()
    supply_id = str(uuid.uuid4())
    first = supply(episode, id=supply_id)
    again = nurse.post(f"/api/v1/episodes/{episode['id']}/medications", json={
        "id": supply_id, "medication": "buprenorphine", "form": "sublingual film 8 mg",
        "kind": "bridge_prescription", "source": "emergency_department", "started_on": today(), "days_supplied": 7})
    assert again.status_code == 200 and again.get_json() == first
    different = nurse.post(f"/api/v1/episodes/{episode['id']}/medications", json={
        "id": supply_id, "medication": "buprenorphine", "kind": "bridge_prescription",
        "source": "emergency_department", "started_on": today(), "days_supplied": 14})
    assert different.status_code == 409


def test_a_prescription_is_marked_filled_or_not_filled(coach, open_episode, supply):
    episode = open_episode(coach=coach)
    bridge = supply(episode)
    response = coach.post(f"/api/v1/medications/{bridge['id']}/fill", json={"status": "not_filled"})
    assert response.status_code == 200
    assert response.get_json()["fill_status"] == "not_filled" and response.get_json()["fill_status_at"]
    assert coach.post(f"/api/v1/medications/{bridge['id']}/fill", json={"status": "filled"}).get_json()[
        "fill_status"] == "filled"
    assert coach.post(f"/api/v1/medications/{bridge['id']}/fill", json={"status": "unknown"}).status_code == 422


def test_setting_moud_against_the_supplies_is_422(clinic, open_episode, supply):
    episode = open_episode()
    url = f"/api/v1/episodes/{episode['id']}"
    refused = clinic.patch(url, json={"flags": {"moud": "buprenorphine"}},
                           headers={"If-Match": clinic.get(url).headers["ETag"]})
    assert refused.status_code == 422 and "flags.moud" in refused.get_json()["errors"]
    supply(episode)
    agreeing = clinic.patch(url, json={"flags": {"moud": "buprenorphine"}},
                            headers={"If-Match": clinic.get(url).headers["ETag"]})
    assert agreeing.status_code == 200 and agreeing.get_json()["flags"]["moud"] == "buprenorphine"


@pytest.mark.parametrize("started_on", ["1999-12-31", "9999-12-31"])
def test_a_supply_starting_in_another_era_is_422_not_a_crash(nurse, open_episode, started_on):
    episode = open_episode()
    response = nurse.post(f"/api/v1/episodes/{episode['id']}/medications", json={
        "medication": "buprenorphine", "kind": "bridge_prescription", "source": "emergency_department",
        "started_on": started_on, "days_supplied": 90})
    assert response.status_code == 422 and "started_on" in response.get_json()["errors"]
