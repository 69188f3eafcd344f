"""Two dispatchers at once (two clock processes by mistake, or a manual run during the clock's)
send each due text exactly once."""

from __future__ import annotations

import datetime as dt
import threading
import uuid
from collections import Counter

import sqlalchemy as sa

from backend.auth.models import Role
from backend.cases.models import Patient, SmsStatus
from backend.database import utcnow
from backend.extensions import db
from backend.outreach import dispatcher
from backend.outreach.models import Message
from tests.outreach.conftest import ACCOUNT_SID, AUTH_TOKEN, FROM_NUMBER
from tests.support import make_user
from tests.support.fake_twilio import FakeTwilio

TEXTS = 1000


def test_two_dispatchers_over_a_thousand_due_texts_send_each_exactly_once(live_app):
    fake = FakeTwilio()
    live_app.config.update(SMS_BACKEND="twilio", TWILIO_ACCOUNT_SID=ACCOUNT_SID, TWILIO_AUTH_TOKEN=AUTH_TOKEN,
                           TWILIO_FROM_NUMBER=FROM_NUMBER, TWILIO_API_BASE_URL=fake.url, SMS_DISPATCH_BATCH=50)
    coach = make_user(live_app, role=Role.COACH)
    now = utcnow()
    with live_app.app_context():
        patients = [Patient(given_name="P", family_name=str(i), birth_date=dt.date(1990, 1, 1),
                            phone=f"+1617555{i:04d}", timezone="America/New_York", sms_status=SmsStatus.OPTED_IN)
                    for i in range(50)]
        db.session.add_all(patients)
        db.session.flush()
        db.session.execute(sa.insert(Message), [
            {"id": uuid.uuid4(), "patient_id": patients[i % 50].id, "direction": "outbound", "kind": "staff",
             "body": f"text {i}", "status": "queued", "send_at": now, "due_at": now, "attempts": 0,
             "status_at": now, "created_at": now, "updated_at": now, "created_by_id": coach.id}
            for i in range(TEXTS)])
        db.session.commit()

    start = threading.Barrier(2)
    tallies, errors = [], []

    def run():
        try:
            with live_app.app_context():
                start.wait()
                tallies.append(dispatcher.dispatch_and_commit())
        except Exception as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    fake.stop()

    assert errors == []
    per_message = Counter(text.message_id for text in fake.received)
    assert len(per_message) == TEXTS and set(per_message.values()) == {1}
    assert sum(t.sent for t in tallies) == TEXTS and all(t.sent > 0 for t in tallies)
    with live_app.app_context():
        statuses = Counter(db.session.scalars(sa.select(Message.status)))
    assert statuses == {"sent": TEXTS}


def test_a_second_dispatcher_never_claims_a_patients_text_while_the_first_holds_the_patient(live_app):
    """The rate limit is per patient: while one dispatcher's claim is uncommitted, another must
    neither claim the same patient's next automatic text nor miss the first one's claim."""
    noon = utcnow().replace(hour=12, minute=0)  # inside the send window (the patient lives in UTC)
    with live_app.app_context():
        patient = Patient(given_name="P", family_name="Q", birth_date=dt.date(1990, 1, 1), phone="+16175550101",
                          timezone="UTC", sms_status=SmsStatus.OPTED_IN)
        db.session.add(patient)
        db.session.flush()
        for day in (1, 3):
            db.session.add(Message(patient_id=patient.id, direction="outbound", kind="check_in", body=f"day {day}",
                                   status="queued", plan_key=f"check_in:test:day{day}", send_at=noon,
                                   due_at=noon - dt.timedelta(minutes=day)))
        db.session.commit()

    first = live_app.app_context()
    first.push()
    try:
        assert len(dispatcher.claim_due(now=noon, limit=1, tally=dispatcher.Tally())) == 1
        second_claims = []

        def second():
            with live_app.app_context():
                second_claims.append(dispatcher.claim_due(now=noon, limit=10, tally=dispatcher.Tally()))
                db.session.commit()

        thread = threading.Thread(target=second)
        thread.start()
        thread.join(timeout=0.5)  # PostgreSQL skips the held patient at once; SQLite waits for the lock
        db.session.commit()
    finally:
        first.pop()
    thread.join()

    assert second_claims == [[]]
    with live_app.app_context():
        statuses = Counter(db.session.scalars(sa.select(Message.status)))
    assert statuses == {"sending": 1, "queued": 1}
