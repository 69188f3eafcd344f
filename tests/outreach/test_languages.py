"""Texts in the patient's language, Spanish first: automatic texts written when they go, opting
out and help in Spanish, the privacy check in Spanish — through the real `twilio` library and
the fake Twilio server."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
import sqlalchemy as sa

from backend.database import utcnow
from backend.extensions import db
from backend.outreach import languages
from backend.outreach.keywords import Intent, Reading, read
from backend.outreach.models import Message
from backend.outreach.privacy import revealing_words
from backend.outreach.templates import appointment_values
from tests.outreach.conftest import dispatch, inbound, signed_post

SPANISH_HINT = languages.SPANISH.opt_out_hint
ENGLISH_HINT = languages.ENGLISH.opt_out_hint


def tomorrow_at_noon_utc() -> dt.datetime:
    return (utcnow() + dt.timedelta(days=1)).replace(hour=16, minute=0, second=0, microsecond=0)


def run_until(twilio, count: int, start: dt.datetime, *, days: int) -> None:
    at = start
    while len(twilio.received) < count and at < start + dt.timedelta(days=days):
        dispatch(at)
        at += dt.timedelta(hours=1)


def test_a_spanish_speaker_gets_the_check_in_in_spanish_and_in_english_once_they_change(
        ctx, twilio, patient_texting, clinic):
    discharged = utcnow() - dt.timedelta(hours=1)
    patient, _ = patient_texting(discharged_at=discharged.isoformat(), language="es-MX", preferred_name="Lupe")

    run_until(twilio, 1, utcnow(), days=2)
    day1 = twilio.received[0].body
    assert day1.startswith("Hola Lupe") and day1.endswith(SPANISH_HINT) and revealing_words(day1) == []
    stored = db.session.scalar(sa.select(Message).where(Message.twilio_sid.is_not(None)))
    assert (stored.body, stored.language, stored.fell_back) == (day1, "es", False)  # exactly what went

    current = clinic.get(f"/api/v1/patients/{patient['id']}")
    assert clinic.patch(f"/api/v1/patients/{patient['id']}", json={"language": "en"},
                        headers={"If-Match": current.headers["ETag"]}).status_code == 200
    run_until(twilio, 2, utcnow(), days=4)
    day3 = twilio.received[1].body
    assert day3.startswith("Hi Lupe") and day3.endswith(ENGLISH_HINT)


def test_a_template_in_spanish_replaces_the_built_in_text_and_a_missing_language_falls_back_counted(
        ctx, twilio, patient_texting, admin):
    admin.post("/api/v1/message-templates", json={
        "name": "check_in", "language": "es",
        "body": "¡Hola {first_name}! Aquí {coach_name}. Llame al {callback_phone}."})
    discharged = utcnow() - dt.timedelta(hours=1)
    patient_texting(discharged_at=discharged.isoformat(), language="es", phone="+16175550101")
    patient_texting(discharged_at=discharged.isoformat(), language="ht", phone="+16175550102")

    run_until(twilio, 2, utcnow(), days=2)
    bodies = {text.to: text.body for text in twilio.received}
    assert bodies["+16175550101"].startswith("¡Hola Alex! Aquí") and bodies["+16175550101"].endswith(SPANISH_HINT)
    assert bodies["+16175550102"].startswith("Hi Alex") and bodies["+16175550102"].endswith(ENGLISH_HINT)
    fell_back = db.session.scalars(sa.select(Message.phone).where(Message.fell_back.is_(True),
                                                              Message.twilio_sid.is_not(None))).all()
    assert fell_back == ["+16175550102"]  # Haitian Creole: no text yet, English, counted


def test_a_reminder_gives_date_and_time_in_the_patients_language():
    starts = dt.datetime(2026, 11, 24, 20, 0, tzinfo=dt.timezone.utc)
    assert appointment_values(starts, "America/New_York", "es-MX") == {
        "appointment_date": "martes, 24 de noviembre", "appointment_time": "15:00"}
    assert appointment_values(starts, "America/New_York", "en") == {
        "appointment_date": "Tue Nov 24", "appointment_time": "3:00 PM"}


@pytest.mark.parametrize("body, sid", [("ALTO", "SMes1"), ("parar.", "SMes2"), ("No más", "SMes3"),
                                       ("no me escriban más", "SMes4")])
def test_spanish_opt_outs_cancel_everything_queued_and_get_one_spanish_confirmation(
        ctx, twilio, client, clinic, patient_texting, body, sid):
    patient, _ = patient_texting(discharged_at=(utcnow() - dt.timedelta(hours=1)).isoformat(), language="es")
    queued = lambda: db.session.scalar(sa.select(sa.func.count()).select_from(Message).where(  # noqa: E731
        Message.patient_id == uuid.UUID(patient["id"]), Message.status == "queued"))
    assert queued() == 5

    answer = inbound(client, body, sid=sid)
    again = inbound(client, body, sid=sid)  # Twilio retries the webhook: no second answer

    assert answer.status_code == 200 and "No recibirá más mensajes" in answer.get_data(as_text=True)
    assert "<Message>" not in again.get_data(as_text=True)
    assert clinic.get(f"/api/v1/patients/{patient['id']}").get_json()["sms_status"] == "opted_out"
    assert queued() == 0
    unread = [m["body"] for m in clinic.get("/api/v1/inbox?unread=true").get_json()["items"]]
    assert (body in unread) == (body == "no me escriban más")  # plain words reach the coach


def test_ayuda_gets_the_spanish_help_with_the_callback_number_and_no_service_word(ctx, twilio, client, app,
                                                                                patient_texting):
    patient_texting(language="es")
    answer = inbound(client, "Ayuda", sid="SMhelp1").get_data(as_text=True)
    assert "Para ayuda, llame al" in answer and app.config["SMS_CALLBACK_PHONE"] in answer
    assert revealing_words(answer) == []


def test_twilios_own_opt_out_answer_is_not_doubled(ctx, twilio, client, clinic, patient_texting):
    patient, _ = patient_texting(language="es")
    form = {"MessageSid": "SMadv1", "From": "+16175550134", "To": "+16175550000", "Body": "ALTO",
            "OptOutType": "STOP"}
    answer = signed_post(client, "/webhooks/twilio/inbound", form).get_data(as_text=True)
    assert "<Message>" not in answer  # Advanced Opt-Out answered already
    assert clinic.get(f"/api/v1/patients/{patient['id']}").get_json()["sms_status"] == "opted_out"


@pytest.mark.parametrize("body", ["Su cita en la clínica de metadona es mañana.",
                                  "Sobredosis: llame al {callback_phone}", "Su programa de desintoxicación",
                                  "Apoyo para su recuperación"])
def test_a_spanish_template_that_reveals_the_service_is_refused_with_the_words(admin, body):
    response = admin.post("/api/v1/message-templates", json={"name": "Aviso", "language": "es", "body": body})
    assert response.status_code == 422 and response.get_json()["type"].endswith("message-privacy")
    assert response.get_json()["words"]


def test_a_coachs_spanish_free_text_that_reveals_the_service_needs_confirming(coach, patient_texting):
    patient, _ = patient_texting(language="es")
    url = f"/api/v1/patients/{patient['id']}/messages"
    refused = coach.post(url, json={"body": "¿Necesita más naloxona o metadona?"})
    assert refused.status_code == 422 and set(refused.get_json()["words"]) == {"metadona", "naloxona"}
    assert coach.post(url, json={"body": "¿Necesita más naloxona o metadona?", "confirm_privacy": True}
                      ).status_code == 202


def test_templates_are_named_once_per_language_and_only_in_languages_texts_go_in(admin, coach):
    body = {"name": "Saludo", "body": "Hola {first_name}, ¿cómo está?"}
    spanish = admin.post("/api/v1/message-templates", json={**body, "language": "es"})
    assert spanish.status_code == 201 and spanish.get_json()["sample"].endswith(SPANISH_HINT)
    assert spanish.get_json()["encoding"] == "UCS-2"
    assert admin.post("/api/v1/message-templates", json={**body, "language": "es"}).status_code == 409
    assert admin.post("/api/v1/message-templates", json={**body, "language": "en"}).status_code == 201
    assert admin.post("/api/v1/message-templates", json={**body, "language": "ht"}).status_code == 422
    listed = [(t["name"], t["language"]) for t in coach.get("/api/v1/message-templates").get_json()["items"]]
    assert ("Saludo", "en") in listed and ("Saludo", "es") in listed


@pytest.mark.parametrize("body, intent, bare", [
    ("ALTO", "opt_out", True), ("parar.", "opt_out", True), ("No más", "opt_out", True), ("BAJA!", "opt_out", True),
    ("Pare", "opt_out", True), ("cancelar", "opt_out", True), ("basta", "opt_out", True),
    ("no me escriban más", "opt_out", False), ("Ya no me mande mensajes", "opt_out", False),
    ("no quiero más mensajes", "opt_out", False), ("número equivocado", "opt_out", False),
    ("COMENZAR", "opt_in", True), ("Sí", "opt_in", True), ("ayuda", "help", True),
])
def test_spanish_keywords_and_requests_are_read_in_spanish(body, intent, bare):
    reading = read(body)
    assert (reading.intent, reading.bare, reading.language) == (Intent(intent), bare, "es")


@pytest.mark.parametrize("body", ["No tengo mensajes nuevos", "Me llamo Ana", "Sí, mañana a las 3", "Para mañana"])
def test_ordinary_spanish_replies_are_for_the_coach(body):
    assert read(body).intent is None


def test_a_template_saved_after_the_plan_is_the_text_that_goes(ctx, twilio, patient_texting, admin):
    patient_texting(discharged_at=(utcnow() - dt.timedelta(hours=1)).isoformat())
    queued = db.session.scalar(sa.select(Message.body).where(Message.status == "queued").limit(1))
    assert queued.startswith("Hi Alex, it's")  # the built-in text, as planned
    assert admin.post("/api/v1/message-templates", json={
        "name": "check_in", "body": "Hello {first_name}, checking in from the team."}).status_code == 201

    run_until(twilio, 1, utcnow(), days=2)
    assert twilio.received[0].body == f"Hello Alex, checking in from the team. {ENGLISH_HINT}"


def test_every_built_in_text_fits_two_segments_with_long_names_in_every_language(app):
    from backend.outreach import segments, templates

    with app.app_context():
        for language in languages.LANGUAGES.values():
            for name, body in language.texts.items():
                sample = templates.sample(name=name, body=body, language=language.code)
                assert segments.count(sample) <= 2, (language.code, name, sample)


@pytest.mark.parametrize("body", ["No me molesta, gracias", "no me mandaron la receta",
                                  "No me han enviado la dirección", "No me escribió el doctor",
                                  "Todavía no me contactaron de la clínica", "¿Y si no me mandan la receta?",
                                  "No me pudieron mandar el papel", "No me dejan contactar a mi hermano",
                                  "Parar en la farmacia primero?"])
def test_spanish_statements_about_texts_are_not_requests_to_stop(body):
    assert read(body).intent is None


@pytest.mark.parametrize("body", ["no quiero que me escriban", "Ya no quiero recibir estos mensajes",
                                  "No deseo recibir mensajes", "Bórrenme de la lista", "Número incorrecto",
                                  "Se equivocaron de número"])
def test_more_spanish_requests_to_stop_are_understood(body):
    assert read(body) == Reading(Intent.OPT_OUT, False, "es")


def test_si_opts_back_in_only_a_patient_who_opted_out(ctx, twilio, client, clinic, patient_texting):
    patient, _ = patient_texting(language="es")  # opted in
    answer = inbound(client, "Sí", sid="SMsi1").get_data(as_text=True)
    assert "<Message>" not in answer  # an ordinary "sí" for the coach
    assert "Sí" in [m["body"] for m in clinic.get("/api/v1/inbox?unread=true").get_json()["items"]]
    inbound(client, "ALTO", sid="SMsi2")
    answer = inbound(client, "si", sid="SMsi3").get_data(as_text=True)
    assert "Recibirá mensajes" in answer
    assert clinic.get(f"/api/v1/patients/{patient['id']}").get_json()["sms_status"] == "opted_in"


def test_si_from_someone_never_asked_does_not_opt_them_in(ctx, twilio, client, clinic, patient_texting):
    patient, _ = patient_texting(language="es", sms_status="unknown")
    inbound(client, "Sí", sid="SMsi4")
    assert clinic.get(f"/api/v1/patients/{patient['id']}").get_json()["sms_status"] == "unknown"


def test_a_regional_template_serves_its_region_and_tags_are_written_one_way(ctx, twilio, patient_texting, admin):
    body = {"name": "check_in", "body": "¡Hola {first_name}! Le escribe {coach_name}."}
    assert admin.post("/api/v1/message-templates", json={**body, "language": "es-mx"}).get_json()["language"] == \
        "es-MX"
    assert admin.post("/api/v1/message-templates", json={**body, "language": "ES-mx"}).status_code == 409
    patient_texting(discharged_at=(utcnow() - dt.timedelta(hours=1)).isoformat(), language="es-MX")
    run_until(twilio, 1, utcnow(), days=2)
    assert twilio.received[0].body.startswith("¡Hola Alex! Le escribe")


def test_a_spanish_text_without_a_coach_signs_in_spanish(app, register):
    from backend.outreach import templates

    with app.app_context():
        patient = type("Patient", (), {"first_name": "Ana", "language": "es", "timezone": "America/New_York"})
        text = templates.automatic_text("check_in", patient=patient, coach_display_name=None)
    assert "soy su equipo" in text.body and "your care team" not in text.body


def test_a_help_answer_template_must_give_the_callback_number(admin):
    refused = admin.post("/api/v1/message-templates", json={"name": "help", "language": "es",
                                                             "body": "Estamos aquí para ayudarle."})
    assert refused.status_code == 422 and "callback" in refused.get_json()["detail"]


@pytest.mark.parametrize("text, found", [("no drugs please", {"drug"}), ("programa anti-drogas", {"droga"}),
                                         ("post-sobredosis", {"sobredosis"}), ("drogodependencia", {"drogodepend"}),
                                         ("substancias", {"substancia"}),
                                         ("Hubo un cambio sustancial en su cita", set()), ("Un día soberbio", set()),
                                         ("The drugstore on Main St", set())])
def test_revealing_words_hide_in_plurals_and_hyphens_but_everyday_words_pass(text, found):
    assert set(revealing_words(text)) == found
