"""The clinic's console pages (console.md "Who does what": clinic staff and coach): the review
dashboard, the handoff queue, a coach's caseload and the clinic's parts of the episode page —
each one the same services, scopes and audit as the API, through Flask's test client."""

from __future__ import annotations

import datetime as dt
import itertools
import re
import uuid
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from backend.audit.models import AuditEvent
from backend.auth.models import Access, Role, User
from backend.cases.models import Appointment, Encounter, Episode, Task
from backend.continuity.models import MedicationSupply, NaloxoneEvent
from backend.extensions import db
from backend.handoffs.models import Handoff
from backend.outreach.models import (
    Message,
    MessageDirection,
    MessageKind,
    MessageStatus,
)
from tests.console.test_console import _Links
from tests.support import counted_statements

_mrns = itertools.count(700000)


def ago(**kwargs) -> str:
    return (dt.datetime.now(dt.UTC) - dt.timedelta(**kwargs)).isoformat()


def local(hours_ago: float) -> str:
    """A `datetime-local` value in the hospital's zone (the test config's default)."""
    from zoneinfo import ZoneInfo

    return (dt.datetime.now(ZoneInfo("America/New_York")) - dt.timedelta(hours=hours_ago)).strftime("%Y-%m-%dT%H:%M")


@pytest.fixture
def nurse_api(make_client):
    return make_client(Role.ED_NURSE)


@pytest.fixture
def case(nurse_api):
    """`case(name, discharged_hours_ago=…, coach=…, handoff=True)` → {episode_id, patient_id,
    handoff_id}: a patient brought in by an ED nurse through the API."""

    def factory(given: str = "Rosa", family: str = "Alvarado", *, discharged_hours_ago: float | None = 30,
                coach_id=None, handoff: bool = True) -> dict:
        patient = nurse_api.post("/api/v1/patients", json={
            "mrn": f"MRN{next(_mrns)}", "given_name": given, "family_name": family, "birth_date": "1990-04-02"})
        assert patient.status_code == 201, patient.get_json()
        body = {"patient_id": patient.get_json()["id"], "level": "emergency_department",
                "presenting_reason": "overdose", "arrived_at": ago(hours=(discharged_hours_ago or 0) + 6)}
        if coach_id:
            body["coach_id"] = str(coach_id)
        episode = nurse_api.post("/api/v1/episodes", json=body).get_json()
        made = {"episode_id": episode["id"], "patient_id": body["patient_id"], "handoff_id": None}
        if discharged_hours_ago is not None:
            assert nurse_api.post(f"/api/v1/episodes/{episode['id']}/discharge",
                                  json={"discharged_at": ago(hours=discharged_hours_ago)}).status_code == 200
        if handoff:
            sent = nurse_api.post("/api/v1/handoffs", json={
                "episode_id": episode["id"], "to_level": "transition_clinic", "method": "warm_in_person",
                "summary": {"moud": "buprenorphine", "naloxone_given": True}})
            assert sent.status_code == 201, sent.get_json()
            made["handoff_id"] = sent.get_json()["id"]
        return made

    return factory


def actions_of(app, user_id) -> list[str]:
    with app.app_context():
        return list(db.session.scalars(sa.select(AuditEvent.action).where(AuditEvent.actor_id == user_id)
                                       .order_by(AuditEvent.seq if hasattr(AuditEvent, "seq") else AuditEvent.id)))


def handoff_status(app, handoff_id) -> str:
    with app.app_context():
        return str(db.session.get(Handoff, uuid.UUID(handoff_id)).status)


def step_buttons(page: str, handoff_id: str) -> list[str]:
    return re.findall(rf'/console/handoffs/{handoff_id}/([a-z-]+)"', page)


# --- where each role starts ---------------------------------------------------------------

def test_clinic_staff_start_on_the_review_and_a_coach_on_their_caseload(console):
    clinic = console(Role.CLINIC_STAFF)
    landing = clinic.get("/console/", follow_redirects=True)
    assert "<h1>Review</h1>" in landing.get_data(as_text=True)
    coach = console(Role.COACH)
    assert "<h1>My caseload</h1>" in coach.get("/console/", follow_redirects=True).get_data(as_text=True)


@pytest.mark.parametrize("role", [Role.COACH, Role.ED_NURSE, Role.ADMIN])
def test_only_clinic_staff_open_the_review_and_the_handoff_queue(console, role):
    other = console(role)
    for path in ("/console/review", "/console/handoffs"):
        response = other.get(path)
        assert response.status_code == 403 and response.mimetype == "text/html", path


# --- the review dashboard -----------------------------------------------------------------

def test_the_review_shows_each_coachs_load_and_reaches_an_at_risk_patient_in_one_click(app, console, case):
    clinic = console(Role.CLINIC_STAFF)
    coach = console(Role.COACH)
    with app.app_context():
        db.session.get(User, coach.user.id).display_name = "Dana Coach"
        db.session.commit()
    lost = case("Rosa", "Alvarado", discharged_hours_ago=30, coach_id=coach.user.id)
    case("Ines", "Duarte", discharged_hours_ago=2, coach_id=coach.user.id, handoff=False)
    unassigned = case("Tomas", "Reyes", discharged_hours_ago=None, handoff=False)

    page = clinic.get("/console/review").get_data(as_text=True)
    at_risk = page.split('id="not-contacted"')[1].split("</table>")[0]
    assert f'href="/console/episodes/{lost["episode_id"]}">Rosa Alvarado</a>' in at_risk
    assert "Ines Duarte" not in at_risk  # discharged 2 h ago: not yet late
    assert f'href="/console/episodes/{unassigned["episode_id"]}">Tomas Reyes' in page.split('id="unassigned"')[1]
    # The coach's bar and the same numbers in the table beside it.
    chart = page.split("<svg")[1].split("</svg>")[0]
    assert "Dana Coach" in chart and re.search(r'class="bar" fill="[^"]+"', chart)
    assert re.search(rf'{coach.user.id}/caseload">Dana Coach</a></th>\s*<td>2</td>', page)
    assert 'href="/console/texts/review"><strong>0</strong> Texts needing review' in page
    assert "style=" not in page  # the CSP forbids inline styles
    assert "caseloads.read" in actions_of(app, clinic.user.id)  # as GET /api/v1/caseloads


def test_a_long_at_risk_list_shows_its_longest_waiting_and_the_rest_page_by_page(app, console, case, monkeypatch):
    from backend.console import clinic as pages

    monkeypatch.setattr(pages, "DASHBOARD_LIST", 2)
    monkeypatch.setattr(pages, "LIST_PAGE", 2)
    staff = console(Role.CLINIC_STAFF)
    late = [case(f"Late{i}", "Alvarado", discharged_hours_ago=30 + i, handoff=False) for i in range(5)]
    longest_first = [made["episode_id"] for made in reversed(late)]

    page = staff.get("/console/review").get_data(as_text=True)
    queue = page.split('id="not-contacted"')[1].split('id="no-visit"')[0]
    assert re.findall(r"/console/episodes/([0-9a-f-]{36})", queue.split("</table>")[0]) == longest_first[:2]
    assert "The 2 longest waiting of 5." in queue and 'href="/console/review/not-contacted">All 5' in queue

    seen, path = [], "/console/review/not-contacted"
    while path:
        listed = staff.get(path)
        assert listed.status_code == 200 and listed.headers["Cache-Control"] == "no-store"
        body = listed.get_data(as_text=True)
        assert "<h1>Not contacted within 24 h of discharge</h1>" in body
        seen += re.findall(r"/console/episodes/([0-9a-f-]{36})", body)
        following = re.search(r'href="(/console/review/not-contacted\?cursor=[^"]+)">Next page', body)
        path = following.group(1).replace("&amp;", "&") if following else None
    assert seen == longest_first
    assert staff.get("/console/review/not-contacted?cursor=forged").status_code == 422
    with app.app_context():
        reads = db.session.scalars(sa.select(AuditEvent).where(
            AuditEvent.actor_id == staff.user.id, AuditEvent.action == "caseloads.read")).all()
    assert sum(event.details.get("list") == "not_contacted_24h_after_discharge" for event in reads) == 3
    assert console(Role.COACH).get("/console/review/unassigned").status_code == 403


def test_the_review_lists_a_patient_whose_medication_runs_out_with_no_visit_booked(app, console, case, nurse_api):
    staff = console(Role.CLINIC_STAFF)
    running_out = case("Paz", "Ibarra", discharged_hours_ago=2, handoff=False)
    today = dt.datetime.now(ZoneInfo("America/New_York")).date().isoformat()
    supply = nurse_api.post(f"/api/v1/episodes/{running_out['episode_id']}/medications", json={
        "medication": "buprenorphine", "kind": "bridge_prescription", "source": "emergency_department",
        "started_on": today, "days_supplied": 1})
    assert supply.status_code == 201, supply.get_json()
    page = staff.get("/console/review").get_data(as_text=True)
    queue = page.split('id="supply-ending"')[1].split("</table>")[0]
    assert "Medication running out, no visit booked (1)" in page
    assert f'href="/console/episodes/{running_out["episode_id"]}">Paz Ibarra</a>' in queue
    whole = staff.get("/console/review/supply-ending").get_data(as_text=True)
    assert "<h1>Medication running out, no visit booked</h1>" in whole and "Paz Ibarra" in whole


def test_the_medication_list_pages_in_the_order_the_supplies_end(app, console, case, nurse_api, monkeypatch):
    from backend.console import clinic as pages

    monkeypatch.setattr(pages, "LIST_PAGE", 1)
    staff = console(Role.CLINIC_STAFF)
    today = dt.datetime.now(ZoneInfo("America/New_York")).date().isoformat()
    made = []
    for given, days in (("Later", 2), ("Sooner", 1)):
        made.append(case(given, "Ibarra", discharged_hours_ago=2, handoff=False))
        assert nurse_api.post(f"/api/v1/episodes/{made[-1]['episode_id']}/medications", json={
            "medication": "buprenorphine", "kind": "bridge_prescription", "source": "emergency_department",
            "started_on": today, "days_supplied": days}).status_code == 201
    first = staff.get("/console/review/supply-ending").get_data(as_text=True)
    following = re.search(r'href="(/console/review/supply-ending\?cursor=[^"]+)">Next page', first)
    second = staff.get(following.group(1).replace("&amp;", "&"))
    assert second.status_code == 200
    assert "Sooner Ibarra" in first and "Later Ibarra" in second.get_data(as_text=True)


def test_the_review_counts_texts_needing_review_and_links_to_their_page(app, console, case):
    made = case(handoff=False)
    with app.app_context():
        for status in (MessageStatus.UNKNOWN, MessageStatus.FAILED, MessageStatus.DELIVERED):
            db.session.add(Message(patient_id=uuid.UUID(made["patient_id"]), direction=MessageDirection.OUTBOUND,
                                   kind=MessageKind.STAFF, body="See you soon", status=status))
        db.session.commit()
    page = console(Role.CLINIC_STAFF).get("/console/review").get_data(as_text=True)
    assert 'href="/console/texts/review"><strong>2</strong> Texts needing review' in page


def test_the_review_lists_open_handoffs_and_accepts_one_in_one_click(app, console, case):
    clinic = console(Role.CLINIC_STAFF)
    made = case()
    page = clinic.get("/console/review").get_data(as_text=True)
    assert step_buttons(page, made["handoff_id"]) == ["accept"]
    response = clinic.post(f"/console/handoffs/{made['handoff_id']}/accept", {"back": "review"})
    assert response.status_code == 302 and response.headers["Location"] == "/console/review"
    assert handoff_status(app, made["handoff_id"]) == "accepted"
    assert "Handoff: Accept recorded." in clinic.get("/console/review").get_data(as_text=True)


def test_the_review_shows_the_most_urgent_handoffs_first_and_counts_every_open_one(app, console, case):
    from backend.console.clinic import DASHBOARD_HANDOFFS

    clinic = console(Role.CLINIC_STAFF)
    made = [case(f"Rosa{i}", discharged_hours_ago=1) for i in range(DASHBOARD_HANDOFFS + 2)]
    late = made[-1]["handoff_id"]
    with app.app_context():
        db.session.execute(sa.update(Handoff).where(Handoff.id == uuid.UUID(late))
                           .values(accept_by=dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)))
        db.session.commit()
    page = clinic.get("/console/review").get_data(as_text=True)
    listed = re.findall(r"/console/handoffs/([0-9a-f-]{36})/accept", page)
    assert len(listed) == DASHBOARD_HANDOFFS and listed[0] == late
    assert f"{DASHBOARD_HANDOFFS + 2} waiting for an answer, 0 accepted and waiting for the patient, 1 overdue" in page


def test_clinic_staff_approve_a_pending_clinical_role_from_the_review(app, console, make_client):
    admin = make_client(Role.ADMIN)
    created = admin.post("/api/v1/users", json={"username": "new.coach", "display_name": "New Coach",
                                                "role": "coach", "password": "a long enough passphrase"})
    assert created.status_code == 201, created.get_json()
    grantee = created.get_json()["id"]
    clinic = console(Role.CLINIC_STAFF)
    page = clinic.get("/console/review").get_data(as_text=True)
    assert f'action="/console/users/{grantee}/access-approval"' in page and "Approve access" in page

    assert clinic.post(f"/console/users/{grantee}/access-approval", {"role": "coach"}, csrf=False).status_code == 400
    with app.app_context():
        assert db.session.get(User, uuid.UUID(grantee)).access == Access.PENDING  # nothing changed

    response = clinic.post(f"/console/users/{grantee}/access-approval", {"role": "coach"})
    assert response.status_code == 302
    with app.app_context():
        approved = db.session.get(User, uuid.UUID(grantee))
        assert approved.access == Access.ACTIVE and approved.access_approved_by_id == clinic.user.id
    assert "user.access_approved" in actions_of(app, clinic.user.id)
    again = clinic.post(f"/console/users/{grantee}/access-approval", {"role": "coach"})
    assert again.status_code == 409  # no longer waiting: the service's refusal, shown on the page


def test_a_pending_grantee_cannot_approve_their_own_access(app, console, make_client):
    admin = make_client(Role.ADMIN)
    created = admin.post("/api/v1/users", json={"username": "new.staff", "display_name": "New Staff",
                                                "role": "clinic_staff", "password": "a long enough passphrase"})
    grantee = created.get_json()["id"]
    from tests.console.conftest import ConsoleClient

    browser = ConsoleClient(app.test_client())
    assert browser.sign_in("new.staff", "a long enough passphrase").status_code == 302
    browser.get("/console/sign-in")  # a page with a token of the new session
    assert browser.get("/console/review").status_code == 403
    refused = browser.post(f"/console/users/{grantee}/access-approval", {"role": "clinic_staff"})
    assert refused.status_code == 403
    with app.app_context():
        assert db.session.get(User, uuid.UUID(grantee)).access == Access.PENDING


# --- the handoff queue --------------------------------------------------------------------

def test_the_queue_offers_only_the_steps_the_handoff_may_take(app, console, case):
    clinic = console(Role.CLINIC_STAFF)
    made = case()
    page = clinic.get("/console/handoffs").get_data(as_text=True)
    assert step_buttons(page, made["handoff_id"]) == ["accept", "decline"]
    assert clinic.post(f"/console/handoffs/{made['handoff_id']}/accept").status_code == 302
    page = clinic.get("/console/handoffs").get_data(as_text=True)
    assert step_buttons(page, made["handoff_id"]) == ["complete", "no-show"]
    assert clinic.post(f"/console/handoffs/{made['handoff_id']}/complete", {"arrived_at": ""}).status_code == 302
    assert handoff_status(app, made["handoff_id"]) == "completed"
    with app.app_context():
        assert str(db.session.get(Episode, uuid.UUID(made["episode_id"])).level) == "transition_clinic"
    assert made["handoff_id"] not in clinic.get("/console/handoffs").get_data(as_text=True)  # closed: off the queue
    assert {"handoff.list", "handoff.accept", "handoff.complete"} <= set(actions_of(app, clinic.user.id))


def test_the_queue_comes_a_page_at_a_time_and_a_step_taken_on_a_later_page_comes_back_to_it(
        app, console, case, monkeypatch):
    from backend.console import clinic as views

    monkeypatch.setattr(views, "QUEUE_PAGE", 2)
    clinic = console(Role.CLINIC_STAFF)
    made = [case(f"Rosa{i}", discharged_hours_ago=1)["handoff_id"] for i in range(5)]
    late = made[-1]
    with app.app_context():
        db.session.execute(sa.update(Handoff).where(Handoff.id == uuid.UUID(late))
                           .values(accept_by=dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)))
        db.session.commit()
    listed = []
    for number in (1, 2, 3):
        page = clinic.get(f"/console/handoffs?page={number}").get_data(as_text=True)
        listed.append(re.findall(r"/console/handoffs/([0-9a-f-]{36})/accept", page))
        assert f"of 5 shown (page {number} of 3)" in page
        assert ("Next page" in page) == (number < 3) and ("Previous page" in page) == (number > 1)
    assert [len(ids) for ids in listed] == [2, 2, 1] and listed[0][0] == late  # overdue first
    assert sorted(sum(listed, [])) == sorted(made)  # each once
    assert re.findall(r"/console/handoffs/([0-9a-f-]{36})/accept", clinic.get("/console/handoffs?page=9")
                      .get_data(as_text=True)) == listed[2]  # past the end: the last page

    second = listed[1][0]
    refused = clinic.post(f"/console/handoffs/{second}/decline", {"reason": " ", "page": "2"})
    assert refused.status_code == 422 and f'id="reason-{second}-error"' in refused.get_data(as_text=True)
    accepted = clinic.post(f"/console/handoffs/{second}/accept", {"page": "2"})
    assert accepted.status_code == 302 and accepted.headers["Location"].endswith("/console/handoffs?page=2")
    first_page = clinic.get("/console/handoffs").get_data(as_text=True)
    assert second not in first_page and "None on this page." in first_page  # accepted ones are further on


def test_declining_needs_a_reason_shown_by_its_field_and_changes_nothing_without_it(app, console, case):
    clinic = console(Role.CLINIC_STAFF)
    made = case()
    response = clinic.post(f"/console/handoffs/{made['handoff_id']}/decline", {"reason": "  "})
    assert response.status_code == 422
    assert re.search(rf'id="reason-{made["handoff_id"]}-error">[^<]+', response.get_data(as_text=True))
    assert handoff_status(app, made["handoff_id"]) == "sent"
    declined = clinic.post(f"/console/handoffs/{made['handoff_id']}/decline", {"reason": "No capacity this week"})
    assert declined.status_code == 302
    with app.app_context():
        handoff = db.session.get(Handoff, uuid.UUID(made["handoff_id"]))
        assert handoff.status == "declined" and handoff.events[-1].note == "No capacity this week"


def test_a_step_the_status_does_not_allow_is_refused_on_the_page_with_nothing_changed(app, console, case):
    clinic = console(Role.CLINIC_STAFF)
    made = case()
    response = clinic.post(f"/console/handoffs/{made['handoff_id']}/no-show")
    assert response.status_code == 409
    assert "cannot be recorded as a no-show" in response.get_data(as_text=True)
    assert handoff_status(app, made["handoff_id"]) == "sent"


def test_a_handoff_step_without_the_csrf_token_changes_nothing(app, console, case):
    clinic = console(Role.CLINIC_STAFF)
    made = case()
    assert clinic.post(f"/console/handoffs/{made['handoff_id']}/accept", csrf=False).status_code == 400
    assert handoff_status(app, made["handoff_id"]) == "sent"


def test_an_unknown_handoff_is_a_404_page_and_an_audited_refusal(app, console):
    clinic = console(Role.CLINIC_STAFF)
    missing = uuid.uuid4()
    response = clinic.post(f"/console/handoffs/{missing}/accept")
    assert response.status_code == 404 and response.mimetype == "text/html"
    with app.app_context():
        denied = db.session.scalars(sa.select(AuditEvent.resource_id).where(
            AuditEvent.action == "access.denied", AuditEvent.actor_id == clinic.user.id)).all()
    assert [str(r) for r in denied] == [str(missing)]


# --- the episode page ---------------------------------------------------------------------

def test_clinic_staff_assign_a_coach_on_the_episode_page_through_the_same_service(app, console, case):
    clinic = console(Role.CLINIC_STAFF)
    coach = console(Role.COACH)
    made = case()
    path = f"/console/episodes/{made['episode_id']}"
    page = clinic.get(path).get_data(as_text=True)
    assert '<label for="coach_id">Coach</label>' in page and f'value="{coach.user.id}"' in page
    assert "Handoff to transition clinic sent" in page  # the timeline
    response = clinic.post(path + "/coach", {"coach_id": str(coach.user.id)})
    assert response.status_code == 302
    with app.app_context():
        assert db.session.get(Episode, uuid.UUID(made["episode_id"])).coach_id == coach.user.id
    assert {"episode.read", "episode.timeline", "task.list", "appointment.list",
            "episode.assign_coach"} <= set(actions_of(app, clinic.user.id))
    assert "Coach assigned: Test Person" in clinic.get(path).get_data(as_text=True)
    assert coach.get(path).status_code == 200  # now in the coach's scope


def test_assigning_someone_who_is_not_a_coach_is_refused_by_the_coach_field(app, console, case):
    clinic = console(Role.CLINIC_STAFF)
    made = case()
    path = f"/console/episodes/{made['episode_id']}"
    clinic.get(path)
    response = clinic.post(path + "/coach", {"coach_id": str(clinic.user.id)})
    assert response.status_code == 422
    body = response.get_data(as_text=True)
    assert re.search(r'id="coach_id-error">[^<]*Not an active coach', body)
    assert clinic.post(path + "/coach", {"coach_id": ""}).status_code == 422
    with app.app_context():
        assert db.session.get(Episode, uuid.UUID(made["episode_id"])).coach_id is None


def test_a_coach_logs_a_contact_and_a_time_in_the_future_comes_back_with_the_note_kept(app, console, case):
    coach = console(Role.COACH)
    made = case(coach_id=coach.user.id)
    path = f"/console/episodes/{made['episode_id']}"
    page = coach.get(path).get_data(as_text=True)
    assert 'id="coach_id"' not in page  # coaches do not assign coaches (PUT …/coach is not theirs)
    refused = coach.post(path + "/encounters", {"kind": "phone", "outcome": "", "occurred_at": local(-3),
                                                "contact_note": "Talked about the clinic visit"})
    assert refused.status_code == 422
    body = refused.get_data(as_text=True)
    assert re.search(r'id="occurred_at-error">[^<]+', body) and "Talked about the clinic visit</textarea>" in body
    logged = coach.post(path + "/encounters", {"kind": "attempt", "outcome": "no_answer", "occurred_at": local(1),
                                               "contact_note": ""})
    assert logged.status_code == 302
    with app.app_context():
        encounters = db.session.scalars(sa.select(Encounter).where(
            Encounter.episode_id == uuid.UUID(made["episode_id"]))).all()
    assert [(e.kind, e.outcome, e.author_id) for e in encounters] == [("attempt", "no_answer", coach.user.id)]
    assert "Attempt (not reached): no answer" in coach.get(path).get_data(as_text=True)


def test_a_task_added_on_the_episode_page_goes_to_the_coach_and_a_blank_title_is_kept_out(app, console, case):
    coach = console(Role.COACH)
    clinic = console(Role.CLINIC_STAFF)
    made = case(coach_id=coach.user.id)
    path = f"/console/episodes/{made['episode_id']}"
    clinic.get(path)
    refused = clinic.post(path + "/tasks", {"task_title": "", "task_due_at": local(-24)})
    assert refused.status_code == 422
    body = refused.get_data(as_text=True)
    assert re.search(r'id="task_title-error">[^<]+', body) and f'value="{local(-24)}"' in body
    added = clinic.post(path + "/tasks", {"task_title": "Call about the pharmacy", "task_due_at": local(-24)})
    assert added.status_code == 302
    with app.app_context():
        tasks = db.session.scalars(sa.select(Task).where(Task.episode_id == uuid.UUID(made["episode_id"]))).all()
    assert [(t.title, t.assignee_id, t.created_by_id) for t in tasks] == [
        ("Call about the pharmacy", coach.user.id, clinic.user.id)]
    assert "Call about the pharmacy" in coach.get(path).get_data(as_text=True)


def test_a_visit_booked_on_the_episode_page_is_the_apis_appointment_and_an_unknown_program_is_refused(
        app, console, case):
    clinic = console(Role.CLINIC_STAFF)
    made = case()
    path = f"/console/episodes/{made['episode_id']}"
    page = clinic.get(path).get_data(as_text=True)
    assert 'id="appointment_kind"' in page and 'id="task_title"' in page
    unknown = clinic.post(path + "/appointments", {
        "appointment_kind": "program_intake", "appointment_starts_at": local(-48),
        "appointment_program_id": str(uuid.uuid4()), "appointment_location": ""})
    assert unknown.status_code == 422
    assert re.search(r'id="appointment_program_id-error">[^<]+', unknown.get_data(as_text=True))
    booked = clinic.post(path + "/appointments", {
        "appointment_kind": "transition_clinic", "appointment_starts_at": local(-48),
        "appointment_program_id": "", "appointment_location": "Room 4"})
    assert booked.status_code == 302
    with app.app_context():
        visits = db.session.scalars(sa.select(Appointment).where(
            Appointment.episode_id == uuid.UUID(made["episode_id"]))).all()
    assert [(v.kind, v.location, str(v.status)) for v in visits] == [("transition_clinic", "Room 4", "scheduled")]
    assert "Transition clinic visit" in clinic.get(path).get_data(as_text=True)


def test_an_ed_nurse_gets_no_task_or_appointment_form_and_their_post_is_refused(app, console, case):
    nurse = console(Role.ED_NURSE)
    made = case()
    path = f"/console/episodes/{made['episode_id']}"
    page = nurse.get(path).get_data(as_text=True)
    assert 'id="task_title"' not in page and 'id="appointment_kind"' not in page
    assert nurse.post(path + "/tasks", {"task_title": "x", "task_due_at": local(-1)}).status_code == 403
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Task)) == 0


def test_closing_needs_a_reason_and_closes_through_the_same_service(app, console, case):
    clinic = console(Role.CLINIC_STAFF)
    made = case()
    path = f"/console/episodes/{made['episode_id']}"
    clinic.get(path)
    missing = clinic.post(path + "/close", {"reason": "", "close_note": "Moved to Ohio"})
    assert missing.status_code == 422
    assert re.search(r'id="reason-error">[^<]+', missing.get_data(as_text=True))
    assert 'value="Moved to Ohio"' in missing.get_data(as_text=True)
    assert clinic.post(path + "/close", {"reason": "moved_away", "close_note": "Moved to Ohio"}).status_code == 302
    with app.app_context():
        episode = db.session.get(Episode, uuid.UUID(made["episode_id"]))
        assert episode.status == "closed" and episode.close_reason == "moved_away"
    assert handoff_status(app, made["handoff_id"]) == "cancelled"
    page = clinic.get(path).get_data(as_text=True)
    assert "Moved away" in page and "Close episode" not in page and "Assign coach" not in page


def test_an_ed_nurse_sees_the_timeline_but_not_the_coachs_work_or_the_close_form(console, case):
    from tests.console.test_console import journey

    nurse = console(Role.ED_NURSE)
    path = journey(nurse)
    page = nurse.get(path).get_data(as_text=True)
    assert "Timeline" in page and "Handoff to transition clinic sent" in page
    assert "Assign coach" in page  # PUT /episodes/{id}/coach is an ED nurse's too
    assert "Log contact" not in page and "Close episode" not in page and 'id="tasks-heading"' not in page
    assert nurse.post(path + "/close", {"reason": "other"}).status_code == 403


# --- a coach's caseload -------------------------------------------------------------------

def test_a_coach_sees_their_caseload_most_urgent_first_with_links_to_the_episodes(app, console, case):
    coach = console(Role.COACH)
    recent = case("Ines", "Duarte", discharged_hours_ago=2, coach_id=coach.user.id, handoff=False)
    lost = case("Rosa", "Alvarado", discharged_hours_ago=30, coach_id=coach.user.id, handoff=False)
    case("Other", "Patient", coach_id=None, handoff=False)
    page = coach.get("/console/caseload").get_data(as_text=True)
    order = re.findall(r'href="/console/episodes/([0-9a-f-]+)"', page.split("<tbody>")[1])
    assert order == [lost["episode_id"], recent["episode_id"]]
    assert "Not contacted since discharge" in page and "Other Patient" not in page
    assert "caseload.read" in actions_of(app, coach.user.id)
    assert coach.get(f"/console/coaches/{coach.user.id}/caseload").status_code == 403  # clinic staff's page


def test_clinic_staff_open_a_coachs_caseload_from_the_review(console, case):
    clinic = console(Role.CLINIC_STAFF)
    coach = console(Role.COACH)
    case("Rosa", "Alvarado", coach_id=coach.user.id, handoff=False)
    page = clinic.get(f"/console/coaches/{coach.user.id}/caseload").get_data(as_text=True)
    assert "Caseload of Test Person" in page and "Rosa Alvarado" in page
    assert clinic.get(f"/console/coaches/{clinic.user.id}/caseload").status_code == 404  # not a coach


# --- bounded pages, no patient data in URLs -----------------------------------------------

def _statements(app, browser, path: str) -> int:
    with app.app_context():
        engine = db.engine
    with counted_statements(engine) as statements:
        assert browser.get(path).status_code == 200
    return len(statements)


def test_the_clinic_pages_query_counts_do_not_grow_with_the_patients(app, console, case):
    clinic = console(Role.CLINIC_STAFF)
    coach = console(Role.COACH)
    first = case(coach_id=coach.user.id)
    pages = ("/console/review", "/console/handoffs", f"/console/coaches/{coach.user.id}/caseload")
    before = [_statements(app, clinic, path) for path in pages]
    episode_before = _statements(app, clinic, f"/console/episodes/{first['episode_id']}")
    for n in range(6):
        made = case(f"Name{n}", "Family", coach_id=coach.user.id if n % 2 else None)
        clinic.post(f"/console/episodes/{made['episode_id']}/encounters",
                    {"kind": "phone", "outcome": "", "occurred_at": local(1), "contact_note": ""})
    clinic.post(f"/console/episodes/{first['episode_id']}/encounters",
                {"kind": "phone", "outcome": "", "occurred_at": local(1), "contact_note": ""})
    after = [_statements(app, clinic, path) for path in pages]
    assert after == before
    assert _statements(app, clinic, f"/console/episodes/{first['episode_id']}") == episode_before


def test_no_patient_data_in_any_link_or_form_action_of_the_clinic_pages(console, case):
    clinic = console(Role.CLINIC_STAFF)
    coach = console(Role.COACH)
    made = case("Rosa", "Alvarado", coach_id=coach.user.id)
    for path in ("/console/review", "/console/handoffs", f"/console/episodes/{made['episode_id']}",
                 f"/console/coaches/{coach.user.id}/caseload"):
        links = _Links()
        links.feed(clinic.get(path).get_data(as_text=True))
        assert links.urls and not any("Rosa" in url or "Alvarado" in url or "MRN" in url for url in links.urls)


# --- naloxone and medication on the episode page -------------------------------------------

def test_an_ed_nurse_records_a_naloxone_kit_on_the_episode_page_and_the_flag_follows_the_log(app, console, case):
    nurse = console(Role.ED_NURSE)
    made = case(discharged_hours_ago=None, handoff=False)
    path = f"/console/episodes/{made['episode_id']}"
    page = nurse.get(path).get_data(as_text=True)
    assert "No kit given to the patient recorded" in page and 'id="kit_given_at"' in page
    kit = {"kit_given_at": local(1), "kit_recipient": "patient", "kit_product": "nasal_4mg", "kit_doses": "0",
           "kit_setting": "emergency_department", "kit_training": "yes"}
    refused = nurse.post(path + "/naloxone", kit)
    assert refused.status_code == 422
    assert re.search(r'id="kit_doses-error">[^<]+', refused.get_data(as_text=True))
    recorded = nurse.post(path + "/naloxone", {**kit, "kit_doses": "2"})
    assert recorded.status_code == 302
    with app.app_context():
        log = db.session.scalars(sa.select(NaloxoneEvent)).all()
    assert [(str(e.kind), e.recipient, e.doses, e.training_given, e.recorded_by_id) for e in log] == [
        ("given", "patient", 2, True, nurse.user.id)]
    assert "Kit given to the patient" in nurse.get(path).get_data(as_text=True)


def test_a_medication_supply_recorded_on_the_episode_page_is_the_apis_and_90_days_is_the_most(app, console, case):
    staff = console(Role.CLINIC_STAFF)
    made = case()
    path = f"/console/episodes/{made['episode_id']}"
    staff.get(path)
    today = dt.datetime.now(ZoneInfo("America/New_York")).date().isoformat()
    supply = {"supply_medication": "buprenorphine", "supply_form": "sublingual film 8 mg",
              "supply_kind": "bridge_prescription", "supply_source": "emergency_department",
              "supply_started_on": today, "supply_days": "120"}
    refused = staff.post(path + "/medications", supply)
    assert refused.status_code == 422
    body = refused.get_data(as_text=True)
    assert re.search(r'id="supply_days-error">[^<]+', body) and 'value="sublingual film 8 mg"' in body
    assert staff.post(path + "/medications", {**supply, "supply_days": "7"}).status_code == 302
    with app.app_context():
        supplies = db.session.scalars(sa.select(MedicationSupply)).all()
    assert [(s.medication, s.days_supplied, s.started_on.isoformat()) for s in supplies] == [
        ("buprenorphine", 7, today)]
    assert "Buprenorphine" in staff.get(path).get_data(as_text=True)  # flags.moud follows the latest supply
