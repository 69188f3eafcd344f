"""The admin's programs directory and message templates in the console: the API's fields and
checks, through the same services as `/api/v1/programs` and `/api/v1/message-templates`."""

from __future__ import annotations

import re

import sqlalchemy as sa

from backend.audit.models import AuditEvent
from backend.auth.models import Role
from backend.extensions import db
from backend.outreach.models import MessageTemplate
from backend.programs.models import Program

PROGRAM = {"name": "Harbor Street OTP", "service": "otp", "asam_level": "1", "asam_edition": "4th",
           "phone": "(617) 555-0142", "address": "12 Harbor St", "accepting_patients": "yes", "external": "yes"}


def programs(app) -> list[Program]:
    with app.app_context():
        found = list(db.session.scalars(sa.select(Program).order_by(Program.name)))
        db.session.expunge_all()
        return found


def saved_templates(app) -> list[tuple[str, str, str]]:
    with app.app_context():
        return [(t.name, t.language, t.body) for t in db.session.scalars(
            sa.select(MessageTemplate).order_by(MessageTemplate.name, MessageTemplate.language))]


def events(app, action: str) -> list[AuditEvent]:
    with app.app_context():
        found = list(db.session.scalars(sa.select(AuditEvent).where(AuditEvent.action == action)))
        db.session.expunge_all()
        return found


# --- programs ------------------------------------------------------------------------------

def test_an_admin_adds_a_program_with_the_apis_fields_and_it_is_in_the_directory(app, console, coach):
    admin = console(Role.ADMIN)
    response = admin.post("/console/programs", PROGRAM)
    assert response.status_code == 302 and response.headers["Location"] == "/console/programs"
    listing = admin.get("/console/programs").get_data(as_text=True)
    assert "Added Harbor Street OTP to the directory." in listing and "Opioid treatment program (OTP)" in listing
    listed = coach.get("/api/v1/programs").get_json()["items"]
    assert [(p["name"], p["service"], p["asam_level"], p["asam_edition"], p["phone"], p["accepting_patients"],
             p["external"]) for p in listed] == [("Harbor Street OTP", "otp", "1", "4th", "+16175550142", True, True)]
    [created] = events(app, "program.create")
    assert created.actor_id == admin.user.id and created.resource_id == listed[0]["id"]


def test_a_bad_program_comes_back_with_its_input_and_messages_by_field(app, console):
    admin = console(Role.ADMIN)
    response = admin.post("/console/programs", {**PROGRAM, "name": " ", "phone": "12", "service": ""})
    page = response.get_data(as_text=True)
    assert response.status_code == 422
    for name in ("name", "phone", "service"):
        assert re.search(rf'id="{name}-error">[^<]+', page), name
    assert 'value="12 Harbor St"' in page and 'value="12"' in page
    assert programs(app) == []


def test_an_edit_saves_only_what_changed_and_unticking_a_box_is_a_change(app, console):
    admin = console(Role.ADMIN)
    admin.post("/console/programs", PROGRAM)
    [program] = programs(app)
    page = admin.get(f"/console/programs/{program.id}").get_data(as_text=True)
    assert 'name="version" value="1"' in page and 'value="Harbor Street OTP"' in page
    form = {**PROGRAM, "phone": "617-555-0199", "version": "1"}
    del form["accepting_patients"]  # an unticked box is not sent
    assert admin.post(f"/console/programs/{program.id}", form).status_code == 302
    [changed] = programs(app)
    assert changed.phone == "+16175550199" and changed.accepting_patients is False and changed.version == 2
    [update] = events(app, "program.update")
    assert update.details == {"fields": ["accepting_patients", "phone"]} and update.actor_id == admin.user.id


def test_an_edit_over_someone_elses_newer_save_writes_nothing_and_shows_both(app, console, admin):
    browser = console(Role.ADMIN)
    browser.post("/console/programs", PROGRAM)
    [program] = programs(app)
    browser.get(f"/console/programs/{program.id}")  # opened at version 1
    assert admin.patch(f"/api/v1/programs/{program.id}", json={"address": "40 New Road"},
                       headers={"If-Match": '"1"'}).status_code == 200
    response = browser.post(f"/console/programs/{program.id}", {**PROGRAM, "name": "Harbor OTP", "version": "1"})
    page = response.get_data(as_text=True)
    assert response.status_code == 412
    assert "Someone saved this program since you opened it" in page
    assert "40 New Road" in page and 'value="Harbor OTP"' in page  # theirs shown, yours kept
    assert 'name="version" value="2"' in page  # saving again is a choice made on their version
    [current] = programs(app)
    assert current.name == "Harbor Street OTP" and current.address == "40 New Road"


# --- templates -----------------------------------------------------------------------------

def test_a_template_that_reveals_the_service_is_refused_with_the_words_by_language(app, console):
    admin = console(Role.ADMIN)
    body = "Hi {first_name}, your Detoxing group meets Tuesday. Llame si hay una sobredosis."
    response = admin.post("/console/templates", {"name": "group_reminder", "body": body, "language": "en"})
    page = response.get_data(as_text=True)
    assert response.status_code == 422
    assert re.search(r'id="body-error">Reveals the service: detox, sobredosis', page)
    assert "Not saved: the text would reveal the service" in page
    english = re.search(r"English words</th>\s*<td>(.*?)</td>", page, re.S).group(1)
    spanish = re.search(r"Spanish words</th>\s*<td>(.*?)</td>", page, re.S).group(1)
    assert "detox" in english and "typed “Detoxing”" in english and "sobredosis" not in english
    assert "sobredosis" in spanish and "detox" not in spanish
    assert f">{body}</textarea>" in page  # the text kept as typed
    assert saved_templates(app) == []


def test_a_good_template_is_saved_with_its_check_shown_and_the_api_serves_it(app, console, coach):
    admin = console(Role.ADMIN)
    response = admin.post("/console/templates", {"name": "check_in", "language": "es",
                                                 "body": "Hola {first_name}, soy {coach_name}. ¿Todo bien?"})
    assert response.status_code == 302 and response.headers["Location"] == "/console/templates"
    page = admin.get("/console/templates").get_data(as_text=True)
    assert "Saved the template “check_in” in Spanish." in page
    assert "No word reveals the service in any language; 2 SMS segments (UCS-2)" in page  # ¿ is not GSM-7
    assert "Responda ALTO para no recibir más." in page  # as sent, with the Spanish opt-out hint
    served = coach.get("/api/v1/message-templates").get_json()["items"]
    assert [(t["name"], t["language"], t["segments"]) for t in served] == [("check_in", "es", 2)]
    assert [e.actor_id for e in events(app, "template.create")] == [admin.user.id]
    assert "Saved the template" not in admin.get("/console/templates").get_data(as_text=True)  # said once


def test_a_template_too_long_for_two_segments_or_with_an_unknown_placeholder_is_refused_by_its_text(app, console):
    admin = console(Role.ADMIN)
    long = admin.post("/console/templates", {"name": "long", "language": "en", "body": "Hello there. " * 30})
    assert long.status_code == 422 and re.search(r'id="body-error">\d+ segments', long.get_data(as_text=True))
    unknown = admin.post("/console/templates", {"name": "odd", "language": "en", "body": "Hi {nickname}"})
    assert unknown.status_code == 422
    assert re.search(r'id="body-error">Unknown placeholders: nickname', unknown.get_data(as_text=True))
    language = admin.post("/console/templates", {"name": "fr", "language": "fr", "body": "Bonjour"})
    assert language.status_code == 422 and re.search(r'id="language-error">[^<]+', language.get_data(as_text=True))
    assert saved_templates(app) == []


def test_editing_a_template_is_checked_the_same_and_a_refusal_keeps_the_saved_text(app, console):
    admin = console(Role.ADMIN)
    admin.post("/console/templates", {"name": "nudge", "language": "en", "body": "Hi {first_name}, call us."})
    with app.app_context():
        template_id = db.session.scalar(sa.select(MessageTemplate.id))
    page = admin.get(f"/console/templates/{template_id}").get_data(as_text=True)
    assert "Passes: no word that reveals the service" in page
    refused = admin.post(f"/console/templates/{template_id}", {"name": "nudge", "language": "en",
                                                              "body": "Hi {first_name}, detox starts Monday."})
    assert refused.status_code == 422 and "detox" in refused.get_data(as_text=True)
    assert saved_templates(app) == [("nudge", "en", "Hi {first_name}, call us.")]
    changed = admin.post(f"/console/templates/{template_id}", {"name": "nudge", "language": "en",
                                                              "body": "Hi {first_name}, call us today."})
    assert changed.status_code == 302
    assert saved_templates(app) == [("nudge", "en", "Hi {first_name}, call us today.")]
    [update] = events(app, "template.update")
    assert update.details == {"fields": ["body"]} and update.actor_id == admin.user.id
