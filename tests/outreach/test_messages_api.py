"""A coach texts a patient: consent and the privacy check first, then the outbox; the thread
shows both directions with their statuses."""

from __future__ import annotations

import datetime as dt

import pytest

from backend.auth.models import Role
from backend.database import utcnow
from tests.outreach.conftest import PATIENT_PHONE, dispatch


def test_a_coachs_text_is_queued_then_sent_and_shown_in_the_thread(ctx, twilio, coach, patient_texting):
    patient, episode = patient_texting()
    response = coach.post(f"/api/v1/patients/{patient['id']}/messages", json={"body": "Hi Alex, it's Maria. Free?"})
    assert response.status_code == 202
    queued = response.get_json()
    assert (queued["status"], queued["kind"], queued["episode_id"], queued["segments"]) == \
           ("queued", "staff", episode["id"], 1)

    dispatch()

    assert [(t.to, t.body) for t in twilio.received] == [(PATIENT_PHONE, "Hi Alex, it's Maria. Free?")]
    thread = coach.get(f"/api/v1/patients/{patient['id']}/messages").get_json()["items"]
    assert [(m["id"], m["status"], m["direction"]) for m in thread] == [(queued["id"], "sent", "outbound")]


@pytest.mark.parametrize("status", ["unknown", "opted_out"])
def test_a_patient_who_has_not_opted_in_cannot_be_texted(ctx, coach, patient_texting, status):
    patient, _ = patient_texting(sms_status=status)
    response = coach.post(f"/api/v1/patients/{patient['id']}/messages", json={"body": "Hi"})
    assert response.status_code == 409 and response.get_json()["type"] == "sms-not-permitted"
    assert coach.get(f"/api/v1/patients/{patient['id']}/messages").get_json()["items"] == []


def test_revealing_free_text_is_refused_unless_the_coach_confirms(ctx, coach, patient_texting):
    patient, _ = patient_texting()
    url = f"/api/v1/patients/{patient['id']}/messages"
    refused = coach.post(url, json={"body": "Alex Rivera, your Suboxone refill is at the recovery clinic"})
    assert refused.status_code == 422
    problem = refused.get_json()
    assert problem["type"] == "message-privacy"
    assert problem["words"] == ["recovery", "suboxone", "the patient's full name"]
    assert coach.get(url).get_json()["items"] == []

    confirmed = coach.post(url, json={"body": "Your recovery group meets at 6", "confirm_privacy": True})
    assert confirmed.status_code == 202 and "confirmed" in confirmed.get_json()["status_reason"]


def test_a_template_is_filled_from_the_patient_and_the_variables(ctx, twilio, admin, coach, patient_texting):
    template = admin.post("/api/v1/message-templates", json={
        "name": "Ride", "body": "Hi {first_name}, your ride comes at {appointment_time}."}).get_json()
    patient, _ = patient_texting(preferred_name="Lex")
    url = f"/api/v1/patients/{patient['id']}/messages"

    missing = coach.post(url, json={"template_id": template["id"]})
    assert missing.status_code == 422 and "appointment_time" in str(missing.get_json()["errors"])
    unknown = coach.post(url, json={"template_id": template["id"], "variables": {"diagnosis": "x"}})
    assert unknown.status_code == 422
    sent = coach.post(url, json={"template_id": template["id"], "variables": {"appointment_time": "2:15 PM"}})
    assert sent.status_code == 202
    assert sent.get_json()["body"] == "Hi Lex, your ride comes at 2:15 PM. Reply STOP to opt out."
    both = coach.post(url, json={"template_id": template["id"], "body": "Hi"})
    assert both.status_code == 422


def test_a_scheduled_text_waits_for_its_time(ctx, twilio, coach, patient_texting):
    patient, _ = patient_texting()
    send_at = utcnow() + dt.timedelta(hours=3)
    queued = coach.post(f"/api/v1/patients/{patient['id']}/messages",
                        json={"body": "Checking in later", "send_at": send_at.isoformat()}).get_json()
    assert dt.datetime.fromisoformat(queued["due_at"]) == send_at
    assert dispatch(send_at - dt.timedelta(minutes=1)).sent == 0
    assert dispatch(send_at).sent == 1
    too_far = coach.post(f"/api/v1/patients/{patient['id']}/messages",
                         json={"body": "x", "send_at": (utcnow() + dt.timedelta(days=120)).isoformat()})
    assert too_far.status_code == 422


def test_only_the_patients_coach_and_clinic_staff_reach_the_thread(ctx, coach, clinic, make_client, patient_texting):
    patient, _ = patient_texting()
    url = f"/api/v1/patients/{patient['id']}/messages"
    assert make_client(Role.COACH).post(url, json={"body": "Hi"}).status_code == 404
    assert make_client(Role.ED_NURSE).get(url).status_code == 403
    assert clinic.post(url, json={"body": "Hi from the clinic"}).status_code == 202
    assert len(coach.get(url).get_json()["items"]) == 1


def test_a_retried_post_with_the_same_idempotency_key_queues_one_text(ctx, coach, patient_texting):
    patient, _ = patient_texting()
    url = f"/api/v1/patients/{patient['id']}/messages"
    first = coach.post(url, json={"body": "Hi"}, headers={"Idempotency-Key": "text-1"})
    again = coach.post(url, json={"body": "Hi"}, headers={"Idempotency-Key": "text-1"})
    assert first.status_code == again.status_code == 202 and first.get_json()["id"] == again.get_json()["id"]
    assert len(coach.get(url).get_json()["items"]) == 1


def test_a_text_retried_with_its_client_id_after_its_idempotency_key_is_gone_is_not_queued_twice(
        ctx, twilio, coach, patient_texting):
    """A phone offline for more than a week: its first POST queued the text (and it went), the
    answer was lost, the key has been purged since. The client id still makes the retry a no-op."""
    import uuid

    from backend import idempotency

    patient, _ = patient_texting()
    url, text_id = f"/api/v1/patients/{patient['id']}/messages", str(uuid.uuid4())
    body = {"id": text_id, "body": "Hi Alex, checking in. Call me when you can."}
    first = coach.post(url, json=body, headers={"Idempotency-Key": "offline-1"})
    assert first.status_code == 202 and first.get_json()["id"] == text_id
    dispatch()
    assert idempotency.purge_expired(now=utcnow() + dt.timedelta(days=8)) >= 1

    again = coach.post(url, json=body, headers={"Idempotency-Key": "offline-1"})
    assert again.status_code == 200 and "Idempotent-Replayed" not in again.headers
    assert (again.get_json()["id"], again.get_json()["status"]) == (text_id, "sent")
    dispatch()
    assert len(twilio.received) == 1
    assert [m["id"] for m in coach.get(url).get_json()["items"]] == [text_id]


def test_a_client_id_used_for_another_text_is_409_and_queues_nothing(ctx, coach, patient_texting):
    import uuid

    patient, _ = patient_texting()
    url, text_id = f"/api/v1/patients/{patient['id']}/messages", str(uuid.uuid4())
    assert coach.post(url, json={"id": text_id, "body": "Hi"}).status_code == 202
    other = coach.post(url, json={"id": text_id, "body": "Hi again"})
    assert other.status_code == 409 and "id" in other.get_json()["errors"]
    assert len(coach.get(url).get_json()["items"]) == 1
