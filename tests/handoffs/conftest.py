"""Fixtures for handoffs: programs in the directory and a handoff-sending helper."""

from __future__ import annotations

import pytest

from tests.cases.conftest import clinic, nurse, open_episode, register  # noqa: F401 - shared fixtures

SUMMARY = {"moud": "buprenorphine", "naloxone_given": True, "plan": "Bup 16 mg daily"}


@pytest.fixture
def program(admin):
    """`program(external=…, **fields)` → a new program's JSON."""

    def factory(**fields):
        body = {"name": "Harbor OTP", "service": "otp", "accepting_patients": True, "external": True, **fields}
        response = admin.post("/api/v1/programs", json=body)
        assert response.status_code == 201, response.get_json()
        return response.get_json()

    return factory


@pytest.fixture
def send(nurse):  # noqa: F811 - the shared fixture, used here
    """`send(episode, client=None, **fields)` → the response of POST /handoffs."""

    def factory(episode, client=None, **fields):
        body = {"episode_id": episode["id"], "to_level": "transition_clinic", "method": "warm_in_person",
                "summary": SUMMARY, **fields}
        return (client or nurse).post("/api/v1/handoffs", json=body)

    return factory
