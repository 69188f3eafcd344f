"""The continuity measures of the outcomes report on a small March cohort with answers worked out
by hand: naloxone at discharge after an overdose (ACEP ECPR51's exclusions, `unknown` apart),
kits distributed by setting and recipient, and medication continued past the ED bridge (two
supplies, a 3-day gap, a patient in another time zone), as JSON and as CSV."""

from __future__ import annotations

import csv
import datetime as dt
import io

import pytest

from backend import unit_of_work
from backend.cases.models import Level
from backend.reports import service
from tests.reports.cohort import UTC, Cohort
from tests.reports.test_outcomes import staff  # noqa: F401 - shared fixture

H, D = dt.timedelta(hours=1), dt.timedelta(days=1)
#: Discharges at 11:00 in Boston (EDT) on March 12, 2025.
T = dt.datetime(2025, 3, 12, 15, 0, tzinfo=UTC)
MARCH = {"start": dt.date(2025, 3, 1), "end": dt.date(2025, 3, 31)}
#: Every window closed but the 30-day bridge's (m9).
NOW = dt.datetime(2025, 4, 30, tzinfo=UTC)
DAY12 = dt.date(2025, 3, 12)


@pytest.fixture
def march(app, staff):  # noqa: F811 - the shared fixture, used here
    with app.app_context():
        c = Cohort(nurse_id=staff["nurse"].id, coach_id=staff["coach"].id)

        def overdose(disposition, **kwargs):
            episode = c.episode(T, **kwargs)
            episode.disposition = disposition
            return episode

        # Naloxone at discharge (ED, overdose). Sent home: n1 met, n2-n5 missed.
        c.kit(overdose("home"), T - 2 * H)  # n1: to the patient, trained, before discharge
        c.kit(overdose("home"), T - 2 * H, training=False)  # n2: not trained
        c.kit(overdose("home"), T - 2 * H, recipient="support_person")  # n3: to a support person
        c.kit(overdose("home"), T + 2 * D, setting="community", doses=1)  # n4: after discharge
        overdose("home")  # n5: no kit
        # Excluded by ACEP's exclusions (and `other`), kits or not.
        c.kit(overdose("against_medical_advice"), T - H)
        for disposition in ("eloped", "transferred", "admitted", "deceased", "other"):
            overdose(disposition)
        # Unknown disposition: apart. n12 (never said: NULL) met, n13 missed.
        c.kit(overdose(None), T - H)
        overdose("unknown")
        # Not in the population: withdrawal; inpatient only.
        c.kit(overdose("home", reason="withdrawal"), T - H, setting="transition_clinic")
        c.kit(overdose("home", level=Level.INPATIENT), T - H, setting="inpatient")
        # A kit given in February: not distributed in March.
        c.kit(c.episode(dt.datetime(2025, 2, 10, 15, tzinfo=UTC)), dt.datetime(2025, 2, 10, 12, tzinfo=UTC))

        # Medication continued (withdrawal episodes discharged home, out of the naloxone measure).
        def bridge(days, **kwargs):
            episode = c.episode(T, reason="withdrawal", **kwargs)
            episode.disposition = "home"
            return episode, c.supply(episode, DAY12, days)

        m1, _ = bridge(7)  # a clinic visit before the end: met, no gap
        c.visit(m1, dt.datetime(2025, 3, 17, 14, tzinfo=UTC))
        m2, _ = bridge(3)  # two supplies: the next starts the day after the bridge's last: no gap
        c.supply(m2, DAY12 + 3 * D, 28, kind="dispensed", source="transition_clinic")
        m3, _ = bridge(7)  # covered until Mar 18; the next supply starts Mar 22: a 3-day gap
        c.supply(m3, dt.date(2025, 3, 22), 14, kind="dispensed", source="community_program")
        bridge(7)  # m4: nothing after it: missed
        m5, _ = bridge(7)  # the next supply 8 days after the end: missed
        c.supply(m5, dt.date(2025, 3, 27), 14, kind="dispensed", source="community_program")
        # m6: a patient in Los Angeles; the bridge ends at midnight there (07:00 UTC on Mar 19). A
        # visit on Mar 25 at 22:30 there is within 7 days of that end (it would not be of Boston's).
        m6, _ = bridge(7, patient=c.patient("America/Los_Angeles"))
        c.visit(m6, dt.datetime(2025, 3, 26, 5, 30, tzinfo=UTC))
        m7, _ = bridge(5)  # covered until Mar 16; the next starts Mar 18: a 1-day gap
        c.supply(m7, dt.date(2025, 3, 18), 7, kind="dispensed", source="transition_clinic")
        m8 = c.episode(T, reason="withdrawal")  # a bridge from the clinic, not the ED: not counted
        c.supply(m8, DAY12, 7, source="transition_clinic")
        m9 = c.episode(T, reason="withdrawal")  # a 30-day bridge started Mar 28: pending at the report
        c.supply(m9, dt.date(2025, 3, 28), 30)
        unit_of_work.commit()


def test_naloxone_at_discharge_counts_trained_kits_to_patients_sent_home_and_unknown_apart(app, march):
    with app.app_context():
        measures = service.outcomes(**MARCH, now=NOW)["measures"]
    home, unknown = measures["naloxone_at_discharge"], measures["naloxone_at_discharge_unknown_disposition"]
    assert (home["numerator"], home["denominator"], home["pending"]) == (1, 5, 0)
    assert (unknown["numerator"], unknown["denominator"]) == (1, 2)
    assert "ECPR51" in home["source"] and "against medical advice" in home["definition"]


def test_kits_distributed_in_the_period_by_setting_and_recipient(app, march):
    with app.app_context():
        kits = service.outcomes(**MARCH, now=NOW)["kits_distributed"]
    # n1, n2, n3, n4 (1 dose), the AMA patient's, n12's, the withdrawal one's, the inpatient one's
    assert (kits["kits"], kits["doses"]) == (8, 15)
    assert kits["by_setting"] == {"emergency_department": 5, "community": 1, "transition_clinic": 1, "inpatient": 1}
    assert kits["by_recipient"] == {"patient": 7, "support_person": 1}
    assert {"setting": "emergency_department", "recipient": "support_person", "kits": 1, "doses": 2} in \
        kits["by_setting_and_recipient"]


def test_medication_continued_past_the_ed_bridge_with_the_median_gap(app, march):
    with app.app_context():
        continued = service.outcomes(**MARCH, now=NOW)["measures"]["medication_continued"]
    # met: m1, m2, m3 (gap 3 d), m6 (Los Angeles), m7 (gap 1 d); missed: m4, m5; pending: m9
    assert (continued["numerator"], continued["denominator"], continued["pending"]) == (5, 7, 1)
    # gaps: 1 d (m7), 3 d (m3), 6 d 22.5 h (m6): the median is 3 days
    assert continued["value"] == 3.0 and continued["unit"] == "days"


def test_the_continuity_measures_come_as_csv_too(clinic, march):
    query = {"from": "2025-03-01", "to": "2025-03-31"}
    response = clinic.get("/api/v1/reports/outcomes", query_string=query, headers={"Accept": "text/csv"})
    rows = {row["measure"]: row for row in csv.DictReader(io.StringIO(response.get_data(as_text=True)))}
    as_json = clinic.get("/api/v1/reports/outcomes", query_string=query).get_json()
    for key in ("naloxone_at_discharge", "naloxone_at_discharge_unknown_disposition", "medication_continued"):
        assert (int(rows[key]["numerator"]), int(rows[key]["denominator"])) == (
            as_json["measures"][key]["numerator"], as_json["measures"][key]["denominator"])
    assert int(rows["kits_distributed"]["numerator"]) == as_json["kits_distributed"]["kits"] == 8
    assert rows["kits_distributed"]["value"] == "15" and rows["kits_distributed"]["unit"] == "doses"
    ed_support = rows["kits_distributed[setting=emergency_department,recipient=support_person]"]
    assert ed_support["numerator"] == "1" and ed_support["denominator"] == ""
