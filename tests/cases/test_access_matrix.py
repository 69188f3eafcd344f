"""Every Cases endpoint as each role — own record, someone else's, no token — answers exactly
as privacy.md says: 2xx in scope, 404 outside it, 403 for a role that may never act, 401
without a token. Admins are not clinicians: 403 on every clinical endpoint."""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from backend.auth.models import Role
from backend.extensions import db
from tests.cases.conftest import ago, ahead
from tests.support import ApiClient

C, N, S, A = Role.COACH, Role.ED_NURSE, Role.CLINIC_STAFF, Role.ADMIN
CLINICAL = {C, N, S}


@dataclasses.dataclass
class Call:
    method: str
    path: str
    allowed: set
    success: int = 200
    body: dict | None = None
    etag_of: str | None = None  # send If-Match with the ETag of this record's path
    success_for: dict = dataclasses.field(default_factory=dict)  # a role's own answer when allowed
    scoped: bool = True  # False: any record on file will do (no 404 for someone else's)


RECORD_CALLS = [
    Call("GET", "/api/v1/patients/{patient}", CLINICAL),
    Call("PATCH", "/api/v1/patients/{patient}", CLINICAL, body={"preferred_name": "Lex"},
         etag_of="/api/v1/patients/{patient}"),
    Call("PUT", "/api/v1/patients/{patient}/sms-consent", CLINICAL, body={"status": "opted_in", "method": "verbal"}),
    Call("GET", "/api/v1/episodes/{episode}", CLINICAL),
    Call("PATCH", "/api/v1/episodes/{episode}", CLINICAL, body={"flags": {"recent_overdose": True}},
         etag_of="/api/v1/episodes/{episode}"),
    Call("POST", "/api/v1/episodes/{episode}/discharge", CLINICAL, body={"discharged_at": ago(minutes=30)}),
    Call("PUT", "/api/v1/episodes/{episode}/coach", {N, S}, body={"coach_id": "{spare_coach}"}),
    Call("POST", "/api/v1/episodes/{episode}/close", {C, S}, body={"reason": "other"}),
    Call("GET", "/api/v1/episodes/{episode}/timeline", CLINICAL),
    Call("POST", "/api/v1/episodes/{episode}/encounters", {C, S}, 201,
         body={"kind": "phone", "occurred_at": ago(minutes=5)}),
    Call("GET", "/api/v1/episodes/{episode}/encounters", {C, S}),
    Call("POST", "/api/v1/episodes/{episode}/tasks", {C, S}, 201, body={"title": "Call", "due_at": ahead(days=1)}),
    Call("GET", "/api/v1/episodes/{episode}/tasks", {C, S}),
    Call("GET", "/api/v1/tasks/{task}", {C, S}),
    Call("PATCH", "/api/v1/tasks/{task}", {C, S}, body={"status": "done"}, etag_of="/api/v1/tasks/{task}"),
    Call("POST", "/api/v1/episodes/{episode}/appointments", {C, S, N}, 201,
         body={"kind": "transition_clinic", "starts_at": ahead(days=1)}),
    Call("GET", "/api/v1/episodes/{episode}/appointments", {C, S}),
    Call("GET", "/api/v1/appointments/{appointment}", {C, S}),
    Call("PATCH", "/api/v1/appointments/{appointment}", {C, S}, body={"status": "attended"},
         etag_of="/api/v1/appointments/{appointment}"),
    # Continuity of treatment: the naloxone log (the encounters' scope rule, every clinical role).
    Call("POST", "/api/v1/episodes/{episode}/naloxone", CLINICAL, 201,
         body={"distributed_at": ago(minutes=5), "recipient": "patient", "product": "nasal_4mg", "doses": 2,
               "training_given": True, "setting": "emergency_department"}),
    Call("POST", "/api/v1/episodes/{episode}/naloxone", CLINICAL, 201,
         body={"used_at": ago(minutes=5), "reported_by": "patient"}),
    Call("GET", "/api/v1/episodes/{episode}/naloxone", CLINICAL),
    Call("POST", "/api/v1/episodes/{episode}/medications", CLINICAL, 201,
         body={"medication": "buprenorphine", "kind": "bridge_prescription", "source": "emergency_department",
               "started_on": "{today}", "days_supplied": 7}),
    Call("GET", "/api/v1/episodes/{episode}/medications", CLINICAL),
    Call("POST", "/api/v1/medications/{medication}/fill", CLINICAL, body={"status": "filled"}),
    # A returning patient found by MRN gets a new episode from any ED nurse (no duplicate record).
    Call("POST", "/api/v1/episodes", {N, S}, 201, scoped=False,
         body={"patient_id": "{new_patient}", "level": "inpatient", "presenting_reason": "other",
               "arrived_at": ago(hours=1)}),
]

COLLECTION_CALLS = [
    Call("POST", "/api/v1/patients", {N, S}, 201,
         body={"given_name": "New", "family_name": "Person", "birth_date": "1985-01-01"}),
    Call("GET", "/api/v1/patients", CLINICAL),
    Call("GET", "/api/v1/episodes", CLINICAL),
    Call("GET", "/api/v1/tasks?assignee=me&status=open", {C, S}),
    # Clinic staff may read any coach's caseload but must say whose (`?coach_id=`).
    Call("GET", "/api/v1/caseload", {C, S}, success_for={S: 422}),
    Call("GET", "/api/v1/caseloads", {S}),
]


class World:
    """The caller, and for each of 'own' and 'other' an episode with its patient, task and
    appointment: 'own' inside the caller's scope, 'other' outside it (clinic staff see both)."""

    def __init__(self, app, make_client, role: Role | None):
        self.clinic = make_client(S)
        self.caller = make_client(role) if role else ApiClient(app.test_client())
        other_nurse, other_coach = make_client(N), make_client(C)
        self.spare_coach = make_client(C)
        nurse = self.caller if role == N else other_nurse
        self.records = {
            "own": self._episode(nurse, coach=self.caller if role == C else other_coach),
            "other": self._episode(other_nurse, coach=other_coach, beyond_hospital=True),
        }
        # A patient without an episode, registered by the caller if a nurse (a nurse sees those).
        for which, registrar in (("own", nurse), ("other", other_nurse)):
            self.records[which]["new_patient"] = registrar.post("/api/v1/patients", json={
                "given_name": "N", "family_name": "P", "birth_date": "1980-01-01"}).get_json()["id"]
        self.app = app

    def _episode(self, nurse, coach, beyond_hospital=False):
        patient = nurse.post("/api/v1/patients", json={"given_name": "A", "family_name": "R",
                                                       "birth_date": "1990-01-01"}).get_json()
        episode = nurse.post("/api/v1/episodes", json={
            "patient_id": patient["id"], "level": "emergency_department", "presenting_reason": "overdose",
            "arrived_at": ago(hours=2), "coach_id": str(coach.user.id)}).get_json()
        if beyond_hospital:  # moved on to the clinic (handoffs do this): out of other nurses' sight
            from backend.cases.models import Episode

            db.session.execute(sa.update(Episode).where(Episode.id == uuid.UUID(episode["id"]))
                               .values(level="transition_clinic"))
            db.session.commit()
        task = self.clinic.post(f"/api/v1/episodes/{episode['id']}/tasks",
                                json={"title": "t", "due_at": ahead(days=1)}).get_json()
        appointment = self.clinic.post(f"/api/v1/episodes/{episode['id']}/appointments",
                                       json={"kind": "other", "starts_at": ago(hours=1)}).get_json()
        medication = self.clinic.post(f"/api/v1/episodes/{episode['id']}/medications", json={
            "medication": "buprenorphine", "kind": "bridge_prescription", "source": "emergency_department",
            "started_on": _today(), "days_supplied": 7}).get_json()
        return {"patient": patient["id"], "episode": episode["id"], "task": task["id"],
                "appointment": appointment["id"], "medication": medication["id"], "today": _today()}

    def call(self, call: Call, which: str):
        values = {**self.records[which], "spare_coach": str(self.spare_coach.user.id)}
        fill = lambda text: text.format(**values) if isinstance(text, str) else text  # noqa: E731
        body = {k: ({kk: fill(vv) for kk, vv in v.items()} if isinstance(v, dict) else fill(v))
                for k, v in (call.body or {}).items()} if call.body is not None else None
        headers = {}
        if call.etag_of:
            headers["If-Match"] = self.clinic.get(fill(call.etag_of)).headers["ETag"]
        return self.caller.request(call.method, fill(call.path), json=body, headers=headers)


def _today() -> str:
    return dt.datetime.now(ZoneInfo("America/New_York")).date().isoformat()


ROLES = [C, N, S, A, None]


def _expected(call: Call, role, which: str) -> int:
    if role is None:
        return 401
    if role not in call.allowed:
        return 403
    if which == "other" and role != S and call.scoped:
        return 404
    return call.success_for.get(role, call.success)


@pytest.mark.parametrize("call", RECORD_CALLS, ids=lambda c: f"{c.method} {c.path}")
@pytest.mark.parametrize("role", ROLES, ids=lambda r: str(r) if r else "no-token")
def test_record_endpoints_answer_by_role_and_scope(app, ctx, make_client, call, role):
    world = World(app, make_client, role)
    for which in ("own", "other"):
        response = world.call(call, which)
        assert response.status_code == _expected(call, role, which), (which, response.get_json())


@pytest.mark.parametrize("call", COLLECTION_CALLS, ids=lambda c: f"{c.method} {c.path}")
@pytest.mark.parametrize("role", ROLES, ids=lambda r: str(r) if r else "no-token")
def test_collection_endpoints_answer_by_role(app, make_client, call, role):
    caller = make_client(role) if role else ApiClient(app.test_client())
    response = caller.request(call.method, call.path, json=call.body)
    assert response.status_code == _expected(call, role, "own"), response.get_json()


def test_every_cases_endpoint_is_in_the_matrix(app):
    covered = {(c.method, c.path.split("?")[0].replace("{", "<").replace("}", ">"))
               for c in RECORD_CALLS + COLLECTION_CALLS}
    normalise = {"<patient>": "<uuid:patient_id>", "<episode>": "<uuid:episode_id>", "<task>": "<uuid:task_id>",
                 "<appointment>": "<uuid:appointment_id>", "<medication>": "<uuid:supply_id>"}
    covered = {(m, _sub(p, normalise)) for m, p in covered}
    endpoints = {(method, rule.rule) for rule in app.url_map.iter_rules()
                 if rule.endpoint.split(".")[0] in ("cases", "activities", "caseload", "continuity")
                 for method in rule.methods - {"HEAD", "OPTIONS"}}
    assert endpoints - covered == set()


def _sub(path: str, mapping: dict) -> str:
    for old, new in mapping.items():
        path = path.replace(old, new)
    return path
