"""Fixtures for the cases tests: staff of each clinical role and records made through the API."""

from __future__ import annotations

import datetime as dt
import itertools

import pytest

from backend.auth.models import Role

_mrns = itertools.count(100000)


def ago(**kwargs) -> str:
    return (dt.datetime.now(dt.timezone.utc) - dt.timedelta(**kwargs)).isoformat()


def ahead(**kwargs) -> str:
    return (dt.datetime.now(dt.timezone.utc) + dt.timedelta(**kwargs)).isoformat()


@pytest.fixture
def nurse(make_client):
    return make_client(Role.ED_NURSE)


@pytest.fixture
def clinic(make_client):
    return make_client(Role.CLINIC_STAFF)


@pytest.fixture
def register(nurse):
    """`register(**fields)` → a new patient's JSON (registered by the `nurse`)."""

    def factory(client=None, **fields):
        body = {"mrn": f"MRN{next(_mrns)}", "given_name": "Alex", "family_name": "Rivera",
                "birth_date": "1990-04-02", "phone": "(617) 555-0134", **fields}
        response = (client or nurse).post("/api/v1/patients", json=body)
        assert response.status_code == 201, response.get_json()
        return response.get_json()

    return factory


@pytest.fixture
def open_episode(nurse, register):
    """`open_episode(coach=ApiClient|None, **fields)` → a new episode's JSON for a new patient."""

    def factory(coach=None, client=None, patient=None, **fields):
        patient = patient or register()
        body = {"patient_id": patient["id"], "level": "emergency_department", "presenting_reason": "overdose",
                "arrived_at": ago(hours=6), **fields}
        if coach is not None:
            body["coach_id"] = str(coach.user.id)
        response = (client or nurse).post("/api/v1/episodes", json=body)
        assert response.status_code == 201, response.get_json()
        return response.get_json()

    return factory
