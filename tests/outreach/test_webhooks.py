"""Twilio's webhooks: signed or refused, idempotent on MessageSid, opt-out honoured at once, and
replies landing in the right inbox."""

from __future__ import annotations

import datetime as dt
import uuid
from urllib.parse import urlencode

import pytest
import sqlalchemy as sa
from twilio.request_validator import RequestValidator

from backend.auth.models import Role
from backend.database import utcnow
from backend.extensions import db
from backend.outreach.models import Message
from backend.outreach.privacy import revealing_words
from tests.outreach.conftest import (
    ACCOUNT_SID,
    AUTH_TOKEN,
    PATIENT_PHONE,
    dispatch,
    inbound,
    signed_post,
)


def sid() -> str:
    return "SM" + uuid.uuid4().hex


def queued_for(patient) -> list[Message]:
    return list(db.session.scalars(sa.select(Message).where(Message.patient_id == uuid.UUID(patient["id"]),
                                                            Message.status == "queued")))


@pytest.fixture
def discharged(twilio, patient_texting):
    """An opted-in patient discharged an hour ago: five check-ins queued."""
    patient, episode = patient_texting(discharged_at=(utcnow() - dt.timedelta(hours=1)).isoformat())
    assert len(queued_for(patient)) == 5
    return patient, episode


@pytest.mark.parametrize("body", ["STOP", "  stop. ", "Unsubscribe!", "please stop texting me",
                                  "Don't text me anymore", "no more messages"])
def test_an_opt_out_by_signed_webhook_opts_out_and_cancels_everything_queued(ctx, twilio, client, clinic,
                                                                             discharged, body):
    patient, _ = discharged
    response = inbound(client, body, sid=sid())
    assert response.status_code == 200 and response.mimetype == "text/xml"
    assert "no more texts" in response.get_data(as_text=True)
    assert clinic.get(f"/api/v1/patients/{patient['id']}").get_json()["sms_status"] == "opted_out"
    assert queued_for(patient) == []
    dispatch(utcnow() + dt.timedelta(days=31))
    assert twilio.received == []


def test_a_badly_signed_webhook_is_refused_and_changes_nothing(ctx, client, clinic, discharged):
    patient, _ = discharged
    form = {"MessageSid": sid(), "From": PATIENT_PHONE, "Body": "STOP", "AccountSid": ACCOUNT_SID}
    url = "http://testserver/webhooks/twilio/inbound"
    signatures = {
        "another token": RequestValidator("not-the-auth-token").compute_signature(url, form),
        "another body": RequestValidator(AUTH_TOKEN).compute_signature(url, {**form, "Body": "hello"}),
        "another URL": RequestValidator(AUTH_TOKEN).compute_signature("https://elsewhere.example/x", form),
        "none": None,
    }
    for why, signature in signatures.items():
        response = client.post("/webhooks/twilio/inbound", data=urlencode(form),
                               content_type="application/x-www-form-urlencoded",
                               headers={"X-Twilio-Signature": signature} if signature else {})
        assert response.status_code == 403 and response.mimetype == "application/problem+json", why
    assert clinic.get(f"/api/v1/patients/{patient['id']}").get_json()["sms_status"] == "opted_in"
    assert len(queued_for(patient)) == 5
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Message).where(Message.direction == "inbound")) == 0


def test_a_repeated_inbound_webhook_changes_nothing_and_sends_no_second_confirmation(ctx, client, discharged):
    message_sid = sid()
    first = inbound(client, "STOP", sid=message_sid)
    again = inbound(client, "STOP", sid=message_sid)
    assert "<Message>" in first.get_data(as_text=True)
    assert again.status_code == 200 and "<Message>" not in again.get_data(as_text=True)
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Message).where(
        Message.twilio_sid == message_sid)) == 1


def test_start_opts_back_in_and_help_answers_without_naming_the_service(ctx, app, client, clinic, discharged):
    patient, _ = discharged
    inbound(client, "STOP", sid=sid())
    start = inbound(client, "Start", sid=sid())
    assert "texts from this number again" in start.get_data(as_text=True)
    after = clinic.get(f"/api/v1/patients/{patient['id']}").get_json()
    assert (after["sms_status"], after["sms_status_method"]) == ("opted_in", "keyword")
    replanned = queued_for(patient)
    assert len(replanned) == 5 and all(m.send_at > utcnow() for m in replanned)  # all still ahead

    help_text = inbound(client, "HELP", sid=sid()).get_data(as_text=True)
    assert app.config["SMS_CALLBACK_PHONE"] in help_text
    assert revealing_words(help_text) == [] and "Bridgeline" not in help_text


def test_a_reply_lands_unread_in_the_coachs_inbox_and_the_caseload(ctx, client, coach, clinic, make_client,
                                                                   discharged):
    patient, episode = discharged
    inbound(client, "Doing ok, thanks", sid=sid())

    unread = coach.get("/api/v1/inbox?unread=true").get_json()["items"]
    assert [(m["body"], m["patient_id"], m["status"]) for m in unread] == [("Doing ok, thanks", patient["id"],
                                                                           "received")]
    entry = next(e for e in coach.get("/api/v1/caseload").get_json()["items"] if e["episode_id"] == episode["id"])
    assert entry["unread_messages"] == 1 and "unread_reply" in entry["priority_reasons"]
    review = clinic.get("/api/v1/caseloads").get_json()
    assert next(row["unread"] for row in review["coaches"] if row["coach_id"] == str(coach.user.id)) == 1
    assert make_client(Role.COACH).get("/api/v1/inbox").get_json()["items"] == []

    read = coach.post(f"/api/v1/inbox/{unread[0]['id']}/read")
    assert read.status_code == 200 and read.get_json()["read_at"] is not None
    assert coach.get("/api/v1/inbox?unread=true").get_json()["items"] == []
    entry = next(e for e in coach.get("/api/v1/caseload").get_json()["items"] if e["episode_id"] == episode["id"])
    assert entry["unread_messages"] == 0 and "unread_reply" not in entry["priority_reasons"]
    thread = coach.get(f"/api/v1/patients/{patient['id']}/messages").get_json()["items"]
    assert thread[0]["direction"] == "inbound" and thread[0]["read_at"] is not None

    for body in ("Also, can we talk Friday?", "Friday works"):  # the coach's load counts replies, not patients
        inbound(client, body, sid=sid())
    review = clinic.get("/api/v1/caseloads").get_json()
    assert next(row["unread"] for row in review["coaches"] if row["coach_id"] == str(coach.user.id)) == 2


@pytest.mark.parametrize("shared", [False, True], ids=["unknown number", "number shared by two patients"])
def test_a_reply_from_no_single_patient_goes_to_the_clinic_inbox(ctx, client, coach, clinic, register, discharged,
                                                                 shared):
    number = PATIENT_PHONE if shared else "+16175550999"
    if shared:
        register(phone=PATIENT_PHONE, given_name="Sam")
    inbound(client, "who is this?", sid=sid(), from_=number)
    clinic_inbox = clinic.get("/api/v1/inbox?unread=true").get_json()["items"]
    assert [(m["patient_id"], m["from_phone"]) for m in clinic_inbox] == [(None, number)]
    assert coach.get("/api/v1/inbox").get_json()["items"] == []


def test_status_callbacks_move_a_text_forward_once_and_never_back(ctx, twilio, client, coach, discharged):
    patient, _ = discharged
    coach.post(f"/api/v1/patients/{patient['id']}/messages", json={"body": "Hi there"})
    dispatch()
    row = db.session.scalar(sa.select(Message).where(Message.kind == "staff"))

    def callback(status, **extra):
        return signed_post(client, "/webhooks/twilio/status",
                           {"MessageSid": row.twilio_sid, "MessageStatus": status, **extra},
                           query=f"message_id={row.id}")

    assert callback("delivered").status_code == 200
    db.session.refresh(row)
    first = (row.status, row.status_at, row.updated_at)
    assert first[0] == "delivered"
    for repeat in ("delivered", "sent"):
        assert callback(repeat).status_code == 200
        db.session.refresh(row)
        assert (row.status, row.status_at, row.updated_at) == first


def test_an_undelivered_callback_for_a_landline_flags_the_phone(ctx, twilio, client, coach, clinic, discharged):
    patient, _ = discharged
    coach.post(f"/api/v1/patients/{patient['id']}/messages", json={"body": "Hi there"})
    dispatch()
    row = db.session.scalar(sa.select(Message).where(Message.kind == "staff"))
    signed_post(client, "/webhooks/twilio/status", {"MessageSid": row.twilio_sid, "MessageStatus": "undelivered",
                                                    "ErrorCode": "30006"})
    db.session.refresh(row)
    assert (row.status, row.error_code) == ("undelivered", 30006)
    assert clinic.get(f"/api/v1/patients/{patient['id']}").get_json()["phone_invalid_at"] is not None


def test_texts_join_the_episode_timeline_without_their_words(ctx, client, coach, nurse, discharged):
    patient, episode = discharged
    coach.post(f"/api/v1/patients/{patient['id']}/messages", json={"body": "Hi there, free today?"})
    dispatch()
    inbound(client, "yes after 3", sid=sid())

    items = coach.get(f"/api/v1/episodes/{episode['id']}/timeline").get_json()["items"]
    texts = [item for item in items if item["kind"].startswith("text_")]
    assert [item["kind"] for item in texts] == ["text_sent", "text_received"]
    assert texts[0]["detail"] == {"kind": "staff", "status": "sent"} and texts[1]["detail"] == {"read": False}
    assert "free today" not in str(items) and "after 3" not in str(items)
    nurse_view = nurse.get(f"/api/v1/episodes/{episode['id']}/timeline")  # the nurse who opened it
    assert nurse_view.status_code == 200
    assert [i for i in nurse_view.get_json()["items"] if i["kind"].startswith("text_")] == []
