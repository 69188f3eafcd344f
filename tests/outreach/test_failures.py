"""When Twilio says no, is busy, is unreachable or goes silent: each ends in its documented state,
and no text is ever sent twice."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest

from backend.database import utcnow
from backend.extensions import db
from backend.outreach import dispatcher
from backend.outreach.models import Message
from tests.outreach.conftest import dispatch
from tests.support.fake_twilio import Delay, Drop, Error, closed_port_url

MINUTE = dt.timedelta(minutes=1)


@pytest.fixture
def queue_text(coach, patient_texting):
    """`queue_text(**patient_fields)` → (patient, message JSON): a coach's text, due now."""

    def factory(**fields):
        patient, _ = patient_texting(**fields)
        response = coach.post(f"/api/v1/patients/{patient['id']}/messages", json={"body": "Hi, it's Maria. Call me?"})
        assert response.status_code == 202, response.get_json()
        return patient, response.get_json()

    return factory


def message(message_json) -> Message:
    return db.session.get(Message, uuid.UUID(message_json["id"]), populate_existing=True)


def test_twilio_21610_opts_the_patient_out_and_cancels_every_queued_text(ctx, twilio, queue_text, coach, clinic):
    patient, first = queue_text()
    later = coach.post(f"/api/v1/patients/{patient['id']}/messages", json={
        "body": "See you Tuesday", "send_at": (utcnow() + dt.timedelta(days=1)).isoformat()}).get_json()
    twilio.answer(Error(400, 21610))

    dispatch()

    assert (message(first).status, message(first).error_code) == ("failed", 21610)
    assert message(later).status == "cancelled" and "opted out" in message(later).status_reason
    after = clinic.get(f"/api/v1/patients/{patient['id']}").get_json()
    assert (after["sms_status"], after["sms_status_method"]) == ("opted_out", "keyword")
    assert len(twilio.received) == 1


@pytest.mark.parametrize("code", [21211, 21614])
def test_an_invalid_number_fails_the_text_and_tells_the_coach_through_the_caseload(
        ctx, twilio, queue_text, coach, clinic, code):
    patient, sent = queue_text()
    twilio.answer(Error(400, code))

    dispatch()

    assert (message(sent).status, message(sent).error_code) == ("failed", code)
    entry = next(e for e in coach.get("/api/v1/caseload").get_json()["items"] if e["patient_id"] == patient["id"])
    assert entry["phone_invalid"] is True and "phone_invalid" in entry["priority_reasons"]
    assert clinic.get(f"/api/v1/patients/{patient['id']}").get_json()["phone_invalid_at"] is not None
    refused = coach.post(f"/api/v1/patients/{patient['id']}/messages", json={"body": "Trying again"})
    assert refused.status_code == 409 and refused.get_json()["type"] == "sms-not-permitted"

    current = clinic.get(f"/api/v1/patients/{patient['id']}")
    clinic.patch(f"/api/v1/patients/{patient['id']}", json={"phone": "617-555-0177"},
                 headers={"If-Match": current.headers["ETag"]})
    assert clinic.get(f"/api/v1/patients/{patient['id']}").get_json()["phone_invalid_at"] is None


def test_twilio_busy_is_retried_with_backoff_then_sent_once(ctx, twilio, queue_text):
    _, text = queue_text()
    twilio.answer(Error(429, 20429))
    now = utcnow()

    assert dispatch(now).retrying == 1
    row = message(text)
    assert row.status == "queued" and row.due_at > now and "429" in row.status_reason
    assert dispatch(row.due_at - dt.timedelta(seconds=1)).sent == 0  # not before the backoff
    assert dispatch(row.due_at).sent == 1
    assert message(text).status == "sent" and len(twilio.received) == 2


def test_retries_stop_at_the_limit_and_the_text_fails(ctx, twilio, queue_text, app, monkeypatch):
    monkeypatch.setitem(app.config, "SMS_MAX_ATTEMPTS", 2)
    _, text = queue_text()
    twilio.answer(Error(429, 20429), Error(429, 20429))
    now = utcnow()
    dispatch(now)
    dispatch(message(text).due_at)
    assert message(text).status == "failed" and "after 2 attempts" in message(text).status_reason
    assert dispatch(now + dt.timedelta(days=1)).claimed == 0


def test_a_refused_connection_sent_nothing_so_the_text_is_retried(ctx, twilio, queue_text, app, monkeypatch):
    _, text = queue_text()
    monkeypatch.setitem(app.config, "TWILIO_API_BASE_URL", closed_port_url())
    assert dispatch().retrying == 1
    assert message(text).status == "queued" and "connection refused" in message(text).status_reason

    monkeypatch.setitem(app.config, "TWILIO_API_BASE_URL", twilio.url)
    assert dispatch(message(text).due_at).sent == 1
    assert len(twilio.received) == 1


@pytest.mark.parametrize("behaviour", [Drop(), Delay(2.0)], ids=["dropped connection", "timeout"])
def test_a_text_whose_fate_is_unknown_is_never_retried_and_is_listed_for_staff(
        ctx, twilio, queue_text, clinic, behaviour):
    _, text = queue_text()
    twilio.answer(behaviour)

    assert dispatch().unknown == 1
    assert dispatch(utcnow() + dt.timedelta(days=2)).claimed == 0

    assert message(text).status == "unknown" and "check before resending" in message(text).status_reason
    assert len(twilio.received) == 1
    listed = clinic.get("/api/v1/messages?status=unknown").get_json()["items"]
    assert [m["id"] for m in listed] == [text["id"]]


def test_a_crash_between_send_and_commit_never_sends_a_second_text(ctx, app, twilio, queue_text, monkeypatch):
    _, text = queue_text()

    def crash(*args, **kwargs):
        raise KeyboardInterrupt("the dispatcher process dies here")

    with monkeypatch.context() as patched:
        patched.setattr(dispatcher, "_record_and_commit", crash)
        with pytest.raises(KeyboardInterrupt):
            dispatcher.dispatch_and_commit()
    db.session.rollback()
    assert len(twilio.received) == 1 and message(text).status == "sending"

    now, stale = utcnow(), dt.timedelta(seconds=app.config["SMS_SENDING_STALE_SECONDS"])
    assert dispatch(now + MINUTE).claimed == 0  # maybe another dispatcher's text in flight: left alone
    assert dispatch(now + stale + MINUTE).unknown == 1  # abandoned (the dispatcher restarted): unknown
    assert message(text).status == "unknown" and "stopped while sending" in message(text).status_reason
    assert dispatch(now + dt.timedelta(days=1)).claimed == 0
    assert len(twilio.received) == 1


def test_news_from_twilio_resolves_an_unknown_text(ctx, twilio, queue_text, client):
    from tests.outreach.conftest import signed_post

    _, text = queue_text()
    twilio.answer(Drop())
    dispatch()
    response = signed_post(client, "/webhooks/twilio/status", {
        "MessageSid": "SM" + "1" * 32, "MessageStatus": "delivered"}, query=f"message_id={text['id']}")
    assert response.status_code == 200
    row = message(text)
    assert (row.status, row.twilio_sid) == ("delivered", "SM" + "1" * 32)


def test_texting_logs_ids_never_numbers_names_or_words(ctx, app, twilio, queue_text, client, json_log, monkeypatch):
    from tests.outreach.conftest import inbound

    _, sent = queue_text(given_name="Zebulon", family_name="Quimby")
    twilio.answer(Drop())
    dispatch()  # an unknown outcome logs a warning
    monkeypatch.setitem(app.config, "SMS_BACKEND", "console")
    queue_text(phone="617-555-0188")
    dispatch()  # the console backend logs each text
    inbound(client, "Zebulon here, call me at 555 0199", sid="SM" + "9" * 32)
    text = json_log.text()
    assert sent["id"] in text and "sms sent (console backend)" in text
    for secret in ("Zebulon", "Quimby", "5550134", "5550188", "555 0199", "Call me?", "call me at"):
        assert secret not in text, secret


@pytest.mark.parametrize("status, code", [(401, 20003), (404, 20404)])
def test_refused_credentials_hold_texts_without_using_their_attempts(ctx, twilio, queue_text, status, code):
    _, text = queue_text()
    twilio.answer(Error(status, code))
    now = utcnow()
    assert dispatch(now).retrying == 1
    row = message(text)
    assert (row.status, row.attempts) == ("queued", 0) and "TWILIO_" in row.status_reason
    assert dispatch(row.due_at).sent == 1
