"""The outcomes report: a synthetic cohort with hand-computed answers, edge cases on every
window's boundary, episodes still inside their windows, time zones, and a patient with two
episodes; then the endpoint itself (JSON, CSV, filters, who may read it, its query count)."""

from __future__ import annotations

import csv
import datetime as dt
import io

import pytest
import sqlalchemy as sa

from backend import unit_of_work
from backend.audit.models import AuditEvent
from backend.auth.models import Role
from backend.cases.models import Level, SmsStatus
from backend.extensions import db
from backend.reports import service
from backend.reports.measures import MEASURES
from tests.reports.cohort import UTC, Cohort
from tests.support import make_user

H, D = dt.timedelta(hours=1), dt.timedelta(days=1)
MINUTE = dt.timedelta(minutes=1)
#: Most of the cohort is discharged at this moment (10:00 in Boston).
T = dt.datetime(2025, 1, 10, 15, 0, tzinfo=UTC)
JANUARY = {"start": dt.date(2025, 1, 1), "end": dt.date(2025, 1, 31)}
#: Long after every window of a January discharge has closed (75 days after a visit in late March).
LATER = dt.datetime(2025, 7, 1, tzinfo=UTC)


@pytest.fixture
def staff(app):
    coach, other_coach = make_user(app, role=Role.COACH), make_user(app, role=Role.COACH)
    nurse = make_user(app, role=Role.ED_NURSE)
    return {"coach": coach, "other_coach": other_coach, "nurse": nurse}


@pytest.fixture
def january(app, staff):
    """The cohort of January 2025: what each episode is there to test is beside it."""
    with app.app_context():
        c = Cohort(nurse_id=staff["nurse"].id, coach_id=staff["coach"].id)
        e1 = c.episode(T)  # contact exactly 24 h after discharge, by phone; texts of every status
        c.contact(e1, T + 24 * H)
        for status, sent_at in [("delivered", T + H)] * 3 + [("undelivered", T + H), ("failed", T + H),
                                                             ("sent", T + D + H),  # no report, long ago
                                                             ("queued", None), ("cancelled", None), ("blocked", None)]:
            c.text(e1, status=status, sent_at=sent_at)
        c.text(e1, status="received", sent_at=None, direction="inbound")
        c.text(e1, status="failed", sent_at=None)  # refused by Twilio: never sent, still a failed text
        c.text(e1, status="sent", sent_at=T + 2 * H, kind="auto_reply")  # the answer to HELP: not counted
        e2 = c.episode(T)  # contact a minute past 24 h, by SMS (no follow-up); opted out after a text
        c.contact(e2, T + 24 * H + MINUTE, kind="sms")
        c.text(e2, status="delivered", sent_at=T + H)
        e2.patient.sms_status, e2.patient.sms_status_at = SmsStatus.OPTED_OUT, T + 5 * H
        e3 = c.episode(T)  # contact exactly 72 h after, in person; an unanswered attempt before
        c.contact(e3, T + H, kind="attempt", outcome="no_answer")
        c.contact(e3, T + 72 * H, kind="in_person")
        c.text(e3, status="delivered", sent_at=T + 2 * H)
        e4 = c.episode(T)  # reached only before the discharge
        c.contact(e4, T - H)
        e5 = c.episode(T, reason="withdrawal")  # first visit exactly 72 h after; the next exactly 45 days later
        c.visit(e5, T + 72 * H)
        c.visit(e5, T + 72 * H + 45 * D)
        c.handoff(e5, to_level="transition_clinic", method="warm_in_person", accept_by=T + 24 * H,
                  arrive_by=T + 72 * H, events=[("accepted", T + H), ("completed", T + 72 * H)])
        e6 = c.episode(T, coach_id=staff["other_coach"].id)  # first visit 72 h + 1 min; 2nd by day 10; 3rd 75 d + 1 min
        first = T + 72 * H + MINUTE
        for at in (first, T + 10 * D, first + 75 * D + MINUTE):
            c.visit(e6, at)
        c.handoff(e6, to_level="community_program", method="warm_video", accept_by=T + 3 * D, arrive_by=T + 14 * D,
                  events=[("declined", T + D)])
        e7 = c.episode(T)  # a missed visit, then the first attended exactly 7 days after; the next 75 days later
        c.visit(e7, T + D, status="missed")
        c.visit(e7, T + 7 * D)
        c.visit(e7, T + 7 * D + 75 * D)
        c.handoff(e7, to_level="community_program", method="referral", accept_by=T + 3 * D, arrive_by=T + 14 * D,
                  events=[("cancelled", T + D)])
        e8 = c.episode(T)  # first visit a minute after 7 days; a handoff left open past its deadlines;
        c.visit(e8, T + 7 * D + MINUTE)  # and an arrival recorded before the discharge, which is no engagement
        c.handoff(e8, to_level="community_program", method="warm_in_person", accept_by=T + 3 * D,
                  arrive_by=T + 14 * D)
        c.handoff(e8, to_level="community_program", method="warm_phone", accept_by=T + 3 * D, arrive_by=T + 14 * D,
                  events=[("accepted", T - 3 * H), ("completed", T - H)])
        e9 = c.episode(T)  # arrived at a community program exactly 30 days after; accepted exactly on time
        c.handoff(e9, to_level="community_program", method="referral", accept_by=T + 3 * D, arrive_by=T + 30 * D,
                  events=[("accepted", T + 3 * D), ("completed", T + 30 * D)])
        e10 = c.episode(T)  # arrived 30 days + 1 min after (late, still a closed loop); accepted a minute late
        c.handoff(e10, to_level="community_program", method="warm_phone", accept_by=T + 3 * D,
                  arrive_by=T + 14 * D, events=[("accepted", T + 3 * D + MINUTE), ("completed", T + 30 * D + MINUTE)])
        e11 = c.episode(T)  # a program intake attended exactly 7 days after: a follow-up, not a clinic visit;
        c.visit(e11, T + 7 * D, kind="program_intake")  # a handoff cancelled (on closing) after its deadlines
        c.handoff(e11, to_level="community_program", method="referral", accept_by=T + 3 * D, arrive_by=T + 14 * D,
                  events=[("cancelled", T + 20 * D)])
        c.episode(dt.datetime(2025, 2, 1, 4, 30, tzinfo=UTC))  # 23:30 on January 31 in Boston: in January
        outside = c.episode(dt.datetime(2025, 1, 1, 4, 30, tzinfo=UTC))  # 23:30 on December 31: not in January
        c.contact(outside, outside.discharged_at + H)
        c.text(outside, status="delivered", sent_at=outside.discharged_at + H)
        c.handoff(outside, to_level="transition_clinic", method="warm_in_person", accept_by=T, arrive_by=T + D,
                  events=[("accepted", T - H)])
        c.episode(dt.datetime(2025, 1, 1, 5, 0, tzinfo=UTC))  # midnight starting January 1 in Boston: in January
        clinic_only = c.episode(T, level=Level.TRANSITION_CLINIC)  # never at the hospital: not an ED episode
        c.contact(clinic_only, T + H)
        patient = c.patient()  # two episodes: what happens in the second does not count for the first
        first_of_two = c.episode(T, patient=patient, closed=True)  # closed 2 days after discharge
        c.text(first_of_two, status="delivered", sent_at=T + H)
        second = c.episode(T + 5 * D, patient=patient)
        c.contact(second, T + 6 * D)  # exactly 24 h after its own discharge
        c.text(second, status="delivered", sent_at=T + 5 * D + H)
        patient.sms_status, patient.sms_status_at = SmsStatus.OPTED_OUT, T + 6 * D  # during the second only
        unit_of_work.commit()


#: Numerator / denominator of every measure for January, as of LATER, worked out by hand from the
#: comments above. 15 episodes: e1-e11, Jan 31 late evening, Jan 1 midnight, and the patient's two.
EXPECTED = {
    "contacted_24h": (2, 15),  # e1, the second episode
    "contacted_72h": (4, 15),  # + e2 (24 h + 1 min), e3 (exactly 72 h)
    "clinic_visit_72h": (1, 15),  # e5
    "clinic_visit_7d": (3, 15),  # e5, e6, e7
    "median_hours_to_first_visit": (4, 15),  # e5-e8 have a first visit
    "engaged_2_visits": (1, 15),  # e6
    "treatment_engaged_30d": (5, 15),  # e5-e8 (visits), e9 (arrival at exactly 30 days)
    "follow_up_7d": (7, 15),  # e1, e3, e5, e6, e7, e11, the second episode
    "follow_up_30d": (8, 15),  # + e8
    "retained_60d": (2, 4),  # e5 (45 days), e7 (75 days) of e5-e8
    # handoffs: e5 (clinic), e6 (declined), e7 (cancelled before its deadline: left out), e8's two
    # (open past its deadlines; arrived before discharge), e9, e10, e11 (cancelled after its deadlines)
    "warm_handoffs": (5, 7),  # e5, e6, e8's two, e10
    "handoffs_accepted_on_time": (3, 7),  # e5, e8's second, e9
    "community_arrival_confirmed": (3, 6),  # e8's second, e9, e10 of e6, e8's two, e9, e10, e11
    "texts_delivered": (7, 11),  # e1's 3, e2's, e3's, the patient's two; e1's undelivered, 2 failed, unreported
    "opted_out": (2, 5),  # e2, the second episode; of e1-e3 and the patient's two
    # No kits or supplies in January (tests/reports/test_continuity.py has its own cohort); every
    # discharge there predates the disposition: the 14 overdose episodes (all but e5) are unknown.
    "naloxone_at_discharge": (0, 0),
    "naloxone_at_discharge_unknown_disposition": (0, 14),
    "medication_continued": (0, 0),
    # No ADT feed in January (tests/interop/test_measures.py has its own): nobody came back; the
    # 14 overdose episodes make the overdose measure's denominator.
    "ed_revisit_30d": (0, 15),
    "overdose_revisit_90d": (0, 14),
}


def test_every_measure_of_the_january_cohort_matches_the_hand_computed_answer(app, january):
    assert set(EXPECTED) == set(MEASURES)
    with app.app_context():
        report = service.outcomes(**JANUARY, now=LATER)
    assert report["cohort"]["episodes"] == 15
    got = {key: (m["numerator"], m["denominator"]) for key, m in report["measures"].items()}
    assert got == EXPECTED
    assert all(m["pending"] == 0 for m in report["measures"].values())
    assert report["measures"]["contacted_24h"]["rate"] == round(2 / 15, 4)
    # first visits 72 h, 72 h 1 min, 168 h, 168 h 1 min after discharge: the median is midway
    assert report["measures"]["median_hours_to_first_visit"]["value"] == 120.0
    assert report["measures"]["median_hours_to_first_visit"]["unit"] == "hours"


def test_windows_still_open_are_pending_and_out_of_the_denominator_even_when_already_met(app, january):
    """Two days after most discharges: 24 h windows have closed, 72 h ones have not."""
    with app.app_context():
        measures = service.outcomes(**JANUARY, now=T + 2 * D)["measures"]
    # e1, reached at exactly 24 h, is met; the Jan 31 episode and the patient's second one
    # (discharged after this moment) are not due yet
    assert measures["contacted_24h"]["pending"] == 2
    assert (measures["contacted_24h"]["numerator"], measures["contacted_24h"]["denominator"]) == (1, 13)
    # e1, e2 and e3 were reached within 72 h, but their windows are open: pending, not met
    assert (measures["contacted_72h"]["numerator"], measures["contacted_72h"]["denominator"]) == (0, 1)  # Jan 1
    assert measures["contacted_72h"]["pending"] == 14
    assert measures["retained_60d"]["pending"] == 4 and measures["retained_60d"]["denominator"] == 0
    assert measures["retained_60d"]["rate"] is None
    # e6's and e8's handoffs are open with accept-by (T + 3 d) and arrive-by ahead
    assert measures["handoffs_accepted_on_time"]["pending"] == 1  # e8's (e6's was declined: missed)
    assert measures["community_arrival_confirmed"]["pending"] == 1  # e8's
    # e1's text sent at T + 25 h without a report has not waited 24 h yet
    assert measures["texts_delivered"]["pending"] == 1
    assert (measures["texts_delivered"]["numerator"], measures["texts_delivered"]["denominator"]) == (7, 10)
    # no episode is 30 days past its discharge yet: no first visit can be counted missing
    assert measures["median_hours_to_first_visit"]["pending"] == 15


def test_the_report_narrows_to_a_coach_or_a_presenting_reason(app, january, staff):
    with app.app_context():
        by_coach = service.outcomes(**JANUARY, coach_id=staff["other_coach"].id, now=LATER)
        by_reason = service.outcomes(**JANUARY, presenting_reason="withdrawal", now=LATER)
    assert by_coach["cohort"]["episodes"] == 1  # e6
    assert (by_coach["measures"]["clinic_visit_7d"]["numerator"], by_coach["measures"]["retained_60d"]["denominator"],
            by_coach["measures"]["handoffs_accepted_on_time"]["denominator"]) == (1, 1, 1)
    assert by_reason["cohort"]["episodes"] == 1  # e5
    assert by_reason["measures"]["clinic_visit_72h"]["numerator"] == 1
    assert by_reason["measures"]["retained_60d"]["numerator"] == 1


def test_every_definition_names_its_source():
    for key, measure in MEASURES.items():
        assert measure.definition and len(measure.source) > 10, key
        assert "Source:" not in measure.definition, key


# --- the endpoint ----------------------------------------------------------------------------

def test_clinic_staff_get_the_report_over_http_and_others_may_not(app, clinic, coach, nurse, admin, january):
    response = clinic.get("/api/v1/reports/outcomes", query_string={"from": "2025-01-01", "to": "2025-01-31"})
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["from"] == "2025-01-01" and body["to"] == "2025-01-31" and body["timezone"] == "America/New_York"
    assert body["cohort"]["episodes"] == 15
    assert {key: (m["numerator"], m["denominator"]) for key, m in body["measures"].items()} == EXPECTED
    assert body["measures"]["follow_up_7d"]["window"] == "7 days after discharge"
    assert "HEDIS" in body["measures"]["follow_up_7d"]["source"]
    for other in (coach, nurse, admin):
        assert other.get("/api/v1/reports/outcomes", query_string={"from": "2025-01-01",
                                                                   "to": "2025-01-31"}).status_code == 403


def test_a_form_other_than_json_or_csv_is_406(clinic, january):
    query = {"from": "2025-01-01", "to": "2025-01-31"}
    refused = clinic.get("/api/v1/reports/outcomes", query_string=query, headers={"Accept": "image/png"})
    assert refused.status_code == 406 and refused.mimetype == "application/problem+json"
    assert refused.get_json()["type"] == "not-acceptable" and "text/csv" in refused.get_json()["detail"]
    for accept in (None, "*/*", "application/*", "application/json, text/csv;q=0.5"):
        answered = clinic.get("/api/v1/reports/outcomes", query_string=query,
                              headers={"Accept": accept} if accept else {})
        assert answered.status_code == 200 and answered.mimetype == "application/json", accept
        assert "Accept" in _vary(answered)
    as_csv = clinic.get("/api/v1/reports/outcomes", query_string=query, headers={"Accept": "text/csv"})
    assert as_csv.mimetype == "text/csv" and "Accept" in _vary(as_csv)


def _vary(response) -> set[str]:
    return {name.strip() for name in response.headers.get("Vary", "").split(",")}


def test_the_same_report_comes_as_csv_for_spreadsheets(clinic, january):
    query = {"from": "2025-01-01", "to": "2025-01-31", "presenting_reason": "withdrawal"}
    response = clinic.get("/api/v1/reports/outcomes", query_string=query, headers={"Accept": "text/csv"})
    assert response.status_code == 200
    assert response.mimetype == "text/csv"
    assert "outcomes_2025-01-01_2025-01-31.csv" in response.headers["Content-Disposition"]
    rows = {row["measure"]: row for row in csv.DictReader(io.StringIO(response.get_data(as_text=True)))
            if not row["measure"].startswith("kits_distributed")}  # counts, not rates: test_continuity.py
    as_json = clinic.get("/api/v1/reports/outcomes", query_string=query).get_json()["measures"]
    assert set(rows) == set(as_json)
    for key, row in rows.items():
        assert (int(row["numerator"]), int(row["denominator"]), int(row["pending"])) == (
            as_json[key]["numerator"], as_json[key]["denominator"], as_json[key]["pending"]), key
        assert row["presenting_reason"] == "withdrawal" and row["definition"] == as_json[key]["definition"]


@pytest.mark.parametrize("query, field", [
    ({"to": "2025-01-31"}, "from"),
    ({"from": "2025-01-31", "to": "2025-01-01"}, "to"),
    ({"from": "2020-01-01", "to": "2025-01-01"}, "to"),
    ({"from": "2025-01-01", "to": "2025-01-31", "presenting_reason": "boredom"}, "presenting_reason"),
    ({"from": "2025-02-30", "to": "2025-03-01"}, "from"),
    ({"from": "9999-12-30", "to": "9999-12-31"}, "to"),  # the period would end past the calendar
])
def test_a_period_that_makes_no_sense_is_refused_with_the_field_named(clinic, query, field):
    response = clinic.get("/api/v1/reports/outcomes", query_string=query)
    assert response.status_code == 422
    assert response.mimetype == "application/problem+json"
    assert field in response.get_json()["errors"], response.get_json()


def test_reading_the_report_is_audited_without_patient_data(app, clinic, january):
    clinic.get("/api/v1/reports/outcomes", query_string={"from": "2025-01-01", "to": "2025-01-31"})
    with app.app_context():
        event = db.session.scalars(sa.select(AuditEvent).where(AuditEvent.action == "report.outcomes")
                                   .order_by(AuditEvent.seq.desc())).first()
        assert event is not None and event.actor_id == clinic.user.id
        assert event.details["episodes"] == 15 and event.details["from"] == "2025-01-01"
        assert event.patient_ids == []  # figures only: no patient's record was shown
