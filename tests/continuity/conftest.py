"""Fixtures for continuity of treatment: the cases fixtures and a kit/supply helper."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from tests.cases.conftest import ago, clinic, nurse, open_episode, register  # noqa: F401 - shared fixtures
from tests.handoffs.conftest import program, send  # noqa: F401 - shared fixtures

KIT = {"recipient": "patient", "product": "nasal_4mg", "doses": 2, "training_given": True,
       "setting": "emergency_department"}


@pytest.fixture
def give_kit(nurse):  # noqa: F811 - the shared fixture, used here
    """`give_kit(episode, client=nurse, **fields)` → the kit's JSON."""

    def factory(episode, client=None, **fields):
        body = {**KIT, "distributed_at": ago(minutes=30), **fields}
        response = (client or nurse).post(f"/api/v1/episodes/{episode['id']}/naloxone", json=body)
        assert response.status_code == 201, response.get_json()
        return response.get_json()

    return factory


@pytest.fixture
def supply(nurse):  # noqa: F811 - the shared fixture, used here
    """`supply(episode, client=nurse, **fields)` → the supply's JSON (a 7-day ED bridge from today)."""

    def factory(episode, client=None, **fields):
        body = {"medication": "buprenorphine", "form": "sublingual film 8 mg", "kind": "bridge_prescription",
                "source": "emergency_department", "started_on": today(), "days_supplied": 7, **fields}
        response = (client or nurse).post(f"/api/v1/episodes/{episode['id']}/medications", json=body)
        assert response.status_code == 201, response.get_json()
        return response.get_json()

    return factory


def today(zone: str = "America/New_York", days: int = 0) -> str:
    """The date in `zone`, `days` from today."""
    return (dt.datetime.now(ZoneInfo(zone)).date() + dt.timedelta(days=days)).isoformat()
