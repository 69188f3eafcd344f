"""Message templates: admins write them, the privacy rules check them, every role reads them."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
import sqlalchemy as sa

from backend.auth.models import Role
from backend.database import utcnow
from backend.extensions import db
from backend.outreach.models import Message


def test_a_template_is_saved_with_its_sample_encoding_and_segments(admin, make_client):
    response = admin.post("/api/v1/message-templates", json={
        "name": "Day 1 check-in", "body": "Hi {first_name}, it's {coach_name}. How are you doing? "
                                          "Call me at {callback_phone}."})
    assert response.status_code == 201
    body = response.get_json()
    assert body["sample"].endswith("Reply STOP to opt out.") and "{" not in body["sample"]
    assert body["encoding"] == "GSM-7" and body["segments"] == 1
    coach = make_client(Role.COACH)
    assert [t["name"] for t in coach.get("/api/v1/message-templates").get_json()["items"]] == ["Day 1 check-in"]


def test_a_revealing_template_is_refused_listing_the_words(admin):
    response = admin.post("/api/v1/message-templates", json={
        "name": "Bad", "body": "Hi {first_name}, your methadone dose at the recovery center is ready."})
    assert response.status_code == 422
    body = response.get_json()
    assert body["type"] == "message-privacy" and body["words"] == ["methadone", "recovery"]


@pytest.mark.parametrize("body", ["Hi {full_name}", "Hi {first_name", "x" * 320])
def test_unknown_placeholders_and_texts_over_two_segments_are_refused(admin, body):
    response = admin.post("/api/v1/message-templates", json={"name": "T", "body": body})
    assert response.status_code == 422 and response.get_json()["type"] == "validation-error"


def test_only_admins_write_templates_and_edits_are_checked_too(admin, make_client):
    coach = make_client(Role.COACH)
    assert coach.post("/api/v1/message-templates", json={"name": "T", "body": "Hi"}).status_code == 403
    created = admin.post("/api/v1/message-templates", json={"name": "T", "body": "Hi {first_name}"}).get_json()
    url = f"/api/v1/message-templates/{created['id']}"
    assert admin.patch(url, json={"body": "Your Narcan kit is ready"}).get_json()["type"] == "message-privacy"
    assert admin.patch(url, json={"body": "See you at {appointment_time}"}).status_code == 200
    assert coach.patch(url, json={"body": "x"}).status_code == 403


def test_a_template_named_after_an_automatic_text_replaces_it_and_may_use_only_what_it_knows(
        admin, ctx, patient_texting):
    ride = admin.post("/api/v1/message-templates", json={
        "name": "Ride", "body": "Hi {first_name}, your ride is at {appointment_time}."}).get_json()
    renamed = admin.patch(f"/api/v1/message-templates/{ride['id']}", json={"name": "check_in"})
    assert renamed.status_code == 422 and "appointment_time" in renamed.get_json()["detail"]
    assert admin.post("/api/v1/message-templates", json={
        "name": "check_in", "body": "Hey {first_name}, thinking of you."}).status_code == 201

    _, episode = patient_texting(discharged_at=(utcnow() - dt.timedelta(hours=1)).isoformat())
    bodies = set(db.session.scalars(sa.select(Message.body).where(Message.episode_id == uuid.UUID(episode["id"]))))
    assert bodies == {"Hey Alex, thinking of you. Reply STOP to opt out."}
