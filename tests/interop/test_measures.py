"""The measures the ADT feed makes possible: ED revisit within 30 days of discharge and a repeat
overdose visit within 90 days, on a small cohort worked out by hand, and end to end from the feed."""

from __future__ import annotations

import datetime as dt

import pytest

from backend import unit_of_work
from backend.extensions import db
from backend.interop.models import HospitalVisit
from backend.reports import service
from tests.console.conftest import console  # noqa: F401 - shared fixture
from tests.interop.conftest import adt
from tests.reports.cohort import UTC, Cohort
from tests.reports.test_outcomes import staff  # noqa: F401 - shared fixture

D = dt.timedelta(days=1)
T = dt.datetime(2025, 3, 12, 15, 0, tzinfo=UTC)
MARCH = {"start": dt.date(2025, 3, 1), "end": dt.date(2025, 3, 31)}


@pytest.fixture
def returns(app, staff):  # noqa: F811 - the shared fixture, used here
    with app.app_context():
        c = Cohort(nurse_id=staff["nurse"].id, coach_id=staff["coach"].id)

        def back(episode, at, overdose=False):
            db.session.add(HospitalVisit(patient_id=episode.patient_id, setting="emergency_department",
                                         registered_at=at, overdose=overdose))

        back(c.episode(T), T + 10 * D, overdose=True)  # r1: both
        back(c.episode(T), T + 30 * D)  # r2: a revisit at exactly 30 days; not an overdose
        back(c.episode(T), T + 31 * D, overdose=True)  # r3: too late for 30 days; an overdose within 90
        back(c.episode(T, reason="withdrawal"), T + 5 * D, overdose=True)  # r4: revisit; not in the overdose measure
        back(c.episode(T), T - dt.timedelta(hours=6))  # r5: the index visit itself: not a return
        c.episode(T)  # r6: never came back
        unit_of_work.commit()


def test_revisits_within_30_days_and_repeat_overdoses_within_90(app, returns):
    with app.app_context():
        measures = service.outcomes(**MARCH, now=T + 120 * D)["measures"]
    revisit, overdose = measures["ed_revisit_30d"], measures["overdose_revisit_90d"]
    assert (revisit["numerator"], revisit["denominator"], revisit["pending"]) == (3, 6, 0)  # r1, r2, r4
    assert (overdose["numerator"], overdose["denominator"], overdose["pending"]) == (2, 5, 0)  # r1, r3
    assert revisit["window"] == "30 days after discharge" and "lower is better" in revisit["definition"]
    with app.app_context():
        early = service.outcomes(**MARCH, now=T + 20 * D)["measures"]
    assert (early["ed_revisit_30d"]["denominator"], early["ed_revisit_30d"]["pending"]) == (0, 6)
    assert (early["overdose_revisit_90d"]["denominator"], early["overdose_revisit_90d"]["pending"]) == (0, 5)
    with app.app_context():
        rows = service.as_csv(service.outcomes(**MARCH, now=T + 120 * D))
    assert "ed_revisit_30d" in rows and "overdose_revisit_90d" in rows


def test_a_return_the_feed_reports_is_counted_once_the_report_refreshes(app, ctx, open_episode, send_adt):
    now = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
    episode = open_episode(arrived_at=(now - dt.timedelta(hours=10)).isoformat())
    mrn = db.session.get(__import__("backend.cases.models", fromlist=["Episode"]).Episode,
                         __import__("uuid").UUID(episode["id"])).patient.mrn
    send_adt(adt("A03", mrn, visit="X1", discharged=now - dt.timedelta(hours=5), disposition="01")[0])
    period = {"start": (now - 2 * D).date(), "end": (now + D).date()}
    before = service.outcomes(**period, now=now + 40 * D)["measures"]["ed_revisit_30d"]
    send_adt(adt("A04", mrn, visit="X2", admitted=now - dt.timedelta(hours=1), diagnosis="T40.4X1A")[0])
    after = service.outcomes(**period, now=now + 100 * D)["measures"]
    assert after["ed_revisit_30d"]["numerator"] == before["numerator"] + 1
    assert after["overdose_revisit_90d"]["numerator"] >= 1


def test_the_console_outcomes_page_draws_both_measures(app, console):  # noqa: F811 - the shared fixture
    from backend.auth.models import Role

    clinic_staff = console(Role.CLINIC_STAFF)
    page = clinic_staff.get("/console/reports/outcomes").get_data(as_text=True)
    for label in ("Back in the ED within 30 days (lower is better)",
                  "Repeat overdose visit within 90 days (lower is better)"):
        row = page.split(label)[1].split("</tr>")[0]
        assert 'class="rate-chart"' in row, label
