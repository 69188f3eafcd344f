"""The outbox through a database blip mid-batch (issue: texts lost after a blip): every text
goes exactly once, a text never handed to Twilio waits in the queue, a text that went keeps its
SID, and none is called `unknown` that never left.

PostgreSQL is stopped (connections refused and reset) through a relay; SQLite is locked by
another connection past the busy timeout. Both are real outages to the app's own connections.
"""

from __future__ import annotations

import datetime as dt
import threading
import uuid
from collections import Counter

import pytest
import sqlalchemy as sa
from flask_migrate import upgrade

from backend import create_app
from backend.auth.models import Role
from backend.cases.models import Patient, SmsStatus
from backend.config import TestConfig
from backend.database import utcnow
from backend.extensions import db
from backend.outreach import dispatcher, sms
from backend.outreach.models import Message
from tests.outreach.conftest import ACCOUNT_SID, AUTH_TOKEN, FROM_NUMBER
from tests.support import make_user
from tests.support.fake_twilio import Delay, FakeTwilio, Meanwhile
from tests.support.outages import Outage

TEXTS = 10


@pytest.fixture
def outage(fresh_database_url):
    outage = Outage(fresh_database_url)
    yield outage
    outage.close()


@pytest.fixture
def fake():
    fake = FakeTwilio()
    yield fake
    fake.stop()


def app_through(outage: Outage, fake: FakeTwilio, **settings):
    """An app whose database connections go through `outage`, sending one text at a time to `fake`."""
    config = TestConfig(outage.database_url)
    config.DATABASE_BUSY_TIMEOUT_SECONDS = 0.3
    for name, value in {"SMS_BACKEND": "twilio", "TWILIO_ACCOUNT_SID": ACCOUNT_SID, "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
                        "TWILIO_FROM_NUMBER": FROM_NUMBER, "TWILIO_API_BASE_URL": fake.url,
                        "SMS_SEND_CONCURRENCY": 1, "SMS_DISPATCH_BATCH": TEXTS, **settings}.items():
        setattr(config, name, value)
    app = create_app(config)
    with app.app_context():
        upgrade()
    return app


def queue_texts(app) -> set[str]:
    coach = make_user(app, role=Role.COACH)
    now = utcnow()
    with app.app_context():
        patients = [Patient(given_name="P", family_name=str(i), birth_date=dt.date(1990, 1, 1),
                            phone=f"+1617555{i:04d}", timezone="America/New_York", sms_status=SmsStatus.OPTED_IN)
                    for i in range(TEXTS)]
        db.session.add_all(patients)
        db.session.flush()
        ids = [uuid.uuid4() for _ in range(TEXTS)]
        db.session.execute(sa.insert(Message), [
            {"id": ids[i], "patient_id": patients[i].id, "direction": "outbound", "kind": "staff",
             "body": f"text {i}", "status": "queued", "send_at": now, "due_at": now, "attempts": 0,
             "status_at": now, "created_at": now, "updated_at": now, "created_by_id": coach.id}
            for i in range(TEXTS)])
        db.session.commit()
    return {str(i) for i in ids}


def rows(app) -> dict[str, Message]:
    with app.app_context():
        messages = db.session.scalars(sa.select(Message)).all()
        db.session.expunge_all()
    return {str(m.id): m for m in messages}


def blip_on_third_request(outage: Outage, seconds: float | None):
    """Twilio answers in 200 ms (about what it takes over the internet), and its third request
    stops the database (for `seconds`, or until the test ends it)."""

    def stop():
        outage.begin()
        if seconds is not None:
            threading.Timer(seconds, outage.end).start()

    return [Delay(0.2), Delay(0.2), Meanwhile(stop), *[Delay(0.2)] * (TEXTS - 3)]


def test_a_database_blip_mid_batch_sends_every_text_exactly_once_and_none_becomes_unknown(outage, fake):
    app = app_through(outage, fake, SMS_OUTCOME_RETRY_SECONDS=20)
    queued = queue_texts(app)
    fake.answer(*blip_on_third_request(outage, seconds=1.5))

    with app.app_context(), sms.SenderPool(app.config) as pool:
        first = dispatcher.dispatch_once_and_commit(pool=pool)

    went = {text.message_id: text.sid for text in fake.received}
    after_blip = rows(app)
    assert 3 <= len(went) < TEXTS and first.sent == len(went) and first.released == TEXTS - len(went)
    for message_id, sid in went.items():  # recorded once the database answered, SID and all
        assert after_blip[message_id].status == "sent" and after_blip[message_id].twilio_sid == sid
    for message_id in queued - set(went):  # never handed over: back in the queue, attempt unused
        assert after_blip[message_id].status == "queued" and after_blip[message_id].attempts == 0

    with app.app_context():
        dispatcher.dispatch_and_commit()
    per_message = Counter(text.message_id for text in fake.received)
    assert set(per_message) == queued and set(per_message.values()) == {1}
    assert Counter(m.status for m in rows(app).values()) == {"sent": TEXTS}
    with app.app_context():
        db.engine.dispose()


def test_outcomes_wait_in_the_process_until_the_database_answers_and_the_sweep_never_calls_them_unknown(
        outage, fake):
    app = app_through(outage, fake, SMS_OUTCOME_RETRY_SECONDS=0.5)
    queued = queue_texts(app)
    fake.answer(*blip_on_third_request(outage, seconds=None))

    with app.app_context(), sms.SenderPool(app.config) as pool, pytest.raises(sa.exc.OperationalError):
        dispatcher.dispatch_once_and_commit(pool=pool)  # the clock logs it and tries again
    went = {text.message_id: text.sid for text in fake.received}
    outage.end()

    # The next pass, long after a claim counts as abandoned: what this process knows comes first.
    later = utcnow() + dt.timedelta(hours=1)
    with app.app_context(), sms.SenderPool(app.config) as pool:
        tally = dispatcher.dispatch_once_and_commit(pool=pool, now=later)
    assert tally.unknown == 0
    per_message = Counter(text.message_id for text in fake.received)
    assert set(per_message) == queued and set(per_message.values()) == {1}
    final = rows(app)
    assert Counter(m.status for m in final.values()) == {"sent": TEXTS}
    assert all(final[message_id].twilio_sid == sid for message_id, sid in went.items())
    with app.app_context():
        db.engine.dispose()
