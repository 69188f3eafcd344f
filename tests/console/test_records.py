"""The console's records pages (consents, the accounting of disclosures, the inbox, texts needing
review, outcomes): the API's rules, scopes and audit through Flask's test client.

As in test_console.py, the database is read in application contexts of its own, between the
console's requests, never around them.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
import uuid
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from backend.audit.models import AuditEvent
from backend.auth.models import Role
from backend.consents.models import Consent, ConsentRevocation, Disclosure
from backend.consents.service import NOTICE_2_32
from backend.database import utcnow
from backend.extensions import db
from backend.outreach.models import (
    Message,
    MessageDirection,
    MessageKind,
    MessageStatus,
)
from tests.cases.conftest import ago, ahead, clinic, nurse, open_episode, register  # noqa: F401 - fixtures
from tests.console.test_console import _Links
from tests.handoffs.conftest import program, send  # noqa: F401 - fixtures
from tests.support import counted_statements


def local(hours_ago: float) -> str:
    return (dt.datetime.now(ZoneInfo("America/New_York")) - dt.timedelta(hours=hours_ago)).strftime("%Y-%m-%dT%H:%M")


def in_days(days: int) -> str:
    return (dt.date.today() + dt.timedelta(days=days)).isoformat()


def actions(app, actor_id) -> list[str]:
    with app.app_context():
        return list(db.session.scalars(sa.select(AuditEvent.action).where(AuditEvent.actor_id == actor_id)
                                       .order_by(AuditEvent.id)))


def consent_form(program_id, **fields) -> dict:
    return {"recipient": f"program:{program_id}", "recipient_name": "", "purpose": "Continuity of treatment",
            "information": ["handoff_summary", "medications"], "signed_at": local(1), "signature_method": "written",
            "expiry": "date", "expires_on": in_days(180), **fields}


# --- consents -------------------------------------------------------------------------------

def test_clinic_staff_record_a_part_2_consent_with_every_element_through_the_api_service(
        app, console, clinic, open_episode, program):  # noqa: F811 - fixtures
    episode, otp = open_episode(), program()
    staff = console(Role.CLINIC_STAFF)
    path = f"/console/patients/{episode['patient_id']}/consents"
    assert staff.get(path).status_code == 200
    recorded = staff.post(path, consent_form(otp["id"]))
    assert recorded.status_code == 302, recorded.get_data(as_text=True)
    page = staff.get(recorded.headers["Location"]).get_data(as_text=True)
    assert "The consent is recorded." in page and "To Harbor OTP" in page and "Active" in page

    listed = clinic.get(f"/api/v1/patients/{episode['patient_id']}/consents").get_json()["items"]
    assert [(c["recipient_program_id"], c["purpose"], c["information"], c["signature_method"], c["active"])
            for c in listed] == [(otp["id"], "Continuity of treatment", ["handoff_summary", "medications"],
                                  "written", True)]
    expires = dt.datetime.fromisoformat(listed[0]["expires_at"]).astimezone(ZoneInfo("America/New_York"))
    assert (expires.date().isoformat(), expires.strftime("%H:%M")) == (in_days(180), "23:59")  # the day's end
    assert {"consent.list", "consent.create"} <= set(actions(app, staff.user.id))


def test_a_consent_with_missing_elements_comes_back_with_the_input_kept_and_nothing_written(
        app, console, open_episode, program):  # noqa: F811 - fixtures
    episode, otp = open_episode(), program()
    staff = console(Role.CLINIC_STAFF)
    path = f"/console/patients/{episode['patient_id']}/consents"
    staff.get(path)
    response = staff.post(path, consent_form(otp["id"], purpose="", information=[], signed_at=""))
    page = response.get_data(as_text=True)
    assert response.status_code == 422
    assert f'value="program:{otp["id"]}" selected' in page and f'value="{in_days(180)}"' in page  # kept
    for field in ("purpose", "information", "signed_at"):
        assert re.search(rf'id="{field}-error">[^<]+', page), field
    assert 'id="information-error">Choose at least one.' in page

    no_expiry = staff.post(path, consent_form(otp["id"], expiry="date", expires_on=""))
    assert no_expiry.status_code == 422
    assert re.search(r'id="expires_on-error">A consent needs an expiry', no_expiry.get_data(as_text=True))
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Consent)) == 0


def test_a_recipient_outside_the_directory_needs_a_name(app, console, open_episode):  # noqa: F811 - fixtures
    episode = open_episode()
    staff = console(Role.CLINIC_STAFF)
    path = f"/console/patients/{episode['patient_id']}/consents"
    staff.get(path)
    unnamed = staff.post(path, consent_form(None, recipient="named", expiry="end_of_treatment"))
    assert unnamed.status_code == 422 and 'id="recipient-error">Name the recipient' in unnamed.get_data(as_text=True)
    named = staff.post(path, consent_form(None, recipient="named", recipient_name="Dr. Ines Walsh",
                                          expiry="end_of_treatment"))
    assert named.status_code == 302
    with app.app_context():
        consent = db.session.scalar(sa.select(Consent))
        assert (consent.recipient_name, consent.recipient_program_id, consent.expires_on_end_of_treatment) == \
            ("Dr. Ines Walsh", None, True)


def test_revoking_a_consent_blocks_the_next_disclosure_and_keeps_the_consent_on_record(
        app, console, clinic, open_episode, program, send):  # noqa: F811 - fixtures
    episode, otp = open_episode(), program()
    staff = console(Role.CLINIC_STAFF)
    path = f"/console/patients/{episode['patient_id']}/consents"
    staff.get(path)
    assert staff.post(path, consent_form(otp["id"])).status_code == 302
    with app.app_context():
        consent_id = db.session.scalar(sa.select(Consent.id))
    staff.get(path)
    revoked = staff.post(f"/console/consents/{consent_id}/revoke", {"method": "electronic", "revoked_at": ""})
    assert revoked.status_code == 302
    page = staff.get(revoked.headers["Location"]).get_data(as_text=True)
    assert "To Harbor OTP" in page and re.search(r"Revoked [A-Z][a-z]{2} \d", page) and "(electronic)" in page
    assert "Revoke consent" not in page  # nothing left to revoke

    refused = send(episode, client=clinic, to_level="community_program", to_program_id=otp["id"])
    assert refused.status_code == 409 and refused.get_json()["type"] == "consent-required"
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(ConsentRevocation)) == 1
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Consent)) == 1
    assert "consent.revoke" in actions(app, staff.user.id)


def test_revoking_twice_is_refused_on_the_page_and_changes_nothing(app, console, open_episode, program):  # noqa: F811
    episode, otp = open_episode(), program()
    staff = console(Role.CLINIC_STAFF)
    path = f"/console/patients/{episode['patient_id']}/consents"
    staff.get(path)
    staff.post(path, consent_form(otp["id"]))
    with app.app_context():
        consent_id = db.session.scalar(sa.select(Consent.id))
    staff.get(path)
    assert staff.post(f"/console/consents/{consent_id}/revoke", {"method": "written"}).status_code == 302
    twice = staff.post(f"/console/consents/{consent_id}/revoke", {"method": "electronic"})
    assert twice.status_code == 409 and "already revoked" in twice.get_data(as_text=True)
    with app.app_context():
        assert db.session.scalar(sa.select(ConsentRevocation.method)) == "written"


def test_a_revocation_dated_before_the_signature_comes_back_by_its_field(
        app, console, open_episode, program):  # noqa: F811 - fixtures
    episode, otp = open_episode(), program()
    staff = console(Role.CLINIC_STAFF)
    path = f"/console/patients/{episode['patient_id']}/consents"
    staff.get(path)
    staff.post(path, consent_form(otp["id"]))
    with app.app_context():
        consent_id = db.session.scalar(sa.select(Consent.id))
    staff.get(path)
    early = local(30)
    response = staff.post(f"/console/consents/{consent_id}/revoke", {"method": "electronic", "revoked_at": early})
    page = response.get_data(as_text=True)
    assert response.status_code == 422
    assert re.search(rf'id="revoked_at-{consent_id}-error">A consent cannot be revoked before', page)
    assert f'value="{early}"' in page  # kept
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(ConsentRevocation)) == 0


def test_a_revocation_without_the_csrf_token_changes_nothing(
        app, console, clinic, open_episode, program):  # noqa: F811 - fixtures
    episode, otp = open_episode(), program()
    body = {"recipient_program_id": otp["id"], "purpose": "Care", "information": ["handoff_summary"],
            "signed_at": ago(minutes=5), "signature_method": "written", "expires_at": ahead(days=30)}
    consent = clinic.post(f"/api/v1/patients/{episode['patient_id']}/consents", json=body).get_json()
    staff = console(Role.CLINIC_STAFF)
    response = staff.post(f"/console/consents/{consent['id']}/revoke", {"method": "written"}, csrf=False)
    assert response.status_code == 400 and "Nothing was saved" in response.get_data(as_text=True)
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(ConsentRevocation)) == 0


def test_consents_follow_the_apis_roles_and_scope(app, console, make_client, open_episode):  # noqa: F811
    episode = open_episode()
    path = f"/console/patients/{episode['patient_id']}/consents"
    assert console(Role.ED_NURSE).get(path).status_code == 403
    assert console(Role.ADMIN).get(path).status_code == 403
    other_coach = console(Role.COACH)
    response = other_coach.get(path)
    assert response.status_code == 404 and "request id" in response.get_data(as_text=True)
    with app.app_context():
        refusal = db.session.scalar(sa.select(AuditEvent).where(AuditEvent.actor_id == other_coach.user.id,
                                                                AuditEvent.action == "access.denied"))
        assert str(refusal.resource_id) == episode["patient_id"]

    coach_api = make_client(Role.COACH)
    own = open_episode(coach=coach_api)
    coach = console(Role.COACH)
    assert coach.get(f"/console/patients/{own['patient_id']}/consents").status_code == 404
    with app.app_context():  # the coach's own patient: the same console user coaches it now
        from backend.cases.models import Episode
        db.session.execute(sa.update(Episode).where(Episode.id == uuid.UUID(own["id"])).values(
            coach_id=coach.user.id))
        db.session.commit()
    page = coach.get(f"/console/patients/{own['patient_id']}/consents").get_data(as_text=True)
    assert "Record a consent" in page and "Accounting of disclosures" not in page  # clinic staff only


def test_the_episode_page_links_to_the_patients_consents_for_those_who_may_open_them(console, open_episode):  # noqa
    episode = open_episode()
    staff = console(Role.CLINIC_STAFF)
    page = staff.get(f"/console/episodes/{episode['id']}").get_data(as_text=True)
    assert f'href="/console/patients/{episode["patient_id"]}/consents">Consents and disclosures' in page
    nurse_page = console(Role.ED_NURSE).get(f"/console/episodes/{episode['id']}").get_data(as_text=True)
    assert "Consents and disclosures" not in nurse_page


# --- the accounting of disclosures ----------------------------------------------------------

def handed_off_with_consent(api, episode, otp, send_handoff) -> None:
    """A consent naming the OTP, then a handoff to it: one disclosure of the handoff summary."""
    body = {"recipient_program_id": otp["id"], "purpose": "Care", "information": ["handoff_summary"],
            "signed_at": ago(minutes=5), "signature_method": "written", "expires_at": ahead(days=30)}
    assert api.post(f"/api/v1/patients/{episode['patient_id']}/consents", json=body).status_code == 201
    assert send_handoff(episode, client=api, to_level="community_program", to_program_id=otp["id"]).status_code == 201


def test_the_accounting_lists_each_disclosure_with_its_consent_and_the_2_32_notice(
        app, console, clinic, open_episode, program, send):  # noqa: F811 - fixtures
    episode, otp = open_episode(), program()
    handed_off_with_consent(clinic, episode, otp, send)
    staff = console(Role.CLINIC_STAFF)
    response = staff.get(f"/console/patients/{episode['patient_id']}/disclosures")
    page = response.get_data(as_text=True)
    assert response.status_code == 200 and response.headers["Cache-Control"] == "no-store"
    assert "<h1>Accounting of disclosures</h1>" in page
    rows = re.findall(r"<tr>\s*<td>", page)
    assert len(rows) == 1 and "Harbor OTP" in page and "Handoff summary" in page and "Bup 16 mg daily" in page
    assert NOTICE_2_32[:60] in page and "42 CFR 2.12(e)(1) and 2.65." in page
    assert {"patient.read", "disclosure.accounting"} <= set(actions(app, staff.user.id))


def test_the_accounting_reaches_back_further_when_asked_and_an_unreadable_date_is_refused_by_its_field(
        app, console, clinic, open_episode, program, send):  # noqa: F811 - fixtures
    episode, otp = open_episode(), program()
    handed_off_with_consent(clinic, episode, otp, send)
    with app.app_context():  # a disclosure made four years ago
        db.session.execute(sa.update(Disclosure).values(disclosed_at=utcnow() - dt.timedelta(days=4 * 365)))
        db.session.commit()
    staff = console(Role.CLINIC_STAFF)
    path = f"/console/patients/{episode['patient_id']}/disclosures"
    assert "Harbor OTP" not in staff.get(path).get_data(as_text=True)  # the default: three years
    five_years_ago = (dt.date.today() - dt.timedelta(days=5 * 365)).isoformat()
    longer = staff.get(path, query_string={"since": five_years_ago}).get_data(as_text=True)
    assert "Harbor OTP" in longer and f'value="{five_years_ago}"' in longer and "<dd>Since " in longer
    refused = staff.get(path, query_string={"since": "last spring"})
    assert refused.status_code == 422
    assert re.search(r'id="since-error">[^<]+', refused.get_data(as_text=True))


def test_only_clinic_staff_read_the_accounting(app, console, make_client, open_episode):  # noqa: F811
    coach_api = make_client(Role.COACH)
    episode = open_episode(coach=coach_api)
    for role in (Role.COACH, Role.ED_NURSE, Role.ADMIN):
        assert console(role).get(f"/console/patients/{episode['patient_id']}/disclosures").status_code == 403
    missing = console(Role.CLINIC_STAFF).get(f"/console/patients/{uuid.uuid4()}/disclosures")
    assert missing.status_code == 404


# --- the inbox and the texts that need a person ---------------------------------------------

def add_message(app, *, patient_id=None, direction=MessageDirection.INBOUND, status=MessageStatus.RECEIVED,
                body="Doing ok, thanks", **fields) -> uuid.UUID:
    kind = MessageKind.REPLY if direction == MessageDirection.INBOUND else MessageKind.CHECK_IN
    with app.app_context():
        message = Message(patient_id=uuid.UUID(patient_id) if patient_id else None, direction=direction, kind=kind,
                          body=body, status=status, created_at=utcnow(), status_at=utcnow(), **fields)
        db.session.add(message)
        db.session.commit()
        return message.id


def test_the_inbox_shows_unread_replies_from_patients_and_unknown_numbers_and_marks_them_read(
        app, console, open_episode):  # noqa: F811 - fixtures
    episode = open_episode()
    known = add_message(app, patient_id=episode["patient_id"], phone="+16175550134")
    add_message(app, body="who is this?", phone="+16175550999")
    staff = console(Role.CLINIC_STAFF)
    page = staff.get("/console/inbox").get_data(as_text=True)
    assert "<h1>Inbox</h1>" in page and "Doing ok, thanks" in page and "who is this?" in page
    assert "Unknown number" in page and "+16175550999" in page and "Alex Rivera" in page
    assert page.count("Mark read") == 2

    marked = staff.post(f"/console/inbox/{known}/read")
    assert marked.status_code == 302 and marked.headers["Location"] == "/console/inbox"
    unread = staff.get("/console/inbox").get_data(as_text=True)
    assert "Doing ok, thanks" not in unread and "who is this?" in unread
    assert "Doing ok, thanks" in staff.get("/console/inbox?show=all").get_data(as_text=True)
    with app.app_context():
        message = db.session.get(Message, known)
        assert message.read_at is not None and message.read_by_id == staff.user.id
    assert {"inbox.read", "message.mark_read"} <= set(actions(app, staff.user.id))


def test_a_coach_sees_only_their_patients_replies_and_cannot_mark_anothers(app, console, make_client,
                                                                           open_episode):  # noqa: F811
    coach = console(Role.COACH)
    mine, theirs = open_episode(), open_episode()
    with app.app_context():
        from backend.cases.models import Episode
        db.session.execute(sa.update(Episode).where(Episode.id == uuid.UUID(mine["id"])).values(
            coach_id=coach.user.id))
        db.session.commit()
    add_message(app, patient_id=mine["patient_id"], body="Mine here")
    other = add_message(app, patient_id=theirs["patient_id"], body="Not yours")
    add_message(app, body="Unknown sender")
    page = coach.get("/console/inbox").get_data(as_text=True)
    assert "Mine here" in page and "Not yours" not in page and "Unknown sender" not in page
    refused = coach.post(f"/console/inbox/{other}/read")
    assert refused.status_code == 404
    with app.app_context():
        assert db.session.get(Message, other).read_at is None
        assert db.session.scalar(sa.select(AuditEvent.resource_id).where(
            AuditEvent.actor_id == coach.user.id, AuditEvent.action == "access.denied")) == str(other)
    assert console(Role.ED_NURSE).get("/console/inbox").status_code == 403


def test_marking_read_needs_the_csrf_token(app, console):
    reply = add_message(app, body="hello?")
    staff = console(Role.CLINIC_STAFF)
    assert staff.post(f"/console/inbox/{reply}/read", csrf=False).status_code == 400
    with app.app_context():
        assert db.session.get(Message, reply).read_at is None


def test_texts_needing_review_list_unknown_failed_and_blocked_with_their_reasons(app, console,
                                                                                 open_episode):  # noqa: F811
    episode = open_episode()
    out = {"patient_id": episode["patient_id"], "direction": MessageDirection.OUTBOUND}
    add_message(app, **out, status=MessageStatus.UNKNOWN, body="Check-in A", status_reason="timed out after sending")
    add_message(app, **out, status=MessageStatus.FAILED, body="Check-in B", error_code=30003,
                status_reason="Unreachable destination handset")
    add_message(app, **out, status=MessageStatus.BLOCKED, body="Check-in C", status_reason="the patient opted out")
    add_message(app, **out, status=MessageStatus.DELIVERED, body="Check-in D")
    staff = console(Role.CLINIC_STAFF)
    page = staff.get("/console/texts/review").get_data(as_text=True)
    assert "<h1>Texts needing review</h1>" in page
    assert all(text in page for text in ("Check-in A", "Check-in B", "Check-in C", "timed out after sending",
                                         "(error 30003)", "the patient opted out"))
    assert "Check-in D" not in page
    only_failed = staff.get("/console/texts/review?status=failed").get_data(as_text=True)
    assert "Check-in B" in only_failed and "Check-in A" not in only_failed
    assert actions(app, staff.user.id).count("messages.review") == 2
    for role in (Role.COACH, Role.ED_NURSE, Role.ADMIN):
        assert console(role).get("/console/texts/review").status_code == 403


def test_the_inbox_and_review_pages_take_a_bounded_number_of_queries(app, console, open_episode):  # noqa: F811
    staff = console(Role.CLINIC_STAFF)

    def statements(path: str) -> int:
        with app.app_context():
            engine = db.engine
        with counted_statements(engine) as seen:
            assert staff.get(path).status_code == 200
        return len(seen)

    def add(n: int) -> None:
        for _ in range(n):
            episode = open_episode()
            add_message(app, patient_id=episode["patient_id"])
            add_message(app, patient_id=episode["patient_id"], direction=MessageDirection.OUTBOUND,
                        status=MessageStatus.FAILED)

    add(2)
    few = (statements("/console/inbox"), statements("/console/texts/review"))
    add(6)
    assert (statements("/console/inbox"), statements("/console/texts/review")) == few


# --- outcomes -------------------------------------------------------------------------------

def test_the_outcomes_page_draws_each_measure_with_its_figures_and_a_table(app, console, clinic, open_episode):  # noqa
    episode = open_episode(arrived_at=ago(hours=30))
    assert clinic.post(f"/api/v1/episodes/{episode['id']}/discharge",
                       json={"discharged_at": ago(hours=26)}).status_code == 200
    staff = console(Role.CLINIC_STAFF)
    response = staff.get("/console/reports/outcomes")
    page = response.get_data(as_text=True)
    assert response.status_code == 200 and "<h1>Outcomes</h1>" in page
    api = clinic.get("/api/v1/reports/outcomes", query_string={"from": in_days(-90), "to": in_days(0)}).get_json()
    assert api["cohort"]["episodes"] == 1
    for key, figures in api["measures"].items():
        row = re.search(rf'<tr id="m-{key}">(.*?)</tr>', page, re.S)
        assert row, key
        cells = re.findall(r'<td class="num">(\d+)</td>', row.group(1))
        assert cells == [str(figures[name]) for name in ("numerator", "denominator", "pending")], key
        assert 'role="img"' in row.group(1) and f'aria-labelledby="c-{key}-title c-{key}-desc"' in row.group(1)
    contacted = api["measures"]["contacted_24h"]
    assert (contacted["numerator"], contacted["denominator"]) == (0, 1)  # not reached within 24 h: missed
    assert "style=" not in page and "<script" not in page
    assert actions(app, staff.user.id).count("report.outcomes") == 1


def test_the_csv_download_is_the_apis_csv(app, console, clinic, open_episode):  # noqa: F811
    open_episode()
    staff = console(Role.CLINIC_STAFF)
    query = {"from": in_days(-30), "to": in_days(0), "presenting_reason": "overdose"}
    page = staff.get("/console/reports/outcomes", query_string=query).get_data(as_text=True)
    link = re.search(r'<a class="button" href="([^"]+)" download>Download CSV</a>', page).group(1)
    ours = staff.get(link.replace("&amp;", "&"))
    theirs = clinic.get("/api/v1/reports/outcomes", query_string=query, headers={"Accept": "text/csv"})
    assert ours.status_code == 200 and ours.mimetype == "text/csv"
    assert ours.headers["Content-Disposition"] == theirs.headers["Content-Disposition"]

    def rows(response):  # as_of: the moment each was made
        return [{k: v for k, v in row.items() if k != "as_of"} for row in
                csv.DictReader(io.StringIO(response.get_data(as_text=True)))]

    assert rows(ours) == rows(theirs) and len(rows(ours)) >= 15
    assert {row["presenting_reason"] for row in rows(ours)} == {"overdose"}


def test_a_bad_report_period_comes_back_by_its_field(app, console):
    staff = console(Role.CLINIC_STAFF)
    response = staff.get("/console/reports/outcomes", query_string={"from": in_days(0), "to": in_days(-5)})
    page = response.get_data(as_text=True)
    assert response.status_code == 422 and re.search(r'id="to-error">Must not be before', page)
    assert f'value="{in_days(-5)}"' in page and "Download CSV" not in page
    assert staff.get("/console/reports/outcomes.csv", query_string={"from": "x", "to": "y"}).status_code == 422
    assert "report.outcomes" not in actions(app, staff.user.id)


@pytest.mark.parametrize("role", [Role.COACH, Role.ED_NURSE, Role.ADMIN])
def test_only_clinic_staff_open_the_outcomes_report(console, role):
    user = console(role)
    assert user.get("/console/reports/outcomes").status_code == 403
    assert user.get("/console/reports/outcomes.csv").status_code == 403


def test_the_nav_shows_each_role_the_records_pages_it_may_open(console):
    staff = console(Role.CLINIC_STAFF).get("/console/patients/find").get_data(as_text=True)
    assert all(f">{name}</a>" in staff for name in ("Inbox", "Texts needing review", "Outcomes"))
    coach = console(Role.COACH).get("/console/patients/find").get_data(as_text=True)
    assert ">Inbox</a>" in coach and ">Outcomes</a>" not in coach
    nurse_page = console(Role.ED_NURSE).get("/console/patients/find").get_data(as_text=True)
    assert ">Inbox</a>" not in nurse_page


def test_no_patient_data_in_any_link_or_form_action_of_the_records_pages(
        app, console, open_episode, program):  # noqa: F811 - fixtures
    episode, otp = open_episode(), program()
    add_message(app, patient_id=episode["patient_id"], phone="+16175550134")
    staff = console(Role.CLINIC_STAFF)
    path = f"/console/patients/{episode['patient_id']}"
    staff.get(path + "/consents")
    staff.post(path + "/consents", consent_form(otp["id"]))
    for page_path in (path + "/consents", path + "/disclosures", "/console/inbox", "/console/texts/review"):
        links = _Links()
        links.feed(staff.get(page_path).get_data(as_text=True))
        for value in ("Alex", "Rivera", "5550134", "1990-04-02", "MRN1"):  # (ids may hold "555" by chance)
            assert not any(value in url for url in links.urls), (page_path, value)
