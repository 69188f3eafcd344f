"""Fixtures for outreach: a fake Twilio the real library talks to, a texting patient, signed
webhooks and a dispatcher driven by a controllable clock."""

from __future__ import annotations

import datetime as dt
from urllib.parse import urlencode

import pytest
from twilio.request_validator import RequestValidator

from backend import unit_of_work
from backend.outreach import dispatcher
from tests.cases.conftest import clinic, nurse, open_episode, register  # noqa: F401 - shared fixtures
from tests.support.fake_twilio import FakeTwilio

AUTH_TOKEN = "test-twilio-auth-token"
ACCOUNT_SID = "AC" + "0" * 32
FROM_NUMBER = "+16175550000"
PATIENT_PHONE = "+16175550134"


@pytest.fixture
def twilio(app, monkeypatch):
    """A fake Twilio on 127.0.0.1, and the app configured to send to it with the real library."""
    fake = FakeTwilio()
    for name, value in {"SMS_BACKEND": "twilio", "TWILIO_ACCOUNT_SID": ACCOUNT_SID, "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
                        "TWILIO_FROM_NUMBER": FROM_NUMBER, "TWILIO_MESSAGING_SERVICE_SID": "",
                        "TWILIO_API_BASE_URL": fake.url, "SMS_SEND_TIMEOUT_SECONDS": 0.5}.items():
        monkeypatch.setitem(app.config, name, value)
    yield fake
    fake.stop()


@pytest.fixture
def patient_texting(register, open_episode, coach, clinic):  # noqa: F811 - the shared fixtures
    """`patient_texting(discharged_at=None, sms_status="opted_in", **patient_fields)` → (patient,
    episode), coached by `coach`."""

    def factory(discharged_at: str | None = None, sms_status: str = "opted_in", **fields):
        patient = register(**fields)
        if sms_status != "unknown":
            response = clinic.put(f"/api/v1/patients/{patient['id']}/sms-consent",
                                  json={"status": sms_status, "method": "verbal"})
            assert response.status_code == 200, response.get_json()
        arrived = {"arrived_at": (dt.datetime.fromisoformat(discharged_at) - dt.timedelta(hours=6)).isoformat()} \
            if discharged_at else {}
        episode = open_episode(coach=coach, patient=patient, **arrived)
        if discharged_at is not None:
            discharge = clinic.post(f"/api/v1/episodes/{episode['id']}/discharge",
                                    json={"discharged_at": discharged_at})
            assert discharge.status_code == 200, discharge.get_json()
        return patient, episode

    return factory


def dispatch(now: dt.datetime | None = None) -> dispatcher.Tally:
    """One dispatcher run at `now` (inside the test's application context)."""
    tally = dispatcher.dispatch_and_commit(now=now)
    unit_of_work.commit()
    return tally


def signed_post(client, path: str, form: dict, *, token: str = AUTH_TOKEN, query: str = ""):
    """POST `form` to a webhook as Twilio would, signed over the public URL."""
    url = f"http://testserver{path}" + (f"?{query}" if query else "")
    signature = RequestValidator(token).compute_signature(url, form)
    return client.post(path + (f"?{query}" if query else ""), data=urlencode(form),
                       content_type="application/x-www-form-urlencoded", headers={"X-Twilio-Signature": signature})


def inbound(client, body: str, *, sid: str, from_: str = PATIENT_PHONE):
    return signed_post(client, "/webhooks/twilio/inbound", {
        "MessageSid": sid, "AccountSid": ACCOUNT_SID, "From": from_, "To": FROM_NUMBER, "Body": body})
