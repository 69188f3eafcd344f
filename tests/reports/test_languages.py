"""The SMS measures by language, and the automatic texts that fell back to English."""

from __future__ import annotations

import csv
import datetime as dt
import io

import sqlalchemy as sa

from backend import unit_of_work
from backend.auth.models import Role
from backend.cases.models import SmsStatus
from backend.extensions import db
from backend.outreach.models import Message
from backend.reports import service
from tests.reports.cohort import UTC, Cohort
from tests.support import make_user

T = dt.datetime(2025, 3, 10, 15, 0, tzinfo=UTC)
MARCH = {"start": dt.date(2025, 3, 1), "end": dt.date(2025, 3, 31)}
LATER = dt.datetime(2025, 7, 1, tzinfo=UTC)


def test_sms_delivery_and_opt_out_are_counted_per_language_and_english_fallbacks_are_counted(app, clinic):
    coach, nurse = make_user(app, role=Role.COACH), make_user(app, role=Role.ED_NURSE)
    with app.app_context():
        c = Cohort(nurse_id=nurse.id, coach_id=coach.id)
        spanish = c.episode(T)
        spanish.patient.language = "es-MX"
        for status in ("delivered", "undelivered"):
            c.text(spanish, status=status, sent_at=T + dt.timedelta(hours=1))
        spanish.patient.sms_status, spanish.patient.sms_status_at = SmsStatus.OPTED_OUT, T + dt.timedelta(hours=5)
        english = c.episode(T)
        c.text(english, status="delivered", sent_at=T + dt.timedelta(hours=1))
        creole = c.episode(T)
        creole.patient.language = "ht"
        c.text(creole, status="delivered", sent_at=T + dt.timedelta(hours=1), kind="check_in")
        db.session.flush()
        db.session.execute(sa.update(Message).where(Message.episode_id == creole.id)
                           .values(language="en", fell_back=True))
        unit_of_work.commit()

        report = service.outcomes(**MARCH, now=LATER)

    delivered = report["measures"]["texts_delivered"]["by_language"]
    assert {language: (f["numerator"], f["denominator"]) for language, f in delivered.items()} == {
        "en": (2, 2), "es": (1, 2)}  # the Creole speaker's text went in English
    opted_out = report["measures"]["opted_out"]["by_language"]
    assert {language: (f["numerator"], f["denominator"]) for language, f in opted_out.items()} == {
        "en": (0, 1), "es": (1, 1), "ht": (0, 1)}
    assert report["measures"]["contacted_24h"]["by_language"] is None
    assert report["texts"]["fell_back_to_english"] == 1

    rows = {row["measure"]: row for row in csv.DictReader(io.StringIO(clinic.get(
        "/api/v1/reports/outcomes?from=2025-03-01&to=2025-03-31", headers={"Accept": "text/csv"}).get_data(
        as_text=True)))}
    assert (rows["texts_delivered[es]"]["numerator"], rows["texts_delivered[es]"]["denominator"]) == ("1", "2")
