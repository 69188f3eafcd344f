"""The staff console's rules (console.md "Rules", privacy.md), through Flask's test client."""

from __future__ import annotations

import datetime as dt
import gzip
import re
from html.parser import HTMLParser

import sqlalchemy as sa

from backend.audit.models import AuditEvent
from backend.auth.models import DeviceSession, Role
from backend.cases.models import Episode, Patient
from backend.continuity.models import NaloxoneEvent
from backend.extensions import db
from backend.handoffs.models import Handoff
from tests.console.conftest import ConsoleClient
from tests.support import ApiClient, make_user

PATIENT = {"mrn": "MRN-C-4417", "given_name": "Marisol", "family_name": "Quintanilla", "birth_date": "1987-05-09",
           "phone": "(617) 555-0199"}


def local(hours_ago: float) -> str:
    """A `datetime-local` value `hours_ago` in the hospital's zone (the test config's default)."""
    from zoneinfo import ZoneInfo

    zone = ZoneInfo("America/New_York")
    return (dt.datetime.now(zone) - dt.timedelta(hours=hours_ago)).strftime("%Y-%m-%dT%H:%M")


def journey(nurse: ConsoleClient) -> str:
    """The ED nurse's journey by the forms; returns the episode page's path."""
    found = nurse.post("/console/patients/find", {"mrn": PATIENT["mrn"]})
    assert found.status_code == 200 and "Register patient" in found.get_data(as_text=True)
    registered = nurse.post("/console/patients", PATIENT)
    assert registered.status_code == 302, registered.get_data(as_text=True)
    nurse.get(registered.headers["Location"])
    opened = nurse.post(registered.headers["Location"] + "/episodes",
                        {"arrived_at": local(5), "presenting_reason": "overdose"})
    assert opened.status_code == 302, opened.get_data(as_text=True)
    episode = opened.headers["Location"]
    assert nurse.get(episode).status_code == 200
    assert nurse.post(episode + "/discharge", {"discharged_at": local(1)}).status_code == 302
    sent = nurse.post(episode + "/handoffs", {"to": "transition_clinic", "method": "warm_in_person",
                                              "moud": "buprenorphine", "naloxone_given": "yes"})
    assert sent.status_code == 302, sent.get_data(as_text=True)
    return episode


# The tests read the database in their own application contexts, never around the client's
# requests: a request inside an outer context would share its `g` (and a stale CSRF token).

def test_the_ed_nurse_registers_opens_discharges_and_hands_off_through_the_same_services(app, console):
    nurse = console(Role.ED_NURSE)
    episode_path = journey(nurse)
    with app.app_context():
        patient = db.session.scalar(sa.select(Patient).where(Patient.mrn == PATIENT["mrn"]))
        assert patient.phone == "+16175550199"  # normalised by the API's own schema
        episode = db.session.scalar(sa.select(Episode).where(Episode.patient_id == patient.id))
        assert episode.discharged_at is not None and episode_path == f"/console/episodes/{episode.id}"
        handoff = db.session.scalar(sa.select(Handoff).where(Handoff.episode_id == episode.id))
        assert handoff.to_level == "transition_clinic" and handoff.summary["moud"] == "buprenorphine"
        assert handoff.summary["naloxone_given"] is True  # the box recorded the usual kit: the log says so
        kits = db.session.scalars(sa.select(NaloxoneEvent).where(NaloxoneEvent.episode_id == episode.id)).all()
        assert [(str(k.kind), k.recipient, k.setting, k.training_given) for k in kits] == [
            ("given", "patient", "emergency_department", False)]
        kinds = set(db.session.scalars(sa.select(AuditEvent.action).where(AuditEvent.actor_id == nurse.user.id)))
    assert {"patient.create", "episode.read", "handoff.create"} <= kinds


def test_a_form_with_bad_input_comes_back_with_the_input_kept_and_the_message_by_its_field(app, console):
    nurse = console(Role.ED_NURSE)
    nurse.post("/console/patients/find", {"mrn": PATIENT["mrn"]})
    response = nurse.post("/console/patients", {**PATIENT, "birth_date": "2999-01-01", "phone": "12"})
    page = response.get_data(as_text=True)
    assert response.status_code == 422
    assert 'value="Marisol"' in page and 'value="Quintanilla"' in page  # kept
    assert re.search(r'id="birth_date-error">[^<]+', page) and re.search(r'id="phone-error">[^<]+', page)
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Patient)) == 0  # nothing half-written


def test_a_post_without_the_csrf_token_changes_nothing_and_shows_a_plain_page(app, console):
    nurse = console(Role.ED_NURSE)
    response = nurse.post("/console/patients", PATIENT, csrf=False)
    assert response.status_code == 400 and response.mimetype == "text/html"
    assert "Nothing was saved" in response.get_data(as_text=True)
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Patient)) == 0


def test_the_session_cookie_is_http_only_and_same_site_and_the_api_refuses_it(app, console):
    nurse = console(Role.ED_NURSE)
    cookie = nurse.client.get_cookie("bridgeline_session")
    assert cookie is not None and cookie.http_only and cookie.same_site == "Lax"
    assert nurse.client.get("/api/v1/me").status_code == 401  # bearer tokens only
    assert nurse.get("/console/patients/find").status_code == 200


def test_in_production_the_cookies_are_secure_and_host_prefixed(app, monkeypatch):
    monkeypatch.setitem(app.config, "BRIDGELINE_ENV", "production")
    user = make_user(app, role=Role.ED_NURSE)
    browser = ConsoleClient(app.test_client(), user)
    browser.get("/console/sign-in", base_url="https://testserver")
    response = browser.post("/console/sign-in", {"username": user.username, "password": user.password},
                            base_url="https://testserver", headers={"Referer": "https://testserver/console/sign-in"})
    assert response.status_code == 302, response.get_data(as_text=True)
    cookies = response.headers.getlist("Set-Cookie")
    session_cookie = next(c for c in cookies if c.startswith("__Host-bridgeline_session="))
    assert "Secure" in session_cookie and "HttpOnly" in session_cookie and "Path=/" in session_cookie
    assert "Domain" not in session_cookie


def test_pages_send_a_strict_content_security_policy_and_no_store(console):
    nurse = console(Role.ED_NURSE)
    response = nurse.get("/console/patients/find")
    policy = response.headers["Content-Security-Policy"]
    assert "unsafe-inline" not in policy and "unsafe-eval" not in policy
    assert "frame-ancestors 'none'" in policy and "script-src 'self'" in policy
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] in ("same-origin", "no-referrer")
    assert response.headers["Cache-Control"] == "no-store"


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.urls += [value for name, value in attrs if name in ("href", "action", "src") and value]


def test_no_patient_data_in_any_link_or_form_action_of_the_journey(app, console):
    nurse = console(Role.ED_NURSE)
    episode_path = journey(nurse)
    with app.app_context():
        patient_id = db.session.scalar(sa.select(Patient.id))
    pages = [nurse.get(episode_path), nurse.get(f"/console/patients/{patient_id}")]
    for response in pages:
        assert response.status_code == 200
        links = _Links()
        links.feed(response.get_data(as_text=True))
        assert links.urls
        for value in PATIENT.values():
            assert not any(value in url for url in links.urls), value
        assert not any("5550199" in url or "Marisol" in url for url in links.urls)  # ids may hold "0199"


def test_an_episode_outside_the_scope_is_a_404_page_and_an_audited_refusal(app, console):
    nurse = console(Role.ED_NURSE)
    episode_path = journey(nurse)
    coach = console(Role.COACH)
    response = coach.get(episode_path)
    assert response.status_code == 404 and response.mimetype == "text/html"
    assert "request id" in response.get_data(as_text=True)
    with app.app_context():
        refusals = db.session.scalars(sa.select(AuditEvent).where(AuditEvent.action == "access.denied",
                                                                  AuditEvent.actor_id == coach.user.id)).all()
        assert [str(r.resource_id) for r in refusals] == [episode_path.rsplit("/", 1)[1]]


def test_an_idle_session_lands_on_sign_in_with_a_notice_and_returns_to_the_page(app, console):
    nurse = console(Role.ED_NURSE)
    with app.app_context():
        db.session.execute(sa.update(DeviceSession).where(DeviceSession.user_id == nurse.user.id).values(
            last_seen_at=dt.datetime.now(dt.UTC) - dt.timedelta(minutes=31)))
        db.session.commit()
    response = nurse.get("/console/patients/find")
    assert response.status_code == 302
    landing = nurse.get(response.headers["Location"])
    assert "without activity" in landing.get_data(as_text=True)
    back = nurse.post("/console/sign-in", {"username": nurse.user.username, "password": nurse.user.password,
                                           "next": "/console/patients/find"})
    assert back.status_code == 302 and back.headers["Location"] == "/console/patients/find"


def test_sign_in_goes_back_only_to_a_console_path_of_this_site(app):
    user = make_user(app, role=Role.ED_NURSE)
    for target in ("https://evil.example/console/", "//evil.example/console/", "/api/v1/me", "/console/\\evil"):
        browser = ConsoleClient(app.test_client(), user)
        response = browser.sign_in(user.username, user.password, next_path=target)
        assert response.status_code == 302 and response.headers["Location"] == "/console/", target


def test_signing_out_ends_the_device_session(app, console):
    nurse = console(Role.ED_NURSE)
    response = nurse.post("/console/sign-out")
    assert response.status_code == 302
    assert nurse.get("/console/patients/find").status_code == 302  # back to sign-in
    with app.app_context():
        sessions = db.session.scalars(sa.select(DeviceSession).where(DeviceSession.user_id == nurse.user.id)).all()
    assert [s.revoked_at is not None for s in sessions] == [True]


def test_a_wrong_password_is_refused_on_the_page_and_counted_like_the_api(app):
    user = make_user(app, role=Role.ED_NURSE)
    browser = ConsoleClient(app.test_client(), user)
    response = browser.sign_in(user.username, "not the password")
    assert response.status_code == 401 and "not right" in response.get_data(as_text=True)
    api = ApiClient(app.test_client())
    for _ in range(4):
        api.client.post("/api/v1/auth/tokens", json={"username": user.username, "password": "nope",
                                                      "device_name": "x"})
    locked = browser.sign_in(user.username, user.password)
    assert locked.status_code == 429  # the fifth failure from this address locked it, console or API


def test_pages_are_gzipped_for_browsers_that_accept_it_but_never_the_sign_in_answer(app, console):
    nurse = console(Role.ED_NURSE)
    page = nurse.client.get("/console/patients/find", headers={"Accept-Encoding": "gzip"})
    assert page.headers["Content-Encoding"] == "gzip" and "Accept-Encoding" in page.headers["Vary"]
    assert b"Find patient" in gzip.decompress(page.get_data())
    sign_in = nurse.client.get("/console/sign-in", headers={"Accept-Encoding": "gzip"})
    assert "Content-Encoding" not in sign_in.headers
