"""Use cases of message templates: placeholders and the values every text knows
(`default_values`), the privacy check, the opt-out hint, segments.

Automatic texts are a template's body with its placeholders filled and the opt-out hint
appended; a template is refused when saved if it reveals the service (422 `message-privacy`
listing the words), names an unknown placeholder, or would not fit in two SMS segments with
realistic values.
"""

from __future__ import annotations

import datetime as dt
import re
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from flask import current_app

from backend.audit import service as audit
from backend.errors import Problem
from backend.extensions import db
from backend.outreach import privacy, segments
from backend.outreach.models import MessageTemplate

OPT_OUT_HINT = "Reply STOP to opt out."
#: Every placeholder a template may use, with the longest realistic value (for the segment check).
PLACEHOLDERS = {
    "first_name": "Alexandria",
    "coach_name": "Maria",
    "appointment_time": "10:30 AM",
    "appointment_date": "Tue Nov 24",
    "callback_phone": "(617) 555-0100",
}
MAX_SEGMENTS = 2
#: The automatic texts' bodies, unless an admin saves a template with the kind's name
#: (`check_in`, `appointment_reminder`), which then replaces it.
AUTOMATIC_BODIES = {
    "check_in": "Hi {first_name}, it's {coach_name} checking in. How are you doing? "
                "Text back or call {callback_phone}.",
    "appointment_reminder": "Hi {first_name}, a reminder of your appointment on {appointment_date} at "
                            "{appointment_time}. Questions? Call {callback_phone}.",
}
_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")
_BODIES = "bridgeline.automatic_bodies"
#: What each automatic text knows when it is planned (a check-in has no appointment).
AUTOMATIC_PLACEHOLDERS = {
    "check_in": {"first_name", "coach_name", "callback_phone"},
    "appointment_reminder": {"first_name", "coach_name", "callback_phone", "appointment_date", "appointment_time"},
}


def render(body: str, values: dict[str, str]) -> str:
    """The automatic text: placeholders filled, the opt-out hint appended."""
    text = _PLACEHOLDER.sub(lambda m: values.get(m.group(1), m.group(0)), body).strip()
    return f"{text} {OPT_OUT_HINT}"


def default_values(*, patient, coach_display_name: str | None) -> dict[str, str]:
    """The values every text knows: the patient's first name, the coach's first name (the
    sender's, for a coach's own text; the episode coach's, for an automatic one), the callback
    phone."""
    coach = coach_display_name.split()[0] if coach_display_name and coach_display_name.strip() else None
    return {"first_name": patient.first_name, "coach_name": coach or "your care team",
            "callback_phone": current_app.config["SMS_CALLBACK_PHONE"]}


def placeholders(body: str) -> set[str]:
    return set(_PLACEHOLDER.findall(body))


def appointment_values(starts_at: dt.datetime, timezone: str) -> dict[str, str]:
    """{appointment_date} and {appointment_time} in the patient's time zone ("Tue Nov 24", "9:30 AM")."""
    local = starts_at.astimezone(ZoneInfo(timezone))
    return {"appointment_date": f"{local:%a %b} {local.day}", "appointment_time": f"{local:%I:%M %p}".lstrip("0")}


def check(body: str) -> dict:
    """Refuse a body that reveals the service, uses unknown placeholders or is too long; return
    the sample rendering's encoding and segment count."""
    words = privacy.revealing_words(_PLACEHOLDER.sub(" ", body))
    if words:
        raise Problem(422, f"The text would reveal the service: {', '.join(words)}.", type="message-privacy",
                      words=words, errors={"body": [f"Reveals the service: {', '.join(words)}."]})
    unknown = sorted(set(_PLACEHOLDER.findall(body)) - set(PLACEHOLDERS))
    if unknown or body.count("{") != body.count("}"):
        raise Problem(422, "Unknown or unbalanced placeholders.",
                      errors={"body": [f"Unknown placeholders: {', '.join(unknown) or 'unbalanced braces'}; "
                                       f"known: {', '.join(sorted(PLACEHOLDERS))}."]})
    sample = render(body, PLACEHOLDERS)
    count = segments.count(sample)
    if count > MAX_SEGMENTS:
        raise Problem(422, f"With the opt-out hint the text takes {count} SMS segments; at most {MAX_SEGMENTS}.",
                      errors={"body": [f"{count} segments with realistic values and the opt-out hint."]})
    return {"encoding": segments.encoding(sample), "segments": count, "sample": sample}


def _check_automatic(name: str, body: str) -> None:
    """A template named after an automatic text replaces it: it may use only what that text knows."""
    allowed = AUTOMATIC_PLACEHOLDERS.get(name)
    extra = sorted(placeholders(body) - allowed) if allowed is not None else []
    if extra:
        raise Problem(422, f"The {name} text is planned without: {', '.join(extra)}.",
                      errors={"body": [f"{name} can use only: {', '.join(sorted(allowed))}."]})


def create(*, name: str, body: str) -> MessageTemplate:
    check(body)
    _check_automatic(name, body)
    if db.session.scalar(sa.select(MessageTemplate.id).where(MessageTemplate.name == name)) is not None:
        raise Problem(409, f"A template named {name!r} exists.", errors={"name": ["Already taken."]})
    template = MessageTemplate(name=name, body=body)
    db.session.info.pop(_BODIES, None)
    db.session.add(template)
    db.session.flush()
    audit.record("template.create", resource_type="message_template", resource_id=template.id)
    return template


def update(*, template: MessageTemplate, changes: dict) -> MessageTemplate:
    if "body" in changes:
        check(changes["body"])
    _check_automatic(changes.get("name", template.name), changes.get("body", template.body))
    if changes.get("name") not in (None, template.name) and db.session.scalar(
            sa.select(MessageTemplate.id).where(MessageTemplate.name == changes["name"])) is not None:
        raise Problem(409, f"A template named {changes['name']!r} exists.", errors={"name": ["Already taken."]})
    for field, value in changes.items():
        setattr(template, field, value)
    db.session.info.pop(_BODIES, None)
    db.session.flush()
    audit.record("template.update", resource_type="message_template", resource_id=template.id,
                 details={"fields": sorted(changes)})
    return template


def automatic_body(kind: str) -> str:
    """The body of an automatic text of `kind`: the admin's template of that name, or the default.
    Looked up once per database session (a request, a job run), and again after an edit."""
    cache = db.session.info.setdefault(_BODIES, {})
    if kind not in cache:
        saved = db.session.scalar(sa.select(MessageTemplate.body).where(MessageTemplate.name == kind))
        cache[kind] = saved if saved is not None else AUTOMATIC_BODIES[kind]
    return cache[kind]


def list_all() -> list[MessageTemplate]:
    return list(db.session.scalars(sa.select(MessageTemplate).order_by(MessageTemplate.name)).all())
