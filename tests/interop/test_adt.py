"""The ADT feed: a sample stream (A04 → A03 → a later A04, with malformed, unknown-MRN and
repeated messages) drives discharge, the check-in cadence, the back-in-ED alert and the ACKs
exactly as the guide says; the interface account reaches nothing else."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
import sqlalchemy as sa

from backend.cases.models import Episode, Task, TaskStatus
from backend.extensions import db
from backend.interop import adt as adt_module
from backend.interop.models import Hl7Message, HospitalVisit
from backend.outreach.models import Message
from tests.console.conftest import console  # noqa: F401 - shared fixture
from tests.interop.conftest import ER7, adt

NOW = lambda: dt.datetime.now(dt.timezone.utc).replace(microsecond=0)  # noqa: E731


@pytest.fixture
def followed(open_episode, register, make_client, nurse):
    """A patient opted in to texts, in the ED since 8 hours ago, with a coach."""
    coach = make_client("coach")
    patient = register()
    assert nurse.put(f"/api/v1/patients/{patient['id']}/sms-consent",
                     json={"status": "opted_in", "method": "verbal"}).status_code == 200
    arrived = NOW() - dt.timedelta(hours=8)
    episode = open_episode(coach=coach, patient=patient, arrived_at=arrived.isoformat())
    return {"patient": patient, "episode": episode, "coach": coach, "arrived": arrived}


def _tasks(episode_id):
    return db.session.scalars(sa.select(Task).where(Task.episode_id == uuid.UUID(episode_id))
                              .order_by(Task.created_at)).all()


def _check_ins(patient_id):
    return db.session.scalar(sa.select(sa.func.count()).select_from(Message).where(
        Message.patient_id == uuid.UUID(patient_id), Message.kind == "check_in"))


def test_a_sample_stream_drives_discharge_the_cadence_and_the_back_in_ed_alert(ctx, followed, send_adt, clinic):
    mrn, episode_id = followed["patient"]["mrn"], followed["episode"]["id"]
    coach = followed["coach"]

    # 1. The ED registration of the visit the nurse already follows: recorded, no alert.
    body, control_id = adt("A04", mrn, visit="V1", admitted=followed["arrived"])
    response, ack = send_adt(body)
    assert response.status_code == 200 and response.mimetype == ER7
    assert ack["MSA"][1:3] == ["AA", control_id] and "ERR" not in ack
    assert ack["MSH"][8].startswith("ACK") and ack["MSH"][2] == "BRIDGELINE"
    assert [t.title for t in _tasks(episode_id)] == []
    entry = coach.get("/api/v1/caseload").get_json()["items"][0]
    assert "back_in_ed" not in entry["priority_reasons"]

    # 2. The discharge: recorded as the nurse would (time, disposition), and the check-ins start.
    assert _check_ins(followed["patient"]["id"]) == 0
    discharged = NOW() - dt.timedelta(hours=2)
    body, control_id = adt("A03", mrn, visit="V1", admitted=followed["arrived"], discharged=discharged,
                           disposition="01")
    response, ack = send_adt(body)
    first_ack = response.get_data()
    assert ack["MSA"][1:3] == ["AA", control_id]
    episode = coach.get(f"/api/v1/episodes/{episode_id}").get_json()
    assert dt.datetime.fromisoformat(episode["discharged_at"]) == discharged
    assert episode["disposition"] == "home"
    assert _check_ins(followed["patient"]["id"]) == 5  # days 1, 3, 7, 14, 30

    # 3. The same message again (same MSH-10): the same ACK, byte for byte, and nothing changes.
    messages_before = db.session.scalar(sa.select(sa.func.count()).select_from(Hl7Message))
    response, _ = send_adt(body)
    assert response.status_code == 200 and response.get_data() == first_ack
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Hl7Message)) == messages_before
    assert _check_ins(followed["patient"]["id"]) == 5

    # 4. Another A03 for the visit with another time: the first discharge stays; clinic staff check it.
    body, control_id = adt("A03", mrn, visit="V1", discharged=discharged - dt.timedelta(minutes=40),
                           disposition="07")
    response, ack = send_adt(body)
    assert ack["MSA"][1:3] == ["AA", control_id]
    episode = coach.get(f"/api/v1/episodes/{episode_id}").get_json()
    assert dt.datetime.fromisoformat(episode["discharged_at"]) == discharged and episode["disposition"] == "home"
    [review_task] = _tasks(episode_id)
    assert review_task.assignee_id is None and review_task.title == adt_module.DISCHARGE_DIFFERS_TASK
    # … and the same time again is a duplicate: nothing at all.
    response, ack = send_adt(adt("A03", mrn, visit="V1", discharged=discharged, disposition="01")[0])
    assert ack["MSA"][1] == "AA" and len(_tasks(episode_id)) == 1

    # 5. Unknown MRN: AA, nothing created, counted.
    from backend import metrics
    unknown = metrics.HL7_MESSAGES.labels("ADT^A04", "unknown_patient")
    counted = unknown._value.get()
    visits_before = db.session.scalar(sa.select(sa.func.count()).select_from(HospitalVisit))
    body, control_id = adt("A04", "NOT-ON-FILE", visit="V9", admitted=NOW())
    response, ack = send_adt(body)
    assert response.status_code == 200 and ack["MSA"][1:3] == ["AA", control_id]
    assert db.session.scalar(sa.select(sa.func.count()).select_from(HospitalVisit)) == visits_before
    assert unknown._value.get() == counted + 1

    # 6. Malformed: not HL7 at all, and an MSH without a control id — AR with the reason, HTTP 200.
    response, ack = send_adt("this is not a message", content_type="text/plain")
    assert response.status_code == 200 and response.mimetype == "text/plain"
    assert ack["MSA"][1] == "AR" and ack["MSA"][3] and ack["ERR"][4] == "E"
    response, ack = send_adt(b"\xff\xfe\x00garbage")
    assert response.status_code == 200 and ack["MSA"][1] == "AR"
    no_id = adt("A04", mrn)[0].replace("|MSG", "|XX", 1).split("\r")
    no_id[0] = "|".join(part if i != 9 else "" for i, part in enumerate(no_id[0].split("|")))
    response, ack = send_adt("\r".join(no_id))
    assert response.status_code == 200 and ack["MSA"][1] == "AR" and "MSH-10" in ack["MSA"][3]
    # A discharge without its time: AE, the reason in MSA-3 and ERR, nothing recorded.
    body, control_id = adt("A03", mrn, visit="V1")
    response, ack = send_adt(body)
    assert ack["MSA"][1:3] == ["AE", control_id] and "PV1-45" in ack["MSA"][3]
    assert ack["ERR"][3].startswith("101^")
    # Another message type: AR (unsupported), and an ADT event not acted upon: AA.
    response, ack = send_adt(adt("A04", mrn)[0].replace("ADT^A04^ADT_A01", "ORU^R01", 1))
    assert ack["MSA"][1] == "AR" and ack["ERR"][3].startswith("200^")
    response, ack = send_adt(adt("A08", mrn)[0])
    assert ack["MSA"][1] == "AA"

    # 7. A later A04: back in the ED. A task for the coach, the caseload's first reason, the review's list.
    returned = NOW() - dt.timedelta(minutes=30)
    body, control_id = adt("A04", mrn, visit="V2", admitted=returned, diagnosis="T40.1X1A")
    response, ack = send_adt(body)
    assert ack["MSA"][1:3] == ["AA", control_id]
    alert = _tasks(episode_id)[-1]
    assert alert.title == adt_module.BACK_IN_ED_TASK and alert.assignee_id == coach.user.id
    assert alert.status == TaskStatus.OPEN
    visit = db.session.scalar(sa.select(HospitalVisit).where(
        HospitalVisit.visit_number == "V2", HospitalVisit.patient_id == uuid.UUID(followed["patient"]["id"])))
    assert visit.back_in_ed and visit.overdose and visit.registered_at == returned
    entry = coach.get("/api/v1/caseload").get_json()["items"][0]
    assert entry["episode_id"] == episode_id and entry["priority_reasons"][0] == "back_in_ed"
    timeline = coach.get(f"/api/v1/episodes/{episode_id}/timeline").get_json()["items"]
    [back] = [item for item in timeline if item["kind"] == "back_in_ed"]
    assert back["detail"] == {"setting": "emergency_department", "overdose": True, "task_id": str(alert.id)}
    review = clinic.get("/api/v1/caseloads").get_json()["at_risk"]["back_in_ed"]
    assert review["count"] == 1 and review["items"][0]["episode_id"] == episode_id

    # The same visit again under another control id: a duplicate — AA, no second alert, counted.
    duplicates = metrics.HL7_MESSAGES.labels("ADT^A01", "duplicate")
    counted = duplicates._value.get()
    response, ack = send_adt(adt("A01", mrn, visit="V2", admitted=returned, patient_class="I")[0])
    assert ack["MSA"][1] == "AA" and len(_tasks(episode_id)) == 2
    assert duplicates._value.get() == counted + 1

    # The return visit's discharge ends the visit, not the episode (its discharge stays, no review task).
    response, ack = send_adt(adt("A03", mrn, visit="V2", discharged=NOW(), disposition="LWBS")[0])
    assert ack["MSA"][1] == "AA" and len(_tasks(episode_id)) == 2
    db.session.refresh(visit)
    assert visit.disposition == "eloped" and visit.discharged_at is not None
    episode = coach.get(f"/api/v1/episodes/{episode_id}").get_json()
    assert dt.datetime.fromisoformat(episode["discharged_at"]) == discharged

    # Reaching the patient clears the alert.
    assert coach.post(f"/api/v1/episodes/{episode_id}/encounters",
                      json={"kind": "phone", "outcome": "reached", "occurred_at": NOW().isoformat()}).status_code == 201
    entry = coach.get("/api/v1/caseload").get_json()["items"][0]
    assert "back_in_ed" not in entry["priority_reasons"]
    assert clinic.get("/api/v1/caseloads").get_json()["at_risk"]["back_in_ed"]["count"] == 0

    # Every message that touched the patient is in the audit trail, by the interface account.
    from backend.audit.models import AuditEvent
    events = db.session.scalars(sa.select(AuditEvent).where(AuditEvent.action == "hl7.receive")).all()
    assert events and {e.actor_role for e in events} == {"interface"}


def test_a_patient_whose_last_episode_closed_gets_a_new_episode_and_the_alert(ctx, followed, send_adt, make_client):
    episode_id, coach = followed["episode"]["id"], followed["coach"]
    assert coach.post(f"/api/v1/episodes/{episode_id}/close", json={"reason": "other"}).status_code == 200
    returned = NOW() - dt.timedelta(minutes=10)
    response, ack = send_adt(adt("A04", followed["patient"]["mrn"], visit="V7", admitted=returned)[0])
    assert ack["MSA"][1] == "AA"
    new = db.session.scalar(sa.select(Episode).where(Episode.patient_id == uuid.UUID(followed["patient"]["id"]),
                                                     Episode.status == "open"))
    assert new is not None and new.coach_id == coach.user.id and new.arrived_at == returned
    assert str(new.level) == "emergency_department" and new.presenting_reason == "other"
    [task] = _tasks(str(new.id))
    assert task.title == adt_module.BACK_IN_ED_TASK and task.assignee_id == coach.user.id
    assert coach.get("/api/v1/caseload").get_json()["items"][0]["priority_reasons"][0] == "back_in_ed"
    # Its A03 discharges the new episode (it is the visit in progress).
    discharged = NOW()
    response, ack = send_adt(adt("A03", followed["patient"]["mrn"], visit="V7", discharged=discharged,
                                 disposition="09")[0])
    assert ack["MSA"][1] == "AA"
    db.session.refresh(new)
    assert new.discharged_at == discharged and new.disposition == "admitted"


def test_without_a_coach_the_alert_is_for_clinic_staff(ctx, open_episode, send_adt, nurse):
    episode = open_episode(arrived_at=(NOW() - dt.timedelta(days=3)).isoformat())
    assert nurse.post(f"/api/v1/episodes/{episode['id']}/discharge",
                      json={"discharged_at": (NOW() - dt.timedelta(days=2)).isoformat()}).status_code == 200
    response, ack = send_adt(adt("A04", episode["patient"]["mrn"] if "patient" in episode else
                                 db.session.get(Episode, uuid.UUID(episode["id"])).patient.mrn,
                                 visit="R1", admitted=NOW())[0])
    assert ack["MSA"][1] == "AA"
    [task] = _tasks(episode["id"])
    assert task.assignee_id is None and task.title == adt_module.BACK_IN_ED_TASK


@pytest.mark.parametrize("code, disposition", [
    ("01", "home"), ("06", "home"), ("02", "transferred"), ("03", "transferred"), ("07", "against_medical_advice"),
    ("AMA", "against_medical_advice"), ("LWBS", "eloped"), ("09", "admitted"), ("20", "deceased"),
    ("30", "other"), ("", "unknown"), ("1", "home")])
def test_pv1_36_maps_to_the_dispositions_bridgeline_knows(code, disposition):
    assert adt_module.disposition_of(code) == disposition


def test_a_discharge_before_arrival_is_an_ae_and_changes_nothing(ctx, followed, send_adt):
    body, control_id = adt("A03", followed["patient"]["mrn"], visit="V1",
                           discharged=followed["arrived"] - dt.timedelta(hours=1))
    response, ack = send_adt(body)
    assert response.status_code == 200 and ack["MSA"][1:3] == ["AE", control_id]
    assert db.session.get(Episode, uuid.UUID(followed["episode"]["id"])).discharged_at is None
    # Resent, it gets the same AE (idempotent on MSH-10 whatever the outcome).
    assert send_adt(body)[0].get_data() == response.get_data()


def test_the_interface_account_is_refused_everywhere_else(app, interface):
    """Every rule but the feed's leaves the role out; every API route answers it 403 (the console
    takes no bearer token, and its sign-in refuses the account: below)."""
    refused = []
    for rule in app.url_map.iter_rules():
        if rule.endpoint.startswith("console."):
            from backend.auth.access import rule_for
            from backend.auth.models import Role
            for method in rule.methods - {"HEAD", "OPTIONS"}:
                with app.test_request_context(rule.rule, method=method):
                    allowed = rule_for(rule.endpoint, method)
                if allowed != "public" and Role.INTERFACE in allowed:
                    refused.append(f"{method} {rule.rule}: admits interface")
            continue
        if rule.endpoint.startswith(("api-docs", "static")) or rule.endpoint.endswith(".static") \
                or rule.rule.startswith("/_test"):
            continue
        from backend.auth.access import PUBLIC, rule_for
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            with app.test_request_context(rule.rule, method=method):
                allowed = rule_for(rule.endpoint, method)
            if allowed == PUBLIC:
                continue
            path = rule.rule
            for argument in rule.arguments:
                path = path.replace(f"<uuid:{argument}>", str(uuid.uuid4())).replace(f"<{argument}>", "x")
            path = path.replace("<any(unassigned, 'not-contacted', 'no-visit', 'supply-ending', 'back-in-ed'):which>",
                                "unassigned")
            if rule.endpoint == "interfaces.hl7v2":
                continue
            response = interface.request(method, path, json={} if method in ("POST", "PUT", "PATCH") else None)
            if response.status_code != 403:
                refused.append(f"{method} {rule.rule}: {response.status_code}")
    assert refused == []


def test_people_may_not_post_to_the_feed(make_client):
    for role in ("coach", "ed_nurse", "clinic_staff", "admin"):
        client = make_client(role)
        response = client.client.post("/api/v1/interfaces/hl7v2", data=adt("A04", "X")[0],
                                      headers={"Authorization": f"Bearer {client.token}", "Content-Type": ER7})
        assert response.status_code == 403, role


def test_the_console_refuses_the_interface_account(app):
    from backend.auth.models import Role
    from tests.support import make_user
    user = make_user(app, role=Role.INTERFACE)
    browser = app.test_client()
    page = browser.get("/console/sign-in")
    import re
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.get_data(as_text=True)).group(1)
    response = browser.post("/console/sign-in", data={"username": user.username, "password": user.password,
                                                      "csrf_token": token})
    assert response.status_code == 403
    assert "service account" in response.get_data(as_text=True)


def test_the_console_review_lists_the_patients_back_in_the_ed_with_an_all_n_page(app, ctx, console, open_episode,  # noqa: F811
                                                                                  nurse, send_adt, monkeypatch):
    import re

    from backend.auth.models import Role
    from backend.console import clinic as pages

    monkeypatch.setattr(pages, "DASHBOARD_LIST", 2)
    monkeypatch.setattr(pages, "LIST_PAGE", 2)
    came_back = []
    for hours in (5, 4, 3):  # returned 5, 4 and 3 hours ago: the earliest return waits longest
        episode = open_episode(arrived_at=(NOW() - dt.timedelta(days=3)).isoformat())
        assert nurse.post(f"/api/v1/episodes/{episode['id']}/discharge",
                          json={"discharged_at": (NOW() - dt.timedelta(days=2)).isoformat()}).status_code == 200
        mrn = db.session.get(Episode, uuid.UUID(episode["id"])).patient.mrn
        message = adt("A04", mrn, visit=f"B{hours}", admitted=NOW() - dt.timedelta(hours=hours))[0]
        assert send_adt(message)[1]["MSA"][1] == "AA"
        came_back.append(episode["id"])
    staff = console(Role.CLINIC_STAFF)
    page = staff.get("/console/review").get_data(as_text=True)
    queue = page.split('id="back-in-ed"')[1].split('id="not-contacted"')[0]
    assert "Back in the ED, not reached since (3)" in queue
    assert re.findall(r"/console/episodes/([0-9a-f-]{36})", queue.split("</table>")[0]) == came_back[:2]
    assert 'href="/console/review/back-in-ed">All 3' in queue
    seen, path = [], "/console/review/back-in-ed"
    while path:
        body = staff.get(path).get_data(as_text=True)
        assert "<h1>Back in the ED, not reached since</h1>" in body
        seen += re.findall(r"/console/episodes/([0-9a-f-]{36})", body)
        following = re.search(r'href="(/console/review/back-in-ed\?cursor=[^"]+)">Next page', body)
        path = following.group(1).replace("&amp;", "&") if following else None
    assert seen == came_back
    episode_page = staff.get(f"/console/episodes/{came_back[0]}").get_data(as_text=True)
    assert "Back at the hospital: registered in the ED" in episode_page


def test_an_ack_never_tells_whether_an_mrn_is_on_file(ctx, followed, send_adt):
    known = send_adt(adt("A04", followed["patient"]["mrn"], visit="K1", admitted=NOW())[0])[1]
    unknown = send_adt(adt("A04", "NOBODY-HERE", visit="K1", admitted=NOW())[0])[1]
    assert known["MSA"][1] == unknown["MSA"][1] == "AA" and known["MSA"][3:] == unknown["MSA"][3:] == [""]
    # A message missing what it must carry is refused before the patient is looked up.
    for mrn in (followed["patient"]["mrn"], "NOBODY-HERE"):
        assert send_adt(adt("A03", mrn, visit="K1")[0])[1]["MSA"][1] == "AE"


def test_an_interface_account_an_admin_creates_waits_for_a_second_person(make_client, clinic):
    admin = make_client("admin")
    made = admin.post("/api/v1/users", json={"username": "adt.engine", "display_name": "ADT feed",
                                             "role": "interface", "password": "a long interface passphrase"})
    assert made.status_code == 201 and made.get_json()["access"] == "pending"
    from tests.support import ApiClient
    engine = ApiClient(admin.client.application.test_client())
    engine.sign_in("adt.engine", "a long interface passphrase")
    refused = engine.client.post("/api/v1/interfaces/hl7v2", data=adt("A04", "X")[0],
                                 headers={"Authorization": f"Bearer {engine.token}", "Content-Type": ER7})
    assert refused.status_code == 403 and refused.get_json()["type"] == "access-pending"
    assert clinic.post(f"/api/v1/users/{made.get_json()['id']}/access-approval", json={}).status_code == 200
    accepted = engine.client.post("/api/v1/interfaces/hl7v2", data=adt("A04", "X")[0],
                                  headers={"Authorization": f"Bearer {engine.token}", "Content-Type": ER7})
    assert accepted.status_code == 200 and "MSA|AA|" in accepted.get_data(as_text=True)


@pytest.mark.parametrize("body", [
    "", "MSH", "MSH|", "MSH|^~\\&", "MSH|^~\\&|||||||ADT^A04|1", "MSH|^~\\&|||||||ADT^A04|2\rPID",
    "MSH|^~\\&|||||||ADT^A03|3\rPID|1||M1\rPV1|1|E" + "|" * 43 + "notadate",
    "MSH|^~\\&|||||||ADT^A04|4\rPID|1||^^^^MR\rPV1", "MSH|^~\\&|||||||ADT^A04|5\rZZZ|\x00\x01|~~~^^^&&&",
    "MSH|^~\\&|||||||ADT^A04|6\rPID|1||M2\rPV1|1|E" + "|" * 42 + "20261301999999",
    "\x0bMSH|^~\\&|||||||ADT^A04|7\r\x1c\r", "MSH^~\\&", "PID|1||M3", "\xff" * 100,
    "MSH|^~\\&|||||||ADT^A04|8\rDG1|1||" + "T40" * 300,
])
def test_a_malformed_message_gets_an_ack_and_http_200(ctx, send_adt, body):
    response, ack = send_adt(body)
    assert response.status_code == 200, response.get_data(as_text=True)
    assert ack["MSH"][0] == "MSH" and ack["MSA"][1] in ("AA", "AE", "AR")
